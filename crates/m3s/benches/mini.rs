//! Benchmarks of `m3s mini`, in one run (`cargo bench -p m3s --bench mini`):
//!
//! 1. Task throughput: 1,000 short tasks (`true`) launched through the
//!    scheduler API until all are TASK_FINISHED, versus spawning and waiting
//!    the same 1,000 processes directly; both rates and the ratio.
//! 2. Offer-to-RUNNING latency of one task (accept sent → TASK_RUNNING
//!    received), p50 and p99 over 200 launches.
//! 3. Memory: idle resident set of `m3s mini`, resident set per running task
//!    in the m3s process, and per supervisor process (RSS and PSS).
//!
//! The work directory matters (every task gets a sandbox and bookkeeping
//! files): it is `M3S_BENCH_DIR` if set, else a directory under /dev/shm
//! (tmpfs) and then one under the system temp dir, both reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{CommandInfo, FrameworkInfo, Offer, Operation, Resource, TaskId, TaskInfo, TaskState};

#[path = "shared/procs.rs"]
#[allow(dead_code)] // this benchmark reads no processes
mod procs;
use procs::percentile;
#[path = "shared/mini.rs"]
mod bench_mini;
/// The end-to-end tests' helpers: the same process cleanup.
#[path = "../tests/support/mod.rs"]
mod support;

use bench_mini::BenchMini as Mini;

const TASKS: usize = 1000;
const LATENCY_RUNS: usize = 200;
const RESIDENT_TASKS: usize = 200;

/// (RSS, PSS) in kB from /proc/<pid>/smaps_rollup.
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

struct Framework {
    s: Scheduler,
    offers: Vec<Offer>,
    states: HashMap<String, TaskState>,
    running_at: HashMap<String, Instant>,
}

impl Framework {
    async fn start(mini: &Mini) -> Framework {
        let info = FrameworkInfo {
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            name: "bench".into(),
            ..Default::default()
        };
        let s = Scheduler::start(mini.scheduler_config(info)).unwrap();
        Framework { s, offers: Vec::new(), states: HashMap::new(), running_at: HashMap::new() }
    }

    async fn pump(&mut self) {
        let event = tokio::time::timeout(Duration::from_secs(60), self.s.next())
            .await
            .expect("an event within 60 s")
            .unwrap()
            .unwrap();
        match event {
            SchedulerEvent::Event(Event::Offers(o)) => self.offers.extend(o.offers),
            SchedulerEvent::Event(Event::Update(u)) => {
                if u.status.uuid.is_some() {
                    self.s.handle().acknowledge(&u.status).unwrap();
                }
                if u.status.state == TaskState::Running {
                    self.running_at.insert(u.status.task_id.value.clone(), Instant::now());
                }
                self.states.insert(u.status.task_id.value.clone(), u.status.state);
            }
            _ => {}
        }
    }

    async fn offer(&mut self) -> Offer {
        while self.offers.is_empty() {
            self.pump().await;
        }
        self.offers.remove(0)
    }

    async fn launch(&mut self, offer: &Offer, tasks: Vec<(String, String)>) {
        let infos = tasks
            .into_iter()
            .map(|(id, cmd)| TaskInfo {
                name: id.clone(),
                task_id: TaskId::new(id),
                agent_id: offer.agent_id.clone(),
                resources: vec![Resource::scalar("cpus", 0.01), Resource::scalar("mem", 32.0)],
                command: Some(CommandInfo::shell(cmd)),
                ..Default::default()
            })
            .collect();
        let accept = Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::launch(infos)],
            filters: Some(mesos::v1::Filters { refuse_seconds: 0.0 }),
        };
        self.s.handle().call(CallKind::Accept(accept)).await.unwrap();
    }
}

async fn throughput(mini: &Mini) -> (f64, f64) {
    let mut f = Framework::start(mini).await;
    let start = Instant::now();
    let mut launched = 0;
    // One offer holds 64 cpus = 6,400 tasks of 0.01: launch in batches as offers come.
    while launched < TASKS {
        let offer = f.offer().await;
        let batch: Vec<(String, String)> =
            (launched..TASKS.min(launched + 250)).map(|i| (format!("t{i}"), "true".to_owned())).collect();
        launched += batch.len();
        f.launch(&offer, batch).await;
    }
    while f.states.values().filter(|s| **s == TaskState::Finished).count() < TASKS {
        f.pump().await;
    }
    let via_mesos = TASKS as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut children: Vec<Child> =
        (0..TASKS).map(|_| Command::new("/bin/sh").args(["-c", "true"]).spawn().unwrap()).collect();
    for c in &mut children {
        c.wait().unwrap();
    }
    let direct = TASKS as f64 / start.elapsed().as_secs_f64();
    (via_mesos, direct)
}

