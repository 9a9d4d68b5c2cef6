//! The management role (`cargo bench -p m3s --bench manage`), against a real
//! `git daemon` on loopback, in one run:
//!
//! 1. Push to applied: a commit pushed, then the time until m3s's status says
//!    it is applied, through a signed webhook sent right after the push, and
//!    through polling alone (`--manage-interval 5s`, the webhook not sent; the
//!    pushes spread over the poll cycle).
//!    The ratio is what the webhook saves.
//! 2. Memory: the PSS of `m3s up` managing a repository of PROJECTS compose
//!    projects (applied, their tasks running), against `m3s up` with the same
//!    projects deployed through the API and no management: what the role costs.
//!
//! Median of ROUNDS pushes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "shared/procs.rs"]
#[allow(dead_code)]
mod procs;
#[path = "../tests/support/mod.rs"]
mod support;

use procs::pss_kb;
use support::git::{commit, served_repository};
use support::up::{Up, http};

const ROUNDS: usize = 5;
const PROJECTS: usize = 50;
const INTERVAL: &str = "5s";
const INTERVAL_MS: u64 = 5000;
const SECRET: &str = "bench-secret";

fn bench_dir() -> PathBuf {
    std::env::var_os("M3S_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("m3s-bench-manage"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn project(replicas: u32) -> String {
    format!(
        "services:\n  app:\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: {replicas}\n      resources: {{limits: {{cpus: '0.01', memory: 8M}}}}\n"
    )
}

fn applied(up: &Up) -> String {
    let (_, body) = http("GET", up.api_port, "/api/manage/v1/status", None);
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["applied"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wait_applied(up: &Up, commit: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(up) != commit {
        assert!(Instant::now() < deadline, "{commit} not applied:\n{}", up.log_tail());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn webhook(up: &Up, after: &str) {
    let body = format!(r#"{{"ref":"refs/heads/main","after":"{after}"}}"#);
    let signature = manage::webhook::github_signature(SECRET, body.as_bytes());
    let headers = [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", signature.as_str())];
    let (code, answer) =
        support::metrics::request(up.api_port, "POST", "/api/manage/v1/webhook", &headers, body.as_bytes());
    assert_eq!(code, 202, "{answer}");
}

/// Push to applied, with the webhook or by polling alone.
fn latency(dir: &Path) -> (f64, f64) {
    let (_daemon, url, work) = served_repository(dir);
    let first = commit(&work, &url, "start", &[("projects/site/compose.yaml", Some(&project(1)))]);
    let up = Up::start(
        &dir.join("m3s"),
        &[
            "--manage-repo",
            &url,
            "--manage-interval",
            INTERVAL,
            "--manage-webhook-secret",
            SECRET,
            "--log-level",
            "warn",
        ],
    );
    wait_applied(&up, &first);
    let (mut by_webhook, mut by_polling) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for (use_webhook, into) in [(true, &mut by_webhook), (false, &mut by_polling)] {
            let text = format!("{}# round {round} {use_webhook}\n", project(1));
            if !use_webhook {
                // Pushes land at spread points of the poll cycle (the previous apply was just
                // after a poll), so the median is the typical wait, not the worst one.
                std::thread::sleep(Duration::from_millis(INTERVAL_MS * round as u64 / ROUNDS as u64));
            }
            let c = commit(&work, &url, &format!("round {round}"), &[("projects/site/compose.yaml", Some(&text))]);
            let pushed = Instant::now();
            if use_webhook {
                webhook(&up, &c);
            }
            wait_applied(&up, &c);
            into.push(pushed.elapsed().as_secs_f64());
        }
    }
    (median(by_webhook), median(by_polling))
}

fn settle_pss(up: &Up) -> u64 {
    std::thread::sleep(Duration::from_secs(5));
    pss_kb(up.pid())
}

fn running(up: &Up) -> usize {
    let (_, body) = http("GET", up.api_port, "/api/v1/tasks", None);
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(|a| a.iter().filter(|t| t["state"] == "TASK_RUNNING").count()))
        .unwrap_or(0)
}

fn wait_running(up: &Up, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while running(up) < n {
        assert!(Instant::now() < deadline, "{} of {n} tasks running:\n{}", running(up), up.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// PSS with PROJECTS projects from git, and with the same projects deployed through the API.
fn memory(dir: &Path) -> (u64, u64) {
    let (_daemon, url, work) = served_repository(dir);
    let files: Vec<(String, String)> =
        (0..PROJECTS).map(|i| (format!("projects/p{i:02}/compose.yaml"), project(1))).collect();
    let refs: Vec<(&str, Option<&str>)> = files.iter().map(|(p, t)| (p.as_str(), Some(t.as_str()))).collect();
    let c = commit(&work, &url, "fifty projects", &refs);
    let managed = {
        let up = Up::start(&dir.join("managed"), &["--manage-repo", &url, "--log-level", "warn"]);
        wait_applied(&up, &c);
        wait_running(&up, PROJECTS);
        settle_pss(&up)
    };
    let by_api = {
        let up = Up::start(&dir.join("api"), &["--log-level", "warn"]);
        for i in 0..PROJECTS {
            let (code, body) = http("PUT", up.api_port, &format!("/api/v1/projects/p{i:02}"), Some(&project(1)));
            assert!(code == 200 || code == 201, "{body}");
        }
        wait_running(&up, PROJECTS);
        settle_pss(&up)
    };
    (managed, by_api)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = bench_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (webhook, polling) = latency(&dir.join("latency"));
    println!(
        "push to applied (median of {ROUNDS}): webhook {:.0} ms, polling every {INTERVAL} {:.0} ms; ratio {:.3}",
        webhook * 1000.0,
        polling * 1000.0,
        webhook / polling
    );
    let (managed, by_api) = memory(&dir.join("memory"));
    println!(
        "PSS with {PROJECTS} projects: managed from git {:.1} MB, deployed through the API {:.1} MB; the role costs {:+.1} MB (ratio {:.3})",
        managed as f64 / 1024.0,
        by_api as f64 / 1024.0,
        (managed as f64 - by_api as f64) / 1024.0,
        managed as f64 / by_api as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
