//! Built-in collectors: the node (/proc) and a Mesos cluster (master and
//! agent snapshots, task usage). `node` and `mesos` turn text and JSON into
//! points; `spawn_collectors` is the tokio driver that reads them on a timer.

pub mod mesos;
pub mod node;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::mesos::operator::{AgentClient, OperatorClient};
use ::mesos::transport::TransportConfig;

use crate::model::Point;

/// Where collected points go (the store, in m3s).
pub type Sink = Arc<dyn Fn(Vec<Point>) + Send + Sync>;

#[derive(Clone, Debug)]
pub struct CollectorConfig {
    pub interval: Duration,
    /// A Mesos master (http(s) URL) and how to reach it.
    pub master: Option<(String, TransportConfig)>,
    /// Collect this node from /proc.
    pub node: bool,
    /// The `host` tag of this node's metrics (default: the machine's name). The
    /// embedded cluster gives its agent's hostname, which tasks are tagged with
    /// too, so that a node has one name.
    pub node_host: Option<String>,
    /// File systems to report as `disk`.
    pub disk_paths: Vec<PathBuf>,
}

/// Warns once when a source starts failing and once when it recovers, not every tick.
#[derive(Default)]
struct Failures(std::collections::HashSet<String>);

impl Failures {
    fn result<T>(&mut self, what: &str, r: Result<T, impl std::fmt::Display>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.0.remove(what) {
                    tracing::info!("metrics collector: {what} answers again");
                }
                Some(v)
            }
            Err(e) => {
                if self.0.insert(what.to_string()) {
                    tracing::warn!("metrics collector: {what}: {e}");
                }
                None
            }
        }
    }
}

pub fn spawn_collectors(config: CollectorConfig, sink: Sink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut node = node::NodeCollector::new(config.node_host.clone().unwrap_or_else(node::hostname));
        let mut tasks = mesos::TaskUsageCollector::default();
        let mut failures = Failures::default();
        let master = config.master.as_ref().and_then(|(url, transport)| {
            failures.result("master client", OperatorClient::new(url, url.starts_with("https"), transport.clone()))
        });
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now_ns = crate::store::now_ms() * 1_000_000;
            let mut points = Vec::new();
            if config.node {
                points.extend(node::read_proc(&mut node, &config.disk_paths, now_ns));
            }
            if let (Some(client), Some((url, transport))) = (&master, &config.master) {
                points.extend(collect_cluster(client, url, transport, &mut tasks, &mut failures, now_ns).await);
            }
            if !points.is_empty() {
                sink(points);
            }
        }
    })
}

async fn collect_cluster(
    master: &OperatorClient,
    master_url: &str,
    transport: &TransportConfig,
    tasks: &mut mesos::TaskUsageCollector,
    failures: &mut Failures,
    now_ns: i64,
) -> Vec<Point> {
    let mut points = Vec::new();
    let master_host = master_url.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    let snapshot: Option<serde_json::Map<String, serde_json::Value>> =
        failures.result("master /metrics/snapshot", master.get_json("/metrics/snapshot").await);
    if let Some(s) = snapshot {
        points.extend(mesos::snapshot_point(&s, "master", master_host, now_ns));
    }
    let Some(agents) = failures.result("master GET_AGENTS", master.get_agents().await) else {
        return points;
    };
    let scheme = if master_url.starts_with("https") { "https" } else { "http" };
    for agent in &agents.agents {
        let address = match agent.pid.as_deref().and_then(|pid| pid.split_once('@')) {
            Some((_, addr)) => addr.to_owned(),
            None => format!("{}:{}", agent.agent_info.hostname, agent.agent_info.port),
        };
        let Some(client) = failures
            .result(&format!("agent {address}"), AgentClient::new(format!("{scheme}://{address}"), transport.clone()))
        else {
            continue;
        };
        // An embedded cluster serves the master and the agent on one port: one snapshot covers both.
        // Tagged with the agent's hostname, as the master and the dashboard name it.
        let host = &agent.agent_info.hostname;
        if address != master_host {
            let snapshot: Option<serde_json::Map<String, serde_json::Value>> = failures
                .result(&format!("agent {address} /metrics/snapshot"), client.get_json("/metrics/snapshot").await);
            if let Some(s) = snapshot {
                points.extend(mesos::snapshot_point(&s, "agent", host, now_ns));
            }
        }
        if let Some(stats) =
            failures.result(&format!("agent {address} /monitor/statistics"), client.monitor_statistics().await)
        {
            points.extend(tasks.points(host, &stats, now_ns));
        }
    }
    points
}
