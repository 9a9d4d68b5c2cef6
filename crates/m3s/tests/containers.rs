//! Compose services with images on `m3s up`, run by the embedded agent
//! without a Docker daemon: pulled from a real registry (Debian's
//! docker-registry on loopback, fed with a busybox-static image built here),
//! run by crun, checked against what the containers print and serve.

mod support;

#[path = "../../image/tests/support/mod.rs"]
mod images;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::eventually;
use support::up::{Up, live_tasks, processes_with_argv, service, state};
use support::{tempdir, write};

/// A registry with `app/bb:1`: busybox-static, Cmd `echo default`, user root.
fn registry_with_busybox(dir: &Path) -> images::Registry {
    support::init_tls();
    let registry = images::Registry::start(&dir.join("registry"), None);
    let layers = vec![images::busybox_layer(images::Compression::Gzip)];
    let config = images::config(&layers, json!({"Cmd": ["sh", "-c", "echo default"], "Env": ["IMAGE_VAR=from-image"]}));
    let host = registry.host();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(images::push(&host, None, "app/bb", "1", &layers, &config));
    registry
}

fn get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").split('/').next()?;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_image_project_runs_like_docker_compose_and_survives_kill_9() {
    let dir = tempdir("ct-project");
    let registry = registry_with_busybox(&dir);
    let project = dir.join("project");
    write(&project, "site/index.html", "hello from the site\n");
    write(&project, "secret.txt", "s3cr3t-token\n");
    let http_port = support::free_port();
    let compose = format!(
        r#"name: ct
services:
  web:
    image: {host}/app/bb:1
    command: ["sh", "-c", "echo web-start uid=$$(id -u) var=$$IMAGE_VAR host=$$(hostname); cat /run/secrets/token; exec httpd -f -p 80 -h /site"]
    ports: ["127.0.0.1:{http_port}:80"]
    volumes:
      - ./site:/site:ro
      - data:/data
    secrets: [token]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"]
      interval: 1s
      retries: 3
  job:
    image: {host}/app/bb:1
    command: ["echo job-ran >> /data/log"]
    entrypoint: ["sh", "-c"]
    volumes: [data:/data]
    restart: "no"
    depends_on:
      web: {{condition: service_healthy}}
  default:
    image: {host}/app/bb:1
    restart: "no"
  as-app:
    image: {host}/app/bb:1
    user: app
    command: ["sh", "-c", "echo as-app $$(id -u):$$(id -g) home=$$HOME; touch /mnt/mesos/sandbox/written"]
    volumes: ["/scratch"]
    restart: "no"
volumes:
  data: {{}}
secrets:
  token:
    file: ./secret.txt
"#,
        host = registry.host()
    );
    let file = write(&project, "compose.yaml", &compose);
    // The published port is in the offer, as `m3s up`'s own default (all free ports) has it.
    let resources = format!("cpus:8;mem:16384;disk:10000;ports:[31000-31999,{http_port}-{http_port}]");
    let mut up = Up::start(&dir.join("up"), &["-f", &file, "--resources", &resources]);
    let view = up.wait_project("ct", "web healthy and the jobs done", |v| {
        state(v, "web") == "healthy"
            && state(v, "job") == "completed"
            && state(v, "default") == "completed"
            && state(v, "as-app") == "completed"
    });
    let web_task = live_tasks(&view, "web");
    assert_eq!(web_task.len(), 1);
    let logs = up.compose_ok(&["-p", "ct", "logs", "web"]);
    assert!(logs.contains("web-start uid=0 var=from-image host="), "{logs}");
    assert!(logs.contains("s3cr3t-token"), "the secret is at /run/secrets/token: {logs}");
    assert!(
        get(&format!("http://127.0.0.1:{http_port}/")).is_some_and(|r| r.contains("hello from the site")),
        "the bind mount is served"
    );
    assert!(up.compose_ok(&["-p", "ct", "logs", "default"]).contains("default"), "the image's own command runs");
    let as_app = up.compose_ok(&["-p", "ct", "logs", "as-app"]);
    assert!(as_app.contains("as-app 1000:1000 home=/home/app"), "{as_app}");
    // The container's filesystem is its own: the image's /etc/passwd, not the host's.
    assert!(!std::fs::read_to_string("/etc/passwd").unwrap().contains("app:x:1000:1000:app:/home/app"));

    // exec: a command in the running container, with its environment and
    // filesystem; its exit status is exec's.
    let work_dir = up.work_dir.to_str().unwrap().to_owned();
    let out = up.compose(&[
        "--work-dir",
        &work_dir,
        "-p",
        "ct",
        "exec",
        "-T",
        "-e",
        "EXTRA=given",
        "web",
        "sh",
        "-c",
        "echo in $IMAGE_VAR $EXTRA $(cat /site/index.html); exit 3",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said, "in from-image given hello from the site\n");
    let out = up.compose(&["--work-dir", &work_dir, "-p", "ct", "exec", "--index", "2", "web", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no running replica 2"), "{out:?}");

    // kill -9 of m3s: the container keeps running and is re-adopted, not started twice.
    let httpd = ["httpd", "-f", "-p", "80", "-h", "/site"];
    eventually("one httpd", || processes_with_argv(&httpd).len() == 1);
    let pid = processes_with_argv(&httpd)[0];
    up.restart();
    let view = up.wait_project("ct", "web healthy again", |v| state(v, "web") == "healthy");
    assert_eq!(live_tasks(&view, "web"), web_task, "the same task");
    assert_eq!(processes_with_argv(&httpd), vec![pid], "the same container process, no duplicate");

    // run: a one-off task of a service with another command, the project's
    // named volume and the given environment; its status is run's.
    let out = up.compose(&["-f", &file, "run", "-e", "X=given", "job", "cat /data/log; echo extra $X; exit 4"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said, "job-ran\nextra given\n");
    eventually("the one-off project to go", || !up.get("/api/v1/projects").unwrap().to_string().contains("ct-run-"));

    // The named volume outlives down and up; the containers' mounts and bundles do not.
    up.compose_ok(&["-p", "ct", "down"]);
    eventually("the containers to end", || processes_with_argv(&httpd).is_empty());
    eventually("the bundles to go", || {
        std::fs::read_dir(up.work_dir.join("mini/containers")).map(|d| d.count() == 0).unwrap_or(true)
    });
    // Network namespaces go as their containers end (CNI DEL runs in the background).
    eventually("no mounts under the work dir", || mounts_under(&up.work_dir).is_empty());
    eventually("the project's network to go with its containers", || {
        std::fs::read_dir(up.work_dir.join("mini/networks/auto")).unwrap().next().is_none()
    });
    up.compose_ok(&["-f", &file, "up"]);
    up.wait_project("ct", "the job again", |v| state(v, "job") == "completed");
    let log = std::fs::read_to_string(up.work_dir.join("volumes/ct_data/log")).unwrap();
    assert_eq!(log, "job-ran\njob-ran\n", "the volume kept the first run's line");
    let view = up.get("/api/v1/projects/ct").unwrap();
    assert!(service(&view, "web")["tasks"].as_array().is_some());
    // down -v: the named and the anonymous volume go with the project, as docker compose does.
    assert!(up.work_dir.join("volumes/ct_as-app_anon0").is_dir(), "the anonymous volume");
    let out = up.compose(&["-f", &file, "down", "-v"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("volume ct_data removed"), "{said}");
    assert!(processes_with_argv(&httpd).is_empty(), "down waits for the tasks");
    assert!(!up.work_dir.join("volumes/ct_data").exists() && !up.work_dir.join("volumes/ct_as-app_anon0").exists());
}

#[test]
fn a_missing_image_or_registry_fails_the_service_naming_them() {
    let dir = tempdir("ct-missing");
    let registry = registry_with_busybox(&dir);
    let closed = support::free_port();
    let compose = format!(
        "name: miss\nservices:\n  nothing:\n    image: {}/app/nothing:1\n    restart: 'no'\n  nowhere:\n    image: 127.0.0.1:{closed}/app/bb:1\n    restart: 'no'\n",
        registry.host()
    );
    let file = write(&dir, "compose.yaml", &compose);
    let up = Up::start(&dir.join("up"), &["-f", &file]);
    let view =
        up.wait_project("miss", "both to fail", |v| state(v, "nothing") == "failed" && state(v, "nowhere") == "failed");
    let message = |s: &str| service(&view, s).to_string();
    assert!(
        message("nothing").contains("app/nothing:1") && message("nothing").contains("not found"),
        "{}",
        message("nothing")
    );
    assert!(
        message("nowhere").contains(&format!("127.0.0.1:{closed}")) && message("nowhere").contains("cannot be reached"),
        "{}",
        message("nowhere")
    );
    let ps = up.compose_ok(&["-p", "miss", "ps"]);
    assert!(ps.contains("not found"), "{ps}");
}

fn m3s(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_m3s")).args(args).output().unwrap()
}

#[test]
fn images_are_pulled_listed_and_pruned_and_pull_policy_never_waits_for_them() {
    let dir = tempdir("ct-images");
    let registry = registry_with_busybox(&dir);
    let image = format!("{}/app/bb:1", registry.host());
    let compose =
        format!("name: pol\nservices:\n  once:\n    image: {image}\n    pull_policy: never\n    restart: 'no'\n");
    let file = write(&dir, "compose.yaml", &compose);
    let up = Up::start(&dir.join("up"), &["-f", &file]);
    let work = up.work_dir.to_str().unwrap().to_owned();
    let view = up.wait_project("pol", "the service to fail", |v| state(v, "once") == "failed");
    assert!(service(&view, "once").to_string().contains("pull policy is `never`"), "{view}");

    // `m3s compose pull` brings it (plain progress lines without a terminal); then it runs.
    let out = m3s(&["compose", "-f", &file, "--work-dir", &work, "pull"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 layers") && err.contains("100% of") && err.contains("pulled sha256:"), "{err}");
    let ls = String::from_utf8_lossy(&m3s(&["images", "--work-dir", &work]).stdout).into_owned();
    assert!(ls.contains(&format!("127.0.0.1:{}/app/bb:1", registry.port)), "{ls}");
    up.compose_ok(&["-p", "pol", "restart", "once"]);
    up.wait_project("pol", "the service to run", |v| state(v, "once") == "completed");
    assert!(up.compose_ok(&["-p", "pol", "logs", "once"]).contains("default"));

    // Pruning keeps what a container uses, removes the rest.
    up.compose_ok(&["-p", "pol", "down"]);
    eventually("the bundles to go", || {
        std::fs::read_dir(up.work_dir.join("mini/containers")).map(|d| d.count() == 0).unwrap_or(true)
    });
    let out = m3s(&["images", "--work-dir", &work, "prune"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 images and 1 layers removed"), "{out:?}");
    let ls = String::from_utf8_lossy(&m3s(&["images", "--work-dir", &work]).stdout).into_owned();
    assert_eq!(ls.lines().count(), 1, "only the header: {ls}");

    // `m3s compose up` beside the embedded agent pulls a missing image itself,
    // with progress, before deploying; with the image there it pulls nothing.
    let again = write(
        &dir,
        "again/compose.yaml",
        &format!("name: pre\nservices:\n  once:\n    image: {image}\n    restart: 'no'\n"),
    );
    let out = up.compose(&["--work-dir", &work, "-f", &again, "up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("pulled sha256:"), "{err}");
    up.wait_project("pre", "the service to run", |v| state(v, "once") == "completed");
    let out = up.compose(&["--work-dir", &work, "-f", &again, "up", "-d"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pulled"), "{out:?}");
}

#[test]
fn a_container_over_its_memory_limit_fails_with_the_memory_reason() {
    let dir = tempdir("ct-oom");
    let registry = registry_with_busybox(&dir);
    // dd's 96 MB buffer does not fit in 32 MB: the kernel's OOM killer ends it.
    let compose = format!(
        "name: oom\nservices:\n  hog:\n    image: {}/app/bb:1\n    command: [\"sh\", \"-c\", \"echo starting; exec dd if=/dev/zero of=/dev/null bs=96M count=1\"]\n    restart: 'no'\n    deploy:\n      resources:\n        limits:\n          memory: 32m\n",
        registry.host()
    );
    let file = write(&dir, "compose.yaml", &compose);
    let up = Up::start(&dir.join("up"), &["-f", &file]);
    let view = up.wait_project("oom", "the hog to fail", |v| state(v, "hog") == "failed");
    let text = service(&view, "hog").to_string();
    assert!(text.contains("Memory limit exceeded"), "Mesos's memory-limitation wording: {text}");
    let logs = up.compose_ok(&["-p", "oom", "logs", "hog"]);
    assert!(logs.contains("starting") && !logs.contains("records out"), "dd never finished: {logs}");
}

#[test]
fn the_copy_backend_runs_containers_from_copied_layers() {
    let dir = tempdir("ct-copy");
    let registry = registry_with_busybox(&dir);
    let compose = format!(
        "name: cp\nservices:\n  box:\n    image: {}/app/bb:1\n    command: [\"sh\", \"-c\", \"echo made-here > /made; echo copy $$IMAGE_VAR; exec sleep 300\"]\n",
        registry.host()
    );
    let file = write(&dir, "compose.yaml", &compose);
    let up = Up::start(&dir.join("up"), &["-f", &file, "--image-provisioner-backend", "copy"]);
    up.wait_project("cp", "the box to run", |v| state(v, "box") == "running");
    eventually("its output", || up.compose_ok(&["-p", "cp", "logs", "box"]).contains("copy from-image"));
    // The root filesystem is a directory of the bundle, not an overlay mount:
    // what the container writes lands there.
    let bundles: Vec<_> =
        std::fs::read_dir(up.work_dir.join("mini/containers")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let rootfs = bundles[0].join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file() && !bundles[0].join("upper").exists());
    eventually("the container's write", || rootfs.join("made").exists());
    // The container's own mount namespace has no overlay mount either.
    let sleeper: Vec<u32> = processes_with_argv(&["sleep", "300"])
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.windows(9).any(|w| w == b"IMAGE_VAR"))
        })
        .collect();
    assert_eq!(sleeper.len(), 1, "{sleeper:?}");
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", sleeper[0])).unwrap();
    assert!(!mounts.contains(" - overlay "), "{mounts}");
    up.compose_ok(&["-p", "cp", "down"]);
}

#[test]
fn docker_containers_stop_with_their_stop_signal_and_run_under_init_when_asked() {
    let dir = tempdir("ct-stop");
    let registry = registry_with_busybox(&dir);
    let script = "trap 'echo got-usr1; exit 0' USR1; trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 1; done";
    let compose = format!(
        "name: stop\nservices:\n  usr1:\n    image: {host}/app/bb:1\n    command: [\"sh\", \"-c\", \"{script}\"]\n    stop_signal: SIGUSR1\n  term:\n    image: {host}/app/bb:1\n    command: [\"sh\", \"-c\", \"{script}\"]\n  init:\n    image: {host}/app/bb:1\n    init: true\n    restart: 'no'\n    command: [\"sh\", \"-c\", \"echo pid1=$$(head -c 17 /proc/1/cmdline)\"]\n",
        host = registry.host()
    );
    let file = write(&dir, "compose.yaml", &compose);
    let up = Up::start(&dir.join("up"), &["-f", &file]);
    up.wait_project("stop", "both running", |v| state(v, "usr1") == "running" && state(v, "term") == "running");
    // init: true runs the host's tini as the container's PID 1, as Docker does.
    up.wait_project("stop", "init's job done", |v| state(v, "init") == "completed");
    let init = up.compose_ok(&["-p", "stop", "logs", "init"]);
    assert!(init.contains("pid1=/sbin/docker-init"), "{init}");
    for service in ["usr1", "term"] {
        eventually("ready", || up.compose_ok(&["-p", "stop", "logs", service]).contains("ready"));
    }
    up.compose_ok(&["-p", "stop", "restart", "usr1"]);
    up.compose_ok(&["-p", "stop", "restart", "term"]);
    // The stopped tasks' output stays in their sandboxes.
    let said = |needle: &str| {
        let out = std::process::Command::new("grep")
            .args(["-rl", needle])
            .arg(up.work_dir.join("mini/slaves"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    eventually("the stop signals to arrive", || said("got-usr1") == 1 && said("got-term") == 1);
    // Down before the test's end: killing m3s while the restarted tasks still join their
    // network can leave the attachment behind (seen twice in CI: bridge, netns, rules).
    up.compose_ok(&["-p", "stop", "down"]);
}

#[test]
fn images_load_from_the_archives_skopeo_writes_and_run_with_no_registry() {
    let dir = tempdir("ct-load");
    let registry = registry_with_busybox(&dir);
    let source = format!("docker://{}/app/bb:1", registry.host());
    // What real tools write: an OCI archive, a docker save archive, an OCI layout.
    for dest in [
        format!("oci-archive:{}:app/bb:oci", dir.join("bb-oci.tar").display()),
        format!("docker-archive:{}:app/bb:docker", dir.join("bb-docker.tar").display()),
        format!("oci:{}:app/bb:layout", dir.join("layout").display()),
    ] {
        let out = std::process::Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", &source, &dest])
            .output()
            .expect("skopeo (Debian's skopeo package)");
        assert!(out.status.success(), "skopeo copy to {dest}: {}", String::from_utf8_lossy(&out.stderr));
    }
    drop(registry); // nothing to pull from from here on
    let work = dir.join("up");
    let work = work.to_str().unwrap();
    for (path, name) in [
        ("bb-oci.tar", "docker.io/app/bb:oci"),
        ("bb-docker.tar", "docker.io/app/bb:docker"),
        ("layout", "docker.io/app/bb:layout"),
    ] {
        let out = m3s(&["images", "--work-dir", work, "load", dir.join(path).to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains(&format!("loaded {name}")),
            "{path}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out =
        m3s(&["images", "--work-dir", work, "load", dir.join("layout").to_str().unwrap(), "--name", "local/renamed:2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("loaded docker.io/local/renamed:2"), "{out:?}");
    let ls = String::from_utf8_lossy(&m3s(&["images", "--work-dir", work]).stdout).into_owned();
    assert_eq!(ls.lines().count(), 5, "four images over one layer: {ls}");

    // A loaded image runs with no registry at all.
    let file = write(
        &dir,
        "compose.yaml",
        "name: offline\nservices:\n  box:\n    image: app/bb:docker\n    pull_policy: never\n    restart: 'no'\n",
    );
    let up = Up::start(&dir.join("up"), &["-f", &file]);
    up.wait_project("offline", "the box to run", |v| state(v, "box") == "completed");
    assert!(up.compose_ok(&["-p", "offline", "logs", "box"]).contains("default"));
    drop(up);

    // Bad input is named, and a link in an archive is not followed.
    let junk = write(&dir, "junk.tar", "this is not an archive");
    let out = m3s(&["images", "--work-dir", work, "load", &junk]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("junk.tar"), "{out:?}");
    let evil = images::tar(&[
        images::Entry::File(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["x/y:1"],"Layers":["layer.tar"]}]"#,
            0o644,
        ),
        images::Entry::File("c.json", b"{}", 0o644),
        images::Entry::Symlink("layer.tar", "/dev/zero"),
    ]);
    let evil_path = dir.join("evil.tar");
    std::fs::write(&evil_path, evil).unwrap();
    let out = m3s(&["images", "--work-dir", work, "load", evil_path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("links are not followed"), "{err}");
}

#[test]
fn the_containers_example_runs_from_an_image_made_here() {
    let dir = tempdir("ct-example");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let archive = dir.join("busybox.tar");
    let out = std::process::Command::new(root.join("examples/containers/make-image")).arg(&archive).output().unwrap();
    assert!(out.status.success(), "make-image: {}", String::from_utf8_lossy(&out.stderr));
    let work = dir.join("up");
    let out = m3s(&["images", "--work-dir", work.to_str().unwrap(), "load", archive.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("loaded docker.io/example/busybox:1"), "{out:?}");
    let file = root.join("examples/containers/compose.yaml");
    let resources = "cpus:8;mem:16384;disk:10000;ports:[8088-8088,31000-31999]";
    let up = Up::start(&work, &["-f", file.to_str().unwrap(), "--resources", resources]);
    up.wait_project("boxes", "web healthy and the visit made", |v| {
        state(v, "web") == "healthy" && state(v, "visits") == "completed"
    });
    let logs = up.compose_ok(&["-p", "boxes", "logs", "visits"]);
    assert!(logs.contains("visit 1") && logs.contains("hello from a container on m3s"), "{logs}");
    assert!(get("http://127.0.0.1:8088/").is_some_and(|r| r.contains("hello from a container")));
    // exec runs as the container's user in its working directory, as docker exec does.
    let work = work.to_str().unwrap();
    let id = up.compose_ok(&["--work-dir", work, "-p", "boxes", "exec", "-T", "web", "sh", "-c", "id -u; pwd"]);
    assert_eq!(id, "1000\n/\n");
    let id = up.compose_ok(&[
        "--work-dir",
        work,
        "-p",
        "boxes",
        "exec",
        "-T",
        "-u",
        "0",
        "-w",
        "/var",
        "web",
        "sh",
        "-c",
        "id -u; pwd",
    ]);
    assert_eq!(id, "0\n/var\n");
    up.compose_ok(&["-p", "boxes", "down"]);
}
