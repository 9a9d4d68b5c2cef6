//! Compose `build:` on `m3s up`: images built by a real buildah (Debian's)
//! from a busybox-static base in a real registry on loopback, loaded into
//! m3s's image store, run by the embedded agent; failures that name the
//! step; pushes to a registry; and docker compose's verbs on the result.

mod support;

#[path = "../../image/tests/support/mod.rs"]
mod images;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::up::{Up, state};
use support::{tempdir, write};

/// buildah is what builds; without it (or root, which its storage needs) these tests cannot run.
fn buildah_or_skip(test: &str) -> bool {
    let present = Command::new("buildah").arg("--version").output().is_ok_and(|o| o.status.success());
    let root = unsafe { libc::geteuid() } == 0;
    if present && root {
        return true;
    }
    let why = if present { "not root (buildah's storage needs it)" } else { "buildah is not installed" };
    assert!(std::env::var_os("M3S_REQUIRE_ROOT").is_none(), "{test}: {why}, and M3S_REQUIRE_ROOT is set");
    eprintln!("SKIPPED {test}: {why} (scripts/test installs buildah and runs as root)");
    false
}

/// A registry with `base/bb:1`: busybox-static, as a Dockerfile's FROM.
fn registry_with_base(dir: &Path) -> images::Registry {
    support::init_tls();
    let registry = images::Registry::start(&dir.join("registry"), None);
    let layers = vec![images::busybox_layer(images::Compression::Gzip)];
    let config = images::config(&layers, json!({"Cmd": ["sh"]}));
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(images::push(
        &registry.host(),
        None,
        "base/bb",
        "1",
        &layers,
        &config,
    ));
    registry
}

fn m3s(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m3s")).args(args).envs(envs.iter().copied()).output().expect("m3s binary")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Removes the test's images from buildah's storage (shared by the machine), whatever happened.
struct BuildahImages(Vec<String>);

impl Drop for BuildahImages {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("buildah").args(["rmi", "-f", name]).output();
        }
    }
}

