//! End to end: `m3s metrics serve` over real HTTP: line protocol (v1, v2,
//! gzip), InfluxDB's error answers, remote_write, the Prometheus and native
//! query APIs, `/metrics`, and durability across kill -9 and restarts.

mod support;

use std::io::Write;

use metrics::model::{Labels, Sample};
use serde_json::Value;
use support::metrics::{MetricsServer, TOKEN};
use support::tempdir;

/// `[[t_seconds, "v"], ...]` of the one series a query_range answers.
fn values(answer: &Value) -> Vec<(f64, String)> {
    let result = answer["data"]["result"].as_array().expect("a result");
    assert_eq!(result.len(), 1, "{answer}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn line_protocol_writes_read_back_exactly_through_both_query_apis() {
    let dir = tempdir("metrics-lp");
    let server = MetricsServer::start(&dir, &[]);
    // An hour ago, so that retention keeps it and the range is fixed.
    let base = (metrics::store::now_ms() / 1000 - 3600) as i64;
    let body = format!(
        "# a comment\ncpu,host=node\\ 1,dc=eu usage_user=1.5,usage_system=2i,up=true,note=\"x\" {}\n\
         cpu,host=node\\ 1,dc=eu usage_user=-0.25 {}\r\n\ncpu,dc=eu,host=node\\ 1 usage_user=3e2 {}\n",
        base,
        base + 10,
        base + 20
    );
    let (status, answer) = server.write("/write?db=x&precision=s", body.as_bytes(), &[]);
    assert_eq!(status, 204, "{answer}");

    let range = format!("/api/v1/query_range?query=cpu_usage_user&start={}&end={}&step=10", base, base + 20);
    let got = values(&server.get_json(&range));
    assert_eq!(
        got,
        vec![(base as f64, "1.5".into()), ((base + 10) as f64, "-0.25".into()), ((base + 20) as f64, "300".into())]
    );
    let series = server.get_json("/api/v1/series?match[]=%7B__name__%3D~%22cpu_.%2A%22%7D");
    let names: Vec<&str> = series["data"].as_array().unwrap().iter().map(|s| s["__name__"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["cpu_up", "cpu_usage_system", "cpu_usage_user"], "string fields are not stored");
    assert_eq!(series["data"][0]["host"], "node 1");

    let native = server.get_json(&format!(
        "/api/m3trics/v1/query?measurement=cpu&field=usage_user&tag=host%3Dnode%201&start={}&end={}&step=30s&agg=max",
        base,
        base + 29
    ));
    assert_eq!(native["series"][0]["points"], serde_json::json!([[base * 1000, 300.0]]), "{native}");

    // v2 with gzip and a token in InfluxDB's own scheme.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("mem,host=a used=42.5 {}\n", base * 1000).as_bytes()).unwrap();
    let (status, answer) = server.request(
        "POST",
        "/api/v2/write?org=o&bucket=b&precision=ms",
        &[("Authorization", &format!("Token {TOKEN}")), ("Content-Encoding", "gzip")],
        &gz.finish().unwrap(),
    );
    assert_eq!(status, 204, "{answer}");
    let instant = server.get_json(&format!("/api/v1/query?query=mem_used&time={}", base + 1));
    assert_eq!(instant["data"]["result"][0]["value"][1], "42.5", "{instant}");
}

#[test]
fn bad_writes_get_influxdbs_answers_and_write_nothing() {
    let dir = tempdir("metrics-bad");
    let server = MetricsServer::start(&dir, &["--metrics-max-body", "2000", "--metrics-retention", "7d"]);
    let now = metrics::store::now_ms() / 1000;

    let body = format!("ok,h=a v=1 {now}\nok,h=a v=oops {now}\nok,h=b v=2 {now}\n");
    let (status, answer) = server.write("/write?db=x&precision=s", body.as_bytes(), &[]);
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&answer).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("ok,h=a v=oops") && message.contains("line 2"), "{message}");
    let (status, answer) = server.write("/api/v2/write?bucket=b&precision=s", body.as_bytes(), &[]);
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(error["code"], "invalid");
    assert_eq!(error["line"], 2);
    let nothing = server.get_json("/api/v1/series?match[]=ok_v");
    assert_eq!(nothing["data"], serde_json::json!([]), "a rejected batch writes nothing");

    // Well-formed but unstorable: a point older than retention, one with only strings; the rest is written.
    let old = now - 30 * 86400;
    let body = format!("ok,h=a v=1 {now}\nok,h=old v=1 {old}\nlog,h=a msg=\"hi\" {now}\n");
    let (status, answer) = server.write("/write?db=x&precision=s", body.as_bytes(), &[]);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.contains("retention") && answer.contains("only string fields") && answer.contains("dropped=2"),
        "{answer}"
    );
    let written = server.get_json("/api/v1/series?match[]=ok_v");
    assert_eq!(written["data"].as_array().unwrap().len(), 1);

    let big = "x,h=a v=1\n".repeat(300);
    let (status, _) = server.write("/write?db=x", big.as_bytes(), &[]);
    assert_eq!(status, 413);
    let (status, answer) = server.write("/write?db=x&precision=fortnight", b"x v=1", &[]);
    assert_eq!(status, 400);
    assert!(answer.contains("precision"), "{answer}");

    let (status, _) = server.request("POST", "/write?db=x", &[], b"x v=1");
    assert_eq!(status, 401);
    let (status, _) = server.request("POST", "/api/v2/write?bucket=b", &[("Authorization", "Token wrong")], b"x v=1");
    assert_eq!(status, 401);
    let (status, _) = server.request("GET", "/api/v1/query?query=up", &[], b"");
    assert_eq!(status, 401, "queries are authenticated too");
    let (status, _) = server.request("GET", "/ping", &[], b"");
    assert_eq!(status, 204);

    let (status, answer) =
        server.request("GET", "/api/v1/query?query=rate(", &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(error["errorType"], "bad_data", "{answer}");
}

