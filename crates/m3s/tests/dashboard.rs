//! End to end: the dashboard of a running `m3s up`.
//!
//! `dashboard_in_a_browser` runs `tests/dashboard/dashboard.mjs`: playwright-core
//! driving Debian's chromium, headless (both installed by scripts/test). It signs
//! in, loads every page without a console error, deploys a compose file from the
//! page until it runs, scales and removes it, reads a chart's points and a live
//! log tail, and saves a screenshot of each page in target/dashboard-screenshots.
//! The other tests check sessions, CSRF and sandbox confinement over plain HTTP.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::metrics::exchange;
use support::tempdir;
use support::up::{TOKEN, Up};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A small stack with no fixed host port: the other tests run the example
/// stack, whose web service takes port 31080, at the same time.
fn demo(dir: &Path) -> String {
    let path = dir.join("compose.yaml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &path,
        "name: demo\nservices:\n  web:\n    command: [\"sh\", \"-c\", \"echo web up; while true; do sleep 1; done\"]\n  \
         worker:\n    command: [\"sh\", \"-c\", \"while true; do echo working; sleep 2; done\"]\n",
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn dashboard_in_a_browser() {
    let root = repo();
    let script = root.join("tests/dashboard/dashboard.mjs");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<String> = [
        (
            root.join("tests/dashboard/node_modules/playwright-core").exists(),
            "playwright-core (cd tests/dashboard && npm ci)".to_owned(),
        ),
        (Path::new(&chromium).exists(), format!("chromium at {chromium} (apt-get install chromium)")),
        (Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()), "node".to_owned()),
    ]
    .into_iter()
    .filter(|(present, _)| !present)
    .map(|(_, what)| what)
    .collect();
    if !missing.is_empty() {
        // scripts/test installs all three; only an explicit opt-out skips, and says so.
        assert!(
            std::env::var_os("M3S_SKIP_BROWSER_TESTS").is_some(),
            "the browser test needs {}; ./scripts/test installs them (M3S_SKIP_BROWSER_TESTS=1 skips this test)",
            missing.join(", ")
        );
        eprintln!(
            "\n*** SKIPPED dashboard_in_a_browser: M3S_SKIP_BROWSER_TESTS is set and {} missing ***\n",
            missing.join(", ")
        );
        return;
    }
    let dir = tempdir("dashboard-browser");
    let up = Up::start(&dir, &["-f", &demo(&dir), "--collect-interval", "1s"]);
    let token_file = dir.join("token-for-the-browser");
    std::fs::write(&token_file, TOKEN).unwrap();
    let shots = std::env::var_os("M3S_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/dashboard-screenshots"));
    let out = Command::new("node")
        .arg(&script)
        .current_dir(root.join("tests/dashboard"))
        .env("M3S_URL", up.api())
        .env("M3S_TOKEN_FILE", &token_file)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}\n--- m3s log ---\n{}", up.log_tail());
    eprintln!("browser test passed; page weights: {stdout}; screenshots in {}", shots.display());
    for page in ["overview", "nodes", "stacks", "tasks", "task", "metrics", "report", "errors"] {
        let png = shots.join(format!("{page}.png"));
        assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000), "no screenshot {}", png.display());
    }
}

fn cookie_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in\n{head}"))
        .to_owned()
}

fn location(head: &str) -> &str {
    head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap_or("")
}

