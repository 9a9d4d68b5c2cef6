//! What the master knows about frameworks and their tasks. Plain data: the
//! transitions live in `calls.rs` (scheduler calls), `updates.rs` (task
//! status flow) and `allocator.rs` (offers).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use mesos::v1::{FrameworkCapabilityType, FrameworkId, FrameworkInfo, TaskId, TaskInfo, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// A registered framework.
#[derive(Debug, Clone)]
pub struct Framework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    /// The current subscription's stream id; `None` while disconnected.
    pub stream_id: Option<String>,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    /// When a disconnected framework is removed (connection lost + failover_timeout).
    pub failover_deadline: Option<Instant>,
    pub suppressed_roles: BTreeSet<String>,
    /// Offer filters per role: no offers for that role until then.
    pub refused_until: BTreeMap<String, Instant>,
    pub tasks: BTreeMap<TaskId, Task>,
    pub completed_tasks: VecDeque<Task>,
    /// Set when removed (teardown, failover timeout): time of removal.
    pub removed_time: Option<f64>,
    /// When the allocator last made it an offer: among equal shares the
    /// framework that waited longest goes first, so one that declines and
    /// revives in a loop cannot keep the agent to itself.
    pub last_offered: Option<Instant>,
}

impl Framework {
    pub fn new(id: FrameworkId, info: FrameworkInfo, registered_time: f64) -> Self {
        Framework {
            id,
            info,
            stream_id: None,
            registered_time,
            reregistered_time: None,
            unregistered_time: None,
            failover_deadline: None,
            suppressed_roles: BTreeSet::new(),
            refused_until: BTreeMap::new(),
            tasks: BTreeMap::new(),
            completed_tasks: VecDeque::new(),
            removed_time: None,
            last_offered: None,
        }
    }

    pub fn connected(&self) -> bool {
        self.stream_id.is_some()
    }

    pub fn has(&self, cap: FrameworkCapabilityType) -> bool {
        self.info.has_capability(&cap)
    }

    pub fn partition_aware(&self) -> bool {
        self.has(FrameworkCapabilityType::PartitionAware)
    }

    pub fn multi_role(&self) -> bool {
        self.has(FrameworkCapabilityType::MultiRole)
    }

    /// The framework's roles: `roles` with MULTI_ROLE, else `role` (default `*`).
    pub fn roles(&self) -> Vec<String> {
        if self.multi_role() {
            self.info.roles.clone()
        } else {
            vec![self.info.role.clone().unwrap_or_else(|| "*".to_owned())]
        }
    }

    /// Resources held by its non-terminal tasks.
    pub fn used(&self) -> Resources {
        let mut out = Resources::default();
        for t in self.tasks.values().filter(|t| !t.state.is_terminal()) {
            out.add(&t.resources);
        }
        out
    }

    pub fn failover_timeout(&self) -> Duration {
        let secs = self.info.failover_timeout;
        if secs.is_finite() && secs > 0.0 {
            // A year is as good as forever, and keeps Instant arithmetic safe.
            Duration::from_secs_f64(secs.min(365.0 * 86400.0))
        } else {
            Duration::ZERO
        }
    }
}

/// A task the master knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub info: TaskInfo,
    pub framework_id: FrameworkId,
    /// The role whose allocation the task uses.
    pub role: String,
    #[serde(skip)]
    pub resources: Resources,
    pub state: TaskState,
    /// Every state change, oldest first (the legacy endpoints show them).
    pub statuses: Vec<TaskStatus>,
    /// Set once the agent has a container for it.
    pub container_id: Option<String>,
    /// The supervisor's pid (Mesos reports the executor's).
    pub executor_pid: Option<u32>,
    /// Updates not yet acknowledged; the front one is the one delivered.
    pub pending: VecDeque<TaskStatus>,
    /// When the front pending update is resent if still unacknowledged.
    #[serde(skip)]
    pub resend_at: Option<Instant>,
    /// Current resend interval: 10 s doubling to 10 min, as the agent's
    /// status update manager does.
    #[serde(skip)]
    pub resend_interval: Duration,
    /// Kill requested: the exit is reported as TASK_KILLED.
    pub killing: bool,
    /// Killed by the agent for failing health checks: the TASK_KILLED
    /// update carries `healthy: false`.
    #[serde(default)]
    pub killed_by_health_check: bool,
}

/// First resend of an unacknowledged update, and the cap of its backoff
/// (Mesos's status update manager: 10 s up to 10 min).
pub const STATUS_RETRY_INITIAL: Duration = Duration::from_secs(10);
pub const STATUS_RETRY_MAX: Duration = Duration::from_secs(600);

impl Task {
    pub fn new(info: TaskInfo, framework_id: FrameworkId, role: String, resources: Resources) -> Self {
        Task {
            info,
            framework_id,
            role,
            resources,
            state: TaskState::Staging,
            statuses: Vec::new(),
            container_id: None,
            executor_pid: None,
            pending: VecDeque::new(),
            resend_at: None,
            resend_interval: STATUS_RETRY_INITIAL,
            killing: false,
            killed_by_health_check: false,
        }
    }

    pub fn id(&self) -> &TaskId {
        &self.info.task_id
    }

    /// The latest status, if any state change happened yet.
    pub fn latest(&self) -> Option<&TaskStatus> {
        self.statuses.last()
    }
}
