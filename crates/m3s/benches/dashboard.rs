//! Benchmark of the dashboard (`cargo bench -p m3s --bench dashboard`): how long
//! `m3s up` takes to render each page, against the JSON endpoint the page's data
//! comes from (its baseline, asked in the same run), and what rendering costs in
//! memory.
//!
//! `m3s up` runs the example stack, collecting every second. Each page and each
//! baseline is requested ROUNDS times, one connection per request, alternating,
//! and the medians and their ratio are printed. RSS is read before and after.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

use support::metrics::exchange;
use support::up::{TOKEN, Up};

const ROUNDS: usize = 200;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    support::init_tls();
    let dir = support::tempdir("bench-dashboard");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stack/compose.yaml");
    let up = Up::start(&dir, &["-f", example.to_str().unwrap(), "-p", "demo", "--collect-interval", "1s"]);
    // Let the stack start and the collectors gather a few samples.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up
        .get("/api/v1/projects/demo")
        .is_some_and(|p| p["services"].as_array().unwrap().iter().all(|s| s["running"] == 1 || s["name"] == "batch"))
    {
        assert!(Instant::now() < deadline, "the example did not start:\n{}", up.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));

    let form = ("content-type", "application/x-www-form-urlencoded");
    let (_, head, _) = exchange(up.api_port, "POST", "/ui/login", &[form], format!("token={TOKEN}").as_bytes());
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let bearer = format!("Bearer {TOKEN}");
    let (api, mesos) = (up.api_port, up.mesos_port);
    // (page, its data as JSON: port, path)
    let pairs: &[(&str, u16, &str)] = &[
        ("/ui/", mesos, "/master/state"),
        ("/ui/nodes", mesos, "/master/state"),
        ("/ui/stacks", api, "/api/v1/projects/demo"),
        ("/ui/tasks", mesos, "/master/state"),
        ("/ui/metrics", api, "/api/v1/label/__name__/values"),
        ("/ui/report?range=1h", api, "/api/m3trics/v1/reports/nodes"),
        ("/ui/errors", api, "/api/m3trics/v1/errors"),
    ];
    let rss_before = rss_kb(up.pid());
    println!("dashboard pages against the JSON they show, {ROUNDS} requests each, one connection per request");
    println!("| page | page p50 | bytes | JSON | JSON p50 | ratio page/JSON |");
    println!("|---|---:|---:|---|---:|---:|");
    for (page, port, json) in pairs {
        let (mut page_times, mut json_times) = (Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let (status, _, body) = exchange(api, "GET", page, &[("cookie", &cookie)], b"");
            page_times.push(t.elapsed());
            assert_eq!(status, 200, "{page}: {body}");
            bytes = body.len();
            let t = Instant::now();
            let (status, _, body) = exchange(*port, "GET", json, &[("authorization", &bearer)], b"");
            json_times.push(t.elapsed());
            assert_eq!(status, 200, "{json}: {body}");
        }
        let (p, j) = (median(page_times), median(json_times));
        println!(
            "| {page} | {:.2} ms | {bytes} | {json} | {:.2} ms | {:.2} |",
            p.as_secs_f64() * 1e3,
            j.as_secs_f64() * 1e3,
            p.as_secs_f64() / j.as_secs_f64()
        );
    }
    let rss_after = rss_kb(up.pid());
    println!(
        "m3s up RSS: {:.1} MB before, {:.1} MB after {} page loads",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        ROUNDS * pairs.len()
    );
}
