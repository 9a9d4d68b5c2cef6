//! What a probe of `m3s up` broke (issue 19), each as the attack or the mistake
//! it was, against the real binary: a billion replicas, an anonymous launch on
//! the embedded Mesos port, a framework hijack and a teardown, a symlink swapped
//! under the files API, world-readable secrets, and a compose file that reads
//! m3s's own environment.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::eventually;
use support::up::{TOKEN, Up, http, live_tasks, processes_with_argv, state};
use support::{rss_kib, tempdir, write};

/// The first file named `name` below `dir`.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        if e.file_type().ok()?.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if e.file_name() == name {
            return Some(path);
        }
    }
    None
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The embedded cluster's generated credentials.
fn mesos_credential(up: &Up) -> (String, String) {
    let file: Value =
        serde_json::from_slice(&std::fs::read(up.work_dir.join("mini/credentials.json")).unwrap()).unwrap();
    let c = &file["credentials"][0];
    (c["principal"].as_str().unwrap().to_owned(), c["secret"].as_str().unwrap().to_owned())
}

fn runtime() -> tokio::runtime::Runtime {
    support::init_tls();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// SUBSCRIBE on the scheduler API: the status, and the first event when there is one.
async fn subscribe(port: u16, auth: Option<(&str, &str)>, framework_info: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/scheduler"))
        .header("Content-Type", "application/json")
        .json(&json!({"type": "SUBSCRIBE", "framework_id": framework_info["id"], "subscribe": {"framework_info": framework_info}}));
    if let Some((p, s)) = auth {
        req = req.basic_auth(p, Some(s));
    }
    let mut res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status != 200 {
        return (status, Value::Null);
    }
    let mut decoder = mesos::recordio::Decoder::default();
    loop {
        if let Some(record) = decoder.next_record().unwrap() {
            return (status, serde_json::from_slice(&record).unwrap());
        }
        match tokio::time::timeout(Duration::from_secs(30), res.chunk()).await.expect("an event in time").unwrap() {
            Some(bytes) => decoder.feed(&bytes),
            None => return (status, Value::Null),
        }
    }
}

fn one_service(dir: &Path, marker: &str) -> String {
    write(dir, "compose.yaml", &format!("services:\n  s:\n    command: [\"sleep\", \"{marker}\"]\n"))
}

#[test]
fn a_billion_replicas_is_refused_before_anything_is_allocated() {
    let dir = tempdir("sec-replicas");
    let marker = format!("{}.2", 710_000 + std::process::id() % 1000);
    let file = one_service(&dir, &marker);
    let up = Up::start(&dir.join("up"), &["-f", &file, "-p", "big"]);
    up.wait_project("big", "s running", |v| state(v, "s") == "running");
    let before = rss_kib(up.pid());

    let (status, body) =
        http("PUT", up.api_port, "/api/v1/projects/big/services/s/scale", Some(r#"{"replicas":1000000000}"#));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("limit of 1000") && body.contains("--max-replicas"), "{body}");
    let cli = up.compose(&["-p", "big", "scale", "s=1000000000"]);
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("--max-replicas"),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    // A compose file asking for too many is refused the same way, naming its key.
    let (status, body) = http(
        "PUT",
        up.api_port,
        "/api/v1/projects/bigger",
        Some("services:\n  s:\n    command: [\"true\"]\n    deploy: {replicas: 100000}\n"),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("services.s.deploy.replicas"), "{body}");

    let after = rss_kib(up.pid());
    assert!(after < before + 20 * 1024, "m3s grew from {before} KiB to {after} KiB");
    let view = up.get("/api/v1/projects/big").unwrap();
    assert_eq!(live_tasks(&view, "s").len(), 1, "the refused scale changed nothing");
    up.compose_ok(&["-p", "big", "down"]);
}

#[test]
fn the_embedded_mesos_port_refuses_anonymous_frameworks_and_foreign_users() {
    let dir = tempdir("sec-anon");
    let up = Up::start(&dir.join("up"), &[]);
    let credentials = up.work_dir.join("mini/credentials.json");
    assert_eq!(mode(&credentials), 0o600);
    let (principal, secret) = mesos_credential(&up);
    runtime().block_on(async {
        let info = json!({"user": "root", "name": "intruder"});
        let (status, _) = subscribe(up.mesos_port, None, info.clone()).await;
        assert_eq!(status, 401, "an anonymous SUBSCRIBE is refused");
        let (status, _) = subscribe(up.mesos_port, Some((&principal, "guess")), info.clone()).await;
        assert_eq!(status, 401, "a wrong secret is refused");
        let (status, first) = subscribe(up.mesos_port, Some((&principal, &secret)), info).await;
        assert_eq!((status, first["type"].as_str()), (200, Some("SUBSCRIBED")), "{first}");
    });
    // `m3s mesos` finds the credentials when told where they are.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["mesos", "--master", &format!("127.0.0.1:{}", up.mesos_port), "--mesos-credentials"])
        .arg(&credentials)
        .args(["get", "frameworks"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A closed pipe ends a client command quietly, as Unix tools do.
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' mesos --master 127.0.0.1:{} --mesos-credentials '{}' get state | head -c 1 >/dev/null",
            env!("CARGO_BIN_EXE_m3s"),
            up.mesos_port,
            credentials.display()
        ))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&piped.stderr));
}

#[test]
fn a_hijack_is_refused_and_a_teardown_is_recovered_from() {
    let dir = tempdir("sec-hijack");
    let up_dir = dir.join("up");
    // A second principal on the same port: an operator's, say.
    std::fs::create_dir_all(up_dir.join("mini")).unwrap();
    std::fs::write(
        up_dir.join("mini/credentials.json"),
        r#"{"credentials":[{"principal":"m3s","secret":"first-secret"},{"principal":"other","secret":"other-secret"}]}"#,
    )
    .unwrap();
    let marker = format!("{}.3", 720_000 + std::process::id() % 1000);
    let file = one_service(&dir, &marker);
    let up = Up::start(&up_dir, &["-f", &file, "-p", "hj"]);
    let view = up.wait_project("hj", "s running", |v| state(v, "s") == "running");
    let first_task = live_tasks(&view, "s");
    let fid = up.get("/api/v1/health").unwrap()["framework_id"].as_str().unwrap().to_owned();

    runtime().block_on(async {
        // The framework id is public; subscribing with it needs m3s's own principal.
        let info = json!({"user": "root", "name": "m3s", "id": {"value": fid}, "roles": ["m3s"],
                          "capabilities": [{"type": "MULTI_ROLE"}], "failover_timeout": 10});
        let (status, _) = subscribe(up.mesos_port, None, info.clone()).await;
        assert_eq!(status, 401);
        let (status, first) = subscribe(up.mesos_port, Some(("other", "other-secret")), info).await;
        assert_eq!(status, 200);
        assert_eq!(first["type"], "ERROR", "{first}");
        assert!(first["error"]["message"].as_str().unwrap().contains("principal"), "{first}");

        // An operator tears the framework down: its tasks die ...
        let teardown = json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": fid}}});
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/v1", up.mesos_port))
            .basic_auth("other", Some("other-secret"))
            .json(&teardown)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    });
    // ... and m3s registers anew and runs its project again.
    let view = up.wait_project("hj", "s running again under a new framework", |v| {
        state(v, "s") == "running" && live_tasks(v, "s").iter().all(|t| !first_task.contains(t))
    });
    let new_fid = up.get("/api/v1/health").unwrap()["framework_id"].as_str().unwrap().to_owned();
    assert_ne!(new_fid, fid);
    assert_eq!(live_tasks(&view, "s").len(), 1);
    eventually("exactly one task process", || processes_with_argv(&["sleep", &marker]).len() == 1);
    let ps = up.compose_ok(&["-p", "hj", "ps"]);
    assert!(ps.contains("running"), "{ps}");
    up.compose_ok(&["-p", "hj", "down", "--timeout", "60"]);
    eventually("the task to end", || processes_with_argv(&["sleep", &marker]).is_empty());
}

#[test]
fn a_framework_torn_down_while_m3s_was_down_is_registered_anew_at_the_restart() {
    let dir = tempdir("sec-teardown-restart");
    let mini = support::Mini::start(&dir.join("mini"));
    let mut serve = Up::serve(&dir.join("serve"), &mini);
    let marker = format!("{}.4", 730_000 + std::process::id() % 1000);
    let file = one_service(&dir, &marker);
    serve.compose_ok(&["-f", &file, "-p", "td", "up"]);
    serve.wait_project("td", "s running", |v| state(v, "s") == "running");
    let fid = serve.get("/api/v1/health").unwrap()["framework_id"].as_str().unwrap().to_owned();
    serve.kill9();
    let (principal, secret) = mini.credential();
    runtime().block_on(async {
        let teardown = json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": fid}}});
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1", mini.url()))
            .basic_auth(principal, Some(secret))
            .json(&teardown)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    });
    eventually("the torn-down task to end", || processes_with_argv(&["sleep", &marker]).is_empty());
    serve.restart();
    serve.wait_project("td", "s running again", |v| state(v, "s") == "running");
    assert_ne!(serve.get("/api/v1/health").unwrap()["framework_id"].as_str().unwrap(), fid);
    eventually("the task to run again", || processes_with_argv(&["sleep", &marker]).len() == 1);
    serve.compose_ok(&["-p", "td", "down", "--timeout", "60"]);
}

#[test]
fn a_symlink_swapped_under_the_files_api_never_leaks_what_it_points_to() {
    let dir = tempdir("sec-symlink");
    // The task keeps replacing `f` with a link to a file only root can read, and back.
    let swap = "while true; do echo harmless > f.new; mv -f f.new f; ln -sfn /etc/shadow f; done";
    let file = write(&dir, "compose.yaml", &format!("services:\n  swap:\n    command: [\"sh\", \"-c\", \"{swap}\"]\n"));
    let up = Up::start(&dir.join("up"), &["-f", &file, "-p", "swap"]);
    let view = up.wait_project("swap", "the swapper running", |v| state(v, "swap") == "running");
    let task = live_tasks(&view, "swap")[0].clone();
    let secret_line = std::fs::read_to_string("/etc/shadow").ok().and_then(|s| s.lines().next().map(str::to_owned));
    let (principal, secret) = mesos_credential(&up);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}", up.mesos_port);
        let state: Value = http.get(format!("{base}/slave(1)/state")).send().await.unwrap().json().await.unwrap();
        let sandbox = state["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["executors"].as_array().unwrap())
            .find(|e| e["id"] == task.as_str())
            .expect("the task's executor")["directory"]
            .as_str()
            .unwrap()
            .to_owned();
        let (mut files, mut links, mut leaked) = (0, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..500 {
            if Instant::now() > deadline {
                break;
            }
            for endpoint in ["read", "download"] {
                let url = format!("{base}/files/{endpoint}?path={sandbox}/f&offset=0");
                let res = http.get(url).basic_auth(&principal, Some(&secret)).send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                if secret_line.as_deref().is_some_and(|l| body.contains(l)) || body.contains("root:") {
                    leaked += 1;
                }
                match status {
                    200 => files += 1,
                    403 | 404 => links += 1,
                    other => panic!("unexpected {other}: {body}"),
                }
            }
        }
        assert_eq!(leaked, 0, "{leaked} reads leaked /etc/shadow ({files} files, {links} links refused)");
        assert!(files > 0 && links > 0, "the race ran both ways: {files} files read, {links} links refused");
    });
    up.compose_ok(&["-p", "swap", "down"]);
}

