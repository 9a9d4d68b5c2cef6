//! M3trics against VictoriaMetrics 1.79 and InfluxDB 1.6 (Debian's packages), on
//! the same machine and dataset, in one run (`scripts/bench-metrics`, or
//! `cargo bench -p m3s --bench metrics` once the peers are installed):
//!
//! - dataset: 100 hosts × 10 fields of node metrics (1,000 series) × 10,000 points
//!   every 30 s (3.5 days ending 10 minutes ago), as line protocol in batches of
//!   10,000 lines; gauges are 1–2-decimal random walks, the network byte counters grow
//!   at drifting rates with jitter;
//! - ingestion: the batches POSTed to `/write` by 2 concurrent connections;
//!   samples per second from the first request to the last answer;
//! - disk: bytes of the data directory after a flush (m3s: `/api/m3trics/v1/flush`;
//!   VictoriaMetrics: `/internal/force_flush`; InfluxDB: waits until its cache
//!   snapshot has left the WAL), divided by the 10,000,000 samples;
//! - query: a 3-day range at 60 s step over the 100 series of one field, 30 runs
//!   after 3 warm-ups: PromQL `node_cpu_user` on `/api/v1/query_range` for m3s and
//!   VictoriaMetrics (result cache off), InfluxQL
//!   `SELECT last(cpu_user) FROM node WHERE time >= … GROUP BY time(60s), host` for InfluxDB.
//!
//! Prints a Markdown table with the ratios and writes it to `target/bench-metrics.md`.
//! `M3S_BENCH_HOSTS` and `M3S_BENCH_POINTS` shrink the dataset; `M3S_BENCH_ONLY=m3s`
//! runs one system.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIELDS: &[&str] = &[
    "cpu_user",
    "cpu_system",
    "cpu_iowait",
    "mem_used_percent",
    "load1",
    "disk_used_percent",
    "temp_celsius",
    "procs",
    "net_bytes_recv",
    "net_bytes_sent",
];
const STEP_S: i64 = 30;
const LINES_PER_BATCH: usize = 10_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Dataset {
    batches: Vec<Arc<Vec<u8>>>,
    samples: usize,
    hosts: usize,
    first_s: i64,
    last_s: i64,
}

fn dataset(hosts: usize, points: usize) -> Dataset {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let last_s = (now - 600) / STEP_S * STEP_S;
    let first_s = last_s - (points as i64 - 1) * STEP_S;
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Per host: gauges in hundredths (tenths for temperature), counters in bytes.
    let mut state: Vec<[i64; 10]> =
        (0..hosts).map(|h| [2000, 500, 100, 4000 + h as i64 * 10, 150, 6000, 450, 180, 1 << 30, 1 << 29]).collect();
    // Network rates in bytes/s: they drift, and each interval adds rate x 30 s plus jitter.
    let mut rates: Vec<[i64; 2]> = (0..hosts).map(|h| [50_000 + h as i64 * 100, 20_000 + h as i64 * 50]).collect();
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(LINES_PER_BATCH * 200);
    let mut lines = 0;
    use std::io::Write;
    for p in 0..points {
        let t = first_s + p as i64 * STEP_S;
        for (h, s) in state.iter_mut().enumerate() {
            let h_rates = h;
            let r = next();
            let walk = |v: &mut i64, bits: u32, lo: i64, hi: i64| {
                let span = 1i64 << bits;
                *v = (*v + ((r >> (bits * 2)) as i64 & (span - 1)) - span / 2).clamp(lo, hi);
            };
            walk(&mut s[0], 7, 0, 10_000);
            walk(&mut s[1], 5, 0, 3_000);
            walk(&mut s[2], 3, 0, 1_000);
            walk(&mut s[3], 4, 500, 9_900);
            walk(&mut s[4], 4, 0, 3_200);
            if r % 97 == 0 {
                s[5] = (s[5] + 1).min(9_900);
            }
            walk(&mut s[6], 2, 300, 900);
            walk(&mut s[7], 2, 50, 400);
            let rate = &mut rates[h_rates];
            rate[0] = (rate[0] + ((r >> 20) as i64 & 1023) - 512).max(0);
            rate[1] = (rate[1] + ((r >> 30) as i64 & 511) - 256).max(0);
            s[8] += rate[0] * STEP_S + ((r >> 40) as i64 & 4095);
            s[9] += rate[1] * STEP_S + ((r >> 52) as i64 & 1023);
            writeln!(
                batch,
                "node,host=node-{h:03},dc=dc{} cpu_user={}.{:02},cpu_system={}.{:02},cpu_iowait={}.{:02},mem_used_percent={}.{:02},load1={}.{:02},disk_used_percent={}.{:02},temp_celsius={}.{},procs={}i,net_bytes_recv={}i,net_bytes_sent={}i {t}",
                h % 4,
                s[0] / 100, s[0] % 100, s[1] / 100, s[1] % 100, s[2] / 100, s[2] % 100, s[3] / 100, s[3] % 100,
                s[4] / 100, s[4] % 100, s[5] / 100, s[5] % 100, s[6] / 10, s[6] % 10, s[7], s[8], s[9]
            )
            .unwrap();
            lines += 1;
            if lines % LINES_PER_BATCH == 0 {
                batches.push(Arc::new(std::mem::take(&mut batch)));
            }
        }
    }
    if !batch.is_empty() {
        batches.push(Arc::new(batch));
    }
    Dataset { batches, samples: hosts * points * FIELDS.len(), hosts, first_s, last_s }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() { dir_bytes(&e.path()) } else { m.len() }
        })
        .sum()
}

