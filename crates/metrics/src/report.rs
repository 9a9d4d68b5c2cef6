//! Reports over any `Source`: nodes by average memory use, tasks by CPU or memory.
//! Averages are plain means of the raw samples in the range.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Matcher, NAME_LABEL, SelectError, Series, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Least,
    Most,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Cpu,
    Memory,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeMemory {
    pub host: String,
    pub avg_used_percent: f64,
    pub avg_used_bytes: Option<f64>,
    pub total_bytes: Option<f64>,
    pub samples: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskUsage {
    pub task: String,
    pub host: String,
    pub framework_id: String,
    pub executor_id: String,
    pub avg_cpus_used: Option<f64>,
    pub max_cpus_used: Option<f64>,
    pub avg_mem_rss_bytes: Option<f64>,
    pub max_mem_rss_bytes: Option<f64>,
}

fn named(source: &dyn Source, name: &str, start: i64, end: i64) -> Result<Vec<Series>, SelectError> {
    source.select(&[Matcher::eq(NAME_LABEL, name)], start, end)
}

fn mean(s: &Series) -> f64 {
    s.samples.iter().map(|x| x.v).sum::<f64>() / s.samples.len() as f64
}

fn max(s: &Series) -> f64 {
    s.samples.iter().map(|x| x.v).fold(f64::NEG_INFINITY, f64::max)
}

/// Nodes by average `mem_used_percent` over `[start, end]`.
pub fn node_memory(
    source: &dyn Source,
    start: i64,
    end: i64,
    order: Order,
    limit: usize,
) -> Result<Vec<NodeMemory>, SelectError> {
    let by_host = |name: &str| -> Result<BTreeMap<String, Series>, SelectError> {
        Ok(named(source, name, start, end)?
            .into_iter()
            .filter_map(|s| Some((s.labels.get("host")?.to_string(), s)))
            .collect())
    };
    let used = by_host("mem_used")?;
    let total = by_host("mem_total")?;
    let mut rows: Vec<NodeMemory> = by_host("mem_used_percent")?
        .into_iter()
        .map(|(host, s)| NodeMemory {
            avg_used_percent: mean(&s),
            avg_used_bytes: used.get(&host).map(mean),
            total_bytes: total.get(&host).and_then(|t| t.samples.last()).map(|x| x.v),
            samples: s.samples.len(),
            host,
        })
        .collect();
    rows.sort_by(|a, b| {
        let o = a.avg_used_percent.total_cmp(&b.avg_used_percent);
        if order == Order::Least { o } else { o.reverse() }
    });
    rows.truncate(limit);
    Ok(rows)
}

/// Tasks by average CPU (cores) or resident memory over `[start, end]`, highest first.
pub fn top_tasks(
    source: &dyn Source,
    start: i64,
    end: i64,
    by: By,
    limit: usize,
) -> Result<Vec<TaskUsage>, SelectError> {
    let mut rows: BTreeMap<(String, String, String, String), TaskUsage> = BTreeMap::new();
    for (name, is_cpu) in [("mesos_task_cpus_used", true), ("mesos_task_mem_rss_bytes", false)] {
        for s in named(source, name, start, end)? {
            let get = |k: &str| s.labels.get(k).unwrap_or("").to_string();
            let key = (get("task"), get("host"), get("framework_id"), get("executor_id"));
            let row = rows.entry(key.clone()).or_insert_with(|| TaskUsage {
                task: key.0.clone(),
                host: key.1.clone(),
                framework_id: key.2.clone(),
                executor_id: key.3.clone(),
                avg_cpus_used: None,
                max_cpus_used: None,
                avg_mem_rss_bytes: None,
                max_mem_rss_bytes: None,
            });
            if is_cpu {
                row.avg_cpus_used = Some(mean(&s));
                row.max_cpus_used = Some(max(&s));
            } else {
                row.avg_mem_rss_bytes = Some(mean(&s));
                row.max_mem_rss_bytes = Some(max(&s));
            }
        }
    }
    let mut rows: Vec<TaskUsage> = rows.into_values().collect();
    let metric = |r: &TaskUsage| match by {
        By::Cpu => r.avg_cpus_used.unwrap_or(f64::NEG_INFINITY),
        By::Memory => r.avg_mem_rss_bytes.unwrap_or(f64::NEG_INFINITY),
    };
    rows.sort_by(|a, b| metric(b).total_cmp(&metric(a)));
    rows.truncate(limit);
    Ok(rows)
}