#[test]
fn influxdb_v1_credentials_work_as_parameters_and_basic() {
    let dir = tempdir("metrics-basic");
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = MetricsServer::start(&dir, &["--auth-username", "admin", "--auth-password", "s3cret"]);
    let (status, answer) = server.request("POST", "/write?db=x&u=admin&p=s3cret", &[], b"a v=1");
    assert_eq!(status, 204, "{answer}");
    let (status, _) = server.request("POST", "/write?db=x&u=admin&p=wrong", &[], b"a v=1");
    assert_eq!(status, 401);
    let (status, _) = server.request("POST", "/write?db=x", &[("Authorization", "Basic YWRtaW46czNjcmV0")], b"a v=2");
    assert_eq!(status, 204);
    // Credentials never reach the log.
    server.stop();
    assert!(!server.log_tail().contains("s3cret"));
}

#[test]
fn remote_write_samples_are_queryable_and_bad_bodies_are_400() {
    let dir = tempdir("metrics-rw");
    let server = MetricsServer::start(&dir, &[]);
    let t0 = metrics::store::now_ms() - 60_000;
    let labels = Labels::new(vec![("__name__".into(), "http_requests_total".into()), ("job".into(), "api".into())]);
    let samples: Vec<Sample> = (0..7).map(|i| Sample { t: t0 + i * 10_000, v: (i * i) as f64 }).collect();
    let body = metrics::remote_write::encode(&[(labels, samples)]);
    let (status, answer) = server.write(
        "/api/v1/write",
        &body,
        &[("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf")],
    );
    assert_eq!(status, 204, "{answer}");
    let q = format!(
        "/api/v1/query_range?query=http_requests_total%7Bjob%3D%22api%22%7D&start={}&end={}&step=10",
        t0 as f64 / 1000.0,
        (t0 + 60_000) as f64 / 1000.0
    );
    let got: Vec<String> = values(&server.get_json(&q)).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, vec!["0", "1", "4", "9", "16", "25", "36"]);
    let (status, answer) = server.write("/api/v1/write", b"not snappy at all", &[]);
    assert_eq!(status, 400, "{answer}");

    let (status, text) = server.request("GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE m3trics_points_written_total counter"), "{text}");
    assert!(text.contains("m3trics_points_written_total 7"), "{text}");
}

