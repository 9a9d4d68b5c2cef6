//! The Docker containerizer (`--containerizers=docker,mesos`): compose
//! projects' DOCKER tasks run by a real Docker Engine (Debian's dockerd,
//! started by each test with a private root, bridge and socket), checked
//! against what Docker reports and what the containers print and serve.

mod support;

#[path = "../../image/tests/support/mod.rs"]
mod images;

#[path = "support/dockerd.rs"]
mod dockerd;

use std::path::Path;

use dockerd::Dockerd;
use support::eventually;
use support::up::{Up, live_tasks, state};
use support::{tempdir, write};

const IMAGE: &str = "m3s-test/bb:1";

/// `m3s up` on this daemon, with a compose file.
fn up(dir: &Path, dockerd: &Dockerd, file: &str, resources: &str) -> Up {
    Up::start(
        &dir.join("up"),
        &[
            "-f",
            file,
            "--containerizers",
            "docker,mesos",
            "--docker-socket",
            &dockerd.socket_arg(),
            "--resources",
            resources,
        ],
    )
}

/// The test's directory and a private dockerd (with `flags`) holding IMAGE;
/// `None` where no dockerd can run here (said loudly, or failing under CI).
fn test_daemon(name: &str, flags: &[&str]) -> Option<(support::TestDir, Dockerd)> {
    if dockerd::unavailable().is_some() {
        return None;
    }
    let dir = tempdir(name);
    let dockerd = Dockerd::start(flags);
    dockerd.import_busybox(IMAGE);
    Some((dir, dockerd))
}

/// The Docker containers of an `m3s up`, by the label the agent sets.
fn containers_of(dockerd: &Dockerd, up: &Up) -> Vec<docker::ContainerSummary> {
    let owner = up.work_dir.join("mini").display().to_string();
    dockerd.engine().list("m3s.work_dir", &owner).unwrap()
}

