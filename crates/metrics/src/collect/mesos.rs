//! Mesos as a metrics source: `/metrics/snapshot` of the master and agents,
//! and the agents' `/monitor/statistics`, turned into points. Task CPU use is
//! a difference of two readings, kept by `TaskUsageCollector`.

use std::collections::HashMap;

use mesos::legacy::MonitorEntry;

use crate::model::{FieldValue, Point};

/// `master/cpus_total` → `master_cpus_total`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// A `/metrics/snapshot` (flat name → number) as one `mesos` point tagged `role` and `host`.
pub fn snapshot_point(
    snapshot: &serde_json::Map<String, serde_json::Value>,
    role: &str,
    host: &str,
    timestamp_ns: i64,
) -> Option<Point> {
    let mut fields: Vec<(String, FieldValue)> = snapshot
        .iter()
        .filter_map(|(k, v)| Some((sanitize(k), FieldValue::Float(v.as_f64().filter(|f| f.is_finite())?))))
        .collect();
    if fields.is_empty() {
        return None;
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Point {
        measurement: "mesos".into(),
        tags: vec![("host".into(), host.into()), ("role".into(), role.into())],
        fields,
        timestamp: Some(timestamp_ns),
    })
}

/// Turns statistics into `mesos_task` points; keeps each executor's previous CPU time.
#[derive(Default)]
pub struct TaskUsageCollector {
    /// (agent, framework, executor) → (statistics timestamp, cpu seconds).
    previous: HashMap<(String, String, String), (f64, f64)>,
}

impl TaskUsageCollector {
    pub fn points(&mut self, agent: &str, entries: &[MonitorEntry], timestamp_ns: i64) -> Vec<Point> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for e in entries {
            let s = &e.statistics;
            let key = (agent.to_string(), e.framework_id.clone(), e.executor_id.clone());
            let cpu = s.cpus_user_time_secs.unwrap_or(0.0) + s.cpus_system_time_secs.unwrap_or(0.0);
            let mut fields = Vec::new();
            if let Some(&(t0, c0)) = self.previous.get(&key)
                && s.timestamp > t0
                && cpu >= c0
            {
                // A counter going backwards (an executor restarted) gives no reading this time.
                fields.push(("cpus_used".to_string(), FieldValue::Float((cpu - c0) / (s.timestamp - t0))));
            }
            self.previous.insert(key.clone(), (s.timestamp, cpu));
            seen.push(key);
            if let Some(l) = s.cpus_limit {
                fields.push(("cpus_limit".into(), FieldValue::Float(l)));
            }
            if let Some(rss) = s.mem_rss_bytes {
                fields.push(("mem_rss_bytes".into(), FieldValue::Float(rss as f64)));
                if let Some(limit) = s.mem_limit_bytes.filter(|l| *l > 0) {
                    fields.push(("mem_percent".into(), FieldValue::Float(rss as f64 * 100.0 / limit as f64)));
                }
            }
            if let Some(limit) = s.mem_limit_bytes {
                fields.push(("mem_limit_bytes".into(), FieldValue::Float(limit as f64)));
            }
            if fields.is_empty() {
                continue;
            }
            let task = if e.source.is_empty() { e.executor_id.clone() } else { e.source.clone() };
            out.push(Point {
                measurement: "mesos_task".into(),
                tags: vec![
                    ("executor_id".into(), e.executor_id.clone()),
                    ("framework_id".into(), e.framework_id.clone()),
                    ("host".into(), agent.to_string()),
                    ("task".into(), task),
                ],
                fields,
                timestamp: Some(timestamp_ns),
            });
        }
        // Forget executors that are gone from this agent.
        self.previous.retain(|k, _| k.0 != agent || seen.contains(k));
        out
    }
}
