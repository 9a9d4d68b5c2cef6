//! Scheduler calls: SUBSCRIBE, and every call of a subscribed framework, with
//! Mesos's validation order, status codes and messages.

use std::collections::BTreeSet;
use std::time::Duration;

use mesos::v1::operator::Event as OperatorEvent;
use mesos::v1::operator::event::{FrameworkChanged, FrameworkRemoved, TaskAdded};
use mesos::v1::operator::response::Framework as OperatorFramework;
use mesos::v1::scheduler::{Accept, Call, CallKind, Decline, Event, Kill, Reconcile, Subscribe, Subscribed};
use mesos::v1::{
    Address, Filters, FrameworkCapabilityType, FrameworkId, MasterInfo, Operation, OperationType, TaskId, TaskInfo,
    TaskState, TaskStatus, TaskStatusReason,
};

use super::state::{Framework, Task};
use super::{Action, Clock, MAX_COMPLETED_FRAMEWORKS, Master};
use crate::resources::Resources;

/// A refused call: the HTTP status and Mesos's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct CallError {
    pub status: u16,
    pub message: String,
}

impl CallError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        CallError { status, message: message.into() }
    }
}

/// Why a SUBSCRIBE got an ERROR event instead of SUBSCRIBED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRefusal(pub String);

/// Refuse filters above a year are capped, as Mesos caps them.
const MAX_REFUSE: Duration = Duration::from_secs(365 * 86400);

impl Master {
    /// SUBSCRIBE. On success returns the framework id and the new stream id;
    /// the SUBSCRIBED event (and any offers) are queued as actions.
    pub fn subscribe(
        &mut self,
        clock: Clock,
        framework_id: Option<FrameworkId>,
        subscribe: Subscribe,
    ) -> Result<(FrameworkId, String), SubscribeRefusal> {
        let info = subscribe.framework_info;
        if framework_id != info.id {
            return Err(SubscribeRefusal("'framework_id' differs from 'subscribe.framework_info.id'".into()));
        }
        validate_framework_info(&info).map_err(|e| SubscribeRefusal(e.to_string()))?;
        if let Some(id) = &info.id
            && self.completed_frameworks.iter().any(|f| &f.id == id)
        {
            return Err(SubscribeRefusal("Framework has been removed".into()));
        }
        if let Some(id) = &info.id
            && let Some(existing) = self.frameworks.get(id)
            && existing.info.principal != info.principal
        {
            // Mesos binds a framework to its principal: another principal (or none)
            // subscribing with this id would take over its tasks.
            return Err(SubscribeRefusal(format!(
                "Changing framework's principal is not allowed: framework {id} belongs to principal '{}', not '{}'",
                existing.info.principal.as_deref().unwrap_or(""),
                info.principal.as_deref().unwrap_or("")
            )));
        }
        let stream_id = self.ids.uuid_string();
        let (fid, resubscribed) = match info.id.clone() {
            Some(id) => {
                let resubscribed = self.frameworks.contains_key(&id);
                if !resubscribed {
                    // A framework the master does not know (e.g. after a master
                    // failover without its checkpoint): accepted with its id, as Mesos does.
                    self.frameworks.insert(id.clone(), Framework::new(id.clone(), info.clone(), clock.unix));
                }
                (id, resubscribed)
            }
            None => {
                let id = self.framework_id_for();
                let mut info = info.clone();
                info.id = Some(id.clone());
                self.frameworks.insert(id.clone(), Framework::new(id.clone(), info, clock.unix));
                (id, false)
            }
        };
        let framework = self.frameworks.get_mut(&fid).expect("inserted above");
        if let Some(old) = framework.stream_id.replace(stream_id.clone()) {
            self.actions.push_back(Action::CloseStream { stream_id: old });
        }
        let framework = self.frameworks.get_mut(&fid).expect("inserted above");
        let mut info = info;
        info.id = Some(fid.clone());
        framework.info = info;
        framework.failover_deadline = None;
        framework.unregistered_time = None;
        framework.suppressed_roles = subscribe.suppressed_roles.into_iter().collect();
        if resubscribed {
            framework.reregistered_time = Some(clock.unix);
        }
        let snapshot = operator_framework(framework);
        self.push(Action::CheckpointFramework(fid.clone()));
        self.push(Action::Operator(Box::new(if resubscribed {
            OperatorEvent::FrameworkUpdated(FrameworkChanged { framework: snapshot })
        } else {
            OperatorEvent::FrameworkAdded(FrameworkChanged { framework: snapshot })
        })));
        let master_info = self.master_info();
        self.send(
            &fid,
            Event::Subscribed(Subscribed {
                framework_id: fid.clone(),
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
                master_info: Some(master_info),
            }),
        );
        self.send(&fid, Event::Heartbeat);
        self.redeliver_all(clock, &fid);
        self.allocate(clock);
        Ok((fid, stream_id))
    }

