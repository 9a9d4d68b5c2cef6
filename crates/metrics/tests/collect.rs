//! Collectors: /proc parsing on fixtures and on this machine, Mesos snapshots and
//! task usage (deltas, restarts), reports, and the error log.

use metrics::collect::mesos::{TaskUsageCollector, sanitize, snapshot_point};
use metrics::collect::node::{DiskUsage, NodeCollector, NodeReading, parse_meminfo, parse_net_dev, read_proc};
use metrics::errors::{ErrorLog, ErrorRecorder};
use metrics::model::{FieldValue, Labels, Point, Sample, Series};
use metrics::report::{By, Order, node_memory, top_tasks};

const MEMINFO: &str = "MemTotal:       16000000 kB\nMemFree:         2000000 kB\nMemAvailable:    4000000 kB\nBuffers:          100000 kB\nCached:          3000000 kB\n";
const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 5000 40 1 0 0 0 0 0 7000 50 2 0 0 0 0 0\n";

fn field(p: &Point, name: &str) -> f64 {
    match p.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
        Some(FieldValue::Float(v)) => *v,
        other => panic!("{name}: {other:?} in {p:?}"),
    }
}

fn reading<'a>(stat: &'a str) -> NodeReading<'a> {
    NodeReading {
        stat,
        meminfo: MEMINFO,
        loadavg: "0.50 0.25 0.10 1/100 1234\n",
        net_dev: NET_DEV,
        uptime: "3600.5 7000.0\n",
        cpus: 2,
        disks: vec![("/data".into(), DiskUsage { total: 1000, free: 250 })],
    }
}

#[test]
fn node_points_from_proc_fixtures() {
    let mut c = NodeCollector::new("n1");
    let first = c.points(&reading("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n"), 7);
    assert!(first.iter().all(|p| p.measurement != "cpu"), "CPU usage needs two readings");
    let second = c.points(&reading("cpu  160 0 70 900 70 0 0 0 0 0\n"), 8);
    let cpu = second.iter().find(|p| p.measurement == "cpu").unwrap();
    // +60 user, +20 system, +100 idle, +20 iowait of 200 jiffies.
    assert_eq!((field(cpu, "usage_user"), field(cpu, "usage_system"), field(cpu, "usage_idle")), (30.0, 10.0, 50.0));
    assert_eq!(field(cpu, "usage_percent"), 40.0);
    let mem = second.iter().find(|p| p.measurement == "mem").unwrap();
    assert_eq!(field(mem, "total"), 16_000_000.0 * 1024.0);
    assert_eq!(field(mem, "used_percent"), 75.0);
    let disk = second.iter().find(|p| p.measurement == "disk").unwrap();
    assert_eq!(field(disk, "used_percent"), 75.0);
    let net: Vec<&Point> = second.iter().filter(|p| p.measurement == "net").collect();
    assert_eq!(net.len(), 1, "lo is left out");
    assert_eq!(field(net[0], "bytes_sent"), 7000.0);
    assert!(second.iter().all(|p| p.tags[0] == ("host".into(), "n1".into()) && p.timestamp == Some(8)));
    assert_eq!(parse_meminfo(MEMINFO)["Cached"], 3_000_000 * 1024);
    assert_eq!(parse_net_dev(NET_DEV)[1].1, [5000, 40, 1, 7000, 50, 2]);
}

#[test]
fn this_machines_proc_is_sane() {
    let mut c = NodeCollector::new("here");
    read_proc(&mut c, &[std::path::PathBuf::from("/")], 1);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let points = read_proc(&mut c, &[std::path::PathBuf::from("/")], 2);
    let mem = points.iter().find(|p| p.measurement == "mem").expect("mem");
    assert!(field(mem, "total") > 0.0 && field(mem, "used") <= field(mem, "total"));
    let disk = points.iter().find(|p| p.measurement == "disk").expect("disk");
    assert!(field(disk, "total") > 0.0);
    if let Some(cpu) = points.iter().find(|p| p.measurement == "cpu") {
        let u = field(cpu, "usage_percent");
        assert!((0.0..=100.0).contains(&u), "{u}");
    }
}

#[test]
fn snapshots_and_task_usage() {
    let snap: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"master/cpus_total": 4, "master/tasks_running": 2.0, "system/load_1min": 0.5}"#)
            .unwrap();
    let p = snapshot_point(&snap, "master", "m:5050", 9).unwrap();
    assert_eq!(p.measurement, "mesos");
    assert_eq!(field(&p, "master_cpus_total"), 4.0);
    assert_eq!(sanitize("a/b-c.d"), "a_b_c_d");

    let entry = |cpu: f64, t: f64| -> mesos::legacy::MonitorEntry {
        serde_json::from_value(serde_json::json!({
            "framework_id": "f1", "executor_id": "web.1", "executor_name": "", "source": "web.1",
            "statistics": {"timestamp": t, "cpus_user_time_secs": cpu, "cpus_system_time_secs": 0.5,
                           "cpus_limit": 0.5, "mem_rss_bytes": 50, "mem_limit_bytes": 200}
        }))
        .unwrap()
    };
    let mut c = TaskUsageCollector::default();
    let first = c.points("a:5051", &[entry(1.0, 100.0)], 1);
    assert!(first[0].fields.iter().all(|(k, _)| k != "cpus_used"), "usage needs two readings");
    assert_eq!(field(&first[0], "mem_percent"), 25.0);
    let second = c.points("a:5051", &[entry(3.0, 110.0)], 2);
    assert_eq!(field(&second[0], "cpus_used"), 0.2);
    // The executor restarted: its counters went back; no negative usage.
    let third = c.points("a:5051", &[entry(0.1, 120.0)], 3);
    assert!(third[0].fields.iter().all(|(k, _)| k != "cpus_used"));
    assert!(third[0].tags.contains(&("task".into(), "web.1".into())));
}

