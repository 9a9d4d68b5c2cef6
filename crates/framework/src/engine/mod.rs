//! The compose framework's scheduler as a plain state machine: inputs (Mesos
//! events, user commands, the clock) in, [`Action`]s out. No IO, no clock and
//! no randomness of its own, so every path (failover, reconciliation, restarts)
//! is tested deterministically.
//!
//! Invariants:
//! - a replica has at most one live task (launching, staging, running, killing, unreachable);
//! - records are persisted before the call that depends on them: a task before
//!   the ACCEPT that launches it, an update before its acknowledgement;
//! - offers are never held: each is accepted or declined in the round it came.

mod state;

use std::collections::{BTreeMap, BTreeSet};

use mesos::v1::scheduler::{Accept, CallKind, Decline, Kill, Reconcile, ReconcileTask, Revive, Suppress};
use mesos::v1::{AgentId, Filters, FrameworkId, Offer, Operation, TaskId, TaskState, TaskStatus};

pub use state::{Done, KillReason, ProjectRecord, ReplicaKey, ReplicaState, TaskRecord};

use crate::matching::{Misfit, OfferPool};
use crate::spec::{DependCondition, ProjectSpec, RestartWhen, ServiceSpec};
use crate::store::Write;
use crate::taskinfo::{TaskIdentity, task_info};

/// Longest wait between restarts of a crash-looping task.
pub const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// A task that fails sooner than this after it started counts as a quick failure.
pub const QUICK_FAILURE_MS: u64 = 10_000;
/// Quick failures in a row after which a replica is shown as crash-looping.
pub const CRASH_LOOP_AFTER: u32 = 3;
/// Refusal for offers m3s has no use for; REVIVE lifts it when work arrives.
pub const DECLINE_IDLE_SECONDS: f64 = 120.0;
/// Refusal for offers that did not fit pending work: resources may free up soon.
pub const DECLINE_BUSY_SECONDS: f64 = 5.0;
/// Ended tasks kept per replica for `ps` and the API.
const ENDED_KEPT_PER_REPLICA: usize = 1;
/// Default of [`Limits::max_replicas`]: far above what one service needs on a
/// small cluster, far below what would exhaust m3s's memory (each replica costs
/// a few hundred bytes of bookkeeping, each task about a kilobyte).
pub const DEFAULT_MAX_REPLICAS: u32 = 1000;
/// Default of [`Limits::max_total_replicas`].
pub const DEFAULT_MAX_TOTAL_REPLICAS: u32 = 10_000;

/// Caps on what a request or a compose file can ask of the engine, checked
/// before anything is allocated in proportion to the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Replicas of one service (`deploy.replicas`, `scale`); `--max-replicas`.
    pub max_replicas: u32,
    /// Replicas of every service of every project together; `--max-total-replicas`.
    pub max_total_replicas: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_replicas: DEFAULT_MAX_REPLICAS, max_total_replicas: DEFAULT_MAX_TOTAL_REPLICAS }
    }
}

pub const KEY_FRAMEWORK_ID: &str = "framework_id";
const PROJECT_PREFIX: &str = "project/";
const TASK_PREFIX: &str = "task/";

/// What the engine asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make these writes durable before executing the following actions.
    Persist(Vec<Write>),
    Call(CallKind),
    /// Acknowledge this update (it had a uuid).
    Acknowledge(TaskStatus),
}

/// Inputs from the Mesos side.
#[derive(Clone, Debug)]
pub enum Input {
    Subscribed {
        framework_id: FrameworkId,
    },
    Disconnected,
    Offers(Vec<Offer>),
    Update(Box<TaskStatus>),
    /// The master dropped the framework (failover timeout passed, torn down): its tasks are gone.
    Error {
        message: String,
    },
    /// The ACCEPT carrying these launches did not reach the master: they will never be reported.
    LaunchFailed {
        task_ids: Vec<String>,
        message: String,
    },
    /// Time passed; backoff timers may be due.
    Tick,
}

/// A stored record the engine cannot read back, named by its key.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}: not UTF-8")]
    NotUtf8(String),
    #[error("{key}: {source}")]
    Json { key: String, source: serde_json::Error },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no project named '{0}'")]
    UnknownProject(String),
    #[error("project '{project}' has no service named '{service}'")]
    UnknownService { project: String, service: String },
    #[error("no task with id '{0}'")]
    UnknownTask(String),
    #[error("project '{0}' is being removed; wait until `down` completes")]
    Removing(String),
    #[error("invalid project: {0}")]
    Invalid(String),
    /// A count above one of the [`Limits`]; the message names the limit and its flag.
    #[error("{0}")]
    Limit(String),
}

/// What a deploy changed, service by service.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeployOutcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