#[test]
fn secrets_stay_private_on_disk_and_out_of_task_checkpoints() {
    let dir = tempdir("sec-modes");
    let file = write(
        &dir,
        "compose.yaml",
        "services:\n  s:\n    command: [\"sh\", \"-c\", \"echo pw=$$DB_PASSWORD; sleep 600\"]\n    environment:\n      DB_PASSWORD: hunter2-secret\n    healthcheck:\n      test: [\"CMD-SHELL\", \"if [ $${#DB_PASSWORD} = 14 ]; then echo ok >> health.log; else echo bad >> health.log; false; fi\"]\n      interval: 1s\n      retries: 3\n",
    );
    let mut up = Up::start(&dir.join("up"), &["-f", &file, "-p", "modes"]);
    up.wait_project("modes", "s healthy", |v| state(v, "s") == "healthy");
    eventually("the task to print its password", || {
        up.compose_ok(&["-p", "modes", "logs", "s"]).contains("pw=hunter2-secret")
    });
    let work = &up.work_dir.clone();
    assert_eq!(mode(work), 0o711, "the work dir: traversable to the sandboxes, not listable");
    for private in ["framework.redb", "mini/credentials.json"] {
        assert_eq!(mode(&work.join(private)), 0o600, "{private}");
    }
    for private in ["mini/master", "mini/meta", "metrics"] {
        assert_eq!(mode(&work.join(private)) & 0o077, 0, "{private}");
    }
    // Nothing under the cluster's bookkeeping holds the value, or is readable by others.
    let mut files = Vec::new();
    let mut stack = vec![work.join("mini/master"), work.join("mini/meta")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("launch.json")), "{files:?}");
    for f in &files {
        assert_eq!(mode(f) & 0o077, 0, "{}", f.display());
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert!(!text.contains("hunter2-secret"), "{} holds the secret", f.display());
    }
    // After kill -9 and a restart, the re-adopted task's health check still has its
    // environment (taken from the running task, since launch.json has no values).
    let health_log = || {
        let path = find_file(&work.join("mini/slaves"), "health.log").expect("health.log in the sandbox");
        std::fs::read_to_string(path).unwrap()
    };
    let checks_before = health_log().lines().count();
    let task = live_tasks(&up.get("/api/v1/projects/modes").unwrap(), "s");
    up.restart();
    eventually("three more health checks after the restart", || health_log().lines().count() >= checks_before + 3);
    assert!(!health_log().contains("bad"), "{}", health_log());
    let view = up.get("/api/v1/projects/modes").unwrap();
    assert_eq!(live_tasks(&view, "s"), task, "the same task, re-adopted");
    assert_eq!(state(&view, "s"), "healthy");
    up.compose_ok(&["-p", "modes", "down"]);
}