#[test]
fn sessions_csrf_and_sandbox_confinement() {
    let dir = tempdir("dashboard-http");
    let up = Up::start(&dir, &["-f", &demo(&dir)]);
    let port = up.api_port;
    let form = [("content-type", "application/x-www-form-urlencoded")];

    // Signed out: pages redirect to the sign-in form, which keeps where to go back to.
    let (status, head, _) = exchange(port, "GET", "/ui/tasks", &[], b"");
    assert_eq!((status, location(&head)), (303, "/ui/login?next=%2Fui%2Ftasks"), "{head}");
    let (status, _, body) = exchange(port, "GET", "/ui/login?next=/ui/tasks", &[], b"");
    assert!(status == 200 && body.contains(r#"<label for="token">API token</label>"#), "{body}");
    // The assets need no session (the sign-in page uses them).
    let (status, _, css) = exchange(port, "GET", "/ui/assets/dashboard.css", &[], b"");
    assert!(status == 200 && css.contains(":focus-visible"), "{status}");

    // A wrong token is refused; the right one gives an HttpOnly, SameSite=Strict cookie.
    let (status, head, body) = exchange(port, "POST", "/ui/login", &form, b"token=nope&next=/ui/tasks");
    assert!(status == 401 && !head.contains("m3s_session") && body.contains("Wrong token"), "{status} {head}");
    let login = format!("token={TOKEN}&next=/ui/tasks");
    let (status, head, _) = exchange(port, "POST", "/ui/login", &form, login.as_bytes());
    assert_eq!((status, location(&head)), (303, "/ui/tasks"), "{head}");
    assert!(head.contains("HttpOnly") && head.contains("SameSite=Strict"), "{head}");
    let cookie = cookie_of(&head);
    // No open redirect: only the dashboard's own pages are places to go back to.
    // A control character (which no Location header may hold) is refused the same way.
    for next in ["https://evil.example/", "//evil.example/ui/", "/ui//evil.example", "/ui/tasks\r\nX: y", "/ui/\u{1}"] {
        let body =
            format!("token={TOKEN}&next={}", form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
        let (status, head, _) = exchange(port, "POST", "/ui/login", &form, body.as_bytes());
        assert_eq!((status, location(&head)), (303, "/ui/"), "next={next:?}");
    }

    // The cookie opens pages, and reads of the APIs (charts and tails fetch them)...
    let with_cookie = [("cookie", cookie.as_str())];
    let (status, _, page) = exchange(port, "GET", "/ui/stacks", &with_cookie, b"");
    assert!(status == 200 && page.contains("demo"), "{status}");
    let csrf =
        page.split("data-csrf=\"").nth(1).and_then(|s| s.split('"').next()).expect("the page's CSRF token").to_owned();
    assert!(csrf.len() > 20, "{csrf}");
    let (status, _, _) = exchange(port, "GET", "/api/v1/query?query=up", &with_cookie, b"");
    assert_eq!(status, 200);
    let (status, _, _) = exchange(port, "GET", "/api/v1/projects", &with_cookie, b"");
    assert_eq!(status, 200);
    // ...but no change through the APIs: those still need the token.
    let (status, _, _) = exchange(port, "DELETE", "/api/v1/projects/demo", &with_cookie, b"");
    assert_eq!(status, 401);
    let (status, _, _) = exchange(port, "POST", "/write", &with_cookie, b"m v=1");
    assert_eq!(status, 401);

    // The dashboard's own changes need the page's CSRF token too.
    let scale = b"replicas=2";
    let (status, _, body) = exchange(port, "POST", "/ui/stacks/demo/worker/scale", &[with_cookie[0], form[0]], scale);
    assert!(status == 403 && body.contains("CSRF"), "{status} {body}");
    let wrong = [with_cookie[0], form[0], ("x-csrf-token", "forged")];
    let (status, _, _) = exchange(port, "POST", "/ui/stacks/demo/worker/scale", &wrong, scale);
    assert_eq!(status, 403);
    let (status, _, _) =
        exchange(port, "POST", "/ui/stacks/demo/worker/scale", &[form[0], ("x-csrf-token", &csrf)], scale);
    assert_eq!(status, 401, "a CSRF token without the cookie is nothing");
    let good = [with_cookie[0], form[0], ("x-csrf-token", csrf.as_str())];
    let (status, _, body) = exchange(port, "POST", "/ui/stacks/demo/worker/scale", &good, scale);
    assert!(status == 200 && body.contains("demo/worker: scaling to 2"), "{status} {body}");
    let project = up.get("/api/v1/projects/demo").expect("the project");
    let worker = project["services"].as_array().unwrap().iter().find(|s| s["name"] == "worker").unwrap().clone();
    assert_eq!(worker["replicas"], 2, "{worker}");
    // A bad value is named, and nothing changes.
    let (status, _, body) = exchange(port, "POST", "/ui/stacks/demo/worker/scale", &good, b"replicas=many");
    assert!(status == 200 && body.contains(r#"replicas=&quot;many&quot;: expected a whole number"#), "{body}");

    // Sandbox reads stay inside the task's sandbox.
    let task = up.wait_project("demo", "web running", |p| {
        p["services"].as_array().unwrap().iter().any(|s| s["name"] == "web" && s["running"] == 1)
    });
    let web = task["services"].as_array().unwrap().iter().find(|s| s["name"] == "web").unwrap();
    let t = web["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "TASK_RUNNING").unwrap();
    let (task_id, agent) = (t["id"].as_str().unwrap(), t["agent_id"].as_str().unwrap());
    let framework = up.get("/api/v1/health").unwrap()["framework_id"].as_str().unwrap().to_owned();
    let read = |path: &str, want: u16| {
        let url = format!("/ui/tasks/{framework}/{task_id}/read?agent={agent}&path={path}");
        let (status, _, body) = exchange(port, "GET", &url, &with_cookie, b"");
        assert_eq!(status, want, "{url}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    assert!(read("stdout", 200)["offset"].as_u64().is_some(), "stdout is readable");
    // The sandbox listing names entries relative to the sandbox, however the directory was written.
    for dir in ["", "./", "."] {
        let url = format!("/ui/tasks/{framework}/{task_id}?path={dir}");
        let (status, _, page) = exchange(port, "GET", &url, &with_cookie, b"");
        assert!(status == 200 && page.contains(r#"/file?path=stdout">stdout</a>"#), "{url}: {page}");
    }
    for escape in ["../../../../etc/passwd", "%2Fetc%2Fpasswd", "..%2F..%2Fmeta"] {
        let answer = read(escape, 404);
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains("not a path inside the sandbox")),
            "{escape}: {answer}"
        );
    }

    // Signing out clears the cookie (and needs the page's token, so no other site can sign you out).
    let (status, _, _) = exchange(port, "POST", "/ui/logout", &[with_cookie[0], form[0]], b"csrf=forged");
    assert_eq!(status, 403);
    let (status, head, _) =
        exchange(port, "POST", "/ui/logout", &[with_cookie[0], form[0]], format!("csrf={csrf}").as_bytes());
    assert!(status == 303 && head.contains("m3s_session=;") && head.contains("Max-Age=0"), "{head}");
}