struct System {
    name: &'static str,
    child: Child,
    port: u16,
    data: PathBuf,
    write_path: String,
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, mut cmd: Command, port: u16, data: PathBuf, write_path: &str, log: &Path) -> System {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not listen; see {}", log.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    System { name, child, port, data, write_path: write_path.to_string() }
}

fn start_m3s(root: &Path) -> System {
    let port = free_port();
    let work = root.join("m3s");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m3s"));
    cmd.args(["metrics", "serve", "--insecure-open-api", "--collect-interval", "0", "--metrics-retention", "0"])
        .args(["--port", &port.to_string(), "--work-dir"])
        .arg(&work);
    spawn("m3s", cmd, port, work.join("metrics"), "/write?db=bench&precision=s", &root.join("m3s.log"))
}

fn start_vm(root: &Path) -> System {
    let port = free_port();
    let data = root.join("vm");
    let mut cmd = Command::new("/usr/bin/victoria-metrics");
    cmd.arg(format!("-storageDataPath={}", data.display())).arg(format!("-httpListenAddr=127.0.0.1:{port}")).args([
        "-retentionPeriod=100y",
        "-search.disableCache",
        "-search.latencyOffset=0s",
        "-loggerLevel=ERROR",
    ]);
    spawn("VictoriaMetrics 1.79", cmd, port, data, "/write?db=bench&precision=s", &root.join("vm.log"))
}

fn start_influx(root: &Path) -> System {
    let port = free_port();
    let rpc = free_port();
    let base = root.join("influx");
    std::fs::create_dir_all(&base).unwrap();
    let config = base.join("influxdb.conf");
    std::fs::write(
        &config,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{b}/meta\"\n\
             [data]\n  dir = \"{b}/data\"\n  wal-dir = \"{b}/wal\"\n  query-log-enabled = false\n  cache-snapshot-write-cold-duration = \"2s\"\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n",
            b = base.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/bin/influxd");
    cmd.arg("-config").arg(&config);
    let sys = spawn("InfluxDB 1.6", cmd, port, base.clone(), "/write?db=bench&precision=s", &root.join("influx.log"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/query"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("q=CREATE+DATABASE+bench")
            .send()
            .await
            .map(|r| r.status())
    });
    assert!(status.as_ref().is_ok_and(|s| s.is_success()), "InfluxDB: CREATE DATABASE failed: {status:?}");
    sys
}

struct Result3 {
    name: &'static str,
    ingest_samples_per_s: f64,
    bytes_per_sample: f64,
    p50_ms: f64,
    p90_ms: f64,
    series_points: usize,
}

fn ingest(rt: &tokio::runtime::Runtime, sys: &System, data: &Dataset) -> f64 {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}{}", sys.port, sys.write_path);
    let queue = Arc::new(std::sync::Mutex::new(data.batches.clone().into_iter()));
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(body) = queue.lock().unwrap().next() else { break };
                    let r = client.post(&url).body((*body).clone()).send().await.expect("write");
                    let status = r.status();
                    assert!(status.is_success(), "write answered {status}: {}", r.text().await.unwrap_or_default());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    data.samples as f64 / start.elapsed().as_secs_f64()
}

fn flush(rt: &tokio::runtime::Runtime, sys: &System) {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", sys.port);
    rt.block_on(async {
        match sys.name {
            "m3s" => {
                let r = client.post(format!("{base}/api/m3trics/v1/flush")).send().await.unwrap();
                assert!(r.status().is_success());
            }
            n if n.starts_with("Victoria") => {
                client.get(format!("{base}/internal/force_flush")).send().await.unwrap();
                // Give the background merge a moment, as a running system would have.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            _ => {
                // InfluxDB snapshots its cache to TSM files once writes have been cold for 2 s;
                // wait until the WAL is (nearly) empty and the TSM size is stable.
                let wal = sys.data.join("wal");
                let data = sys.data.join("data");
                let mut last = 0;
                for _ in 0..120 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let now = dir_bytes(&data);
                    if dir_bytes(&wal) < 1 << 20 && now == last {
                        break;
                    }
                    last = now;
                }
            }
        }
    });
}