pub struct Engine {
    /// Distinguishes task ids of this process from those of earlier runs.
    instance: String,
    limits: Limits,
    next_seq: u64,
    framework_id: Option<FrameworkId>,
    subscribed: bool,
    /// Whether offers are suppressed; `None` right after subscribing (unknown).
    suppressed: Option<bool>,
    projects: BTreeMap<String, ProjectRecord>,
    tasks: BTreeMap<String, TaskRecord>,
    replicas: BTreeMap<ReplicaKey, ReplicaState>,
    /// Why each pending replica did not fit the last offers.
    misfits: BTreeMap<ReplicaKey, Misfit>,
    actions: Vec<Action>,
    dirty: BTreeSet<String>,
    now: u64,
}

impl Engine {
    /// A fresh engine; `instance` (a few random characters) keeps task ids unique across runs.
    pub fn new(instance: impl Into<String>) -> Engine {
        Engine {
            instance: instance.into(),
            limits: Limits::default(),
            next_seq: 0,
            framework_id: None,
            subscribed: false,
            suppressed: None,
            projects: BTreeMap::new(),
            tasks: BTreeMap::new(),
            replicas: BTreeMap::new(),
            misfits: BTreeMap::new(),
            actions: Vec::new(),
            dirty: BTreeSet::new(),
            now: 0,
        }
    }

    /// An engine from the store's contents; unreadable records are errors naming the key.
    pub fn restore(instance: impl Into<String>, records: &[(String, Vec<u8>)]) -> Result<Engine, RestoreError> {
        let mut engine = Engine::new(instance);
        let json = |key: &str| {
            let key = key.to_owned();
            move |source| RestoreError::Json { key, source }
        };
        for (key, value) in records {
            if key == KEY_FRAMEWORK_ID {
                let id = String::from_utf8(value.clone()).map_err(|_| RestoreError::NotUtf8(key.clone()))?;
                engine.framework_id = Some(FrameworkId::new(id));
            } else if let Some(name) = key.strip_prefix(PROJECT_PREFIX) {
                let p: ProjectRecord = serde_json::from_slice(value).map_err(json(key))?;
                engine.projects.insert(name.to_owned(), p);
            } else if let Some(id) = key.strip_prefix(TASK_PREFIX) {
                let t: TaskRecord = serde_json::from_slice(value).map_err(json(key))?;
                engine.tasks.insert(id.to_owned(), t);
            }
        }
        // A replica's state is not stored: it follows from its newest ended task,
        // so that a one-off job that completed is not run again by a restart.
        let mut ended: Vec<TaskRecord> = engine
            .tasks
            .values()
            .filter(|t| !t.is_live() && t.kill.is_none())
            .filter(|t| {
                !engine
                    .tasks
                    .values()
                    .any(|o| o.project == t.project && o.service == t.service && o.replica == t.replica && o.is_live())
            })
            .cloned()
            .collect();
        ended.sort_by_key(|t| t.ended_at_ms);
        for t in ended {
            if let Some(state) = t.state.clone() {
                engine.now = t.ended_at_ms.unwrap_or(0);
                engine.task_ended(&t, &state);
            }
        }
        engine.now = 0;
        Ok(engine)
    }

    /// The same engine with other limits (checked by later commands, not against what is deployed).
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    pub fn projects(&self) -> &BTreeMap<String, ProjectRecord> {
        &self.projects
    }

    pub fn tasks(&self) -> &BTreeMap<String, TaskRecord> {
        &self.tasks
    }

    pub fn replica_state(&self, key: &ReplicaKey) -> Option<&ReplicaState> {
        self.replicas.get(key)
    }

    pub fn misfit(&self, key: &ReplicaKey) -> Option<&Misfit> {
        self.misfits.get(key)
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// The actions produced so far, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.flush();
        std::mem::take(&mut self.actions)
    }

    /// When the engine next needs a [`Input::Tick`] (a backoff ends).
    pub fn next_wakeup(&self) -> Option<u64> {
        self.pending_replicas(u64::MAX)
            .into_iter()
            .filter_map(|k| self.replicas.get(&k).map(|r| r.next_start_ms))
            .filter(|&t| t > self.now)
            .min()
    }

    // ------------------------------------------------------------ inputs

    pub fn handle(&mut self, now: u64, input: Input) {
        self.now = now;
        match input {
            Input::Subscribed { framework_id } => self.subscribed(framework_id),
            Input::Disconnected => {
                self.subscribed = false;
                self.suppressed = None;
            }
            Input::Offers(offers) => self.offers(offers),
            Input::Update(status) => self.update(*status),
            Input::Error { message } => self.framework_removed(&message),
            Input::LaunchFailed { task_ids, message } => {
                for id in task_ids {
                    if self.tasks.get(&id).is_some_and(|t| t.state.is_none()) {
                        let status = TaskStatus {
                            task_id: TaskId::new(&id),
                            state: TaskState::Dropped,
                            message: Some(format!("the launch did not reach the master: {message}")),
                            ..Default::default()
                        };
                        self.apply_status(&status);
                    }
                }
            }
            Input::Tick => {}
        }
        self.converge();
    }

