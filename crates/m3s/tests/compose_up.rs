//! End to end: `m3s up` (embedded cluster + compose framework + API) driven by
//! the `m3s compose` CLI and the HTTP APIs, checked against real processes.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::eventually;
use support::up::{Up, http, live_tasks, processes_with_argv, service, state};
use support::{tempdir, write};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name).join("compose.yaml")
}

fn task_field(view: &Value, service_name: &str, field: &str) -> Vec<u64> {
    service(view, service_name)["tasks"].as_array().into_iter().flatten().filter_map(|t| t[field].as_u64()).collect()
}

#[test]
fn the_example_stack_comes_up_health_gated_and_down_leaves_nothing_running() {
    let dir = tempdir("up-example");
    let up = Up::start(&dir, &["-f", example("stack").to_str().unwrap()]);
    let view = up.wait_project("demo", "web healthy, worker running, batch run once", |v| {
        state(v, "web") == "healthy"
            && state(v, "worker") == "running"
            && !task_field(v, "batch", "launched_at_ms").is_empty()
    });
    // The worker was launched only after web was running (and healthy).
    let web_running = task_field(&view, "web", "running_since_ms");
    let worker_launched = task_field(&view, "worker", "launched_at_ms");
    assert!(
        worker_launched.iter().all(|w| web_running.iter().all(|r| w >= r)),
        "worker launched at {worker_launched:?}, web running since {web_running:?}"
    );
    let endpoints = &service(&view, "web")["endpoints"];
    assert!(endpoints.to_string().contains(":31080"), "{endpoints}");

    eventually("the worker's output to show web's answer", || {
        up.compose_ok(&["-p", "demo", "logs", "worker"]).contains("worker: web says hello from m3s")
    });
    let ps = up.compose_ok(&["-p", "demo", "ps"]);
    assert!(ps.contains("web") && ps.contains("healthy") && ps.contains("31080"), "{ps}");
    // The start message names the exact command for this instance (its port and work dir).
    let log = std::fs::read_to_string(dir.join("m3s-up.log")).unwrap();
    let hint = log.split('`').nth(1).filter(|c| c.ends_with("-p demo ps")).unwrap_or_else(|| panic!("{log}"));
    assert!(hint.contains(&format!("--api http://127.0.0.1:{}", up.api_port)), "{hint}");
    let out =
        std::process::Command::new("sh").arg("-c").arg(hint).env("M3S_API_TOKEN", support::up::TOKEN).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("healthy"), "{hint}: {out:?}");

    up.compose_ok(&["-p", "demo", "down"]);
    assert!(up.get("/api/v1/projects/demo").is_none(), "the project is forgotten after down");
    eventually("no task process left", || support::up::processes_under(&dir.join("mini")).is_empty());
}

