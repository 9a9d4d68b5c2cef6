//! The master of the single-node cluster as a sans-IO state machine.
//!
//! Inputs are scheduler calls, stream closures, task lifecycle reports from the
//! agent runtime, and time; outputs are [`Action`]s (events to send on a
//! subscription stream, tasks to launch or kill, state to checkpoint). It never
//! does IO and never reads the clock: every input carries a [`Clock`]. The HTTP
//! layer (`crate::http`) and the cluster driver (`crate::cluster`) do the rest.
//!
//! Semantics follow Mesos 1.11 (`src/master/master.cpp`, `validation.cpp`), as
//! recorded in `../shared/reference/mesos-v1-api.md` and the captures: stream
//! ids, one subscription per framework, failover_timeout, offers with filters,
//! status updates delivered one at a time per task and resent until
//! acknowledged, reconciliation answers, TASK_KILLING and PARTITION_AWARE.
//! Allocation is event-driven: every change that frees resources or makes a
//! framework eligible runs the allocator at once (no allocation interval).

mod allocator;
mod calls;
mod state;
mod updates;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use mesos::v1::operator::Event as OperatorEvent;
use mesos::v1::scheduler::Event;
use mesos::v1::{AgentId, Attribute, FrameworkId, FrameworkInfo, TaskId};

pub use calls::{CallError, SubscribeRefusal};
pub(crate) use calls::{operator_framework, operator_task};
pub use state::{Framework, Task};
pub use updates::{Exit, Report};

use crate::resources::Resources;

/// Wall-clock and monotonic time of one input. Monotonic time drives timers;
/// wall-clock time only fills timestamps on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub mono: Instant,
    pub unix: f64,
}

/// Static facts about the cluster.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// `<uuid>`; frameworks are `<id>-0000`, the agent `<id>-S0`, offers `<id>-O<n>`.
    pub master_id: String,
    pub hostname: String,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub resources: Resources,
    pub attributes: Vec<Attribute>,
    /// The version reported everywhere; plain dotted integers (pymesos parses it).
    pub version: String,
    pub heartbeat_interval: Duration,
    /// Seed for stream ids and update uuids (sans-IO: no unseeded randomness).
    pub seed: u64,
    /// Users tasks may run as.
    pub allowed_users: AllowedUsers,
}

/// Which users tasks may run as: Mesos's `run_tasks` ACL reduced to users.
/// A task asking for another gets TASK_ERROR (REASON_TASK_UNAUTHORIZED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedUsers {
    Any,
    Only(std::collections::BTreeSet<String>),
}

impl AllowedUsers {
    pub fn allows(&self, user: &str) -> bool {
        match self {
            AllowedUsers::Any => true,
            AllowedUsers::Only(users) => users.contains(user),
        }
    }
}

impl std::fmt::Display for AllowedUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowedUsers::Any => f.write_str("*"),
            AllowedUsers::Only(users) => f.write_str(&users.iter().map(String::as_str).collect::<Vec<_>>().join(",")),
        }
    }
}

/// Something for the IO layer to do.
// Actions live for microseconds in a queue; boxing every event to shrink the
// enum would cost an allocation per event instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send an event on a framework's current subscription stream.
    Send { framework_id: FrameworkId, stream_id: String, event: Event },
    /// Close a subscription stream (replaced by a newer one, or the framework is gone).
    CloseStream { stream_id: String },
    /// Start a task on the agent.
    Launch { framework_id: FrameworkId, task_id: TaskId },
    /// Stop a task's container: SIGTERM, then SIGKILL after `grace`.
    Kill { container_id: String, grace: Duration },
    /// Persist the framework (registration, failover deadline) or remove its record.
    CheckpointFramework(FrameworkId),
    /// Persist one task (launch, status change, acknowledgement).
    CheckpointTask { framework_id: FrameworkId, task_id: TaskId },
    /// An event for operator API subscribers.
    Operator(Box<OperatorEvent>),
}