    fn subscribed(&mut self, framework_id: FrameworkId) {
        if self.framework_id.as_ref() != Some(&framework_id) {
            self.framework_id = Some(framework_id);
            self.dirty.insert(KEY_FRAMEWORK_ID.to_owned());
        }
        self.subscribed = true;
        self.suppressed = None;
        self.flush();
        // Explicit reconciliation of every task we believe live, then implicit
        // reconciliation to learn of tasks we do not know (they are killed).
        let tasks: Vec<ReconcileTask> = self
            .tasks
            .values()
            .filter(|t| t.is_live())
            .map(|t| ReconcileTask { task_id: TaskId::new(&t.task_id), agent_id: Some(t.agent_id.clone()) })
            .collect();
        if !tasks.is_empty() {
            self.call(CallKind::Reconcile(Reconcile { tasks }));
        }
        self.call(CallKind::Reconcile(Reconcile { tasks: Vec::new() }));
        // Kills sent before a failover may have been lost.
        let kills: Vec<(String, AgentId)> = self
            .tasks
            .values()
            .filter(|t| t.is_live() && t.kill.is_some())
            .map(|t| (t.task_id.clone(), t.agent_id.clone()))
            .collect();
        for (id, agent) in kills {
            self.kill_call(&id, Some(agent));
        }
    }

    fn framework_removed(&mut self, message: &str) {
        // The master has torn the framework down with its tasks: start over with a new id.
        self.framework_id = None;
        self.subscribed = false;
        self.suppressed = None;
        self.dirty.insert(KEY_FRAMEWORK_ID.to_owned());
        let ids: Vec<String> = self.tasks.values().filter(|t| t.is_live()).map(|t| t.task_id.clone()).collect();
        for id in ids {
            let status = TaskStatus {
                task_id: TaskId::new(&id),
                state: TaskState::Lost,
                message: Some(format!("the master removed the framework: {message}")),
                ..Default::default()
            };
            self.apply_status(&status);
        }
    }

    fn offers(&mut self, offers: Vec<Offer>) {
        let mut pending = self.pending_replicas(self.now);
        let mut declined = Vec::new();
        let mut placed_on: BTreeMap<(String, String, AgentId), u32> = BTreeMap::new();
        for t in self.tasks.values().filter(|t| t.is_live()) {
            *placed_on.entry((t.project.clone(), t.service.clone(), t.agent_id.clone())).or_default() += 1;
        }
        for offer in offers {
            if !self.subscribed || pending.is_empty() {
                declined.push(offer.id);
                continue;
            }
            let mut pool = OfferPool::new(&offer);
            let mut launches = Vec::new();
            let mut left = Vec::new();
            for key in std::mem::take(&mut pending) {
                let ReplicaKey { project, service, replica } = &key;
                let Some(spec) = self.projects.get(project).and_then(|p| p.spec.services.get(service)).cloned() else {
                    continue;
                };
                let per_node = placed_on.entry((project.clone(), service.clone(), offer.agent_id.clone())).or_default();
                if let Some(max) = spec.max_per_node.filter(|max| *per_node >= *max) {
                    self.misfits.insert(key.clone(), Misfit::PerNode { max });
                    left.push(key);
                    continue;
                }
                match pool.take(&spec) {
                    Ok(taken) => {
                        *per_node += 1;
                        self.misfits.remove(&key);
                        let task_id = self.new_task_id(&spec);
                        let generation = self.projects[project].generations.get(service).copied().unwrap_or(1);
                        let identity = TaskIdentity {
                            task_id: &task_id,
                            agent_id: &offer.agent_id,
                            project,
                            service,
                            replica: *replica,
                        };
                        launches.push(task_info(&spec, &identity, &taken));
                        self.tasks.insert(
                            task_id.clone(),
                            TaskRecord {
                                task_id: task_id.clone(),
                                project: project.clone(),
                                service: service.clone(),
                                replica: *replica,
                                generation,
                                state: None,
                                healthy: None,
                                agent_id: offer.agent_id.clone(),
                                hostname: offer.hostname.clone(),
                                host_ports: taken.host_ports,
                                launched_at_ms: self.now,
                                running_since_ms: None,
                                ended_at_ms: None,
                                message: None,
                                kill: None,
                            },
                        );
                        self.dirty.insert(format!("{TASK_PREFIX}{task_id}"));
                        self.prune_ended(project, service, *replica);
                    }
                    Err(misfit) => {
                        self.misfits.insert(key.clone(), misfit);
                        left.push(key);
                    }
                }
            }
            pending = left;
            if launches.is_empty() {
                declined.push(offer.id);
            } else {
                // The tasks are durable before the master hears of them.
                self.flush();
                let refuse = if pending.is_empty() { DECLINE_IDLE_SECONDS } else { DECLINE_BUSY_SECONDS };
                self.call(CallKind::Accept(Accept {
                    offer_ids: vec![offer.id],
                    operations: vec![Operation::launch(launches)],
                    filters: Some(Filters { refuse_seconds: refuse }),
                }));
            }
        }
        if !declined.is_empty() {
            let refuse = if pending.is_empty() { DECLINE_IDLE_SECONDS } else { DECLINE_BUSY_SECONDS };
            self.call(CallKind::Decline(Decline {
                offer_ids: declined,
                filters: Some(Filters { refuse_seconds: refuse }),
            }));
        }
    }