#[test]
fn crash_backoff_scaling_replacement_and_restart_through_the_cli() {
    let dir = tempdir("up-lifecycle");
    let up = Up::start(&dir, &[]);
    let marker = format!("{}", 100_000 + std::process::id() % 1000);
    let app_argv = ["sleep", &format!("{marker}.1")];
    let keep_argv = ["sleep", &format!("{marker}.2")];
    let compose = |app_env: &str| {
        format!(
            "services:
  crash:
    command: sh -c 'echo crashing; exit 3'
    restart: on-failure
  app:
    command: [\"sleep\", \"{marker}.1\"]
    environment: {{ VERSION: \"{app_env}\" }}
    deploy: {{ replicas: 2, resources: {{ limits: {{ cpus: '0.05', memory: 16M }} }} }}
  keep:
    command: [\"sleep\", \"{marker}.2\"]
    deploy: {{ resources: {{ limits: {{ cpus: '0.05', memory: 16M }} }} }}
"
        )
    };
    let file = write(&dir, "compose.yaml", &compose("1"));
    up.compose_ok(&["-f", &file, "-p", "life", "up", "-d"]);
    let view = up.wait_project("life", "app 2/2 and keep running, crash looping", |v| {
        service(v, "app")["running"] == 2 && state(v, "keep") == "running" && state(v, "crash") == "crash_looping"
    });
    assert_eq!(processes_with_argv(&app_argv).len(), 2);
    let message = service(&view, "crash")["message"].as_str().unwrap_or("").to_owned();
    assert!(!message.is_empty(), "a crash-looping service says why: {view}");

    up.compose_ok(&["-p", "life", "scale", "app=3"]);
    up.wait_project("life", "3 app replicas", |v| service(v, "app")["running"] == 3);
    eventually("3 app processes", || processes_with_argv(&app_argv).len() == 3);
    up.compose_ok(&["-p", "life", "scale", "app=1"]);
    up.wait_project("life", "1 app replica", |v| service(v, "app")["running"] == 1 && live_tasks(v, "app").len() == 1);
    eventually("1 app process", || processes_with_argv(&app_argv).len() == 1);

    // A changed service is replaced; an unchanged one keeps its task.
    let before = up.get("/api/v1/projects/life").unwrap();
    let keep_before = live_tasks(&before, "keep");
    let app_before = live_tasks(&before, "app");
    let file = write(&dir, "compose.yaml", &compose("2"));
    let out = up.compose(&["-f", &file, "-p", "life", "up", "-d"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("updated: app"), "{stderr}");
    let after = up.wait_project("life", "app replaced (2 replicas again, as the file says)", |v| {
        let live = live_tasks(v, "app");
        service(v, "app")["running"] == 2 && live.len() == 2 && live.iter().all(|t| !app_before.contains(t))
    });
    assert_eq!(live_tasks(&after, "keep"), keep_before, "the unchanged service keeps its task");

    up.compose_ok(&["-p", "life", "restart", "keep"]);
    up.wait_project("life", "keep restarted", |v| {
        state(v, "keep") == "running" && live_tasks(v, "keep").iter().all(|t| !keep_before.contains(t))
    });

    up.compose_ok(&["-p", "life", "down"]);
    eventually("no app or keep process left", || {
        processes_with_argv(&app_argv).is_empty() && processes_with_argv(&keep_argv).is_empty()
    });
}

#[test]
fn kill_9_during_a_50_service_deploy_then_restart_leaves_no_duplicate() {
    let dir = tempdir("up-kill9");
    let mut up = Up::start(&dir, &[]);
    let marker = 200_000 + std::process::id() % 1000;
    let mut text = String::from("services:\n");
    for i in 0..50 {
        text.push_str(&format!(
            "  s{i}:\n    command: [\"sleep\", \"{marker}.{i}\"]\n    deploy: {{ resources: {{ limits: {{ cpus: '0.01', memory: 8M }} }} }}\n"
        ));
    }
    let file = write(&dir, "compose.yaml", &text);
    up.compose_ok(&["-f", &file, "-p", "fifty", "up", "-d"]);
    // Crash while the deploy is under way: some tasks launched, maybe not all.
    eventually("the first tasks to start", || {
        (0..50).any(|i| !processes_with_argv(&["sleep", &format!("{marker}.{i}")]).is_empty())
    });
    up.restart();
    up.wait_project("fifty", "all 50 services running after the restart", |v| {
        v["services"].as_array().is_some_and(|s| s.len() == 50 && s.iter().all(|s| s["state"] == "running"))
    });
    for i in 0..50 {
        let argv = ["sleep", &format!("{marker}.{i}")];
        eventually(&format!("exactly one process for s{i}"), || processes_with_argv(&argv).len() == 1);
    }
    up.compose_ok(&["-p", "fifty", "down"]);
}

#[test]
fn the_v0_api_works_as_mesos_compose_clients_drive_it() {
    let dir = tempdir("up-v0");
    let up = Up::start(&dir, &[]);
    let marker = 300_000 + std::process::id() % 1000;
    let yaml = format!(
        "services:\n  web:\n    command: [\"sleep\", \"{marker}.1\"]\n    environment:\n      SECRET_KEY: hunter2\n"
    );
    let (status, _) = http("GET", up.api_port, "/api/compose/versions", None);
    assert_eq!(status, 200);
    let (status, body) = http("PUT", up.api_port, "/api/compose/v0/legacy", Some(&yaml));
    assert_eq!(status, 200, "{body}");
    eventually("the v0 task list to show a running task", || {
        let (s, body) = http("GET", up.api_port, "/api/compose/v0/tasks", None);
        s == 200 && body.contains("TASK_RUNNING")
    });
    let (_, tasks) = http("GET", up.api_port, "/api/compose/v0/tasks", None);
    assert!(!tasks.contains("hunter2"), "the task list blanks the environment: {tasks}");
    let (status, _) = http("PUT", up.api_port, "/api/compose/v0/legacy", Some("services: [oops"));
    assert_eq!(status, 406, "bad YAML is 406, as in mesos-compose");
    let (status, body) = http("UPDATE", up.api_port, "/api/compose/v0/legacy", Some(&yaml));
    assert_eq!(status, 200, "the non-standard UPDATE verb: {body}");
    let (status, _) = http("PUT", up.api_port, "/api/compose/v0/legacy/web/restart", None);
    assert_eq!(status, 200);
    let (status, _) = http("DELETE", up.api_port, "/api/compose/v0/legacy/web", None);
    assert_eq!(status, 200);
    eventually("the service's process to end", || processes_with_argv(&["sleep", &format!("{marker}.1")]).is_empty());
    let (status, _) = http("DELETE", up.api_port, "/api/compose/v0/tasks/no-such-task", None);
    assert_eq!(status, 406);
}

#[test]
fn the_api_refuses_requests_without_the_token() {
    let dir = tempdir("up-auth");
    let up = Up::start(&dir, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["compose", "--api", &up.api(), "--api-token", "wrong", "-p", "x", "ps"])
        .env_remove("M3S_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    // The right token works.
    assert!(up.compose(&["ps"]).status.success());
}

#[test]
fn compose_config_validates_locally_and_names_file_line_and_key() {
    let dir = tempdir("config");
    let good = write(&dir, "good.yaml", "services:\n  a:\n    command: echo hi\n    deploy:\n      replicas: 2\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["compose", "-f", &good, "config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let normalized: Value = serde_json::from_slice(&out.stdout).expect("config prints JSON");
    assert_eq!(normalized["services"]["a"]["deploy"]["replicas"], 2);

    let bad = write(&dir, "bad.yaml", "services:\n  a:\n    command: echo hi\n    ports:\n      - \"99999:80\"\n");
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_m3s")).args(["compose", "-f", &bad, "config"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:") && stderr.contains("services.a.ports[0]"), "{stderr}");
}

#[test]
fn a_second_up_after_kill_9_re_adopts_running_tasks() {
    let dir = tempdir("up-readopt");
    let marker = 400_000 + std::process::id() % 1000;
    let file = write(
        &dir,
        "compose.yaml",
        &format!(
            "name: again\nservices:\n  s:\n    command: [\"sleep\", \"{marker}.1\"]\n    deploy: {{ replicas: 2 }}\n"
        ),
    );
    let mut up = Up::start(&dir, &["-f", &file]);
    let argv = ["sleep", &format!("{marker}.1")];
    let first = up.wait_project("again", "2 running", |v| service(v, "s")["running"] == 2);
    let pids = processes_with_argv(&argv);
    assert_eq!(pids.len(), 2);
    up.restart();
    let second = up.wait_project("again", "2 running after the restart", |v| service(v, "s")["running"] == 2);
    assert_eq!(live_tasks(&first, "s"), live_tasks(&second, "s"), "the same tasks, re-adopted");
    let mut after = processes_with_argv(&argv);
    let mut before = pids;
    after.sort();
    before.sort();
    assert_eq!(before, after, "the same processes, nothing started twice");
}

#[path = "../../framework/tests/support/redis.rs"]
mod redis_server;

#[test]
fn with_redis_state_a_redis_restart_loses_nothing() {
    let mut redis = redis_server::RedisServer::start(None);
    let dir = tempdir("up-redis");
    let addr = redis.addr();
    let mut up = Up::start_with_env(&dir, &[], &[("REDIS_SERVER", &addr), ("REDIS_DB", "3")]);
    let marker = 600_000 + std::process::id() % 1000;
    let argv = ["sleep", &format!("{marker}.1")];
    let file = write(
        &dir,
        "compose.yaml",
        &format!("services:\n  s:\n    command: [\"sleep\", \"{marker}.1\"]\n    deploy: {{ replicas: 2 }}\n"),
    );
    up.compose_ok(&["-f", &file, "-p", "red", "up", "-d"]);
    up.wait_project("red", "2 running", |v| service(v, "s")["running"] == 2);
    assert!(up.get("/api/v1/health").unwrap()["store"].as_str().unwrap().contains("redis"));

    // Redis goes away; the framework keeps working and keeps the writes.
    redis.kill();
    up.compose_ok(&["-p", "red", "scale", "s=3"]);
    up.wait_project("red", "3 running without Redis", |v| service(v, "s")["running"] == 3);
    eventually("the store to be reported unhealthy", || up.get("/api/v1/health").unwrap()["store_healthy"] == false);

    // A new, empty Redis: everything is written again.
    redis.spawn();
    eventually("the store to be healthy again", || up.get("/api/v1/health").unwrap()["store_healthy"] == true);

    // Then m3s dies: what it knows comes back from Redis alone.
    up.restart();
    let view = up.wait_project("red", "3 running after the restart", |v| service(v, "s")["running"] == 3);
    assert_eq!(live_tasks(&view, "s").len(), 3);
    eventually("exactly 3 processes", || processes_with_argv(&argv).len() == 3);
    up.compose_ok(&["-p", "red", "down"]);
}

#[test]
fn serve_runs_the_same_framework_against_a_separate_master() {
    let dir = tempdir("serve");
    let mini = support::Mini::start(&dir.join("mini"));
    let serve = Up::serve(&dir.join("serve"), &mini);
    let marker = 700_000 + std::process::id() % 1000;
    let file = write(&dir, "compose.yaml", &format!("services:\n  s:\n    command: [\"sleep\", \"{marker}.1\"]\n"));
    serve.compose_ok(&["-f", &file, "-p", "remote", "up"]);
    let view = serve.wait_project("remote", "running on the separate master", |v| state(v, "s") == "running");
    assert_eq!(live_tasks(&view, "s").len(), 1);
    assert_eq!(serve.get("/api/v1/health").unwrap()["master"], mini.url());
    serve.compose_ok(&["-p", "remote", "down"]);
    eventually("the task to end", || processes_with_argv(&["sleep", &format!("{marker}.1")]).is_empty());
}

#[path = "../../mesos/tests/support/certs.rs"]
mod certs;

#[test]
fn the_api_serves_https_from_mesos_composes_certificate_variables() {
    use base64::Engine as _;
    let dir = tempdir("up-tls");
    certs::make_certificates(&dir);
    let b64 = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join(f)).unwrap());
    let (cert, key) = (b64("server.pem"), b64("server.key"));
    let up = Up::start_with_env(&dir.join("up"), &[], &[("SSL_CRT_BASE64", &cert), ("SSL_KEY_BASE64", &key)]);
    let ps = |url: String, ca: Option<&Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"));
        cmd.args(["compose", "--api", &url, "--api-token", support::up::TOKEN]);
        if let Some(ca) = ca {
            cmd.arg("--api-ca-file").arg(ca);
        }
        cmd.arg("ps").output().unwrap()
    };
    let https = format!("https://127.0.0.1:{}", up.api_port);
    let ok = ps(https.clone(), Some(&dir.join("ca.pem")));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("PROJECT"));
    let untrusted = ps(https, None);
    assert!(!untrusted.status.success(), "a certificate from an unknown CA is refused");
    let plain = ps(format!("http://127.0.0.1:{}", up.api_port), None);
    assert!(!plain.status.success(), "plain HTTP is not served when TLS is on");
    // Half a configuration is an error that names both variables.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["up", "--work-dir"])
        .arg(dir.join("half"))
        .args([
            "--mesos-port",
            &support::free_port().to_string(),
            "--framework-port",
            &support::free_port().to_string(),
        ])
        .env("SSL_CRT_BASE64", &cert)
        .env_remove("SSL_KEY_BASE64")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SSL_CRT_BASE64 and SSL_KEY_BASE64"), "{stderr}");
}