#[test]
fn compose_services_run_in_docker_resolve_each_other_and_survive_kill_9() {
    let Some((dir, dockerd)) = test_daemon("dk-project", &[]) else { return };
    let project = dir.join("project");
    write(&project, "site/index.html", "hello from docker\n");
    write(&project, "token.txt", "s3cr3t\n");
    let (web_port, bridged_port) = (support::free_port(), support::free_port());
    let compose = format!(
        r#"name: dk
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "echo web-start sandbox=$$MESOS_SANDBOX name=$$MESOS_CONTAINER_NAME; cat /run/secrets/token; exec httpd -f -p 80 -h /site"]
    ports: ["127.0.0.1:{web_port}:80"]
    volumes: ["./site:/site:ro"]
    secrets: [token]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"]
      interval: 1s
      retries: 3
  client:
    image: {IMAGE}
    command: ["sh", "-c", "until wget -q -O - http://web/; do sleep 0.3; done; echo resolved-web; exec sleep 1000"]
    depends_on:
      web: {{condition: service_healthy}}
  bridged:
    image: {IMAGE}
    network_mode: bridge
    command: ["sh", "-c", "echo bridged > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    ports: ["127.0.0.1:{bridged_port}:8080"]
  job:
    image: {IMAGE}
    command: ["sh", "-c", "echo job-out; echo job-err >&2; exit 3"]
    restart: "no"
secrets:
  token:
    file: ./token.txt
"#
    );
    let file = write(&project, "compose.yaml", &compose);
    let resources =
        format!("cpus:8;mem:16384;disk:10000;ports:[31000-31999,{web_port}-{web_port},{bridged_port}-{bridged_port}]");
    let mut up = up(&dir, &dockerd, &file, &resources);
    let view = up.wait_project("dk", "web healthy, client running, job failed", |v| {
        state(v, "web") == "healthy" && state(v, "client") == "running" && state(v, "job") == "failed"
    });

    // Docker runs them, named and labelled as Mesos's Docker containerizer names them.
    let owner = up.work_dir.join("mini").display().to_string();
    assert_eq!(dockerd.engine().list_networks(Some(("m3s.network", &owner))).unwrap(), ["dk_default"]);
    let running = containers_of(&dockerd, &up);
    assert_eq!(running.len(), 3, "web, client and bridged run in Docker (the job's container is removed): {running:?}");
    for c in &running {
        let id = &c.labels.as_ref().unwrap()["m3s.container_id"];
        assert_eq!(c.names, [format!("/mesos-{id}")]);
        assert_eq!(c.state, "running");
    }

    // The inventory: the agent's tasks and containers, and the Docker Engine (the seed's /docker/*).
    let (code, body) = support::up::http("GET", up.api_port, "/docker/version", None);
    assert!(code == 200 && body.contains("\"ApiVersion\""), "{code} {body}");
    let (code, body) = support::up::http("GET", up.api_port, "/docker/containers", None);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    assert!(code == 200 && listed.len() >= 3, "{code} {body}");
    let nodes = up.get("/api/v1/nodes").unwrap();
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 1, "{nodes}");
    let node = &nodes["nodes"][0];
    let tasks = node["tasks"].as_array().unwrap();
    assert!(tasks.iter().any(|t| t["name"] == "dk_web" && t["state"] == "TASK_RUNNING"), "{node}");
    assert!(node["containers"].as_array().is_some_and(|c| c.len() >= 3), "{node}");
    assert!(node["mesos_version"].as_str().is_some_and(|v| !v.is_empty()), "{node}");
    assert!(nodes["docker"]["version"]["ApiVersion"].is_string(), "{nodes}");
    assert!(nodes["docker"]["containers"].as_array().is_some_and(|c| c.len() >= 3), "{nodes}");

    // Published ports (docker-proxy), a read-only bind, a secret, the sandbox.
    assert!(
        support::http_get(web_port, "/").is_some_and(|r| r.contains("hello from docker")),
        "web serves its bind mount"
    );
    assert!(
        support::http_get(bridged_port, "/").is_some_and(|r| r.contains("bridged")),
        "BRIDGE mode publishes its port"
    );
    let logs = up.compose_ok(&["-p", "dk", "logs", "web"]);
    assert!(logs.contains("web-start sandbox=/mnt/mesos/sandbox name=mesos-"), "{logs}");
    assert!(logs.contains("s3cr3t"), "the secret is at /run/secrets/token: {logs}");
    // Names resolve through Docker's DNS on the project's network.
    let logs = up.compose_ok(&["-p", "dk", "logs", "client"]);
    assert!(logs.contains("hello from docker") && logs.contains("resolved-web"), "{logs}");
    // stdout and stderr reach the sandbox files apart; the exit status is the container's.
    let job = up.compose_ok(&["-p", "dk", "logs", "job"]);
    assert!(job.contains("job-out") && job.contains("job-err"), "{job}");
    let job_task = &up.compose_ok(&["-p", "dk", "ps", "-a", "--format", "json"]);
    assert!(job_task.contains(r#""ExitCode":3,"#) && job_task.contains(r#""MesosState":"TASK_FAILED""#), "{job_task}");

    // exec enters the Docker container.
    let work_dir = up.work_dir.to_str().unwrap().to_owned();
    let out = up.compose(&[
        "--work-dir",
        &work_dir,
        "-p",
        "dk",
        "exec",
        "-T",
        "-e",
        "X=given",
        "web",
        "sh",
        "-c",
        "echo in $X $(cat /site/index.html); exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in given hello from docker\n");

    // kill -9 of m3s: the containers keep running and are re-adopted by name;
    // a container of this agent that no task claims is an orphan and goes.
    let web_task = live_tasks(&view, "web");
    let before: Vec<String> = running.iter().map(|c| c.id.clone()).collect();
    up.kill9();
    let orphan = docker::ContainerCreate {
        image: IMAGE.into(),
        cmd: Some(vec!["sleep".into(), "1000".into()]),
        labels: [
            ("m3s.work_dir".to_owned(), up.work_dir.join("mini").display().to_string()),
            ("m3s.container_id".to_owned(), "gone".to_owned()),
        ]
        .into(),
        host_config: docker::HostConfig { network_mode: "none".into(), ..Default::default() },
        ..Default::default()
    };
    dockerd.engine().create("mesos-gone", &orphan).unwrap();
    dockerd.engine().start("mesos-gone").unwrap();
    up.restart();
    let view = up.wait_project("dk", "web healthy again", |v| state(v, "web") == "healthy");
    assert_eq!(live_tasks(&view, "web"), web_task, "the same task");
    eventually("the orphan to be removed", || dockerd.engine().inspect("mesos-gone").unwrap().is_none());
    let mut after: Vec<String> = containers_of(&dockerd, &up).iter().map(|c| c.id.clone()).collect();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(after, before, "the same containers, none started twice");

    // down: the containers go from Docker too.
    up.compose_ok(&["-p", "dk", "down"]);
    eventually("no containers left in Docker", || containers_of(&dockerd, &up).is_empty());
    eventually("the project's network to go with its last container", || {
        dockerd.engine().list_networks(Some(("m3s.network", &owner))).unwrap().is_empty()
    });
}

#[test]
fn launch_failures_name_the_image_or_the_port() {
    let Some((dir, dockerd)) = test_daemon("dk-fail", &[]) else { return };
    // A port already taken on loopback: Docker refuses to start the container.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let compose = format!(
        r#"name: bad
services:
  missing:
    image: 127.0.0.1:9/m3s/none:1
    restart: "no"
  never:
    image: m3s-test/not-here:1
    pull_policy: never
    restart: "no"
  port:
    image: {IMAGE}
    command: ["sleep", "100"]
    ports: ["127.0.0.1:{port}:80"]
    restart: "no"
"#
    );
    let project = dir.join("project");
    let file = write(&project, "compose.yaml", &compose);
    let up = up(&dir, &dockerd, &file, &format!("cpus:8;mem:16384;disk:10000;ports:[{port}-{port}]"));
    let view = up.wait_project("bad", "every service failed", |v| {
        ["missing", "never", "port"].iter().all(|s| state(v, s) == "failed")
    });
    let message = |name: &str| support::up::service(&view, name).to_string();
    assert!(
        message("missing").contains("Failed to pull image") && message("missing").contains("127.0.0.1:9/m3s/none:1"),
        "{}",
        message("missing")
    );
    assert!(message("never").contains("pull policy is never"), "{}", message("never"));
    assert!(message("port").contains(&port.to_string()), "{}", message("port"));
    assert!(containers_of(&dockerd, &up).is_empty(), "a failed launch leaves no container");
    drop(taken);
}

#[test]
fn a_daemon_that_goes_away_is_reported_and_its_tasks_reconciled_when_it_returns() {
    // live-restore: the containers keep running while the daemon is down.
    let Some((dir, mut dockerd)) = test_daemon("dk-restart", &["--live-restore"]) else { return };
    let compose = format!(
        r#"name: lr
services:
  worker:
    image: {IMAGE}
    network_mode: none
    command: ["sh", "-c", "echo before; while [ ! -e /mnt/mesos/sandbox/stop ]; do sleep 0.2; done; echo after; exit 5"]
    restart: "no"
"#
    );
    let file = write(&dir.join("project"), "compose.yaml", &compose);
    let up = up(&dir, &dockerd, &file, "cpus:8;mem:16384;disk:10000;ports:[31000-31999]");
    up.wait_project("lr", "worker running", |v| state(v, "worker") == "running");
    eventually("its first line", || up.compose_ok(&["-p", "lr", "logs", "worker"]).contains("before"));
    dockerd.stop();
    eventually("the executor to notice", || {
        std::fs::read_to_string(sandbox_file(&up.work_dir, "stderr"))
            .is_ok_and(|e| e.contains("the Docker daemon went away"))
    });
    // The task goes on meanwhile; when the daemon is back, the container is
    // followed again. (What a container writes while the daemon is down and
    // ends before it returns is lost by Docker itself, so it ends after.)
    dockerd.start_again();
    std::fs::write(sandbox_dir(&up.work_dir).join("stop"), "").unwrap();
    let view = up.wait_project("lr", "worker ended with its status", |v| state(v, "worker") == "failed");
    let logs = up.compose_ok(&["-p", "lr", "logs", "worker"]);
    assert!(logs.contains("after"), "the output after the outage reaches the sandbox: {logs}");
    assert!(support::up::service(&view, "worker").to_string().contains("status 5"), "{view}");
    eventually("the container removed", || containers_of(&dockerd, &up).is_empty());
}

/// The one task sandbox under an `m3s up` work dir.
fn sandbox_dir(work_dir: &Path) -> std::path::PathBuf {
    let pattern = work_dir.join("mini/slaves");
    let mut found = Vec::new();
    let mut stack = vec![pattern];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "runs") {
                found.push(p);
            } else if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "one sandbox: {found:?}");
    found.pop().unwrap()
}