    fn update(&mut self, status: TaskStatus) {
        let known = self.tasks.contains_key(&status.task_id.value);
        if known {
            self.apply_status(&status);
        } else if !status.state.is_terminal() && status.state != TaskState::TaskUnknown {
            // A task of this framework that m3s has no record of (launched before a
            // crash that lost its record, or by someone else with our id): not ours to keep.
            tracing::warn!(task = %status.task_id, "killing a task this framework does not know");
            self.kill_call(&status.task_id.value, status.agent_id.clone());
        }
        self.flush();
        if status.uuid.is_some() {
            self.actions.push(Action::Acknowledge(status));
        }
    }

    fn apply_status(&mut self, status: &TaskStatus) {
        let now = self.now;
        let Some(task) = self.tasks.get_mut(&status.task_id.value) else { return };
        if task.state.as_ref().is_some_and(TaskState::is_terminal) {
            return; // already ended; a late duplicate
        }
        // Reconciliation answers for a task the master never saw say GONE/UNKNOWN/LOST.
        task.state = Some(status.state.clone());
        if status.healthy.is_some() {
            task.healthy = status.healthy;
        }
        if let Some(agent) = &status.agent_id {
            task.agent_id = agent.clone();
        }
        if let Some(m) = status.message.as_ref().filter(|m| !m.is_empty()) {
            task.message = Some(m.clone());
        }
        if status.state == TaskState::Running && task.running_since_ms.is_none() {
            task.running_since_ms = Some(now);
        }
        let ended = status.state.is_terminal() || status.state == TaskState::TaskUnknown;
        let task = task.clone();
        self.dirty.insert(format!("{TASK_PREFIX}{}", task.task_id));
        if ended {
            if let Some(t) = self.tasks.get_mut(&task.task_id) {
                t.ended_at_ms = Some(now);
                t.state =
                    Some(if status.state == TaskState::TaskUnknown { TaskState::Gone } else { status.state.clone() });
            }
            self.task_ended(&task, &status.state);
        }
    }

    /// Applies the restart policy to the replica of a task that just ended.
    fn task_ended(&mut self, task: &TaskRecord, state: &TaskState) {
        let key = ReplicaKey::new(&task.project, &task.service, task.replica);
        let Some(spec) = self.projects.get(&task.project).and_then(|p| p.spec.services.get(&task.service)).cloned()
        else {
            return;
        };
        let now = self.now;
        let replica = self.replicas.entry(key).or_default();
        if task.kill.is_some() {
            // Killed by m3s: the replica (if still wanted) starts again at once.
            replica.next_start_ms = now;
            return;
        }
        let infrastructure = matches!(
            state,
            TaskState::Lost | TaskState::Gone | TaskState::GoneByOperator | TaskState::Dropped | TaskState::TaskUnknown
        );
        if *state == TaskState::Error {
            replica.done = Some(Done::Failed(format!(
                "the master refused the task: {}",
                task.message.as_deref().unwrap_or("TASK_ERROR")
            )));
            return;
        }
        let failed = *state != TaskState::Finished;
        let restart = infrastructure
            || match spec.restart.when {
                RestartWhen::Never => false,
                RestartWhen::OnFailure => failed,
                RestartWhen::Always => true,
            };
        if !restart {
            replica.done = Some(if failed {
                match task.message.as_deref().filter(|m| !m.is_empty()) {
                    // What the task's last update said is what the user needs to see.
                    Some(m) => Done::Failed(format!("{}: {m} (restart is off)", state.as_str())),
                    None => Done::Failed(format!("{} and restart is off", state.as_str())),
                }
            } else {
                Done::Completed
            });
            return;
        }
        if !infrastructure {
            if let Some(window) = spec.restart.window_ms {
                while replica.attempts.front().is_some_and(|&t| t + window < now) {
                    replica.attempts.pop_front();
                }
            }
            if let Some(max) = spec.restart.max_attempts
                && replica.attempts.len() as u32 >= max
            {
                replica.done = Some(Done::Failed(format!("gave up after {max} restart attempts")));
                return;
            }
            replica.attempts.push_back(now);
        }
        let ran_for = task.running_since_ms.map_or(0, |since| now.saturating_sub(since));
        let delay = if infrastructure {
            0 // not the task's fault: start it again at once
        } else if failed && ran_for < QUICK_FAILURE_MS {
            replica.quick_failures += 1;
            let base = spec.restart.delay_ms.max(500);
            base.saturating_mul(1 << (replica.quick_failures - 1).min(20)).min(MAX_BACKOFF_MS)
        } else {
            replica.quick_failures = 0;
            spec.restart.delay_ms
        };
        replica.next_start_ms = now + delay;
    }

