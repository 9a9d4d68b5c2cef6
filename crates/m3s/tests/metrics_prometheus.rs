//! A real Prometheus 2.42 (Debian's package) scrapes itself and m3s's
//! `/metrics` every second and remote-writes everything into `m3s metrics
//! serve`. Then the same PromQL queries are asked of both over the same window,
//! and the answers must be the same: series, timestamps and values.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::metrics::{MetricsServer, TOKEN, request};
use support::{free_port, tempdir};

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Prometheus {
    port: u16,
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &Path, m3s_port: u16) -> Prometheus {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n\
             - job_name: prometheus\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
             - job_name: m3s\n  static_configs: [{{targets: ['127.0.0.1:{m3s_port}']}}]\n\
             remote_write:\n\
             - url: http://127.0.0.1:{m3s_port}/api/v1/write\n  authorization: {{credentials: {TOKEN}}}\n  queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n"
        ),
    )
    .unwrap();
    let log = dir.join("prometheus.log");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).create(true).open(&log).unwrap())
        .spawn()
        .expect("start prometheus");
    Prometheus { port, child, log }
}

fn get(port: u16, path: &str, auth: bool) -> Value {
    let bearer = format!("Bearer {TOKEN}");
    let headers: Vec<(&str, &str)> = if auth { vec![("Authorization", &bearer)] } else { vec![] };
    let (status, body) = request(port, "GET", path, &headers, b"");
    assert_eq!(status, 200, "GET {path} on port {port}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// label set → [(ms, value)] of a query_range or instant answer.
type Answer = BTreeMap<String, Vec<(i64, f64)>>;

fn parse_answer(v: &Value) -> Answer {
    let data = &v["data"];
    let mut out = Answer::new();
    let point =
        |p: &Value| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse::<f64>().unwrap());
    match data["resultType"].as_str().unwrap() {
        "matrix" | "vector" => {
            for s in data["result"].as_array().unwrap() {
                let key = s["metric"].to_string();
                let points = match s.get("values") {
                    Some(values) => values.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                out.insert(key, points);
            }
        }
        "scalar" => {
            out.insert("scalar".into(), vec![point(&data["result"])]);
        }
        other => panic!("unexpected result type {other}"),
    }
    out
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn compare(query: &str, prom: &Answer, m3s: &Answer) -> Result<(), String> {
    if prom.keys().collect::<Vec<_>>() != m3s.keys().collect::<Vec<_>>() {
        return Err(format!("{query}: series differ\n  prometheus: {:?}\n  m3s:        {:?}", prom.keys(), m3s.keys()));
    }
    for (k, p) in prom {
        let m = &m3s[k];
        let pt: Vec<i64> = p.iter().map(|x| x.0).collect();
        let mt: Vec<i64> = m.iter().map(|x| x.0).collect();
        if pt != mt {
            return Err(format!("{query}: timestamps of {k} differ\n  prometheus: {pt:?}\n  m3s:        {mt:?}"));
        }
        for ((t, a), (_, b)) in p.iter().zip(m) {
            if !same_value(*a, *b) {
                return Err(format!("{query}: {k} at {t}: prometheus {a}, m3s {b}"));
            }
        }
    }
    Ok(())
}

const RANGE_QUERIES: &[&str] = &[
    "up",
    "up{job=\"m3s\"}",
    "up{job!=\"m3s\"}",
    "{__name__=~\"scrape_(duration_seconds|samples_scraped)\", job=~\"prom.*\"}",
    "prometheus_http_requests_total{handler!~\"/api/.*\"}",
    "rate(prometheus_http_requests_total[10s])",
    "irate(prometheus_tsdb_head_samples_appended_total[5s])",
    "increase(m3trics_http_requests_total[15s])",
    "delta(scrape_samples_scraped[10s])",
    "avg_over_time(scrape_duration_seconds[10s])",
    "min_over_time(scrape_duration_seconds[10s])",
    "max_over_time(go_goroutines[10s])",
    "sum_over_time(scrape_samples_scraped[5s])",
    "count_over_time(up[10s])",
    "last_over_time(go_memstats_alloc_bytes[10s])",
    "sum by (job) (rate(scrape_samples_scraped[10s]))",
    "avg without (instance) (scrape_duration_seconds)",
    "max by (job) (scrape_samples_scraped)",
    "min(scrape_duration_seconds)",
    "count(up)",
    "topk(1, scrape_duration_seconds)",
    "bottomk(1, scrape_samples_scraped)",
    "go_memstats_alloc_bytes / 1024 + 1",
    "2 * up - 1",
    "up == 1",
    "scrape_samples_scraped > bool 100",
    "scrape_samples_scraped - scrape_samples_post_metric_relabeling",
    "scrape_samples_scraped / on(job) scrape_series_added",
    "rate(prometheus_http_requests_total[10s]) > 0",
    "sum(up) / count(up)",
    "abs(delta(go_goroutines[10s]))",
    "clamp_max(go_goroutines, 30)",
    "round(scrape_duration_seconds, 0.001)",
    "up offset 5s",
    "-up",
    "time()",
    "vector(1) + scalar(count(up))",
    "up and on(job) scrape_samples_scraped > 0",
    "up unless up{job=\"m3s\"}",
];

#[test]
fn prometheus_scrapes_m3s_and_remote_writes_and_both_answer_the_same() {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: scripts/test installs Debian's prometheus package (2.42)"
    );
    let dir = tempdir("metrics-prometheus");
    let m3s = MetricsServer::start(&dir.join("m3s"), &[]);
    let prom = start_prometheus(&dir, m3s.port);
    let log = || std::fs::read_to_string(&prom.log).unwrap_or_default();

    // Both scrape targets up, in Prometheus: m3s's /metrics is scraped (`up{job="m3s"} == 1`).
    // (Prometheus answers 503 until its storage is ready.)
    let jobs_up = || -> Vec<String> {
        if std::net::TcpStream::connect(("127.0.0.1", prom.port)).is_err() {
            return vec![];
        }
        let (status, body) = request(prom.port, "GET", &format!("/api/v1/query?query={}", enc("up == 1")), &[], b"");
        let v: Value = if status == 200 { serde_json::from_str(&body).unwrap_or_default() } else { Value::Null };
        let mut jobs: Vec<String> = v["data"]["result"]
            .as_array()
            .map(|r| r.iter().filter_map(|s| s["metric"]["job"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        jobs.sort();
        jobs
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if jobs_up() == ["m3s", "prometheus"] {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never saw both targets up\n{}", log());
        std::thread::sleep(Duration::from_millis(500));
    }
    // ~30 s of data in m3s through remote_write.
    let last_up = |m3s: &MetricsServer| -> Option<(i64, usize)> {
        let v = get(m3s.port, &format!("/api/v1/query?query={}", enc("up{job=\"prometheus\"}[5m]")), true);
        let values = v["data"]["result"][0]["values"].as_array()?.clone();
        let last = values.last()?[0].as_f64()?;
        Some(((last * 1000.0).round() as i64, values.len()))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let end = loop {
        if let Some((t, n)) = last_up(&m3s)
            && n >= 32
        {
            break t;
        }
        assert!(Instant::now() < deadline, "m3s did not receive 32 s of samples\n{}\n{}", log(), m3s.log_tail());
        std::thread::sleep(Duration::from_millis(500));
    };
    // Every series of that scrape (and earlier ones) has arrived once a later scrape has.
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_up(&m3s).is_none_or(|(t, _)| t < end + 2000) {
        assert!(Instant::now() < deadline, "remote write stalled\n{}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let start = end - 15_000;
    let (s, e) = (start as f64 / 1000.0, end as f64 / 1000.0);

    let mut failures = Vec::new();
    for q in RANGE_QUERIES {
        let path = format!("/api/v1/query_range?query={}&start={s}&end={e}&step=1", enc(q));
        let p = parse_answer(&get(prom.port, &path, false));
        let m = parse_answer(&get(m3s.port, &path, true));
        assert!(!p.is_empty() || q.contains("offset"), "{q}: Prometheus returned nothing; the test data is too thin");
        if let Err(e) = compare(q, &p, &m) {
            failures.push(e);
        }
        let instant = format!("/api/v1/query?query={}&time={e}", enc(q));
        let p = parse_answer(&get(prom.port, &instant, false));
        let m = parse_answer(&get(m3s.port, &instant, true));
        if let Err(e) = compare(&format!("{q} (instant)"), &p, &m) {
            failures.push(e);
        }
    }
    let series = |port, auth| get(port, &format!("/api/v1/series?match[]={}", enc("up")), auth)["data"].clone();
    let (ps, ms) = (series(prom.port, false), series(m3s.port, true));
    let sorted = |v: &Value| {
        let mut x: Vec<String> = v.as_array().unwrap().iter().map(|s| s.to_string()).collect();
        x.sort();
        x
    };
    if sorted(&ps) != sorted(&ms) {
        failures.push(format!("/api/v1/series differs: prometheus {ps}, m3s {ms}"));
    }
    let labels = |port, auth| get(port, "/api/v1/label/job/values", auth)["data"].clone();
    if labels(prom.port, false) != labels(m3s.port, true) {
        failures.push("label values of job differ".into());
    }
    // All label names. Prometheus answers from its head, which may hold a scrape that remote
    // write has not delivered yet: a name new in that scrape reaches m3s moments later, so the
    // two may converge within a bound, and must.
    let names = |port, auth| {
        let mut v: Vec<String> = get(port, "/api/v1/labels", auth)["data"]
            .as_array()
            .expect("a list of label names")
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (p, m) = (names(prom.port, false), names(m3s.port, true));
        if p == m {
            assert!(p.len() > 5 && p.contains(&"__name__".to_owned()) && p.contains(&"job".to_owned()), "{p:?}");
            break;
        }
        if Instant::now() > deadline {
            failures.push(format!("/api/v1/labels differs:\n  prometheus: {p:?}\n  m3s:        {m:?}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}",
        failures.len(),
        RANGE_QUERIES.len() * 2 + 3,
        failures.join("\n")
    );
}
