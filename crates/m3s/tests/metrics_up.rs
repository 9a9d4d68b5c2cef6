//! End to end: M3trics inside `m3s up`: the collectors read the node and the
//! embedded cluster, task usage and failures show in queries, reports and the
//! error log, on the same API port and behind the same token.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::tempdir;
use support::up::{TOKEN, Up, http};

/// Polls a GET until `check` holds for its JSON, failing with the last answer and the log.
fn eventually(up: &Up, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = http("GET", up.api_port, path, None);
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if check(&v) {
                return v;
            }
        }
        let last = format!("{status} {body}");
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last answer {last}\n--- log ---\n{}",
            up.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn result_len(v: &Value) -> usize {
    v["data"]["result"].as_array().map_or(0, Vec::len)
}

#[test]
fn up_collects_node_cluster_and_task_metrics_and_records_failures() {
    let dir = tempdir("metrics-up");
    let compose = dir.join("compose.yaml");
    std::fs::write(
        &compose,
        "name: m\nservices:\n  busy:\n    command: [\"python3\", \"-c\", \"while True: sum(range(10000))\"]\n    cpus: 0.5\n    mem_limit: 128m\n  broken:\n    command: [\"sh\", \"-c\", \"exit 3\"]\n    deploy:\n      restart_policy:\n        condition: none\n",
    )
    .unwrap();
    let up = Up::start(&dir, &["-f", compose.to_str().unwrap(), "--collect-interval", "1s"]);

    let node = eventually(&up, "/api/v1/query?query=mem_used_percent", "the node's memory", |v| {
        result_len(v) == 1 && v["data"]["result"][0]["metric"]["host"].is_string()
    });
    let node_host = node["data"]["result"][0]["metric"]["host"].clone();
    eventually(&up, "/api/v1/query?query=mesos_master_cpus_total", "the master's snapshot", |v| result_len(v) >= 1);
    let usage = eventually(&up, "/api/v1/query?query=mesos_task_cpus_used", "task CPU usage", |v| {
        v["data"]["result"].as_array().into_iter().flatten().any(|s| {
            s["metric"].to_string().contains("busy") && s["value"][1].as_str().unwrap().parse::<f64>().unwrap() > 0.05
        })
    });
    assert!(usage.to_string().contains("framework_id"), "{usage}");
    // One node, one name: the agent's hostname on node, agent and task metrics alike.
    let (_, agents) = http("GET", up.api_port, "/api/v1/query?query=mesos_task_cpus_used", None);
    let agent_host: Value =
        serde_json::from_str::<Value>(&agents).unwrap()["data"]["result"][0]["metric"]["host"].clone();
    assert_eq!(node_host, agent_host, "{usage}");
    assert_eq!(node_host, "localhost", "the embedded agent on loopback is `localhost`");

    let errors = eventually(&up, "/api/m3trics/v1/errors?limit=10", "the failed task in the error log", |v| {
        v["errors"].as_array().into_iter().flatten().any(|e| e.to_string().contains("broken"))
    });
    let failure = errors["errors"].as_array().unwrap().iter().find(|e| e.to_string().contains("broken")).unwrap();
    assert_eq!(failure["state"], "TASK_FAILED", "{failure}");

    let nodes = eventually(&up, "/api/m3trics/v1/reports/nodes?order=least", "the nodes report", |v| {
        v["nodes"].as_array().is_some_and(|n| !n.is_empty())
    });
    let used = nodes["nodes"][0]["avg_used_percent"].as_f64().unwrap();
    assert!(used > 0.0 && used < 100.0, "{nodes}");
    eventually(&up, "/api/m3trics/v1/reports/tasks?by=cpu", "the tasks report", |v| {
        v["tasks"].as_array().is_some_and(|t| t.iter().any(|t| t.to_string().contains("busy")))
    });

    // The CLI prints the same report.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["metrics", "report", "nodes", "--api", &up.api(), "--api-token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let header = text.lines().next().unwrap_or_default();
    assert!(header.starts_with("HOST") && header.contains("AVG USED %"), "{text}");
    // Bytes with their unit, not raw counts with decimals.
    assert!(text.lines().nth(1).is_some_and(|row| row.contains("iB")), "{text}");
    // The same for the tasks.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["metrics", "report", "tasks", "--by", "memory", "--api", &up.api(), "--api-token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HOST") && text.contains("RSS AVG") && text.contains("MiB"), "{text}");

    // Metrics share the API's authentication.
    let (status, _) = support::metrics::request(up.api_port, "GET", "/api/v1/query?query=up", &[], b"");
    assert_eq!(status, 401);
    up.compose_ok(&["-p", "m", "down"]);
}
