//! The node collector: /proc text in, Telegraf-named points out. Parsing is
//! plain functions over the files' text; `NodeCollector` keeps the previous
//! CPU reading, since usage is a difference of two.

use std::collections::HashMap;

use crate::model::{FieldValue, Point};

/// Jiffies of one `cpu` line of /proc/stat.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }
}

/// The aggregate `cpu` line of /proc/stat.
pub fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let n: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let get = |i: usize| n.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        user: get(0),
        nice: get(1),
        system: get(2),
        idle: get(3),
        iowait: get(4),
        irq: get(5),
        softirq: get(6),
        steal: get(7),
    })
}

/// /proc/meminfo in bytes, by key.
pub fn parse_meminfo(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let v: u64 = parts.next()?.parse().ok()?;
            let unit = parts.next().unwrap_or("");
            Some((k.trim().to_string(), if unit == "kB" { v * 1024 } else { v }))
        })
        .collect()
}

/// (load1, load5, load15) of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64)> {
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Interfaces of /proc/net/dev: (name, [rx bytes, rx packets, rx errs, tx bytes, tx packets, tx errs]).
pub fn parse_net_dev(text: &str) -> Vec<(String, [u64; 6])> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
            if n.len() < 11 {
                return None;
            }
            Some((name.trim().to_string(), [n[0], n[1], n[2], n[8], n[9], n[10]]))
        })
        .collect()
}

/// The file-system figures of one path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiskUsage {
    pub total: u64,
    pub free: u64,
}

/// Collects the node's points; keeps the previous CPU reading between calls.
pub struct NodeCollector {
    host: String,
    previous_cpu: Option<CpuTimes>,
}

/// What one reading of the node is made from (so tests can feed fixtures).
pub struct NodeReading<'a> {
    pub stat: &'a str,
    pub meminfo: &'a str,
    pub loadavg: &'a str,
    pub net_dev: &'a str,
    pub uptime: &'a str,
    pub cpus: usize,
    pub disks: Vec<(String, DiskUsage)>,
}

impl NodeCollector {
    pub fn new(host: impl Into<String>) -> NodeCollector {
        NodeCollector { host: host.into(), previous_cpu: None }
    }

    /// Points for one reading at `timestamp_ns`. CPU usage needs two readings, so the first has none.
    pub fn points(&mut self, r: &NodeReading<'_>, timestamp_ns: i64) -> Vec<Point> {
        let host = ("host".to_string(), self.host.clone());
        let point = |measurement: &str, extra: Vec<(String, String)>, fields: Vec<(&str, f64)>| {
            let mut tags = vec![host.clone()];
            tags.extend(extra);
            Point {
                measurement: measurement.to_string(),
                tags,
                fields: fields.into_iter().map(|(k, v)| (k.to_string(), FieldValue::Float(v))).collect(),
                timestamp: Some(timestamp_ns),
            }
        };
        let mut out = Vec::new();
        if let Some(now) = parse_stat(r.stat) {
            if let Some(prev) = self.previous_cpu
                && now.total() > prev.total()
            {
                let d = (now.total() - prev.total()) as f64;
                let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 * 100.0 / d;
                let idle = pct(now.idle, prev.idle);
                let iowait = pct(now.iowait, prev.iowait);
                out.push(point(
                    "cpu",
                    vec![("cpu".into(), "cpu-total".into())],
                    vec![
                        ("usage_user", pct(now.user + now.nice, prev.user + prev.nice)),
                        (
                            "usage_system",
                            pct(now.system + now.irq + now.softirq, prev.system + prev.irq + prev.softirq),
                        ),
                        ("usage_idle", idle),
                        ("usage_iowait", iowait),
                        ("usage_steal", pct(now.steal, prev.steal)),
                        ("usage_percent", (100.0 - idle - iowait).clamp(0.0, 100.0)),
                    ],
                ));
            }
            self.previous_cpu = Some(now);
        }
        let mem = parse_meminfo(r.meminfo);
        if let (Some(&total), Some(&available)) = (mem.get("MemTotal"), mem.get("MemAvailable"))
            && total > 0
        {
            let used = total.saturating_sub(available);
            out.push(point(
                "mem",
                vec![],
                vec![
                    ("total", total as f64),
                    ("available", available as f64),
                    ("used", used as f64),
                    ("used_percent", used as f64 * 100.0 / total as f64),
                    ("free", mem.get("MemFree").copied().unwrap_or(0) as f64),
                    ("cached", mem.get("Cached").copied().unwrap_or(0) as f64),
                    ("buffers", mem.get("Buffers").copied().unwrap_or(0) as f64),
                ],
            ));
        }
        if let Some((l1, l5, l15)) = parse_loadavg(r.loadavg) {
            let uptime = r.uptime.split_whitespace().next().and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0);
            out.push(point(
                "system",
                vec![],
                vec![("load1", l1), ("load5", l5), ("load15", l15), ("n_cpus", r.cpus as f64), ("uptime", uptime)],
            ));
        }
        for (path, d) in &r.disks {
            let used = d.total.saturating_sub(d.free);
            let pct = if d.total > 0 { used as f64 * 100.0 / d.total as f64 } else { 0.0 };
            out.push(point(
                "disk",
                vec![("path".into(), path.clone())],
                vec![("total", d.total as f64), ("free", d.free as f64), ("used", used as f64), ("used_percent", pct)],
            ));
        }
        for (name, n) in parse_net_dev(r.net_dev) {
            if name == "lo" {
                continue;
            }
            out.push(point(
                "net",
                vec![("interface".into(), name)],
                vec![
                    ("bytes_recv", n[0] as f64),
                    ("packets_recv", n[1] as f64),
                    ("err_in", n[2] as f64),
                    ("bytes_sent", n[3] as f64),
                    ("packets_sent", n[4] as f64),
                    ("err_out", n[5] as f64),
                ],
            ));
        }
        out
    }
}

/// This machine's name, for the `host` tag.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Reads /proc and the file systems of `paths` now.
pub fn read_proc(collector: &mut NodeCollector, paths: &[std::path::PathBuf], timestamp_ns: i64) -> Vec<Point> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (stat, meminfo, loadavg, net_dev, uptime) =
        (read("/proc/stat"), read("/proc/meminfo"), read("/proc/loadavg"), read("/proc/net/dev"), read("/proc/uptime"));
    let mut disks = Vec::new();
    for path in paths {
        if let Ok(s) = rustix::fs::statvfs(path) {
            let frsize = s.f_frsize.max(1);
            disks.push((
                path.display().to_string(),
                DiskUsage { total: s.f_blocks * frsize, free: s.f_bavail * frsize },
            ));
        }
    }
    let reading = NodeReading {
        stat: &stat,
        meminfo: &meminfo,
        loadavg: &loadavg,
        net_dev: &net_dev,
        uptime: &uptime,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        disks,
    };
    collector.points(&reading, timestamp_ns)
}