    // ------------------------------------------------------------ commands

    /// Deploys a project, or changes a deployed one: new services start, changed
    /// ones are replaced one replica at a time, unchanged ones keep their tasks,
    /// services no longer in the spec are stopped.
    pub fn deploy(&mut self, now: u64, spec: ProjectSpec) -> Result<DeployOutcome, CommandError> {
        self.now = now;
        validate_project(&spec)?;
        for (service, s) in &spec.services {
            self.check_replicas(&spec.name, service, s.replicas, &format!("services.{service}.deploy.replicas"))?;
        }
        let others = self.total_replicas_except(&spec.name, None);
        let total = others + spec.services.values().map(|s| u64::from(s.replicas)).sum::<u64>();
        self.check_total(total)?;
        let mut outcome = DeployOutcome::default();
        let name = spec.name.clone();
        let (mut generations, old) = match self.projects.get(&name) {
            Some(p) if p.removing => return Err(CommandError::Removing(name)),
            Some(p) => (p.generations.clone(), Some(p.spec.clone())),
            None => (BTreeMap::new(), None),
        };
        for (service, s) in &spec.services {
            let previous = old.as_ref().and_then(|o| o.services.get(service));
            match previous {
                None => {
                    outcome.created.push(service.clone());
                    *generations.entry(service.clone()).or_insert(0) += 1;
                }
                Some(p) if p == s => outcome.unchanged.push(service.clone()),
                // Only the count changed: tasks are added or removed, the others kept (as compose scales).
                Some(p) if ServiceSpec { replicas: s.replicas, ..p.clone() } == *s => {
                    outcome.updated.push(service.clone());
                }
                Some(_) => {
                    outcome.updated.push(service.clone());
                    *generations.entry(service.clone()).or_insert(0) += 1;
                    self.reset_replicas(&name, service);
                }
            }
            if previous.is_none() {
                self.reset_replicas(&name, service);
            }
        }
        if let Some(o) = &old {
            for service in o.services.keys().filter(|s| !spec.services.contains_key(*s)) {
                outcome.removed.push(service.clone());
                generations.remove(service);
            }
        }
        self.projects
            .insert(name.clone(), ProjectRecord { spec, generations, scale: BTreeMap::new(), removing: false });
        self.dirty.insert(format!("{PROJECT_PREFIX}{name}"));
        self.converge();
        Ok(outcome)
    }

    /// `down`: kills every task of the project, then forgets it.
    pub fn remove(&mut self, now: u64, project: &str) -> Result<(), CommandError> {
        self.now = now;
        let p = self.projects.get_mut(project).ok_or_else(|| CommandError::UnknownProject(project.into()))?;
        p.removing = true;
        self.dirty.insert(format!("{PROJECT_PREFIX}{project}"));
        self.converge();
        Ok(())
    }

    pub fn scale(&mut self, now: u64, project: &str, service: &str, replicas: u32) -> Result<(), CommandError> {
        self.now = now;
        self.project_mut(project, service)?;
        self.check_replicas(project, service, replicas, "replicas")?;
        self.check_total(self.total_replicas_except(project, Some(service)) + u64::from(replicas))?;
        let p = self.project_mut(project, service)?;
        p.scale.insert(service.to_owned(), replicas);
        self.dirty.insert(format!("{PROJECT_PREFIX}{project}"));
        self.converge();
        Ok(())
    }

    /// Drops the service's `scale` override: back to the replicas of its spec (`compose start`).
    pub fn unscale(&mut self, now: u64, project: &str, service: &str) -> Result<(), CommandError> {
        self.now = now;
        let p = self.project_mut(project, service)?;
        let Some(scaled) = p.scale.remove(service) else { return Ok(()) };
        let own = u64::from(p.replicas(service));
        if let Err(e) = self.check_total(self.total_replicas_except(project, Some(service)) + own) {
            // Over the limit with the spec's count: the override stays.
            self.project_mut(project, service)?.scale.insert(service.to_owned(), scaled);
            return Err(e);
        }
        self.dirty.insert(format!("{PROJECT_PREFIX}{project}"));
        self.converge();
        Ok(())
    }