#[test]
fn a_file_sent_to_the_api_cannot_read_m3s_own_environment() {
    let dir = tempdir("sec-interp");
    let up = Up::start(&dir.join("up"), &[]);
    // m3s runs with M3S_API_TOKEN set (see support::up): neither interpolation nor
    // inheritance may hand it to a task.
    let compose = "services:\n  s:\n    command: [\"sh\", \"-c\", \"echo \\\"[$$T][$$H][$$M3S_API_TOKEN]\\\"; sleep 600\"]\n    environment:\n      T: ${M3S_API_TOKEN}\n      H: ${HOME}\n";
    let (status, body) = http("PUT", up.api_port, "/api/v1/projects/interp", Some(compose));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("M3S_API_TOKEN is not set"), "the variable is reported unset: {body}");
    assert!(!body.contains(TOKEN));
    up.wait_project("interp", "s running", |v| state(v, "s") == "running");
    eventually("the task's output", || up.compose_ok(&["-p", "interp", "logs", "s"]).contains("[]"));
    let logs = up.compose_ok(&["-p", "interp", "logs", "s"]);
    assert!(logs.contains("[][][]") && !logs.contains(TOKEN), "{logs}");
    up.compose_ok(&["-p", "interp", "down"]);
}

#[test]
fn names_the_api_would_have_rewritten_are_refused() {
    let dir = tempdir("sec-names");
    let up = Up::start(&dir.join("up"), &[]);
    let compose = Some("services:\n  s:\n    command: [\"true\"]\n");
    for name in ["..%2f..%2fetc", "a%20b", "UPPER", "-dash"] {
        let (status, body) = http("PUT", up.api_port, &format!("/api/v1/projects/{name}"), compose);
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body.contains("must be 1-63 lowercase letters"), "{name}: {body}");
    }
    for service in [".", ".."] {
        let file = format!("services:\n  '{service}':\n    command: [\"true\"]\n");
        let (status, body) = http("PUT", up.api_port, "/api/v1/projects/dots", Some(&file));
        assert_eq!(status, 422, "{service}: {body}");
        assert!(body.contains("are not names"), "{service}: {body}");
    }
    assert!(up.get("/api/v1/projects").unwrap().as_array().unwrap().is_empty(), "nothing was deployed");
}