/// Mesos keeps this many completed frameworks (`--max_completed_frameworks`).
const MAX_COMPLETED_FRAMEWORKS: usize = 50;
/// And this many completed tasks per framework (`--max_completed_tasks_per_framework`).
const MAX_COMPLETED_TASKS: usize = 1000;
/// Most offers one framework holds at a time; one agent means one is plenty.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct Master {
    config: MasterConfig,
    agent_id: AgentId,
    start_time: f64,
    frameworks: BTreeMap<FrameworkId, Framework>,
    completed_frameworks: VecDeque<Framework>,
    /// Outstanding offers: id → (framework, resources).
    offers: BTreeMap<String, Offered>,
    next_framework: u64,
    next_offer: u64,
    ids: IdSource,
    actions: VecDeque<Action>,
    /// Resources held by tasks that are not terminal.
    used: Resources,
    counters: Counters,
}

/// Monotonic counters for `/metrics/snapshot`: unlike the task lists, they
/// survive the pruning of completed tasks and frameworks.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Status updates the agent side produced (Mesos's `valid_status_updates`).
    pub status_updates: u64,
    /// Tasks that reached each terminal state, by wire name (`TASK_FAILED`).
    pub terminal: BTreeMap<String, u64>,
    /// Launches the agent could not start (`slave/container_launch_errors`).
    pub launch_errors: u64,
}

impl Counters {
    pub fn terminal(&self, state: &mesos::v1::TaskState) -> u64 {
        self.terminal.get(state.as_str()).copied().unwrap_or(0)
    }

    pub(crate) fn count_terminal(&mut self, state: &mesos::v1::TaskState) {
        *self.terminal.entry(state.as_str().to_owned()).or_default() += 1;
    }
}

#[derive(Debug, Clone)]
struct Offered {
    framework_id: FrameworkId,
    resources: Resources,
    role: String,
}

/// Deterministic 128-bit ids (stream ids, update uuids) from a seed.
#[derive(Debug, Clone)]
struct IdSource(u64);

impl IdSource {
    fn next64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 16 random-looking bytes with the version-4 bits set, as Mesos's UUIDs are.
    fn uuid_bytes(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next64().to_be_bytes());
        b[8..].copy_from_slice(&self.next64().to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        b
    }