#[test]
fn acknowledged_writes_survive_kill_9_and_a_clean_stop_flushes_to_blocks() {
    let dir = tempdir("metrics-kill");
    let mut server = MetricsServer::start(&dir, &[]);
    let base = metrics::store::now_ms() / 1000 - 7200;
    let mut acknowledged = 0;
    for batch in 0..50 {
        let body: String = (0..100)
            .map(|i| format!("k,host=h{} v={} {}\n", i % 10, batch * 100 + i, base + batch * 100 + i))
            .collect();
        let (status, answer) = server.write("/write?db=x&precision=s", body.as_bytes(), &[]);
        assert_eq!(status, 204, "{answer}");
        acknowledged += 100;
    }
    server.restart(); // kill -9, then the same command again
    let count = |server: &MetricsServer| {
        let q = format!("/api/v1/query?query=sum(count_over_time(k_v[3h]))&time={}", base + 5000);
        server.get_json(&q)["data"]["result"][0]["value"][1].as_str().unwrap().parse::<usize>().unwrap()
    };
    assert_eq!(count(&server), acknowledged);
    assert!(server.stop().success());
    let blocks = std::fs::read_dir(dir.join("metrics/blocks")).unwrap().count();
    assert!(blocks >= 1, "a clean stop flushes the head into a block");
    server = MetricsServer::start(&dir, &[]);
    assert_eq!(count(&server), acknowledged);
}

/// Sends a request head and up to `total` body bytes (chunked when `chunked`), as a
/// client that does not wait for an early answer would; stops when the server closes.
/// Returns the status line the server answered, if any.
fn push_body(port: u16, path: &str, extra: &str, total: usize, chunked: bool) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let length = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {total}") };
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{extra}{length}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let line = "big,h=a v=1 1\n".repeat(4096);
    let mut sent = 0;
    while sent < total {
        let piece = line.as_bytes();
        let ok = if chunked {
            s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .and_then(|_| s.write_all(piece))
                .and_then(|_| s.write_all(b"\r\n"))
        } else {
            s.write_all(&piece[..piece.len().min(total - sent)])
        };
        if ok.is_err() {
            break; // the server answered and closed
        }
        sent += piece.len();
    }
    if chunked && sent >= total {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_owned()
}

#[test]
fn oversized_writes_are_refused_and_memory_returns_to_its_baseline() {
    let dir = tempdir("metrics-oversized");
    let server = MetricsServer::start(&dir, &[]);
    let now = metrics::store::now_ms() / 1000;
    let (status, _) = server.write("/write?db=x&precision=s", format!("warm,h=a v=1 {now}\n").as_bytes(), &[]);
    assert_eq!(status, 204);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let baseline = support::rss_kib(server.pid());

    const BIG: usize = 200 << 20;
    for _ in 0..3 {
        // Declared too large: refused from the header, before the body is read.
        let answer = push_body(server.port, "/write?db=x", "", BIG, false);
        assert!(answer.contains("413"), "{answer}");
        // Chunked, no length: read up to the limit (32 MiB), then refused.
        let answer = push_body(server.port, "/api/v2/write?bucket=b", "", BIG, true);
        assert!(answer.contains("413"), "{answer}");
    }
    // A gzip bomb: 200 MB of lines in a few hundred KB; decompression stops at the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let lines = "bomb,h=a v=1 1\n".repeat(1 << 16);
    for _ in 0..BIG / lines.len() {
        gz.write_all(lines.as_bytes()).unwrap();
    }
    let bomb = gz.finish().unwrap();
    for _ in 0..3 {
        let (status, answer) = server.write("/write?db=x", &bomb, &[("Content-Encoding", "gzip")]);
        assert_eq!(status, 413, "{answer}");
    }
    let (status, _) = server.write("/write?db=x&precision=s", format!("after,h=a v=1 {now}\n").as_bytes(), &[]);
    assert_eq!(status, 204, "the server still takes writes");

    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = support::rss_kib(server.pid());
    // Each refused request may hold up to one limit's worth while it is read; none is kept.
    assert!(
        after < baseline + 24 * 1024,
        "resident memory {after} KiB after the oversized writes, {baseline} KiB before"
    );
}
