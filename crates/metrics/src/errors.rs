//! The error log: task failures and lost agents, recorded from the master's
//! operator event stream. `ErrorRecorder` maps events to records (no IO);
//! `ErrorLog` keeps them in an append-only JSON-lines file; `spawn_error_log`
//! is the driver that subscribes (again after every disconnect).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mesos::operator::OperatorClient;
use mesos::v1::TaskState;
use mesos::v1::operator::Event;
use serde::{Deserialize, Serialize};

/// One recorded failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub time_ms: i64,
    /// `task_failed`, `task_lost`, `task_error`, `task_dropped`, `task_gone`, `task_unreachable`, `agent_removed`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Events in, records out; remembers task names from the snapshot and TASK_ADDED.
#[derive(Default)]
pub struct ErrorRecorder {
    names: HashMap<String, String>,
}

impl ErrorRecorder {
    pub fn on_event(&mut self, event: &Event, now_ms: i64) -> Option<ErrorRecord> {
        match event {
            Event::Subscribed(subscribed) => {
                if let Some(tasks) = subscribed.get_state.as_ref().and_then(|s| s.get_tasks.as_ref()) {
                    for t in tasks.tasks.iter().chain(&tasks.completed_tasks) {
                        self.names.insert(t.task_id.value.clone(), t.name.clone());
                    }
                }
                None
            }
            Event::TaskAdded(task_added) => {
                self.names.insert(task_added.task.task_id.value.clone(), task_added.task.name.clone());
                None
            }
            Event::TaskUpdated(task_updated) => {
                let status = &task_updated.status;
                let kind = match status.state {
                    TaskState::Failed => "task_failed",
                    TaskState::Lost => "task_lost",
                    TaskState::Error => "task_error",
                    TaskState::Dropped => "task_dropped",
                    TaskState::Gone | TaskState::GoneByOperator => "task_gone",
                    TaskState::Unreachable => "task_unreachable",
                    _ => return None,
                };
                let id = status.task_id.value.clone();
                Some(ErrorRecord {
                    time_ms: status.timestamp.map_or(now_ms, |s| (s * 1000.0) as i64),
                    kind: kind.into(),
                    agent_id: status.agent_id.as_ref().map(|a| a.value.clone()),
                    framework_id: Some(task_updated.framework_id.value.clone()),
                    task_name: self.names.get(&id).cloned(),
                    task_id: Some(id),
                    state: Some(status.state.to_string()),
                    reason: status.reason.as_ref().map(|r| r.to_string()),
                    source: status.source.as_ref().map(|s| s.to_string()),
                    message: status.message.clone(),
                })
            }
            Event::AgentRemoved(agent_removed) => Some(ErrorRecord {
                time_ms: now_ms,
                kind: "agent_removed".into(),
                agent_id: Some(agent_removed.agent_id.value.clone()),
                framework_id: None,
                task_id: None,
                task_name: None,
                state: None,
                reason: None,
                source: None,
                message: Some("the agent was removed from the cluster".into()),
            }),
            _ => None,
        }
    }
}

/// Records kept in memory (the newest `MAX_RECORDS`) and in `<dir>/errors.jsonl`.
pub struct ErrorLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    records: Vec<ErrorRecord>,
    file: std::fs::File,
    lines_in_file: usize,
}

pub const MAX_RECORDS: usize = 100_000;

impl ErrorLog {
    pub fn open(dir: &Path) -> std::io::Result<ErrorLog> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("errors.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut records: Vec<ErrorRecord> = Vec::new();
        let mut lines = 0;
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            match serde_json::from_str(line) {
                Ok(r) => records.push(r),
                // A torn last line after a crash; anything else is worth a word.
                Err(e) => tracing::warn!(path = %path.display(), line = n + 1, "error log: skipping a bad record: {e}"),
            }
        }
        if records.len() > MAX_RECORDS {
            records.drain(..records.len() - MAX_RECORDS);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(ErrorLog { path, inner: Mutex::new(Inner { records, file, lines_in_file: lines }) })
    }

    pub fn record(&self, r: ErrorRecord) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut line = serde_json::to_string(&r).expect("records serialize");
        line.push('\n');
        inner.file.write_all(line.as_bytes())?;
        inner.lines_in_file += 1;
        inner.records.push(r);
        if inner.records.len() > MAX_RECORDS {
            let extra = inner.records.len() - MAX_RECORDS;
            inner.records.drain(..extra);
        }
        if inner.lines_in_file >= 2 * MAX_RECORDS {
            self.rewrite(&mut inner)?;
        }
        Ok(())
    }

    /// Rewrites the file with only the records kept in memory (atomically).
    fn rewrite(&self, inner: &mut Inner) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut text = String::new();
        for r in &inner.records {
            text.push_str(&serde_json::to_string(r).expect("records serialize"));
            text.push('\n');
        }
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)?;
        inner.file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        inner.lines_in_file = inner.records.len();
        Ok(())
    }

    /// Records with `from <= time <= to`, newest first, at most `limit`.
    pub fn query(&self, from_ms: i64, to_ms: i64, limit: usize) -> Vec<ErrorRecord> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ErrorRecord> =
            inner.records.iter().filter(|r| r.time_ms >= from_ms && r.time_ms <= to_ms).cloned().collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
        out.truncate(limit);
        out
    }
}

/// Subscribes to the master's events and records failures, re-subscribing with backoff.
pub fn spawn_error_log(client: OperatorClient, log: Arc<ErrorLog>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = mesos::backoff::Backoff::new(mesos::backoff::BackoffConfig::default(), 7);
        let mut warned = false;
        loop {
            match client.subscribe().await {
                Ok(mut stream) => {
                    let mut recorder = ErrorRecorder::default();
                    while let Some(event) = stream.next().await {
                        let Ok(event) = event else { break };
                        if matches!(event, Event::Subscribed(_)) {
                            backoff.reset();
                            warned = false;
                        }
                        if let Some(r) = recorder.on_event(&event, crate::store::now_ms())
                            && let Err(e) = log.record(r)
                        {
                            tracing::warn!("error log: cannot write: {e}");
                        }
                    }
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!("error log: cannot subscribe to the master's events: {e}");
                        warned = true;
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    })
}
