//! The engine's records: what is persisted and what is kept in memory only.

use std::collections::{BTreeMap, VecDeque};

use mesos::v1::{AgentId, TaskState};
use serde::{Deserialize, Serialize};

use crate::spec::ProjectSpec;

/// A deployed project, as persisted under `project/<name>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub spec: ProjectSpec,
    /// Generation of each service's spec; bumped when the spec changes.
    pub generations: BTreeMap<String, u64>,
    /// Replica counts set by `scale`, overriding the spec until the next deploy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scale: BTreeMap<String, u32>,
    /// `down` was asked: tasks are being killed, then the project is forgotten.
    #[serde(default)]
    pub removing: bool,
}

impl ProjectRecord {
    pub fn replicas(&self, service: &str) -> u32 {
        if self.removing {
            return 0;
        }
        match self.spec.services.get(service) {
            Some(s) => self.scale.get(service).copied().unwrap_or(s.replicas),
            None => 0,
        }
    }
}

/// Why m3s itself killed a task: such an end is not a failure and is not restarted with backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    /// Replaced by a newer spec.
    Update,
    ScaleDown,
    /// The project or service was removed.
    Remove,
    /// `restart SERVICE`.
    Restart,
    /// One task killed through the API; its replica is started again.
    User,
    /// A task the master reported that m3s does not know.
    Unknown,
}

/// One task, as persisted under `task/<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub project: String,
    pub service: String,
    pub replica: u32,
    pub generation: u64,
    /// `None` until the first status update (the launch was sent).
    pub state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// The agent it was launched on (persisted as the bare id).
    #[serde(with = "bare_agent_id")]
    pub agent_id: AgentId,
    pub hostname: String,
    /// Host ports, in the order of the service's ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<u16>,
    pub launched_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillReason>,
}

/// An agent id kept as its text, as task records have always stored it.
mod bare_agent_id {
    use mesos::v1::AgentId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &AgentId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&id.value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AgentId, D::Error> {
        String::deserialize(deserializer).map(AgentId::new)
    }
}

impl TaskRecord {
    /// Launched and not ended: it holds its replica's slot. TASK_UNREACHABLE
    /// counts as live, so an agent's partition does not start a duplicate.
    pub fn is_live(&self) -> bool {
        self.state.as_ref().is_none_or(|s| !s.is_terminal() && *s != TaskState::TaskUnknown)
    }

    pub fn is_running(&self) -> bool {
        self.state == Some(TaskState::Running)
    }
}

/// What the engine knows of one replica beyond its tasks (memory only: after a
/// restart of m3s, backoff starts afresh).
#[derive(Clone, Debug, Default)]
pub struct ReplicaState {
    /// Not before this time (backoff).
    pub next_start_ms: u64,
    /// Failures in a row that came soon after start.
    pub quick_failures: u32,
    /// Start times of restarts inside the restart window.
    pub attempts: VecDeque<u64>,
    /// Ended for good: completed, or not restarted by its policy.
    pub done: Option<Done>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// Exited 0 and is not restarted (a completed job).
    Completed,
    /// Ended and is not restarted; the reason.
    Failed(String),
}

/// One replica of a service: what restart state, backoff and misfits are kept by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaKey {
    pub project: String,
    pub service: String,
    pub replica: u32,
}

impl ReplicaKey {
    pub fn new(project: impl Into<String>, service: impl Into<String>, replica: u32) -> ReplicaKey {
        ReplicaKey { project: project.into(), service: service.into(), replica }
    }
}
