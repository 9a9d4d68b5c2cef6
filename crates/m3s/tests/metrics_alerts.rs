//! Alerting on a running `m3s metrics serve`: a Prometheus-format rule goes
//! pending then firing and resolves, notifying a webhook in Alertmanager's
//! format; a webhook that is down is retried with backoff and its failure
//! shown; a silence keeps its alerts quiet; alerts survive a restart.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use support::eventually;
use support::metrics::MetricsServer;

/// A webhook receiver on `port`: every POST body, answered 200.
fn receiver(port: u16) -> Arc<Mutex<Vec<serde_json::Value>>> {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            // Headers, then Content-Length bytes of body.
            let body = loop {
                let Ok(n) = stream.read(&mut buf) else { break None };
                if n == 0 {
                    break None;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break Some(rest[..length].to_owned());
                    }
                }
            };
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Some(body) = body.and_then(|b| serde_json::from_str(&b).ok()) {
                kept.lock().unwrap().push(body);
            }
        }
    });
    bodies
}

fn write_mem(server: &MetricsServer, host: &str, value: f64) {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let (status, body) =
        server.write("/write?db=m3s", format!("mem,host={host} used_percent={value} {now_ns}\n").as_bytes(), &[]);
    assert_eq!(status, 204, "{body}");
}

fn alert_states(server: &MetricsServer) -> Vec<(String, String, bool)> {
    let answer = server.get_json("/api/v1/alerts");
    answer["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["host"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
                a["silenced"] == true,
            )
        })
        .collect()
}

#[test]
fn rules_fire_notify_retry_silence_and_resolve() {
    let dir = support::tempdir("alerts");
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "groups:\n  - name: node\n    rules:\n      - alert: HighMemory\n        expr: mem_used_percent > 90\n        for: 2s\n        labels: {severity: page}\n        annotations: {summary: memory is high}\n",
    )
    .unwrap();
    let hook_port = support::free_port();
    let hook = format!("http://127.0.0.1:{hook_port}/hook");
    let args = [
        "--alert-rules",
        rules.to_str().unwrap(),
        "--alert-webhook",
        &hook,
        "--alert-interval",
        "500ms",
        "--anomaly-interval",
        "0",
    ];
    let mut server = MetricsServer::start(&dir.join("m3s"), &args);

    let rules_answer = server.get_json("/api/v1/rules");
    assert_eq!(rules_answer["data"]["groups"][0]["rules"][0]["query"], "mem_used_percent > 90", "{rules_answer}");

    write_mem(&server, "n1", 95.0);
    eventually("n1 pending", || alert_states(&server).iter().any(|(h, s, _)| h == "n1" && s == "pending"));
    eventually("n1 firing", || alert_states(&server).iter().any(|(h, s, _)| h == "n1" && s == "firing"));

    // The webhook is down: the failure is shown and the notification waits.
    eventually("the failed delivery shown", || {
        let status = server.get_json("/api/m3trics/v1/alerting");
        status["webhooks"][0]["last_error"].is_string() && status["webhooks"][0]["pending"] == 1
    });
    let bodies = receiver(hook_port);
    eventually("the notification delivered on a retry", || !bodies.lock().unwrap().is_empty());
    let firing = bodies.lock().unwrap()[0].clone();
    assert_eq!((firing["version"].as_str(), firing["status"].as_str()), (Some("4"), Some("firing")), "{firing}");
    let alert = &firing["alerts"][0];
    assert_eq!(
        (alert["labels"]["alertname"].as_str(), alert["labels"]["host"].as_str()),
        (Some("HighMemory"), Some("n1"))
    );
    assert_eq!(alert["annotations"]["summary"], "memory is high");
    assert_eq!(firing["commonLabels"]["severity"], "page");

    // A silence on n2: its alert fires without a notification.
    let (status, answer) = server.write(
        "/api/m3trics/v1/silences",
        br#"{"matchers": {"host": "n2"}, "duration": "1h", "comment": "maintenance"}"#,
        &[("Content-Type", "application/json")],
    );
    assert_eq!(status, 201, "{answer}");
    write_mem(&server, "n2", 99.0);
    eventually("n2 firing, silenced", || {
        alert_states(&server).iter().any(|(h, s, q)| h == "n2" && s == "firing" && *q)
    });

    // n1 recovers: resolved, and notified.
    write_mem(&server, "n1", 40.0);
    eventually("the resolution delivered", || bodies.lock().unwrap().iter().any(|b| b["status"] == "resolved"));
    let all = bodies.lock().unwrap().clone();
    assert!(all.iter().all(|b| !b.to_string().contains("\"n2\"")), "the silenced alert notified: {all:?}");

    // Alerts and silences survive a restart.
    server.restart();
    assert!(
        alert_states(&server).iter().any(|(h, s, q)| h == "n2" && s == "firing" && *q),
        "{:?}",
        alert_states(&server)
    );
    assert_eq!(server.get_json("/api/m3trics/v1/silences").as_array().unwrap().len(), 1);

    // A bad rules file is reported and the rules in force stay.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&rules, "groups:\n  - name: node\n    rules:\n      - alert: X\n        expr: 'rate(x[5m]'\n")
        .unwrap();
    eventually("the bad rules file reported", || {
        server.get_json("/api/m3trics/v1/alerting")["problem"]
            .as_str()
            .is_some_and(|p| p.contains("groups[0].rules[0] (X): expr"))
    });
    assert_eq!(server.get_json("/api/v1/rules")["data"]["groups"][0]["rules"][0]["name"], "HighMemory");
}