    /// A non-SUBSCRIBE call. `stream_id` is the request's `Mesos-Stream-Id`.
    pub fn handle_call(&mut self, clock: Clock, stream_id: Option<&str>, call: Call) -> Result<(), CallError> {
        let Some(fid) = call.framework_id.clone() else {
            return Err(CallError::new(
                400,
                "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
            ));
        };
        let Some(framework) = self.frameworks.get(&fid) else {
            return Err(CallError::new(400, "Framework cannot be found"));
        };
        let Some(current) = framework.stream_id.as_deref() else {
            return Err(CallError::new(403, "Framework is not subscribed"));
        };
        let Some(given) = stream_id else {
            return Err(CallError::new(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"));
        };
        if given != current {
            return Err(CallError::new(
                400,
                format!(
                    "The stream ID '{given}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
                ),
            ));
        }
        match call.kind {
            CallKind::Subscribe(_) => {
                return Err(CallError::new(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"));
            }
            CallKind::Teardown => {
                self.remove_framework(clock, &fid);
            }
            CallKind::Accept(accept) => self.accept(clock, &fid, accept),
            CallKind::Decline(Decline { offer_ids, filters }) => {
                let ids: Vec<String> = offer_ids.into_iter().map(|o| o.value).collect();
                self.decline(clock, &fid, &ids, filters);
            }
            CallKind::AcceptInverseOffers(_) | CallKind::DeclineInverseOffers(_) => {}
            CallKind::Revive(revive) => {
                let f = self.frameworks.get_mut(&fid).expect("checked above");
                if revive.roles.is_empty() {
                    f.suppressed_roles.clear();
                    f.refused_until.clear();
                } else {
                    for r in &revive.roles {
                        f.suppressed_roles.remove(r);
                        f.refused_until.remove(r);
                    }
                }
                self.allocate(clock);
            }
            CallKind::Suppress(suppress) => {
                let f = self.frameworks.get_mut(&fid).expect("checked above");
                let roles = if suppress.roles.is_empty() { f.roles() } else { suppress.roles };
                f.suppressed_roles.extend(roles);
            }
            CallKind::Kill(kill) => self.kill(clock, &fid, kill),
            CallKind::Shutdown(shutdown) => {
                // Command tasks run one per executor, named after the task.
                let kill = Kill { task_id: TaskId::new(shutdown.executor_id.value), agent_id: None, kill_policy: None };
                self.kill(clock, &fid, kill);
            }
            CallKind::Acknowledge(ack) => {
                if ack.uuid.0.len() != 16 {
                    return Err(CallError::new(400, "Failed to validate scheduler::Call: Not a valid UUID"));
                }
                if ack.agent_id != self.agent_id {
                    return Err(CallError::new(400, format!("Agent {} cannot be found", ack.agent_id)));
                }
                if !self.acknowledge_update(clock, &fid, &ack.task_id, &ack.uuid.0) {
                    tracing::debug!(framework_id = %fid, task_id = %ack.task_id, "acknowledgement of an unknown update ignored");
                }
            }
            CallKind::AcknowledgeOperationStatus(_) | CallKind::ReconcileOperations(_) => {}
            CallKind::Reconcile(reconcile) => self.reconcile(clock, &fid, reconcile),
            CallKind::Message(_) => {
                return Err(CallError::new(
                    400,
                    "Failed to validate scheduler::Call: MESSAGE needs a custom executor, which m3s mini does not run",
                ));
            }
            CallKind::Request(_) => {}
            CallKind::UpdateFramework(update) => {
                let f = self.frameworks.get_mut(&fid).expect("checked above");
                let mut info = update.framework_info;
                if info.id.as_ref() != Some(&fid) {
                    return Err(CallError::new(
                        400,
                        "Failed to validate scheduler::Call: 'framework_info.id' must equal 'framework_id'",
                    ));
                }
                validate_framework_info(&info)
                    .map_err(|m| CallError::new(400, format!("Failed to validate scheduler::Call: {m}")))?;
                info.user = f.info.user.clone();
                info.principal = f.info.principal.clone();
                info.checkpoint = f.info.checkpoint;
                f.info = info;
                f.suppressed_roles = update.suppressed_roles.into_iter().collect();
                let snapshot = operator_framework(f);
                self.push(Action::CheckpointFramework(fid.clone()));
                self.push(Action::Operator(Box::new(OperatorEvent::FrameworkUpdated(FrameworkChanged {
                    framework: snapshot,
                }))));
                self.allocate(clock);
            }
            CallKind::Unknown { type_name } => {
                return Err(CallError::new(501, format!("Received unexpected '{type_name}' call")));
            }
        }
        Ok(())
    }

    /// The framework's subscription stream ended (client went away).
    pub fn stream_closed(&mut self, clock: Clock, stream_id: &str) {
        let Some(framework) = self.frameworks.values_mut().find(|f| f.stream_id.as_deref() == Some(stream_id)) else {
            return;
        };
        framework.stream_id = None;
        framework.unregistered_time = Some(clock.unix);
        framework.failover_deadline = Some(clock.mono + framework.failover_timeout());
        for t in framework.tasks.values_mut() {
            t.resend_at = None;
        }
        let fid = framework.id.clone();
        let snapshot = operator_framework(framework);
        tracing::info!(framework_id = %fid, "framework disconnected; failover timeout started");
        self.push(Action::CheckpointFramework(fid.clone()));
        self.push(Action::Operator(Box::new(OperatorEvent::FrameworkUpdated(FrameworkChanged {
            framework: snapshot,
        }))));
        self.remove_offers_of(&fid);
        if self.frameworks[&fid].failover_timeout().is_zero() {
            self.remove_framework(clock, &fid);
        } else {
            self.allocate(clock);
        }
    }

    /// The operator's TEARDOWN; false when no such framework is registered.
    pub fn teardown(&mut self, clock: Clock, fid: &FrameworkId) -> bool {
        if !self.frameworks.contains_key(fid) {
            return false;
        }
        self.remove_framework(clock, fid);
        true
    }

    /// TEARDOWN or failover timeout: kill the tasks, forget the framework.
    pub(super) fn remove_framework(&mut self, clock: Clock, fid: &FrameworkId) {
        let Some(mut framework) = self.frameworks.remove(fid) else { return };
        if let Some(stream_id) = framework.stream_id.take() {
            self.push(Action::CloseStream { stream_id });
        }
        for task in framework.tasks.values_mut() {
            if !task.state.is_terminal() {
                self.used.subtract(&task.resources);
                if let Some(container_id) = &task.container_id {
                    self.push(Action::Kill { container_id: container_id.clone(), grace: kill_grace(&task.info, None) });
                }
                task.state = TaskState::Killed;
                self.counters.count_terminal(&TaskState::Killed);
            }
        }
        framework.removed_time = Some(clock.unix);
        framework.failover_deadline = None;
        let info = framework.info.clone();
        let tasks: Vec<Task> = std::mem::take(&mut framework.tasks).into_values().collect();
        framework.completed_tasks.extend(tasks);
        self.completed_frameworks.push_back(framework);
        if self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
        self.remove_offers_of(fid);
        self.push(Action::CheckpointFramework(fid.clone()));
        self.push(Action::Operator(Box::new(OperatorEvent::FrameworkRemoved(FrameworkRemoved {
            framework_info: info,
        }))));
        self.allocate(clock);
    }

    fn decline(&mut self, clock: Clock, fid: &FrameworkId, offer_ids: &[String], filters: Option<Filters>) {
        let mut roles = BTreeSet::new();
        for id in offer_ids {
            if let Some(o) = self.offers.get(id)
                && &o.framework_id == fid
            {
                roles.insert(o.role.clone());
                self.offers.remove(id);
            }
        }
        self.refuse(clock, fid, roles, filters.unwrap_or_default());
        self.allocate(clock);
    }

    fn refuse(&mut self, clock: Clock, fid: &FrameworkId, roles: BTreeSet<String>, filters: Filters) {
        let secs = if filters.refuse_seconds.is_finite() && filters.refuse_seconds >= 0.0 {
            filters.refuse_seconds
        } else {
            Filters::default().refuse_seconds
        };
        let refuse = Duration::from_secs_f64(secs).min(MAX_REFUSE);
        if refuse.is_zero() {
            return;
        }
        if let Some(f) = self.frameworks.get_mut(fid) {
            for role in roles {
                f.refused_until.insert(role, clock.mono + refuse);
            }
        }
    }

    fn accept(&mut self, clock: Clock, fid: &FrameworkId, accept: Accept) {
        // Validate the offers: each must exist and belong to this framework.
        let mut pool = Resources::default();
        let mut roles = BTreeSet::new();
        let mut invalid = None;
        let mut seen = BTreeSet::new();
        for id in &accept.offer_ids {
            match self.offers.get(&id.value) {
                Some(o) if &o.framework_id == fid && seen.insert(id.value.clone()) => {
                    pool.add(&o.resources);
                    roles.insert(o.role.clone());
                }
                _ => invalid = Some(format!("Offer {} is no longer valid", id.value)),
            }
        }
        if accept.offer_ids.is_empty() {
            invalid = Some("No offers specified".into());
        }
        if let Some(message) = invalid {
            for op in &accept.operations {
                for task in launched_tasks(op) {
                    let status = TaskStatus {
                        task_id: task.task_id.clone(),
                        state: TaskState::Dropped,
                        message: Some(message.clone()),
                        reason: Some(TaskStatusReason::InvalidOffers),
                        agent_id: Some(self.agent_id.clone()),
                        ..Default::default()
                    };
                    self.counters.count_terminal(&TaskState::Dropped);
                    self.master_update(clock, fid, status);
                }
            }
            // Valid offers in a failed ACCEPT are given back.
            for id in &accept.offer_ids {
                if self.offers.get(&id.value).is_some_and(|o| &o.framework_id == fid) {
                    self.offers.remove(&id.value);
                }
            }
            self.allocate(clock);
            return;
        }
        for id in &accept.offer_ids {
            self.offers.remove(&id.value);
        }
        let role = roles.iter().next().cloned().unwrap_or_else(|| "*".into());
        for op in accept.operations {
            match op.kind {
                OperationType::Launch | OperationType::LaunchGroup => {
                    for task in launched_tasks(&op).into_iter().cloned().collect::<Vec<_>>() {
                        self.launch(clock, fid, task, &role, &mut pool);
                    }
                }
                other => {
                    tracing::warn!(framework_id = %fid, operation = %other, "offer operation not supported by m3s mini; ignored");
                }
            }
        }
        // What is left is declined with the ACCEPT's filters.
        self.refuse(clock, fid, roles, accept.filters.unwrap_or_default());
        self.allocate(clock);
    }

    fn launch(&mut self, clock: Clock, fid: &FrameworkId, task: TaskInfo, role: &str, pool: &mut Resources) {
        let error = |message: String| TaskStatus {
            task_id: task.task_id.clone(),
            state: TaskState::Error,
            message: Some(message),
            reason: Some(TaskStatusReason::TaskInvalid),
            agent_id: Some(self.agent_id.clone()),
            ..Default::default()
        };
        let framework = &self.frameworks[fid];
        let user = task.command.as_ref().and_then(|c| c.user.clone()).unwrap_or_else(|| framework.info.user.clone());
        if !self.config.allowed_users.allows(&user) {
            let mut status = error(format!(
                "Not authorized to launch as user '{user}': this agent runs tasks only as {} (--allowed-users)",
                self.config.allowed_users
            ));
            status.reason = Some(TaskStatusReason::TaskUnauthorized);
            self.counters.count_terminal(&TaskState::Error);
            self.master_update(clock, fid, status);
            return;
        }
        let problem = if task.command.is_some() == task.executor.is_some() {
            Some("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".to_owned())
        } else if task.task_id.value.is_empty() {
            Some("Task ID must not be empty".to_owned())
        } else if task.task_id.value.contains('/')
            || task.task_id.value.contains('\0')
            || task.task_id.value == "."
            || task.task_id.value == ".."
        {
            Some(format!("TaskID '{}' contains invalid characters", task.task_id.value))
        } else if framework.tasks.contains_key(&task.task_id) {
            Some(format!("Task has duplicate ID: {}", task.task_id.value))
        } else if task.agent_id != self.agent_id {
            Some(format!("Task uses invalid agent: {}", task.agent_id.value))
        } else if task.executor.is_some() {
            Some("Custom executors are not supported by m3s mini: use a command task".to_owned())
        } else if let Some(Err(e)) = task.health_check.as_ref().map(crate::agent::health::validate) {
            Some(format!("Task uses invalid health check: {e}"))
        } else if task.command.as_ref().is_some_and(|c| c.shell && c.value.as_deref().unwrap_or("").is_empty()) {
            Some("Task command has no 'value' to run".to_owned())
        } else if task.command.as_ref().is_some_and(|c| !c.shell && c.value.as_deref().unwrap_or("").is_empty())
            && !crate::agent::container::Containers::wants_image(&task)
        {
            Some("Task command with 'shell: false' needs 'value' (the program to run)".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            self.counters.count_terminal(&TaskState::Error);
            self.master_update(clock, fid, error(message));
            return;
        }
        let resources = match Resources::from_wire(&task.resources) {
            Ok(r) => r,
            Err(e) => {
                self.counters.count_terminal(&TaskState::Error);
                self.master_update(clock, fid, error(format!("Task uses invalid resources: {e}")));
                return;
            }
        };
        if resources.is_empty() {
            self.counters.count_terminal(&TaskState::Error);
            self.master_update(clock, fid, error("Task uses no resources".into()));
            return;
        }
        if let Some(short) = pool.shortfall(&resources) {
            self.counters.count_terminal(&TaskState::Error);
            self.master_update(
                clock,
                fid,
                error(format!("Task uses more resources than available in the offer: {short}")),
            );
            return;
        }
        pool.subtract(&resources);
        self.used.add(&resources);
        let container_id = self.ids.uuid_string();
        let mut t = Task::new(task, fid.clone(), role.to_owned(), resources);
        t.container_id = Some(container_id);
        let tid = t.id().clone();
        let added = TaskAdded { task: operator_task(&t, &self.agent_id) };
        self.frameworks.get_mut(fid).expect("checked above").tasks.insert(tid.clone(), t);
        self.push(Action::CheckpointTask { framework_id: fid.clone(), task_id: tid.clone() });
        self.push(Action::Operator(Box::new(OperatorEvent::TaskAdded(added))));
        self.push(Action::Launch { framework_id: fid.clone(), task_id: tid });
    }

    fn kill(&mut self, clock: Clock, fid: &FrameworkId, kill: Kill) {
        let agent_id = self.agent_id.clone();
        let framework = self.frameworks.get_mut(fid).expect("checked by the caller");
        let Some(task) = framework.tasks.get_mut(&kill.task_id) else {
            let status = TaskStatus {
                task_id: kill.task_id.clone(),
                state: TaskState::TaskUnknown,
                message: Some("Attempted to kill an unknown task".into()),
                reason: Some(TaskStatusReason::Reconciliation),
                agent_id: Some(agent_id),
                ..Default::default()
            };
            self.master_update(clock, fid, status);
            return;
        };
        if task.state.is_terminal() || task.killing {
            return;
        }
        task.killing = true;
        let grace = kill_grace(&task.info, kill.kill_policy.as_ref());
        let container_id = task.container_id.clone();
        let tid = task.id().clone();
        if task.state != TaskState::Staging || container_id.is_some() {
            self.report(clock, fid, &tid, super::updates::Report::state(TaskState::Killing));
        }
        if let Some(container_id) = container_id {
            self.push(Action::Kill { container_id, grace });
        }
    }

    fn reconcile(&mut self, clock: Clock, fid: &FrameworkId, reconcile: Reconcile) {
        let agent_id = self.agent_id.clone();
        let framework = &self.frameworks[fid];
        let answer = |t: &Task| {
            let mut s = t.latest().cloned().unwrap_or_else(|| TaskStatus {
                task_id: t.id().clone(),
                state: t.state.clone(),
                agent_id: Some(agent_id.clone()),
                ..Default::default()
            });
            s.message = Some("Reconciliation: Latest task state".into());
            s.reason = Some(TaskStatusReason::Reconciliation);
            s.executor_id = None;
            s
        };
        let answers: Vec<TaskStatus> = if reconcile.tasks.is_empty() {
            framework.tasks.values().map(answer).collect()
        } else {
            reconcile
                .tasks
                .iter()
                .map(|r| match framework.tasks.get(&r.task_id) {
                    Some(t) => answer(t),
                    None if r.agent_id.as_ref() == Some(&agent_id) => TaskStatus {
                        task_id: r.task_id.clone(),
                        state: TaskState::Gone,
                        message: Some("Reconciliation: Task is unknown to the agent".into()),
                        reason: Some(TaskStatusReason::Reconciliation),
                        agent_id: Some(agent_id.clone()),
                        ..Default::default()
                    },
                    None => TaskStatus {
                        task_id: r.task_id.clone(),
                        state: TaskState::TaskUnknown,
                        message: Some("Reconciliation: Task is unknown".into()),
                        reason: Some(TaskStatusReason::Reconciliation),
                        ..Default::default()
                    },
                })
                .collect()
        };
        for status in answers {
            self.master_update(clock, fid, status);
        }
    }

    /// The master's self-description for SUBSCRIBED and the operator API.
    pub fn master_info(&self) -> MasterInfo {
        let ip = u32::from_le_bytes(self.config.ip.octets());
        MasterInfo {
            id: self.config.master_id.clone(),
            ip,
            port: u32::from(self.config.port),
            pid: Some(format!("master@{}:{}", self.config.ip, self.config.port)),
            hostname: Some(self.config.hostname.clone()),
            version: Some(self.config.version.clone()),
            address: Some(Address {
                hostname: Some(self.config.hostname.clone()),
                ip: Some(self.config.ip.to_string()),
                port: u32::from(self.config.port),
            }),
            ..Default::default()
        }
    }
}

/// A FrameworkInfo Mesos refuses, in Mesos's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum InvalidFrameworkInfo {
    #[error("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable")]
    RolesWithoutMultiRole,
    #[error("'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable")]
    RoleWithMultiRole,
    #[error("'FrameworkInfo.roles' contains duplicate items: {0}")]
    DuplicateRole(String),
    #[error("Role '{0}' is invalid")]
    InvalidRole(String),
    #[error("'FrameworkInfo.name' must be set")]
    NoName,
}

/// FrameworkInfo checks that Mesos answers with an ERROR event.
fn validate_framework_info(info: &mesos::v1::FrameworkInfo) -> Result<(), InvalidFrameworkInfo> {
    let multi_role = info.has_capability(&FrameworkCapabilityType::MultiRole);
    if !multi_role && !info.roles.is_empty() {
        return Err(InvalidFrameworkInfo::RolesWithoutMultiRole);
    }
    if multi_role && info.role.is_some() {
        return Err(InvalidFrameworkInfo::RoleWithMultiRole);
    }
    let mut seen = BTreeSet::new();
    for r in &info.roles {
        if !seen.insert(r) {
            return Err(InvalidFrameworkInfo::DuplicateRole(r.clone()));
        }
    }
    for r in info.roles.iter().chain(info.role.iter()) {
        if r.is_empty() || r == "." || r == ".." || r.starts_with('-') || r.contains(['/', ' ', '\t', '\n']) {
            return Err(InvalidFrameworkInfo::InvalidRole(r.clone()));
        }
    }
    if info.name.is_empty() {
        return Err(InvalidFrameworkInfo::NoName);
    }
    Ok(())
}

fn launched_tasks(op: &Operation) -> Vec<&TaskInfo> {
    match op.kind {
        OperationType::Launch => op.launch.iter().flat_map(|l| l.task_infos.iter()).collect(),
        OperationType::LaunchGroup => op.launch_group.iter().flat_map(|l| l.task_group.tasks.iter()).collect(),
        _ => Vec::new(),
    }
}

/// The kill grace period: the KILL call's policy, else the task's, else 3 s
/// (the command executor's default).
fn kill_grace(task: &TaskInfo, call: Option<&mesos::v1::KillPolicy>) -> Duration {
    call.or(task.kill_policy.as_ref())
        .and_then(|p| p.grace_period)
        .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
        .unwrap_or(Duration::from_secs(3))
}

/// The operator API's view of a framework.
pub(crate) fn operator_framework(f: &Framework) -> OperatorFramework {
    OperatorFramework {
        framework_info: f.info.clone(),
        active: f.connected(),
        connected: f.connected(),
        recovered: false,
        registered_time: Some(mesos::v1::TimeInfo { nanoseconds: (f.registered_time * 1e9) as i64 }),
        reregistered_time: f.reregistered_time.map(|t| mesos::v1::TimeInfo { nanoseconds: (t * 1e9) as i64 }),
        unregistered_time: f.unregistered_time.map(|t| mesos::v1::TimeInfo { nanoseconds: (t * 1e9) as i64 }),
        allocated_resources: f.used().to_wire(f.multi_role().then_some(f.roles()[0].as_str())),
        ..Default::default()
    }
}

/// The operator API's view of a task (mesos.proto `Task`).
pub(crate) fn operator_task(t: &Task, agent_id: &mesos::v1::AgentId) -> mesos::v1::Task {
    mesos::v1::Task {
        name: t.info.name.clone(),
        task_id: t.id().clone(),
        framework_id: t.framework_id.clone(),
        executor_id: None,
        agent_id: agent_id.clone(),
        state: t.state.clone(),
        resources: t.info.resources.clone(),
        statuses: t.statuses.clone(),
        status_update_state: t.pending.front().map(|s| s.state.clone()),
        status_update_uuid: t.pending.front().and_then(|s| s.uuid.clone()),
        labels: t.info.labels.clone(),
        discovery: t.info.discovery.clone(),
        container: t.info.container.clone(),
        health_check: t.info.health_check.clone(),
        kill_policy: t.info.kill_policy.clone(),
        user: t.info.command.as_ref().and_then(|c| c.user.clone()),
        limits: t.info.limits.clone(),
    }
}