    /// Kills every task of the service; each replica starts again at once.
    pub fn restart(&mut self, now: u64, project: &str, service: &str) -> Result<(), CommandError> {
        self.now = now;
        self.project_mut(project, service)?;
        self.reset_replicas(project, service);
        let ids: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.project == project && t.service == service && t.is_live())
            .map(|t| t.task_id.clone())
            .collect();
        for id in ids {
            self.kill_task_for(&id, KillReason::Restart);
        }
        self.converge();
        Ok(())
    }

    /// Kills one task; its replica starts again.
    pub fn kill_task(&mut self, now: u64, task_id: &str) -> Result<(), CommandError> {
        self.now = now;
        match self.tasks.get(task_id) {
            Some(t) if t.is_live() => {}
            _ => return Err(CommandError::UnknownTask(task_id.into())),
        }
        self.kill_task_for(task_id, KillReason::User);
        self.converge();
        Ok(())
    }

    /// Records the health of a live task of a service with `external_health`, as
    /// its framework observed it; dependents waiting for it may start.
    pub fn set_health(&mut self, now: u64, task_id: &str, healthy: bool) -> Result<(), CommandError> {
        self.now = now;
        let task = match self.tasks.get_mut(task_id) {
            Some(t) if t.is_live() => t,
            _ => return Err(CommandError::UnknownTask(task_id.into())),
        };
        if task.healthy != Some(healthy) {
            task.healthy = Some(healthy);
            self.dirty.insert(format!("{TASK_PREFIX}{task_id}"));
            self.converge();
        }
        Ok(())
    }

    /// Forgets the framework id (mesos-compose's `reregister`): the next subscription gets a new one.
    pub fn forget_framework(&mut self) {
        self.framework_id = None;
        self.dirty.insert(KEY_FRAMEWORK_ID.to_owned());
    }

    fn project_mut(&mut self, project: &str, service: &str) -> Result<&mut ProjectRecord, CommandError> {
        let p = self.projects.get_mut(project).ok_or_else(|| CommandError::UnknownProject(project.into()))?;
        if p.removing {
            return Err(CommandError::Removing(project.into()));
        }
        if !p.spec.services.contains_key(service) {
            return Err(CommandError::UnknownService { project: project.into(), service: service.into() });
        }
        Ok(p)
    }

    fn check_replicas(&self, project: &str, service: &str, replicas: u32, key: &str) -> Result<(), CommandError> {
        let max = self.limits.max_replicas;
        if replicas > max {
            return Err(CommandError::Limit(format!(
                "{key}: {replicas} replicas of service '{service}' in project '{project}' is above the limit of \
                 {max} per service (--max-replicas)"
            )));
        }
        Ok(())
    }

    fn check_total(&self, total: u64) -> Result<(), CommandError> {
        let max = self.limits.max_total_replicas;
        if total > u64::from(max) {
            return Err(CommandError::Limit(format!(
                "this would make {total} replicas in all projects, above the limit of {max} (--max-total-replicas)"
            )));
        }
        Ok(())
    }

    /// Desired replicas of every project but `project` (or, with `service`, of
    /// everything but that one service of `project`).
    fn total_replicas_except(&self, project: &str, service: Option<&str>) -> u64 {
        self.projects
            .iter()
            .flat_map(|(name, p)| p.spec.services.keys().map(move |s| (name, s, p)))
            .filter(|(name, s, _)| match service {
                None => name.as_str() != project,
                Some(service) => !(name.as_str() == project && s.as_str() == service),
            })
            .map(|(_, s, p)| u64::from(p.replicas(s)))
            .sum()
    }

    fn reset_replicas(&mut self, project: &str, service: &str) {
        self.replicas.retain(|k, _| !(k.project == project && k.service == service));
    }

    // ------------------------------------------------------------ convergence

    /// Brings actual state toward desired state: kills what must go, rolls
    /// updates forward, asks for offers only while something waits for them.
    fn converge(&mut self) {
        let mut kills = Vec::new();
        for t in self.tasks.values().filter(|t| t.is_live() && t.kill.is_none()) {
            let Some(p) = self.projects.get(&t.project) else {
                kills.push((t.task_id.clone(), KillReason::Remove));
                continue;
            };
            if p.removing || !p.spec.services.contains_key(&t.service) {
                kills.push((t.task_id.clone(), KillReason::Remove));
            } else if t.replica >= p.replicas(&t.service) {
                kills.push((t.task_id.clone(), KillReason::ScaleDown));
            }
        }
        for (id, reason) in kills {
            self.kill_task_for(&id, reason);
        }
        self.roll_updates();

        // Projects being removed are forgotten once nothing of theirs is live.
        let gone: Vec<String> = self
            .projects
            .iter()
            .filter(|(name, p)| p.removing && !self.tasks.values().any(|t| &t.project == *name && t.is_live()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.projects.remove(&name);
            self.dirty.insert(format!("{PROJECT_PREFIX}{name}"));
            let ids: Vec<String> =
                self.tasks.values().filter(|t| t.project == name).map(|t| t.task_id.clone()).collect();
            for id in ids {
                self.tasks.remove(&id);
                self.dirty.insert(format!("{TASK_PREFIX}{id}"));
            }
            self.replicas.retain(|k, _| k.project != name);
            self.misfits.retain(|k, _| k.project != name);
        }

        if self.subscribed {
            let wanted = !self.pending_replicas(self.now).is_empty();
            if wanted && self.suppressed != Some(false) {
                self.call(CallKind::Revive(Revive::default()));
                self.suppressed = Some(false);
            } else if !wanted && self.suppressed != Some(true) {
                self.call(CallKind::Suppress(Suppress::default()));
                self.suppressed = Some(true);
            }
        }
    }

    /// Replaces tasks of an older generation one replica at a time (stop first,
    /// as compose does by default): the next old task is stopped only when every
    /// other replica of the service runs the new spec and is ready.
    fn roll_updates(&mut self) {
        let mut kills = Vec::new();
        for (name, p) in &self.projects {
            if p.removing {
                continue;
            }
            for (service, spec) in &p.spec.services {
                let generation = p.generations.get(service).copied().unwrap_or(1);
                let live: Vec<&TaskRecord> = self
                    .tasks
                    .values()
                    .filter(|t| &t.project == name && &t.service == service && t.is_live())
                    .collect();
                let old: Vec<&&TaskRecord> = live.iter().filter(|t| t.generation < generation).collect();
                if old.is_empty() || old.iter().any(|t| t.kill.is_some()) {
                    continue;
                }
                let replicas = p.replicas(service);
                let all_others_ready = (0..replicas).all(|r| {
                    old.iter().any(|t| t.replica == r)
                        || live.iter().any(|t| t.replica == r && t.generation == generation && is_ready(t, spec))
                        || self.replicas.get(&ReplicaKey::new(name, service, r)).is_some_and(|s| s.done.is_some())
                });
                if all_others_ready && let Some(t) = old.iter().min_by_key(|t| t.replica) {
                    kills.push(t.task_id.clone());
                }
            }
        }
        for id in kills {
            self.kill_task_for(&id, KillReason::Update);
        }
    }

    /// Replicas that need a task now (`due_by`: with backoff ending by then), in
    /// start order: projects by name, services after their dependencies.
    fn pending_replicas(&self, due_by: u64) -> Vec<ReplicaKey> {
        let mut out = Vec::new();
        for (name, p) in &self.projects {
            if p.removing {
                continue;
            }
            for service in start_order(&p.spec) {
                let spec = &p.spec.services[&service];
                if !self.dependencies_met(name, p, spec) {
                    continue;
                }
                for r in 0..p.replicas(&service) {
                    let key = ReplicaKey::new(name, &service, r);
                    let occupied = self
                        .tasks
                        .values()
                        .any(|t| t.project == *name && t.service == service && t.replica == r && t.is_live());
                    if occupied {
                        continue;
                    }
                    match self.replicas.get(&key) {
                        Some(s) if s.done.is_some() || s.next_start_ms > due_by => continue,
                        _ => out.push(key),
                    }
                }
            }
        }
        out
    }

    /// The dependencies of a service that do not meet their condition now.
    pub fn unmet_dependencies(&self, project: &str, service: &str) -> Vec<(String, DependCondition)> {
        let Some(p) = self.projects.get(project) else { return Vec::new() };
        let Some(spec) = p.spec.services.get(service) else { return Vec::new() };
        spec.depends_on
            .iter()
            .filter(|(dep, condition)| !self.dependency_met(project, p, dep, **condition))
            .map(|(d, c)| (d.clone(), *c))
            .collect()
    }

    fn dependencies_met(&self, project: &str, p: &ProjectRecord, spec: &ServiceSpec) -> bool {
        spec.depends_on.iter().all(|(dep, condition)| self.dependency_met(project, p, dep, *condition))
    }

    fn dependency_met(&self, project: &str, p: &ProjectRecord, dep: &str, condition: DependCondition) -> bool {
        let Some(dep_spec) = p.spec.services.get(dep) else { return true };
        let generation = p.generations.get(dep).copied().unwrap_or(1);
        (0..p.replicas(dep)).all(|r| {
            let key = ReplicaKey::new(project, dep, r);
            let done = self.replicas.get(&key).and_then(|s| s.done.clone());
            let current = self.tasks.values().find(|t| {
                t.project == project && t.service == dep && t.replica == r && t.generation == generation && t.is_live()
            });
            match condition {
                DependCondition::ServiceStarted => current.is_some_and(TaskRecord::is_running) || done.is_some(),
                DependCondition::ServiceHealthy => current.is_some_and(|t| is_ready(t, dep_spec)),
                DependCondition::ServiceCompletedSuccessfully => done == Some(Done::Completed),
            }
        })
    }

    fn kill_task_for(&mut self, task_id: &str, reason: KillReason) {
        let Some(t) = self.tasks.get_mut(task_id) else { return };
        t.kill = Some(reason);
        let agent = t.agent_id.clone();
        self.dirty.insert(format!("{TASK_PREFIX}{task_id}"));
        self.kill_call(task_id, Some(agent));
    }

    fn kill_call(&mut self, task_id: &str, agent_id: Option<AgentId>) {
        if !self.subscribed {
            return; // re-sent after the next subscription
        }
        self.call(CallKind::Kill(Kill {
            task_id: TaskId::new(task_id),
            agent_id: agent_id.filter(|a| !a.value.is_empty()),
            kill_policy: None,
        }));
    }

    /// Keeps the newest ended tasks of a replica, forgets older ones.
    fn prune_ended(&mut self, project: &str, service: &str, replica: u32) {
        let mut ended: Vec<(u64, String)> = self
            .tasks
            .values()
            .filter(|t| t.project == project && t.service == service && t.replica == replica && !t.is_live())
            .map(|t| (t.ended_at_ms.unwrap_or(0), t.task_id.clone()))
            .collect();
        ended.sort();
        let excess = ended.len().saturating_sub(ENDED_KEPT_PER_REPLICA);
        for (_, id) in ended.into_iter().take(excess) {
            self.tasks.remove(&id);
            self.dirty.insert(format!("{TASK_PREFIX}{id}"));
        }
    }

    fn new_task_id(&mut self, spec: &ServiceSpec) -> String {
        self.next_seq += 1;
        format!("{}.{}{:x}", spec.task_name, self.instance, self.next_seq)
    }

    fn call(&mut self, kind: CallKind) {
        self.actions.push(Action::Call(kind));
    }

    /// Turns the records changed since the last flush into one Persist action.
    fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let writes = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|key| {
                let value = if key == KEY_FRAMEWORK_ID {
                    self.framework_id.as_ref().map(|id| id.value.clone().into_bytes())
                } else if let Some(name) = key.strip_prefix(PROJECT_PREFIX) {
                    self.projects.get(name).map(|p| serde_json::to_vec(p).expect("records serialize"))
                } else if let Some(id) = key.strip_prefix(TASK_PREFIX) {
                    self.tasks.get(id).map(|t| serde_json::to_vec(t).expect("records serialize"))
                } else {
                    None
                };
                Write { key, value }
            })
            .collect();
        self.actions.push(Action::Persist(writes));
    }
}