#[test]
fn a_project_with_build_sections_is_built_by_buildah_and_runs_on_m3s_up() {
    if !buildah_or_skip("a_project_with_build_sections_is_built_by_buildah_and_runs_on_m3s_up") {
        return;
    }
    let dir = tempdir("build-up");
    let registry = registry_with_base(&dir);
    let project = dir.join("shop");
    let port = support::free_port();
    // web: a context directory, a multi-stage Dockerfile, a build arg, a target, labels.
    write(
        &project,
        "web/Dockerfile",
        "ARG BASE\nFROM ${BASE} AS assets\nRUN mkdir -p /out && echo compiled-assets > /out/app.js\n\
         FROM ${BASE} AS final\nARG GREETING=hello\nRUN mkdir -p /www && echo \"$GREETING\" > /www/index.html\n\
         COPY page.txt /www/page.txt\nCOPY --from=assets /out/app.js /www/app.js\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n\
         FROM final AS debug\nRUN echo debug-only > /www/debug.txt\n",
    );
    write(&project, "web/page.txt", "a page copied from the context\n");
    // api: an inline Dockerfile, a build secret, and an additional named context.
    write(&project, "extra/motd", "from an additional context\n");
    write(&project, "token.txt", "s3cr3t-build-token");
    let compose = format!(
        r#"
name: shop
services:
  web:
    build:
      context: ./web
      target: final
      args:
        BASE: {base}
        GREETING: hello from a built image
      labels:
        team: data
    ports: ["127.0.0.1:{port}:8080"]
  api:
    build:
      context: .
      dockerfile_inline: |
        FROM {base}
        COPY --from=extra motd /motd
        RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token-length
        CMD ["sh", "-c", "cat /motd /token-length; while true; do wget -q -O - http://web:8080/page.txt; sleep 1; done"]
      secrets: [token]
      additional_contexts:
        extra: ./extra
    depends_on: [web]
secrets:
  token:
    file: ./token.txt
"#,
        base = format!("{}/base/bb:1", registry.host()),
    );
    let file = write(&project, "compose.yaml", &compose);
    let _cleanup = BuildahImages(vec![
        "docker.io/library/shop-web:latest".into(),
        "docker.io/library/shop-api:latest".into(),
        format!("{}/base/bb:1", registry.host()),
    ]);
    let work = dir.join("work");
    let work_s = work.to_str().unwrap();
    let resources = format!("cpus:8;mem:16384;disk:10000;ports:[{port}-{port},31000-31999]");
    let up = Up::start(&work, &["-f", &file, "--resources", &resources]);
    let view = up
        .wait_project("shop", "web and api running", |v| state(v, "web") == "running" && state(v, "api") == "running");
    assert_eq!(state(&view, "web"), "running");
    let page = support::http_get(port, "/").expect("the published port answers");
    assert!(page.contains("hello from a built image"), "{page}");
    let assets = support::http_get(port, "/app.js").unwrap();
    assert!(assets.contains("compiled-assets"), "the build stage's output was copied: {assets}");
    let debug = support::http_get(port, "/debug.txt").unwrap();
    assert!(debug.contains("404"), "target: final stops before the debug stage: {debug}");

    // The api reached web by name, printed what its build mounted, and the secret stayed out of the image.
    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = loop {
        let logs = up.compose_ok(&["-p", "shop", "logs", "api"]);
        if logs.contains("a page copied from the context") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(logs.contains("api-1 | from an additional context"), "{logs}");
    assert!(logs.contains("api-1 | 18"), "the build saw the 18-byte secret: {logs}");
    assert!(logs.contains("a page copied from the context"), "{logs}");
    let store = work.join("mini/images/layers");
    let grep = Command::new("grep").args(["-r", "-l", "s3cr3t-build-token"]).arg(&store).output().unwrap();
    assert!(grep.stdout.is_empty(), "the build secret is in a layer: {}", String::from_utf8_lossy(&grep.stdout));

    // docker compose's verbs on what runs.
    let images = up.compose_ok(&["-f", &file, "--work-dir", work_s, "images", "--format", "json"]);
    let images: Value = serde_json::from_str(&images).unwrap();
    let names: Vec<&str> = images.as_array().unwrap().iter().filter_map(|i| i["Repository"].as_str()).collect();
    assert_eq!(names, ["docker.io/library/shop-api", "docker.io/library/shop-web"], "{images}");
    assert!(images.as_array().unwrap().iter().all(|i| i["Present"] == true), "{images}");
    let port_answer = up.compose_ok(&["port", "-f", &file, "web", "8080"]);
    assert_eq!(port_answer.trim(), format!("127.0.0.1:{port}"));
    let ps = up.compose_ok(&["ps", "-f", &file, "--format", "json"]);
    let rows: Vec<Value> = ps.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let web = rows.iter().find(|r| r["Service"] == "web").expect("web in ps");
    assert_eq!((web["Name"].as_str(), web["State"].as_str()), (Some("shop-web-1"), Some("running")), "{ps}");
    assert_eq!(web["Publishers"][0]["PublishedPort"], port);
    let top = up.compose_ok(&["--work-dir", work_s, "-p", "shop", "top", "web"]);
    assert!(top.contains("shop-web-1") && top.contains("httpd -f -p 8080"), "{top}");
    let tail = up.compose_ok(&["-p", "shop", "logs", "--tail", "1", "--no-log-prefix", "api"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");

    // stop, then start with the file's replicas.
    up.compose_ok(&["-p", "shop", "stop", "api"]);
    up.wait_project("shop", "api stopped", |v| support::up::service(v, "api")["running"] == 0);
    up.compose_ok(&["-p", "shop", "start", "api"]);
    up.wait_project("shop", "api started again", |v| state(v, "api") == "running");

    // A second `up` does not build again: the image is in the store.
    let again = up.compose(&["-f", &file, "--work-dir", work_s, "up", "-d"]);
    let (_, err) = text(&again);
    assert!(again.status.success() && !err.contains("building"), "{err}");
    // --build does.
    let rebuilt = up.compose(&["-f", &file, "--work-dir", work_s, "up", "-d", "--build", "web"]);
    let (_, err) = text(&rebuilt);
    assert!(rebuilt.status.success() && err.contains("web: building") && !err.contains("api: building"), "{err}");

    up.compose_ok(&["-f", &file, "--work-dir", work_s, "down", "--rmi", "local"]);
    let ls = text(&m3s(&["images", "--work-dir", work_s, "ls"], &[])).0;
    assert!(!ls.contains("shop-web") && !ls.contains("shop-api"), "down --rmi local removed the built images: {ls}");
}

#[test]
fn a_failing_build_names_its_step_and_bad_contexts_and_missing_builders_are_refused() {
    if !buildah_or_skip("a_failing_build_names_its_step_and_bad_contexts_and_missing_builders_are_refused") {
        return;
    }
    let dir = tempdir("build-fail");
    let project = dir.join("broken");
    let work = dir.join("work");
    let work_s = work.to_str().unwrap();
    write(
        &project,
        "app/Dockerfile",
        "FROM scratch\nCOPY --from=tools busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling; exit 3\"]\n",
    );
    let tools = Path::new("/bin/busybox").canonicalize().unwrap().parent().unwrap().to_owned();
    let file = write(
        &project,
        "compose.yaml",
        &format!(
            "services:\n  app:\n    build:\n      context: ./app\n      additional_contexts:\n        tools: {}\n",
            tools.display()
        ),
    );
    let _cleanup = BuildahImages(vec!["docker.io/library/broken-app:latest".into()]);
    let out = m3s(&["compose", "-f", &file, "build", "--work-dir", work_s], &[]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("app | compiling"), "the builder's output is shown: {err}");
    assert!(
        err.contains("services.app.build: buildah failed at STEP 3/3: RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling; exit 3\"]"),
        "{err}"
    );
    let ls = text(&m3s(&["images", "--work-dir", work_s, "ls"], &[])).0;
    assert_eq!(ls.lines().count(), 1, "nothing is in the store after a failed build: {ls}");
    let tmp = std::fs::read_dir(work.join("mini/images/layers/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "the build's scratch directories are gone");

    // A context that leaves the project through a symbolic link.
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), project.join("linked")).unwrap();
    let sneaky = write(&project, "sneaky.yaml", "services:\n  app:\n    build: ./linked\n");
    let out = m3s(&["compose", "-f", &sneaky, "build", "--work-dir", work_s], &[]);
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("services.app.build.context") && err.contains("through a symbolic link"), "{err}");

    // No builder on the PATH: the message names the package.
    let out = m3s(&["compose", "-f", &file, "build", "--work-dir", work_s], &[("PATH", "/nonexistent")]);
    let (_, err) = text(&out);
    assert!(err.contains("install buildah (Debian and Ubuntu package `buildah`)"), "{err}");

    // --no-build with nothing built says what to run.
    let out = m3s(&["compose", "-f", &file, "--work-dir", work_s, "up", "--no-build"], &[]);
    let (_, err) = text(&out);
    assert!(err.contains("run `m3s compose build app`"), "{err}");
}

#[test]
fn built_images_are_pushed_to_a_registry_for_clusters_that_do_not_share_the_store() {
    if !buildah_or_skip("built_images_are_pushed_to_a_registry_for_clusters_that_do_not_share_the_store") {
        return;
    }
    let dir = tempdir("build-push");
    let registry = registry_with_base(&dir);
    let project = dir.join("pushed");
    let work = dir.join("work");
    let work_s = work.to_str().unwrap();
    let host = registry.host();
    let file = write(
        &project,
        "compose.yaml",
        &format!(
            "services:\n  job:\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM {host}/base/bb:1\n        \
             RUN echo built > /built\n  named:\n    image: {host}/team/named:2\n    build:\n      context: .\n      \
             dockerfile_inline: |\n        FROM {host}/base/bb:1\n"
        ),
    );
    let _cleanup = BuildahImages(vec![
        "docker.io/library/pushed-job:latest".into(),
        format!("{host}/team/named:2"),
        format!("{host}/base/bb:1"),
    ]);
    let out = m3s(&["compose", "-f", &file, "build", "--work-dir", work_s, "--push-to", &host, "job"], &[]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("job: pushed {host}/pushed-job:latest")), "{err}");
    let out = m3s(&["compose", "-f", &file, "build", "--work-dir", work_s, "named"], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = m3s(&["compose", "-f", &file, "push", "named"], &[]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let out = m3s(&["compose", "-f", &file, "push", "job"], &[]);
    assert!(text(&out).1.contains("no image: names where to push it"), "{}", text(&out).1);

    // The registry has both, as its own API lists them.
    let catalog = support::http_get(registry.port, "/v2/_catalog").unwrap();
    assert!(catalog.contains("pushed-job") && catalog.contains("team/named"), "{catalog}");
    let tags = support::http_get(registry.port, "/v2/team/named/tags/list").unwrap();
    assert!(tags.contains("\"2\""), "{tags}");
}

#[test]
fn compose_up_without_m3s_says_how_to_start_it_and_start_starts_it() {
    let dir = tempdir("up-start");
    let project = dir.join("hello");
    let file = write(&project, "compose.yaml", "services:\n  hi:\n    command: [\"sleep\", \"600\"]\n");
    let work = dir.join("work");
    let api = format!("http://127.0.0.1:{}", support::free_port());
    let base = ["compose", "-f", &file, "--api", &api, "--work-dir", work.to_str().unwrap()];
    let out = m3s(&[&base[..], &["up", "-d"]].concat(), &[]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("no m3s answers at") && err.contains("m3s up --work-dir") && err.contains("--start"), "{err}");

    let mesos_port = support::free_port().to_string();
    let out = m3s(&[&base[..], &["up", "--start", "--wait-timeout", "60"]].concat(), &[("M3S_MINI_PORT", &mesos_port)]);
    let (_, err) = text(&out);
    let pid: Option<i32> =
        err.split("started m3s up (pid ").nth(1).and_then(|rest| rest.split(',').next()).and_then(|p| p.parse().ok());
    // Whatever happens next, the background m3s goes with the test.
    struct Kill(Option<i32>, std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            support::kill_tasks_under(&self.1);
        }
    }
    let _kill = Kill(pid, work.clone());
    assert!(out.status.success() && pid.is_some(), "{err}");
    assert!(err.contains("hi: running"), "{err}");
}

#[test]
fn the_build_example_builds_from_scratch_and_runs() {
    if !buildah_or_skip("the_build_example_builds_from_scratch_and_runs") {
        return;
    }
    let dir = tempdir("build-example");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = root.join("examples/build/compose.yaml");
    let _cleanup = BuildahImages(vec!["docker.io/library/built-web:latest".into()]);
    let work = dir.join("work");
    let resources = "cpus:8;mem:16384;disk:10000;ports:[8089-8089,31000-31999]";
    let up = Up::start(&work, &["-f", file.to_str().unwrap(), "--resources", resources]);
    up.wait_project("built", "web healthy and the check done", |v| {
        state(v, "web") == "healthy" && state(v, "check") == "completed"
    });
    let logs = up.compose_ok(&["-p", "built", "logs", "check"]);
    assert!(logs.contains("check-1 | hello from an image m3s built") && logs.contains("check-1 | built 20"), "{logs}");
    let css = support::http_get(8089, "/style.css").unwrap();
    assert!(css.contains("font-family"), "{css}");
    up.compose_ok(&["-p", "built", "down"]);
}