async fn latency(mini: &Mini) -> Vec<Duration> {
    let mut f = Framework::start(mini).await;
    let mut out = Vec::new();
    for i in 0..LATENCY_RUNS {
        let offer = f.offer().await;
        let id = format!("lat{i}");
        let sent = Instant::now();
        f.launch(&offer, vec![(id.clone(), "true".to_owned())]).await;
        while !f.running_at.contains_key(&id) {
            f.pump().await;
        }
        out.push(f.running_at[&id] - sent);
    }
    out.sort();
    out
}

/// Idle RSS, RSS with RESIDENT_TASKS running, RSS with twice as many, and the
/// supervisors' average (RSS, PSS). The second batch gives the marginal cost
/// per task: the first also pays one-time growth (allocator arenas, buffers).
async fn memory(mini: &Mini) -> ((u64, u64), (u64, u64), (u64, u64), (u64, u64)) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = memory_kb(mini.child.id());
    let mut f = Framework::start(mini).await;
    let mut loaded = Vec::new();
    for batch in 0..2 {
        let offer = f.offer().await;
        let tasks = (0..RESIDENT_TASKS).map(|i| (format!("r{batch}-{i}"), "sleep 600".to_owned())).collect();
        f.launch(&offer, tasks).await;
        while f.states.values().filter(|s| **s == TaskState::Running).count() < RESIDENT_TASKS * (batch + 1) {
            f.pump().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        loaded.push(memory_kb(mini.child.id()));
    }
    // Supervisors: processes whose command line is `m3s supervise --run-dir <this work dir>/...`.
    let needle = mini.dir.to_string_lossy().to_string();
    let mut sup = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).to_string();
        if cmdline.contains("supervise") && cmdline.contains(&needle) {
            sup.push(memory_kb(pid));
        }
    }
    let n = sup.len().max(1) as u64;
    let per_sup = (sup.iter().map(|m| m.0).sum::<u64>() / n, sup.iter().map(|m| m.1).sum::<u64>() / n);
    drop(f);
    (idle, loaded[0], loaded[1], per_sup)
}

fn run(label: &str, dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("\n== m3s mini, work dir on {label} ({})", dir.display());
    let mini = Mini::start(dir);
    let (via, direct) = rt.block_on(throughput(&mini));
    println!(
        "throughput: {TASKS} x `true`: via scheduler API {via:.0} tasks/s, direct spawn+wait {direct:.0} tasks/s, ratio {:.2} (target >= 0.5)",
        via / direct
    );
    drop(mini);
    let mini = Mini::start(dir);
    let lat = rt.block_on(latency(&mini));
    println!(
        "offer-to-RUNNING latency over {LATENCY_RUNS} launches: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    drop(mini);
    let mini = Mini::start(dir);
    let (idle, first, second, sup) = rt.block_on(memory(&mini));
    println!(
        "memory: idle m3s mini RSS {:.1} MB (target < 20 MB); {RESIDENT_TASKS} running tasks {:.1} MB, {} running {:.1} MB; \
         per running task {:.1} KB marginal (second {RESIDENT_TASKS}), {:.1} KB averaged from idle (target < 64 KB); \
         per supervisor RSS {} KB, PSS {} KB",
        idle.0 as f64 / 1024.0,
        first.0 as f64 / 1024.0,
        2 * RESIDENT_TASKS,
        second.0 as f64 / 1024.0,
        second.0.saturating_sub(first.0) as f64 / RESIDENT_TASKS as f64,
        second.0.saturating_sub(idle.0) as f64 / (2 * RESIDENT_TASKS) as f64,
        sup.0,
        sup.1
    );
}

fn main() {
    support::init_tls();
    let id = std::process::id();
    if let Ok(dir) = std::env::var("M3S_BENCH_DIR") {
        run("M3S_BENCH_DIR", &PathBuf::from(dir).join(format!("m3s-bench-{id}")));
        return;
    }
    if Path::new("/dev/shm").is_dir() {
        run("tmpfs", &PathBuf::from(format!("/dev/shm/m3s-bench-{id}")));
    }
    run("disk", &std::env::temp_dir().join(format!("m3s-bench-{id}")));
}
