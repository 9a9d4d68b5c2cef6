//! End to end: the K3s framework in `m3s up --k3s`, with Debian's etcd as the
//! datastore (a real one, started as a task) and the k3s TEST DOUBLE
//! (tests/k3s-double/k3s: k3s cannot be installed here) fetched by the agent
//! and run as host processes. Driven by the `m3s k3s` CLI and both APIs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::tempdir;
use support::up::{TOKEN, Up, http};

fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/k3s-double/k3s").canonicalize().unwrap()
}

fn etcd_installed() -> bool {
    if Path::new("/usr/bin/etcd").exists() {
        return true;
    }
    assert!(
        std::env::var_os("M3S_REQUIRE_ROOT").is_none(),
        "/usr/bin/etcd is missing, and CI requires this test (scripts/test installs etcd-server)"
    );
    eprintln!("SKIPPED: /usr/bin/etcd is missing (apt install etcd-server); the K3s end-to-end test did not run");
    false
}

fn k3s(up: &Up, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .arg("k3s")
        .args(["--api", &up.api(), "--api-token", TOKEN])
        .args(args)
        .output()
        .expect("m3s binary")
}

fn k3s_ok(up: &Up, args: &[&str]) -> String {
    let out = k3s(up, args);
    assert!(
        out.status.success(),
        "m3s k3s {args:?} failed: {}\n{}\n--- m3s up log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        up.log_tail()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(up: &Up, name: &str) -> Value {
    let (code, body) = http("GET", up.api_port, &format!("/api/k3s/v1/clusters/{name}"), None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_status(up: &Up, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status(up, name);
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last status:\n{}\n--- m3s up log ---\n{}",
            serde_json::to_string_pretty(&s).unwrap(),
            up.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn ids(s: &Value, role: &str) -> Vec<String> {
    s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == role)
        .map(|n| n["task_id"].as_str().unwrap().to_owned())
        .collect()
}

fn healthy(s: &Value, role: &str) -> usize {
    s["nodes"].as_array().unwrap().iter().filter(|n| n["role"] == role && n["healthy"] == true).count()
}

/// The keys under a prefix in the cluster's etcd: what the double's servers wrote.
fn etcd_keys(endpoint: &str, prefix: &str) -> usize {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let end = format!("{}{}", &prefix[..prefix.len() - 1], (prefix.as_bytes()[prefix.len() - 1] + 1) as char);
    let body = format!(r#"{{"key":"{}","range_end":"{}","count_only":true}}"#, b64(prefix), b64(&end));
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let (status, text) = support::metrics::request(port, "POST", "/v3/kv/range", &[], body.as_bytes());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["count"].as_str().map_or(0, |c| c.parse().unwrap())
}

#[test]
fn a_cluster_comes_up_in_order_scales_hibernates_survives_a_kill_and_goes() {
    if !etcd_installed() {
        return;
    }
    support::init_tls();
    let dir = tempdir("k3s-e2e");
    let binary = double();
    let mut args = vec!["--k3s", "--k3s-binary", binary.to_str().unwrap(), "--k3s-default-cluster", "demo"];
    args.extend(support::up::SMALL_K3S);
    let mut up = Up::start(&dir, &args);

    let (code, body) = http("GET", up.api_port, "/api/manage/v1/status", None);
    assert!(code == 404 && body.contains("--manage-repo"), "{code} {body}");

    // Bad requests are refused, naming what is wrong, and create nothing.
    let bad = k3s(&up, &["create", "Demo"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lowercase"), "{}", String::from_utf8_lossy(&bad.stderr));
    let bad = k3s(&up, &["create", "ha", "--servers", "2", "--datastore", "embedded"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("shared datastore"));

    // A k3s that cannot be fetched: the status names the node and why, and nothing piles up.
    let body = r#"{"name": "broken", "agents": 0, "k3s_binary": "file:///nonexistent/k3s"}"#;
    let (status, answer) = post_json(up.api_port, "/api/k3s/v1/clusters", body);
    assert_eq!(status, 201, "{answer}");
    let broken = wait_status(&up, "broken", "the failure to show", |s| {
        s["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("server 0: not running"))
    });
    let why = broken["problems"].to_string();
    assert!(why.contains("/nonexistent/k3s"), "the fetch failure is named: {why}");
    assert!(ids(&broken, "server").len() <= 1, "at most one live task per replica");
    k3s_ok(&up, &["delete", "broken"]);

    k3s_ok(&up, &["create", "demo", "--servers", "1", "--agents", "2", "--datastore", "etcd"]);
    let dup = k3s(&up, &["create", "demo"]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));

    let ready = wait_status(&up, "demo", "1 server and 2 agents Ready", |s| s["ready"] == true);
    assert_eq!((healthy(&ready, "datastore"), healthy(&ready, "server"), healthy(&ready, "agent")), (1, 1, 2));
    assert!(ready["kubernetes_version"].as_str().unwrap().starts_with("v1.31"));
    let agents_before = ids(&ready, "agent");
    let server_before = ids(&ready, "server");

    // The kubeconfig: private, pointing at the server's host port, and it works as written.
    let kubeconfig = dir.join("demo.kubeconfig");
    k3s_ok(&up, &["kubeconfig", "demo", "-o", kubeconfig.to_str().unwrap()]);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(!text.contains(":6443"), "rewritten from k3s's own address: {text}");
    let nodes = kube_nodes(&text);
    for id in agents_before.iter().chain(&server_before) {
        assert!(nodes.iter().any(|(label, ready, _)| label == id && *ready), "node of {id} Ready in {nodes:?}");
    }

    // The dashboard's page, and the kubeconfig download behind sign-in.
    let (code, page) = http("GET", up.api_port, "/ui/k3s", None);
    assert_eq!(code, 200);
    assert!(page.contains(&server_before[0]) && page.contains("Ready"), "{page}");
    let (code, download) = http("GET", up.api_port, "/ui/k3s/demo/kubeconfig", None);
    assert_eq!((code, download.contains("client-key-data")), (200, true));
    let anonymous = support::http_get(up.api_port, "/ui/k3s/demo/kubeconfig").unwrap();
    assert!(!anonymous.contains("client-key-data") && !anonymous.starts_with("HTTP/1.0 200"), "{anonymous}");

    // The datastore is really used: the server keeps its nodes in etcd.
    let endpoint = ready["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "datastore")
        .map(|n| n["host"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(!endpoint.is_empty());
    let ds_port = datastore_port(&up);
    assert!(etcd_keys(&format!("http://127.0.0.1:{ds_port}"), "/registry/minions/") >= 3);

    // mesos-m3s's v0 API on the default cluster.
    let (code, body) = http("GET", up.api_port, "/api/m3s/v0/agent/scale", None);
    assert_eq!(code, 200, "{body}");
    let count: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((count["Scale"].as_u64(), count["Running"].as_u64()), (Some(2), Some(2)));
    assert_eq!(http("GET", up.api_port, "/api/m3s/v0/status/k8s", None).1, "ok");
    let versions = support::http_get(up.api_port, "/api/m3s/versions").expect("versions need no credentials");
    assert!(versions.starts_with("HTTP/1.0 200") && versions.ends_with("\r\n\r\n/api/m3s/v0"), "{versions}");

    // Scaling up adds an agent and keeps the others; a scale below one server is refused.
    let (code, body) = http("GET", up.api_port, "/api/m3s/v0/agent/scale/3", None);
    assert_eq!((code, body.as_str()), (200, "1"), "the v0 answer is the difference");
    let three = wait_status(&up, "demo", "3 agents Ready", |s| s["ready"] == true && healthy(s, "agent") == 3);
    let agents_now = ids(&three, "agent");
    assert!(agents_before.iter().all(|a| agents_now.contains(a)), "{agents_before:?} kept in {agents_now:?}");
    let refused = k3s(&up, &["scale", "demo", "--servers", "0"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least one server"));
    k3s_ok(&up, &["scale", "demo", "--agents", "1"]);
    let one = wait_status(&up, "demo", "1 agent", |s| s["ready"] == true && ids(s, "agent").len() == 1);
    assert_eq!(ids(&one, "agent"), agents_before[..1], "scaling down removes the newest replicas");
    let nodes = kube_nodes(&text);
    let gone: Vec<&String> = agents_now.iter().filter(|a| **a != agents_before[0]).collect();
    for id in &gone {
        assert!(nodes.iter().any(|(label, _, cordoned)| label == *id && *cordoned), "{id} drained first: {nodes:?}");
    }

    // Hibernate: servers and agents stop, the datastore stays; restore brings them back
    // on the same datastore (the double refuses a server whose token differs from the stored one).
    k3s_ok(&up, &["shutdown", "demo"]);
    let asleep = wait_status(&up, "demo", "hibernated", |s| {
        s["hibernated"] == true && ids(s, "server").is_empty() && ids(s, "agent").is_empty()
    });
    assert_eq!(healthy(&asleep, "datastore"), 1);
    k3s_ok(&up, &["start", "demo"]);
    let awake = wait_status(&up, "demo", "restored", |s| s["ready"] == true && healthy(s, "agent") == 1);
    assert_eq!(ids(&awake, "datastore"), ids(&ready, "datastore"), "the datastore was kept");

    // kill -9 of m3s: the tasks run on; the restarted m3s finds the cluster as it was.
    let tasks_before: Vec<String> = ["datastore", "server", "agent"].iter().flat_map(|r| ids(&awake, r)).collect();
    up.restart();
    let after = wait_status(&up, "demo", "ready after the restart", |s| s["ready"] == true);
    let tasks_after: Vec<String> = ["datastore", "server", "agent"].iter().flat_map(|r| ids(&after, r)).collect();
    assert_eq!(tasks_before, tasks_after, "no task was started twice");

    // New resources reach the tasks: the agent is replaced with the new memory.
    k3s_ok(&up, &["resources", "demo", "agent", "--memory", "160"]);
    let resized = wait_status(&up, "demo", "the agent replaced", |s| {
        s["ready"] == true && ids(s, "agent").len() == 1 && ids(s, "agent") != ids(&after, "agent")
    });
    let agent = ids(&resized, "agent")[0].clone();
    let tasks = support::http_get(up.mesos_port, "/master/tasks").unwrap();
    let tasks: Value = serde_json::from_str(tasks.split_once("\r\n\r\n").unwrap().1).unwrap();
    let task = tasks["tasks"].as_array().unwrap().iter().find(|t| t["id"] == agent.as_str()).expect("the new agent");
    assert_eq!(task["resources"]["mem"].as_f64(), Some(160.0), "{task}");
    assert_eq!(ids(&resized, "server"), ids(&after, "server"), "the servers keep running");

    // Delete with the data: nothing of the cluster is left.
    k3s_ok(&up, &["delete", "demo", "--purge"]);
    let (code, _) = http("GET", up.api_port, "/api/k3s/v1/clusters/demo", None);
    assert_eq!(code, 404);
    let data = dir.join("k3s/data/demo");
    support::eventually("the datastore's data to go", || !data.exists());
    assert!(!dir.join("k3s/demo.kubeconfig").exists());
}

/// The datastore's client port, from the cluster's etcd task in the master's state.
fn datastore_port(up: &Up) -> u16 {
    let text = support::http_get(up.mesos_port, "/master/tasks").unwrap();
    let v: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    let task = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "k3s-demo-datastore" && t["state"] == "TASK_RUNNING")
        .expect("the datastore task");
    let ranges = task["resources"]["ports"].as_str().unwrap();
    ranges.trim_matches(['[', ']']).split('-').next().unwrap().parse().unwrap()
}

/// (task-id label, Ready, cordoned) of every node, read with the kubeconfig as written.
fn kube_nodes(kubeconfig: &str) -> Vec<(String, bool, bool)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let kube = k3s::kube::Kube::from_kubeconfig(kubeconfig).unwrap();
    rt.block_on(kube.nodes())
        .unwrap()
        .into_iter()
        .map(|n| (n.labels.get(k3s::cluster::TASK_ID_LABEL).cloned().unwrap_or_default(), n.ready, n.unschedulable))
        .collect()
}

#[test]
fn k3s_serve_runs_the_framework_alone_against_a_master() {
    support::init_tls();
    let dir = tempdir("k3s-serve");
    let mini = support::Mini::start(&dir.join("mini"));
    let api_port = support::free_port();
    let work = dir.join("k3s");
    std::fs::create_dir_all(&work).unwrap();
    let log_path = work.join("m3s-k3s-serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let binary = double();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["k3s", "serve", "--master", &mini.url(), "--mesos-credentials"])
        .arg(mini.work_dir.join("credentials.json"))
        .arg("--work-dir")
        .arg(&work)
        .args(["--framework-port", &api_port.to_string(), "--k3s-binary", binary.to_str().unwrap()])
        .args([
            "--k3s-server-mem",
            "128",
            "--k3s-server-disk",
            "10",
            "--k3s-agent-mem",
            "128",
            "--k3s-agent-disk",
            "10",
        ])
        .args(["--k3s-server-cpus", "0.2", "--k3s-agent-cpus", "0.2", "--k3s-default-cluster", "solo"])
        .env("M3S_API_TOKEN", TOKEN)
        // mesos-m3s's way: the counts at start make the default cluster.
        .env("K3S_SERVER_COUNT", "1")
        .env("K3S_AGENT_COUNT", "1")
        .env_remove("AUTH_USERNAME")
        .env_remove("AUTH_PASSWORD")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    support::wait_listening(&mut child, api_port, &log_path, "m3s k3s serve");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let (_, body) = http("GET", api_port, "/api/k3s/v1/clusters/solo", None);
        let s: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if s["ready"] == true {
            break s;
        }
        assert!(Instant::now() < deadline, "not ready: {body}\n{}", support::tail(&log_path, 40));
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status["datastore"], "embedded", "one server keeps its state itself");
    assert!(ids(&status, "datastore").is_empty());
    // Only the K3s framework registered: the compose framework is not part of `m3s k3s serve`.
    let frameworks = support::http_get(mini.port, "/master/frameworks").unwrap();
    assert!(frameworks.contains("\"m3s-k3s\""), "{frameworks}");
    assert!(!frameworks.contains("\"name\":\"m3s\""), "{frameworks}");
    let (code, _) = http("GET", api_port, "/api/v1/projects", None);
    assert_eq!(code, 404, "no compose API here");
    let (code, body) = http("GET", api_port, "/api/m3s/v0/server/scale", None);
    assert_eq!((code, body.as_str()), (200, r#"{"Running":1,"Scale":1}"#));
    let _ = child.kill();
    let _ = child.wait();
    support::kill_tasks_under(&dir);
}

/// A JSON POST to the m3s API with the test token.
fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    support::metrics::request(
        port,
        "POST",
        path,
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// K3s clusters kept in git (`k3s/<name>.yaml` beside the compose projects):
/// created by a commit, scaled by the next (the plan shows the counts),
/// removed when the file goes.
#[test]
fn clusters_defined_in_git_are_created_scaled_and_removed() {
    if !etcd_installed() {
        return;
    }
    let dir = tempdir("k3s-git");
    let (_daemon, url, work) = support::git::served_repository(&dir);
    let c1 = support::git::commit(&work, &url, "a dev cluster", &[("k3s/dev.yaml", Some("servers: 1\nagents: 1\n"))]);
    let binary = double();
    let mut args = vec!["--k3s", "--k3s-binary", binary.to_str().unwrap(), "--manage-repo", &url];
    args.extend(["--manage-interval", "1s"]);
    args.extend(support::up::SMALL_K3S);
    let up = Up::start(&dir.join("m3s"), &args);
    let applied = |commit: &str| {
        let (_, body) = http("GET", up.api_port, "/api/manage/v1/status", None);
        serde_json::from_str::<Value>(&body).is_ok_and(|s| s["applied"] == commit)
    };
    support::eventually("the cluster's commit applied", || applied(&c1));
    wait_status(&up, "dev", "dev ready", |s| s["ready"] == true && healthy(s, "agent") == 1);

    let c2 = support::git::commit(&work, &url, "two agents", &[("k3s/dev.yaml", Some("servers: 1\nagents: 2\n"))]);
    support::eventually("the scale applied", || applied(&c2));
    wait_status(&up, "dev", "two agents", |s| healthy(s, "agent") == 2);
    // Going back would scale down.
    let (code, plan) = http("GET", up.api_port, &format!("/api/manage/v1/plan?commit={c1}"), None);
    assert!(code == 200 && plan.contains("~ k3s cluster dev") && plan.contains("agents: 2 -> 1"), "{code} {plan}");

    let c3 = support::git::commit(&work, &url, "no cluster", &[("k3s/dev.yaml", None), ("README", Some("x\n"))]);
    support::eventually("the removal applied", || applied(&c3));
    support::eventually("dev gone", || http("GET", up.api_port, "/api/k3s/v1/clusters/dev", None).0 == 404);
}