fn series(name: &str, labels: &[(&str, &str)], values: &[f64]) -> Series {
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    pairs.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Series {
        labels: Labels::new(pairs),
        samples: values.iter().enumerate().map(|(i, &v)| Sample { t: i as i64 * 1000, v }).collect(),
    }
}

#[test]
fn reports_rank_nodes_and_tasks() {
    let data = vec![
        series("mem_used_percent", &[("host", "a")], &[10.0, 30.0]),
        series("mem_used_percent", &[("host", "b")], &[50.0, 70.0]),
        series("mem_used_percent", &[("host", "c")], &[5.0, 5.0]),
        series("mem_total", &[("host", "a")], &[100.0, 100.0]),
        series("mesos_task_cpus_used", &[("task", "x"), ("host", "a")], &[0.5, 1.5]),
        series("mesos_task_cpus_used", &[("task", "y"), ("host", "a")], &[0.1, 0.1]),
        series("mesos_task_mem_rss_bytes", &[("task", "y"), ("host", "a")], &[900.0, 1100.0]),
    ];
    let least = node_memory(&data, 0, 10_000, Order::Least, 10).unwrap();
    assert_eq!(
        least.iter().map(|n| (n.host.as_str(), n.avg_used_percent)).collect::<Vec<_>>(),
        vec![("c", 5.0), ("a", 20.0), ("b", 60.0)]
    );
    assert_eq!(least[1].total_bytes, Some(100.0));
    assert_eq!(node_memory(&data, 0, 10_000, Order::Most, 1).unwrap()[0].host, "b");
    let cpu = top_tasks(&data, 0, 10_000, By::Cpu, 10).unwrap();
    assert_eq!((cpu[0].task.as_str(), cpu[0].avg_cpus_used, cpu[0].max_cpus_used), ("x", Some(1.0), Some(1.5)));
    let mem = top_tasks(&data, 0, 10_000, By::Memory, 1).unwrap();
    assert_eq!((mem[0].task.as_str(), mem[0].avg_mem_rss_bytes), ("y", Some(1000.0)));
    assert!(node_memory(&data, 5_000, 10_000, Order::Least, 10).unwrap().is_empty(), "nothing in that range");
}

#[test]
fn error_log_records_failures_from_events_and_keeps_them() {
    let event = |json: serde_json::Value| -> mesos::v1::operator::Event { serde_json::from_value(json).unwrap() };
    let mut r = ErrorRecorder::default();
    let added = event(serde_json::json!({"type": "TASK_ADDED", "task_added": {"task": {
        "name": "web", "task_id": {"value": "web.1"}, "framework_id": {"value": "f1"}, "agent_id": {"value": "a1"}, "state": "TASK_STAGING"}}}));
    assert!(r.on_event(&added, 1).is_none());
    let failed = event(serde_json::json!({"type": "TASK_UPDATED", "task_updated": {
        "framework_id": {"value": "f1"}, "state": "TASK_FAILED",
        "status": {"task_id": {"value": "web.1"}, "state": "TASK_FAILED", "message": "Command exited with status 3",
                   "source": "SOURCE_EXECUTOR", "reason": "REASON_COMMAND_EXECUTOR_FAILED", "timestamp": 1700000000.5,
                   "agent_id": {"value": "a1"}}}}));
    let rec = r.on_event(&failed, 2).unwrap();
    assert_eq!(
        (rec.kind.as_str(), rec.task_name.as_deref(), rec.time_ms),
        ("task_failed", Some("web"), 1_700_000_000_500)
    );
    assert_eq!(rec.message.as_deref(), Some("Command exited with status 3"));
    let running = event(
        serde_json::json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "f1"}, "state": "TASK_RUNNING",
        "status": {"task_id": {"value": "web.2"}, "state": "TASK_RUNNING"}}}),
    );
    assert!(r.on_event(&running, 3).is_none(), "a running task is no error");
    let removed = event(serde_json::json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "a1"}}}));
    let gone = r.on_event(&removed, 4_000).unwrap();
    assert_eq!(gone.kind, "agent_removed");

    let dir = std::env::temp_dir().join(format!("m3trics-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = ErrorLog::open(&dir).unwrap();
    log.record(rec.clone()).unwrap();
    log.record(gone.clone()).unwrap();
    drop(log);
    let log = ErrorLog::open(&dir).unwrap();
    assert_eq!(log.query(0, i64::MAX, 10), vec![rec.clone(), gone.clone()], "newest first, after a reopen");
    assert_eq!(log.query(0, 10_000, 10), vec![gone]);
    assert_eq!(log.query(0, i64::MAX, 1).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