fn sandbox_file(work_dir: &Path, name: &str) -> std::path::PathBuf {
    sandbox_dir(work_dir).join(name)
}

#[test]
fn docker_tasks_get_their_limits_stop_signal_and_no_privilege_unasked() {
    let Some((dir, dockerd)) = test_daemon("dk-limits", &[]) else { return };
    let script = "trap 'echo got-usr1; exit 0' USR1; head -c 20000000 /dev/zero > /dev/shm/fill; echo ready; while true; do sleep 0.2; done";
    let compose = format!(
        r#"name: lim
services:
  usr1:
    image: {IMAGE}
    network_mode: none
    command: ["sh", "-c", "{script}"]
    stop_signal: SIGUSR1
    deploy:
      resources:
        limits: {{cpus: "0.5", memory: 96M}}
        reservations: {{cpus: "0.25"}}
  admin:
    image: {IMAGE}
    network_mode: none
    cap_add: [NET_ADMIN]
    command: ["sleep", "1000"]
"#
    );
    let file = write(&dir.join("project"), "compose.yaml", &compose);
    let up = up(&dir, &dockerd, &file, "cpus:8;mem:16384;disk:10000;ports:[31000-31999]");
    up.wait_project("lim", "both running", |v| state(v, "usr1") == "running" && state(v, "admin") == "running");
    let by_task = |service: &str| {
        let c = containers_of(&dockerd, &up)
            .into_iter()
            .find(|c| c.labels.as_ref().unwrap()["m3s.task_id"].starts_with(&format!("lim_{service}.")))
            .unwrap_or_else(|| panic!("no container for {service}"));
        dockerd.engine().inspect(&c.id).unwrap().unwrap()
    };
    let usr1 = by_task("usr1");
    assert_eq!(usr1.host_config.memory, 96 << 20, "the mem limit");
    assert_eq!(usr1.host_config.cpu_shares, 256, "cpus as shares, 1024 a CPU");
    assert_eq!(usr1.host_config.cpu_quota, 50_000, "a cpus limit above them is a CFS quota");
    assert_eq!((usr1.host_config.privileged, usr1.host_config.network_mode.as_str()), (false, "none"));
    let admin = by_task("admin");
    assert_eq!(admin.host_config.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
    assert!(!admin.host_config.privileged, "a capability asked for is not privilege");
    eventually("ready", || up.compose_ok(&["-p", "lim", "logs", "usr1"]).contains("ready"));
    // The agent's statistics are the container's (20 MB in its /dev/shm), not its executor's.
    let (status, body) = support::up::http("GET", up.mesos_port, "/monitor/statistics", None);
    assert_eq!(status, 200, "{body}");
    let entries: serde_json::Value = serde_json::from_str(&body).unwrap();
    let usr1 = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"].as_str().is_some_and(|id| id.starts_with("lim_usr1.")))
        .unwrap_or_else(|| panic!("no statistics for usr1: {body}"));
    let stats = &usr1["statistics"];
    assert!(stats["mem_total_bytes"].as_u64().unwrap() >= 20_000_000, "{stats}");
    assert_eq!(stats["mem_limit_bytes"].as_u64(), Some(96 << 20), "{stats}");
    assert!(stats["cpus_user_time_secs"].as_f64().is_some(), "{stats}");
    // A stop sends the stop signal (SIGUSR1), as docker stop does.
    up.compose_ok(&["-p", "lim", "stop", "usr1"]);
    up.wait_project("lim", "usr1 stopped", |v| live_tasks(v, "usr1").is_empty());
    let out = std::process::Command::new("grep")
        .args(["-rl", "got-usr1"])
        .arg(up.work_dir.join("mini/slaves"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "the trap ran");
}

#[test]
fn compose_builds_go_to_the_docker_engine_and_run_there() {
    let Some((dir, dockerd)) = test_daemon("dk-build", &[]) else { return };
    let project = dir.join("project");
    write(&project, "app/index.html", "built by docker\n");
    write(&project, "app/.dockerignore", "junk\n");
    write(&project, "app/junk/big.bin", "not sent\n");
    write(
        &project,
        "app/Dockerfile",
        &format!(
            "FROM {IMAGE}\nARG GREETING=none\nCOPY . /www/\nRUN echo $GREETING > /www/greeting.txt; ls /www > /www/listing.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"
        ),
    );
    let port = support::free_port();
    let compose = format!(
        r#"name: bd
services:
  web:
    build:
      context: ./app
      args: {{GREETING: hello-arg}}
    ports: ["127.0.0.1:{port}:80"]
  inline:
    build:
      context: ./app
      dockerfile_inline: |
        FROM {IMAGE}
        CMD ["echo", "inline-built"]
    restart: "no"
"#
    );
    let file = write(&project, "compose.yaml", &compose);
    let up = up(&dir, &dockerd, &file, &format!("cpus:8;mem:16384;disk:10000;ports:[{port}-{port}]"));
    up.wait_project("bd", "web running, inline done", |v| {
        state(v, "web") == "running" && state(v, "inline") == "completed"
    });
    // Built into the daemon, tagged as docker compose names the images.
    assert!(dockerd.engine().has_image("bd-web").unwrap() && dockerd.engine().has_image("bd-inline").unwrap());
    assert!(
        support::http_get(port, "/greeting.txt").is_some_and(|r| r.contains("hello-arg")),
        "the build arg reached RUN"
    );
    let listing = support::http_get(port, "/listing.txt").unwrap_or_default();
    assert!(listing.contains("index.html") && !listing.contains("junk"), ".dockerignore kept junk out: {listing}");
    assert!(up.compose_ok(&["-p", "bd", "logs", "inline"]).contains("inline-built"));

    // A failing step is named, with the builder's output.
    write(&project, "bad/Dockerfile", &format!("FROM {IMAGE}\nRUN echo about-to-fail; exit 7\n"));
    let bad = write(&project, "bad.yaml", "name: bad\nservices:\n  b:\n    build: ./bad\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["compose", "-f", &bad, "build", "--builder", "docker"])
        .env("M3S_DOCKER_SOCKET", &dockerd.socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("about-to-fail"), "the output is shown: {said}");
    assert!(said.contains("services.b.build: docker failed at Step 2/2 : RUN echo about-to-fail; exit 7"), "{said}");
}

#[test]
fn the_agent_refuses_to_start_without_the_docker_daemon_it_was_given() {
    let dir = tempdir("dk-nodaemon");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
            .args(["mini", "--port", &support::free_port().to_string(), "--work-dir"])
            .arg(dir.join("mini"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let socket = dir.join("no-docker.sock");
    let said = run(&["--containerizers", "docker,mesos", "--docker-socket", socket.to_str().unwrap()]);
    assert!(
        said.contains(&format!("--containerizers=docker: no Docker daemon answers at {}", socket.display())),
        "{said}"
    );
    let said = run(&["--containerizers", "docker"]);
    assert!(said.contains("use docker,mesos"), "{said}");
    let said = run(&["--containerizers", "kubernetes"]);
    assert!(said.contains("invalid value 'kubernetes'"), "{said}");
}
