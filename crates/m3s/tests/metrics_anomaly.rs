//! Anomaly detection on a running `m3s metrics serve`: samples written over
//! the line protocol are watched, a jump opens an anomaly readable through the
//! API, the CLI and PromQL (`m3s_anomaly_score`), the anomaly log survives a
//! restart, and the rules file is reloaded when it changes (a bad one is
//! reported and the rules in force are kept).

mod support;

use std::process::Command;

use support::eventually;
use support::metrics::{MetricsServer, TOKEN};

fn line_protocol(host: &str, from_s: i64, values: &[f64]) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("mem,host={host} used_percent={v} {}\n", (from_s + i as i64 * 10) * 1_000_000_000))
        .collect()
}

fn anomalies(server: &MetricsServer) -> serde_json::Value {
    server.get_json("/api/m3trics/v1/anomalies")
}

#[test]
fn a_jump_in_a_watched_series_is_found_scored_and_kept() {
    let dir = support::tempdir("anomaly");
    let work = dir.join("m3s");
    let mut server = MetricsServer::start(&work, &["--anomaly-interval", "1s"]);
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Forty minutes of a steady node, then a jump; another node stays steady.
    let mut steady: Vec<f64> = (0..240).map(|i| 40.0 + (i % 4) as f64 * 0.5).collect();
    let quiet = line_protocol("quiet", now_s - 2400, &steady);
    steady[230] = 97.0;
    let jumpy = line_protocol("jumpy", now_s - 2400, &steady);
    for body in [quiet, jumpy] {
        let (status, answer) = server.write("/write?db=m3s", body.as_bytes(), &[]);
        assert_eq!(status, 204, "{answer}");
    }
    eventually("the anomaly to be found", || anomalies(&server)["anomalies"].as_array().is_some_and(|a| !a.is_empty()));
    let answer = anomalies(&server);
    let found = answer["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only the jump, not the steady node: {answer}");
    let event = &found[0];
    assert_eq!((event["metric"].as_str(), event["labels"]["host"].as_str()), (Some("mem_used_percent"), Some("jumpy")));
    assert_eq!(event["start_ms"].as_i64(), Some((now_s - 2400 + 2300) * 1000));
    assert!(event["reason"].as_str().unwrap().contains("= 97.00 where about 4"), "{event}");
    assert!(event["end_ms"].is_i64(), "closed once the series was quiet again: {event}");
    assert!(answer["watched_series"].as_u64() >= Some(2), "{answer}");

    // The scores are series, for PromQL.
    let query = server.get_json("/api/v1/query?query=max_over_time(m3s_anomaly_score%7Bhost%3D%22jumpy%22%7D%5B1h%5D)");
    let top: f64 = query["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(top >= 0.8, "{query}");

    // The CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["metrics", "anomalies", "--api", &format!("http://127.0.0.1:{}", server.port), "--api-token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("mem_used_percent") && text.contains("host=jumpy"), "{text}");

    // The log survives a restart.
    server.restart();
    assert_eq!(anomalies(&server)["anomalies"].as_array().unwrap().len(), 1);
    drop(server);

    // A rules file: reloaded when it changes; a bad one keeps the rules in force.
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, "watch:\n  - {metric: load1}\n").unwrap();
    let server = MetricsServer::start(
        &dir.join("m3s-rules"),
        &["--anomaly-interval", "1s", "--anomaly-rules", rules.to_str().unwrap()],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&rules, "watch:\n  - {metric: load1, threshold: 7}\n").unwrap();
    eventually("the bad rules file to be reported", || {
        anomalies(&server)["problem"].as_str().is_some_and(|p| p.contains("threshold: 7 is not between 0 and 1"))
    });
    std::fs::write(&rules, "watch:\n  - {metric: load1, threshold: 0.9}\n").unwrap();
    eventually("the good rules file to be taken", || anomalies(&server)["problem"].is_null());
}