fn query(rt: &tokio::runtime::Runtime, sys: &System, data: &Dataset) -> (f64, f64, usize) {
    let client = reqwest::Client::new();
    let end = data.last_s;
    let start = end - 3 * 86_400;
    let url = if sys.name.starts_with("Influx") {
        let q = format!(
            "SELECT last(\"cpu_user\") FROM \"node\" WHERE time >= {start}s AND time <= {end}s GROUP BY time(60s), \"host\""
        );
        format!(
            "http://127.0.0.1:{}/query?db=bench&epoch=s&q={}",
            sys.port,
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    } else {
        format!("http://127.0.0.1:{}/api/v1/query_range?query=node_cpu_user&start={start}&end={end}&step=60", sys.port)
    };
    let mut times = Vec::new();
    let mut points = 0;
    rt.block_on(async {
        for i in 0..33 {
            let t0 = Instant::now();
            let body = client.get(&url).send().await.unwrap().text().await.unwrap();
            let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
            if i == 0 {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let series: Vec<&serde_json::Value> = if sys.name.starts_with("Influx") {
                    v["results"][0]["series"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
                } else {
                    v["data"]["result"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
                };
                assert_eq!(
                    series.len(),
                    data.hosts,
                    "{}: expected one series per host: {}",
                    sys.name,
                    &body[..body.len().min(300)]
                );
                points = series
                    .iter()
                    .map(|s| s["values"].as_array().map_or(0, |v| v.iter().filter(|p| !p[1].is_null()).count()))
                    .sum();
            }
            if i >= 3 {
                times.push(elapsed);
            }
        }
    });
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 9 / 10], points)
}

fn main() {
    // reqwest is built without a default TLS provider (m3s installs ring at start).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hosts = env("M3S_BENCH_HOSTS", 100);
    let points = env("M3S_BENCH_POINTS", 10_000);
    let only = std::env::var("M3S_BENCH_ONLY").ok();
    let root = std::env::var_os("M3S_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("m3s-bench-metrics"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let data = dataset(hosts, points);
    let bytes: usize = data.batches.iter().map(|b| b.len()).sum();
    println!(
        "dataset: {} series x {points} points = {} samples, {} lines, {:.0} MB of line protocol, {} batches; {}s .. {}s",
        hosts * FIELDS.len(),
        data.samples,
        hosts * points,
        bytes as f64 / 1e6,
        data.batches.len(),
        data.first_s,
        data.last_s
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut results: Vec<Result3> = Vec::new();
    type Starter = fn(&Path) -> System;
    let starters: [(&str, Starter, &str); 3] = [
        ("m3s", start_m3s, "/usr/bin/true"),
        ("vm", start_vm, "/usr/bin/victoria-metrics"),
        ("influx", start_influx, "/usr/bin/influxd"),
    ];
    for (key, start, binary) in starters {
        if only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        if !Path::new(binary).exists() {
            println!("SKIPPED {key}: {binary} is missing (scripts/bench-metrics installs it)");
            continue;
        }
        let sys = start(&root);
        println!("{}: ingesting...", sys.name);
        let rate = ingest(&rt, &sys, &data);
        flush(&rt, &sys);
        let disk = dir_bytes(&sys.data);
        let (p50, p90, n) = query(&rt, &sys, &data);
        println!(
            "{}: {:.0} samples/s, {:.3} bytes/sample, query p50 {p50:.1} ms p90 {p90:.1} ms ({n} points)",
            sys.name,
            rate,
            disk as f64 / data.samples as f64
        );
        results.push(Result3 {
            name: sys.name,
            ingest_samples_per_s: rate,
            bytes_per_sample: disk as f64 / data.samples as f64,
            p50_ms: p50,
            p90_ms: p90,
            series_points: n,
        });
    }
    let mut table = String::from(
        "| system | ingestion (samples/s) | disk after flush (bytes/sample) | 3-day query p50 | p90 | points returned |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in &results {
        table.push_str(&format!(
            "| {} | {:.0} | {:.3} | {:.1} ms | {:.1} ms | {} |\n",
            r.name, r.ingest_samples_per_s, r.bytes_per_sample, r.p50_ms, r.p90_ms, r.series_points
        ));
    }
    if let Some(m) = results.iter().find(|r| r.name == "m3s") {
        for peer in results.iter().filter(|r| r.name != "m3s") {
            table.push_str(&format!(
                "\nm3s / {}: ingestion {:.2}x, disk {:.2}x, query p50 {:.2}x",
                peer.name,
                m.ingest_samples_per_s / peer.ingest_samples_per_s,
                m.bytes_per_sample / peer.bytes_per_sample,
                m.p50_ms / peer.p50_ms
            ));
        }
        table.push('\n');
    }
    println!("\n{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-metrics.md");
    let _ = std::fs::write(&out, &table);
    println!("written to {}", out.display());
    let _ = std::fs::remove_dir_all(&root);
}