    fn uuid_string(&mut self) -> String {
        let b = self.uuid_bytes();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

impl Master {
    pub fn new(config: MasterConfig, clock: Clock) -> Self {
        let agent_id = AgentId::new(format!("{}-S0", config.master_id));
        let ids = IdSource(config.seed);
        Master {
            config,
            agent_id,
            start_time: clock.unix,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            offers: BTreeMap::new(),
            next_framework: 0,
            next_offer: 0,
            ids,
            actions: VecDeque::new(),
            used: Resources::default(),
            counters: Counters::default(),
        }
    }

    // ------------------------------------------------------------ getters

    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    pub fn agent_id(&self) -> &AgentId {
        &self.agent_id
    }

    pub fn start_time(&self) -> f64 {
        self.start_time
    }

    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }

    pub fn framework(&self, id: &FrameworkId) -> Option<&Framework> {
        self.frameworks.get(id)
    }

    pub fn completed_frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.completed_frameworks.iter()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Resources held by running tasks.
    pub fn used_resources(&self) -> &Resources {
        &self.used
    }

    /// Resources in outstanding offers.
    pub fn offered_resources(&self) -> Resources {
        let mut out = Resources::default();
        for o in self.offers.values() {
            out.add(&o.resources);
        }
        out
    }

    /// Offered resources of one framework.
    pub fn offered_to(&self, framework_id: &FrameworkId) -> Resources {
        let mut out = Resources::default();
        for o in self.offers.values().filter(|o| &o.framework_id == framework_id) {
            out.add(&o.resources);
        }
        out
    }

    /// Outstanding offer ids of one framework.
    pub fn offers_of(&self, framework_id: &FrameworkId) -> Vec<String> {
        self.offers.iter().filter(|(_, o)| &o.framework_id == framework_id).map(|(id, _)| id.clone()).collect()
    }

    /// The task running in `container_id`, if any.
    pub fn task_by_container(&self, container_id: &str) -> Option<(&Framework, &Task)> {
        self.frameworks
            .values()
            .find_map(|f| f.tasks.values().find(|t| t.container_id.as_deref() == Some(container_id)).map(|t| (f, t)))
    }

    /// Brings back a framework and its tasks from the checkpoint after a
    /// restart. It is disconnected: its failover timeout starts now, and it
    /// resubscribes with its id as after a Mesos master failover.
    pub fn restore(
        &mut self,
        clock: Clock,
        info: FrameworkInfo,
        registered_time: f64,
        removed: bool,
        tasks: Vec<Task>,
    ) {
        let Some(id) = info.id.clone() else { return };
        if let Some(n) =
            id.value.strip_prefix(&format!("{}-", self.config.master_id)).and_then(|n| n.parse::<u64>().ok())
        {
            self.next_framework = self.next_framework.max(n + 1);
        }
        let mut framework = Framework::new(id.clone(), info, registered_time);
        if removed {
            framework.removed_time = Some(clock.unix);
            framework.completed_tasks.extend(tasks);
            self.completed_frameworks.push_back(framework);
            return;
        }
        framework.unregistered_time = Some(clock.unix);
        framework.failover_deadline = Some(clock.mono + framework.failover_timeout());
        for mut task in tasks {
            task.resources = Resources::from_wire(&task.info.resources).unwrap_or_default();
            if task.state.is_terminal() && task.pending.is_empty() {
                framework.completed_tasks.push_back(task);
                continue;
            }
            if !task.state.is_terminal() {
                self.used.add(&task.resources);
            }
            framework.tasks.insert(task.id().clone(), task);
        }
        self.frameworks.insert(id, framework);
    }

    /// Container ids of the tasks the master believes are not terminal.
    pub fn live_containers(&self) -> Vec<String> {
        self.frameworks
            .values()
            .flat_map(|f| f.tasks.values())
            .filter(|t| !t.state.is_terminal())
            .filter_map(|t| t.container_id.clone())
            .collect()
    }

    // ------------------------------------------------------------ outputs

    /// The next action for the IO layer. Drain after every input.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Master::handle_timeout`] must next run: the earliest failover
    /// deadline, offer filter expiry or status update resend.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for f in self.frameworks.values() {
            consider(f.failover_deadline);
            consider(f.refused_until.values().copied().min());
            for t in f.tasks.values() {
                consider(t.resend_at);
            }
        }
        next
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, clock: Clock) {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.failover_deadline.is_some_and(|d| clock.mono >= d))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            tracing::info!(framework_id = %id, "failover timeout passed; removing the framework");
            self.remove_framework(clock, &id);
        }
        let mut filters_expired = false;
        for f in self.frameworks.values_mut() {
            let before = f.refused_until.len();
            f.refused_until.retain(|_, until| *until > clock.mono);
            filters_expired |= f.refused_until.len() != before;
        }
        self.resend_due_updates(clock);
        if filters_expired {
            self.allocate(clock);
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn framework_id_for(&mut self) -> FrameworkId {
        let id = FrameworkId::new(format!("{}-{:04}", self.config.master_id, self.next_framework));
        self.next_framework += 1;
        id
    }

    fn offer_id_for(&mut self) -> String {
        let id = format!("{}-O{}", self.config.master_id, self.next_offer);
        self.next_offer += 1;
        id
    }

    /// Sends `event` to the framework if it is connected; updates that are not
    /// delivered now are resent when it resubscribes.
    fn send(&mut self, framework_id: &FrameworkId, event: Event) {
        let Some(stream_id) = self.frameworks.get(framework_id).and_then(|f| f.stream_id.clone()) else { return };
        self.push(Action::Send { framework_id: framework_id.clone(), stream_id, event });
    }
}

#[cfg(test)]
mod tests;
