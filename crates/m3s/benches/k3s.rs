//! The K3s framework (`cargo bench -p m3s --bench k3s`; Debian's etcd-server,
//! python3 and openssl), in one run, with the k3s TEST DOUBLE
//! (tests/k3s-double/k3s) standing in for k3s:
//!
//! 1. Time from `m3s k3s create` (etcd, 1 server, 3 agents) until the status
//!    says every node is healthy (etcd answers /health, every node Ready with
//!    its task id), against starting the same five processes by hand in the same
//!    order, each once the one before is healthy, polled every 50 ms: the
//!    framework's overhead, as a ratio.
//! 2. Memory: the PSS of `m3s up --k3s` with that cluster running, against
//!    `m3s up` without the K3s framework, both after settling: what the K3s
//!    framework costs.
//!
//! Median of ROUNDS runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/procs.rs"]
#[allow(dead_code)]
mod procs;
#[path = "../tests/support/mod.rs"]
mod support;

use procs::pss_kb;
use support::up::{TOKEN, Up, http};

const ROUNDS: usize = 3;
const AGENTS: usize = 3;

fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/k3s-double/k3s").canonicalize().unwrap()
}

fn bench_dir() -> PathBuf {
    std::env::var_os("M3S_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("m3s-bench-k3s"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Create to all healthy through the framework; the PSS of m3s with the cluster up.
fn through_m3s(dir: &Path) -> (f64, u64) {
    let binary = double();
    let mut args = vec!["--k3s", "--k3s-binary", binary.to_str().unwrap(), "--log-level", "warn"];
    args.extend(support::up::SMALL_K3S);
    let up = Up::start(dir, &args);
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(["k3s", "--api", &up.api(), "--api-token", TOKEN, "create", "bench", "--datastore", "etcd"])
        .args(["--servers", "1", "--agents", &AGENTS.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = http("GET", up.api_port, "/api/k3s/v1/clusters/bench", None);
        if body.contains("\"ready\":true") {
            break;
        }
        assert!(Instant::now() < deadline, "not ready: {body}\n{}", up.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let pss = pss_kb(up.pid());
    (elapsed, pss)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn poll(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The same processes by hand: etcd, then the server, then the agents, each once the one before is healthy.
fn by_hand(dir: &Path) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let (client, peer, api) = (free_port(), free_port(), free_port());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut procs = Procs(Vec::new());
    let start = Instant::now();
    procs.0.push(
        Command::new("/usr/bin/etcd")
            .args(["--name", "default", "--data-dir", dir.join("etcd").to_str().unwrap()])
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{client}")])
            .args(["--advertise-client-urls", &format!("http://127.0.0.1:{client}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("default=http://127.0.0.1:{peer}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll("etcd", || {
        support::http_get(client, "/health").is_some_and(|a| a.replace(' ', "").contains("\"health\":\"true\""))
    });
    let server_dir = dir.join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    procs.0.push(
        Command::new(double())
            .args(["server", "--https-port", &api.to_string(), "--data-dir", "data", "--tls-san", "localhost"])
            .args(["--write-kubeconfig", "kubeconfig.yaml", "--write-kubeconfig-mode", "0600"])
            .args(["--node-name", "server", "--node-label", "m3s.aventer.biz/taskid=server"])
            .env("K3S_TOKEN", "bench-token")
            .env("K3S_DATASTORE_ENDPOINT", format!("http://127.0.0.1:{client}"))
            .current_dir(&server_dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let kubeconfig = server_dir.join("kubeconfig.yaml");
    poll("the kubeconfig", || kubeconfig.exists());
    let kube = k3s::kube::Kube::from_kubeconfig(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let ready = |names: &[String]| {
        rt.block_on(kube.nodes()).is_ok_and(|nodes| {
            names.iter().all(|n| nodes.iter().any(|node| node.ready && node.labels.values().any(|v| v == n)))
        })
    };
    poll("the server node", || ready(&["server".to_owned()]));
    let names: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i}")).collect();
    for name in &names {
        let agent_dir = dir.join(name);
        std::fs::create_dir_all(&agent_dir).unwrap();
        procs.0.push(
            Command::new(double())
                .args(["agent", "--data-dir", "data", "--node-name", name])
                .args(["--node-label", &format!("m3s.aventer.biz/taskid={name}")])
                .env("K3S_TOKEN", "bench-token")
                .env("K3S_URL", format!("https://127.0.0.1:{api}"))
                .current_dir(&agent_dir)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    poll("the agent nodes", || ready(&names));
    start.elapsed().as_secs_f64()
}

fn main() {
    if !Path::new("/usr/bin/etcd").exists() {
        eprintln!("SKIPPED: /usr/bin/etcd is missing (apt install etcd-server)");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = bench_dir();
    let (mut framework, mut hand, mut with_k3s, mut without) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let dir = base.join(format!("m3s-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (t, pss) = through_m3s(&dir);
        framework.push(t);
        with_k3s.push(pss as f64);
        let _ = std::fs::remove_dir_all(&dir);

        hand.push(by_hand(&base.join(format!("hand-{round}"))));

        let dir = base.join(format!("plain-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        let up = Up::start(&dir, &["--log-level", "warn"]);
        std::thread::sleep(Duration::from_secs(3));
        without.push(pss_kb(up.pid()) as f64);
        drop(up);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
    let (framework, hand) = (median(framework), median(hand));
    let (with_k3s, without) = (median(with_k3s), median(without));
    println!("K3s framework, etcd + 1 server + {AGENTS} agents of the k3s test double, median of {ROUNDS}:");
    println!("  m3s k3s create -> all nodes healthy : {framework:>7.2} s");
    println!("  the same processes by hand          : {hand:>7.2} s");
    println!("  ratio (framework / by hand)         : {:>7.2}", framework / hand);
    println!("  PSS of m3s up --k3s, cluster up     : {:>7.1} MB", with_k3s / 1024.0);
    println!("  PSS of m3s up without --k3s         : {:>7.1} MB", without / 1024.0);
    println!("  the K3s framework and its cluster   : {:>7.1} MB", (with_k3s - without) / 1024.0);
}