#[test]
fn metric_cardinality_label_sizes_future_points_and_big_queries_are_bounded() {
    use support::metrics::MetricsServer;
    let dir = tempdir("sec-metrics");
    let server = MetricsServer::start(
        &dir,
        &["--metrics-max-series", "1000", "--metrics-max-query-samples", "150", "--metrics-max-query-points", "20"],
    );
    let before = rss_kib(server.pid());
    // 2,000 new series in one write: refused whole, naming the limit.
    let lines: String = (0..2000).map(|i| format!("cpu,host=h{i} v=1\n")).collect();
    let (status, body) = server.write("/write?db=x", lines.as_bytes(), &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--metrics-max-series"), "{body}");
    // One line with 100,000 tags.
    let tags: String = (0..100_000).map(|i| format!(",t{i}=v")).collect();
    let (status, body) = server.write("/write?db=x", format!("wide{tags} v=1").as_bytes(), &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--metrics-max-labels"), "{body}");
    // A label value of a megabyte.
    let (status, body) = server.write("/write?db=x", format!("long,t={} v=1", "x".repeat(1 << 20)).as_bytes(), &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--metrics-max-label-value"), "{body}");
    // A point in the year 2262.
    let (status, body) = server.write("/write?db=x", b"future v=1 9200000000000000000", &[]);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("--metrics-max-future"), "{body}");
    // Within the limits all is well; a query reading or answering too much is refused.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let points: String = (0..100).map(|i| format!("ok v={i} {}\n", now_s - 100 + i)).collect();
    let (status, body) = server.write("/write?db=x&precision=s", points.as_bytes(), &[]);
    assert_eq!(status, 204, "{body}");
    let points: String = (0..200).map(|i| format!("many v={i} {}\n", now_s - 200 + i)).collect();
    let (status, body) = server.write("/write?db=x&precision=s", points.as_bytes(), &[]);
    assert_eq!(status, 204, "{body}");
    let auth = format!("Bearer {}", support::metrics::TOKEN);
    let range = |q: &str, step: u64| {
        let path = format!("/api/v1/query_range?query={q}&start={}&end={now_s}&step={step}", now_s - 100);
        server.request("GET", &path, &[("Authorization", &auth)], b"")
    };
    let (status, body) = range("many_v", 10);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("--metrics-max-query-samples"), "{body}");
    let (status, body) = range("ok_v", 1);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("--metrics-max-query-points"), "{body}");
    let (status, body) = range("ok_v%20*%202", 1);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("--metrics-max-query-points"), "{body}");
    let (status, body) = range("ok_v", 10);
    assert_eq!(status, 200, "{body}");
    let after = rss_kib(server.pid());
    assert!(after < before + 50 * 1024, "memory grew from {before} KiB to {after} KiB");
}