/// Running, and healthy when the service has a health check (its own or an external one).
pub fn is_ready(t: &TaskRecord, spec: &ServiceSpec) -> bool {
    t.is_running() && ((spec.health.is_none() && !spec.external_health) || t.healthy == Some(true))
}

/// Services in an order where dependencies come first (names break ties);
/// services on a dependency cycle (rejected at deploy) come last, by name.
pub fn start_order(spec: &ProjectSpec) -> Vec<String> {
    match ordered(spec) {
        Ok(order) => order,
        Err(mut order) => {
            for name in spec.services.keys() {
                if !order.contains(name) {
                    order.push(name.clone());
                }
            }
            order
        }
    }
}

/// The dependency order, or the part of it before a cycle.
fn ordered(spec: &ProjectSpec) -> Result<Vec<String>, Vec<String>> {
    let mut order = Vec::new();
    let mut placed = BTreeSet::new();
    while placed.len() < spec.services.len() {
        let before = placed.len();
        for (name, s) in &spec.services {
            if !placed.contains(name)
                && s.depends_on.keys().all(|d| placed.contains(d) || !spec.services.contains_key(d))
            {
                placed.insert(name.clone());
                order.push(name.clone());
            }
        }
        if placed.len() == before {
            return Err(order);
        }
    }
    Ok(order)
}

fn validate_project(spec: &ProjectSpec) -> Result<(), CommandError> {
    crate::spec::check_project_name(&spec.name).map_err(|e| CommandError::Invalid(e.to_string()))?;
    for (name, s) in &spec.services {
        for dep in s.depends_on.keys() {
            if !spec.services.contains_key(dep) {
                return Err(CommandError::Invalid(format!("service '{name}' depends on unknown service '{dep}'")));
            }
        }
    }
    if let Err(order) = ordered(spec) {
        let cycle: Vec<&String> = spec.services.keys().filter(|s| !order.contains(s)).collect();
        return Err(CommandError::Invalid(format!("dependency cycle among services {cycle:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
