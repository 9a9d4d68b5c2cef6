//! Benchmark of the compose framework on the embedded cluster
//! (`cargo bench -p m3s --bench compose_up`), in one run:
//!
//! 1. A 200-service command-only project: time from `m3s compose up -d` (files
//!    read, checked, sent) until the API reports every service running, versus
//!    starting the same 200 processes directly; both times and the ratio.
//! 2. The same from a cold `m3s up -f FILE` (process start included).
//! 3. Memory of the `m3s up` process (embedded cluster + framework + API): idle,
//!    and per running task.
//!
//! Each measurement is the median of ROUNDS runs. Work directories live under
//! `M3S_BENCH_DIR`, else /dev/shm, else the system temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

use support::up::Up;

const SERVICES: usize = 200;
const ROUNDS: usize = 3;

fn bench_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("M3S_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.join("m3s-bench-compose") } else { std::env::temp_dir().join("m3s-bench-compose") }
}

fn compose_file(dir: &Path, marker: u32) -> String {
    let mut text = String::from("name: bench\nservices:\n");
    for i in 0..SERVICES {
        text.push_str(&format!(
            "  s{i}:\n    command: [\"sleep\", \"{marker}.{i}\"]\n    restart: \"no\"\n    deploy: {{ resources: {{ limits: {{ cpus: '0.005', memory: 4M }} }} }}\n"
        ));
    }
    let path = dir.join("compose.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn all_running(up: &Up) -> bool {
    up.get("/api/v1/projects/bench").is_some_and(|v| {
        v["services"].as_array().is_some_and(|s| s.len() == SERVICES && s.iter().all(|s| s["state"] == "running"))
    })
}

fn wait_all_running(up: &Up) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_running(up) {
        assert!(Instant::now() < deadline, "not all running:\n{}", up.log_tail());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starting the same processes directly: fork+exec of 200 `sleep`s.
fn direct(marker: u32) -> Duration {
    let start = Instant::now();
    let mut children: Vec<_> = (0..SERVICES)
        .map(|i| Command::new("sleep").arg(format!("{marker}.{i}")).stdin(Stdio::null()).spawn().unwrap())
        .collect();
    let took = start.elapsed();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    took
}

fn main() {
    let base = bench_dir();
    let marker = 500_000 + std::process::id() % 1000;
    let (mut warm, mut cold, mut direct_times, mut idle, mut per_task) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        // Warm: m3s up already running, the CLI deploys.
        let dir = base.join(format!("warm-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = compose_file(&dir, marker);
        let up = Up::start(&dir, &["--log-level", "warn"]);
        std::thread::sleep(Duration::from_millis(500));
        let idle_kb = rss_kb(up.pid());
        let start = Instant::now();
        up.compose_ok(&["-f", &file, "up", "-d"]);
        wait_all_running(&up);
        warm.push(start.elapsed().as_secs_f64());
        let busy_kb = rss_kb(up.pid());
        idle.push(idle_kb as f64);
        per_task.push((busy_kb.saturating_sub(idle_kb)) as f64 / SERVICES as f64);
        up.compose_ok(&["-p", "bench", "down"]);
        drop(up);

        // Cold: `m3s up -f FILE` from process start.
        let dir = base.join(format!("cold-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = compose_file(&dir, marker);
        let start = Instant::now();
        let up = Up::start(&dir, &["-f", &file, "--log-level", "warn"]);
        wait_all_running(&up);
        cold.push(start.elapsed().as_secs_f64());
        up.compose_ok(&["-p", "bench", "down"]);
        drop(up);

        direct_times.push(direct(marker).as_secs_f64());
    }
    let (warm, cold, direct) = (median(warm), median(cold), median(direct_times));
    println!(
        "compose framework on the embedded cluster, {SERVICES} command-only services, median of {ROUNDS} (work dir {}):",
        base.display()
    );
    println!("  m3s compose up -d -> all RUNNING : {:>8.3} s", warm);
    println!("  m3s up -f (cold)  -> all RUNNING : {:>8.3} s", cold);
    println!("  200 processes started directly   : {:>8.3} s", direct);
    println!("  ratio direct / m3s (warm)        : {:>8.3}", direct / warm);
    println!("  m3s up idle RSS                  : {:>8.1} MB", median(idle) / 1024.0);
    println!("  m3s up RSS per running task      : {:>8.1} KB", median(per_task));
    let _ = std::fs::remove_dir_all(&base);
}
