//! Task status flow: what the agent reports becomes status updates that are
//! delivered to the framework one at a time per task, resent with backoff
//! until acknowledged (as Mesos's status update manager does), checkpointed,
//! and mirrored to operator subscribers.

use mesos::v1::operator::Event as OperatorEvent;
use mesos::v1::operator::event::TaskUpdated;
use mesos::v1::scheduler::{Event, Update};
use mesos::v1::{
    Bytes, ContainerId, ContainerStatus, ExecutorId, FrameworkCapabilityType, FrameworkId, IpAddress, NetworkInfo,
    TaskId, TaskState, TaskStatus, TaskStatusReason, TaskStatusSource,
};

use super::state::{STATUS_RETRY_INITIAL, STATUS_RETRY_MAX};
use super::{Action, Clock, MAX_COMPLETED_TASKS, Master};

/// How a task's process ended, as the agent runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// The supervisor vanished without recording an exit status.
    Lost(String),
    /// The task exceeded its memory limit and the kernel killed it; the
    /// message in Mesos's wording ("Memory limit exceeded: ...").
    MemoryLimit(String),
}

/// What the agent says about a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub state: TaskState,
    pub message: Option<String>,
    pub reason: Option<TaskStatusReason>,
    pub healthy: Option<bool>,
}

impl Report {
    pub fn state(state: TaskState) -> Self {
        Report { state, message: None, reason: None, healthy: None }
    }
}

impl Master {
    /// The agent started the task's container (the command executor reports
    /// STARTING then RUNNING).
    pub fn task_started(&mut self, clock: Clock, container_id: &str, pid: Option<u32>) {
        let Some((fid, tid)) = self.locate(container_id) else { return };
        if let Some(t) = self.frameworks.get_mut(&fid).and_then(|f| f.tasks.get_mut(&tid)) {
            t.executor_pid = t.executor_pid.or(pid);
        }
        self.ensure_started(clock, &fid, &tid);
    }

    /// STARTING then RUNNING, once. A short task's exit can reach the master
    /// before the launch confirmation does; it ran all the same, and
    /// frameworks expect the command executor's usual sequence.
    ///
    /// Also used for containers re-adopted after a restart: the checkpoint is
    /// written behind the events, so it may still say STARTING for a task
    /// whose process runs.
    fn ensure_started(&mut self, clock: Clock, fid: &FrameworkId, tid: &TaskId) {
        let state = self.frameworks.get(fid).and_then(|f| f.tasks.get(tid)).map(|t| t.state.clone());
        if state == Some(TaskState::Staging) {
            self.report(clock, fid, tid, Report::state(TaskState::Starting));
        }
        if matches!(state, Some(TaskState::Staging | TaskState::Starting)) {
            self.report(clock, fid, tid, Report::state(TaskState::Running));
        }
    }

    /// The agent could not start the task.
    pub fn task_launch_failed(&mut self, clock: Clock, container_id: &str, message: String, reason: TaskStatusReason) {
        let Some((fid, tid)) = self.locate(container_id) else { return };
        let report = Report { state: TaskState::Failed, message: Some(message), reason: Some(reason), healthy: None };
        self.report(clock, &fid, &tid, report);
    }

    /// The task's process ended.
    pub fn task_exited(&mut self, clock: Clock, container_id: &str, exit: Exit) {
        let Some((fid, tid)) = self.locate(container_id) else { return };
        if !matches!(exit, Exit::Lost(_)) {
            self.ensure_started(clock, &fid, &tid);
        }
        let killing = self.frameworks[&fid].tasks[&tid].killing;
        let report = match (exit, killing) {
            (Exit::Code(0), false) => Report {
                state: TaskState::Finished,
                message: Some("Command exited with status 0".into()),
                reason: None,
                healthy: None,
            },
            (Exit::Code(n), false) => Report {
                state: TaskState::Failed,
                message: Some(format!("Command exited with status {n}")),
                reason: None,
                healthy: None,
            },
            (Exit::Signal(s), false) => Report {
                state: TaskState::Failed,
                message: Some(format!("Command terminated with signal {}", crate::signals::signal_name(s))),
                reason: None,
                healthy: None,
            },
            (Exit::Code(n), true) => Report {
                state: TaskState::Killed,
                message: Some(format!("Command exited with status {n}")),
                reason: None,
                healthy: None,
            },
            (Exit::Signal(s), true) => Report {
                state: TaskState::Killed,
                message: Some(format!("Command terminated with signal {}", crate::signals::signal_name(s))),
                reason: None,
                healthy: None,
            },
            (Exit::Lost(why), _) => Report {
                state: TaskState::Failed,
                message: Some(why),
                reason: Some(TaskStatusReason::ExecutorTerminated),
                healthy: None,
            },
            (Exit::MemoryLimit(message), _) => Report {
                state: TaskState::Failed,
                message: Some(message),
                reason: Some(TaskStatusReason::ContainerLimitationMemory),
                healthy: None,
            },
        };
        // Mesos's command executor marks a kill due to failing health checks
        // with `healthy: false` (and no reason) on the TASK_KILLED update.
        let mut report = report;
        if report.state == TaskState::Killed && self.frameworks[&fid].tasks[&tid].killed_by_health_check {
            report.healthy = Some(false);
        }
        self.report(clock, &fid, &tid, report);
    }

    /// The task failed `consecutive_failures` health checks in a row (its
    /// `healthy: false` update already reported): the executor kills it as a
    /// KILL would (TASK_KILLING with that capability, the kill policy's grace
    /// period from its TaskInfo), and its TASK_KILLED says `healthy: false`.
    pub fn task_unhealthy_kill(&mut self, clock: Clock, container_id: &str) {
        let Some((fid, tid)) = self.locate(container_id) else { return };
        let Some(task) = self.frameworks.get_mut(&fid).and_then(|f| f.tasks.get_mut(&tid)) else { return };
        if task.state.is_terminal() || task.killing {
            return;
        }
        task.killing = true;
        task.killed_by_health_check = true;
        let grace = task
            .info
            .kill_policy
            .as_ref()
            .and_then(|p| p.grace_period)
            .map(|d| std::time::Duration::from_nanos(d.nanoseconds.max(0) as u64))
            .unwrap_or(std::time::Duration::from_secs(3));
        self.report(clock, &fid, &tid, Report::state(TaskState::Killing));
        self.push(Action::Kill { container_id: container_id.to_owned(), grace });
    }

    /// A health check result changed (`healthy` updates carry the current state).
    pub fn task_health(&mut self, clock: Clock, container_id: &str, healthy: bool) {
        let Some((fid, tid)) = self.locate(container_id) else { return };
        let state = self.frameworks[&fid].tasks[&tid].state.clone();
        if state.is_terminal() {
            return;
        }
        let report = Report {
            state,
            message: None,
            reason: Some(TaskStatusReason::TaskHealthCheckStatusUpdated),
            healthy: Some(healthy),
        };
        self.report(clock, &fid, &tid, report);
    }

    fn locate(&self, container_id: &str) -> Option<(FrameworkId, TaskId)> {
        self.task_by_container(container_id).map(|(f, t)| (f.id.clone(), t.id().clone()))
    }

    /// Records an agent-side status change of a task and queues its update.
    pub(super) fn report(&mut self, clock: Clock, fid: &FrameworkId, tid: &TaskId, report: Report) {
        let uuid = self.ids.uuid_bytes().to_vec();
        let agent_id = self.agent_id.clone();
        let Some(framework) = self.frameworks.get_mut(fid) else { return };
        let killing_state = framework.has(FrameworkCapabilityType::TaskKillingState);
        let partition_aware = framework.partition_aware();
        let Some(task) = framework.tasks.get_mut(tid) else { return };
        if task.state.is_terminal() {
            return;
        }
        if report.state == TaskState::Killing && !killing_state {
            return;
        }
        let state = visible_state(report.state, partition_aware);
        let status = TaskStatus {
            task_id: tid.clone(),
            state: state.clone(),
            message: report.message,
            source: Some(TaskStatusSource::Executor),
            reason: report.reason,
            agent_id: Some(agent_id),
            executor_id: Some(ExecutorId::new(tid.value.clone())),
            timestamp: Some(clock.unix),
            uuid: Some(Bytes(uuid)),
            healthy: report.healthy,
            container_status: task.container_id.as_ref().map(|c| ContainerStatus {
                container_id: Some(ContainerId { value: c.clone(), parent: None }),
                network_infos: vec![NetworkInfo {
                    ip_addresses: vec![IpAddress {
                        protocol: Some("IPv4".into()),
                        ip_address: Some(self.config.ip.to_string()),
                    }],
                    ..Default::default()
                }],
                cgroup_info: None,
                executor_pid: task.executor_pid,
            }),
            ..Default::default()
        };
        let became_terminal = state.is_terminal();
        self.counters.status_updates += 1;
        if became_terminal {
            self.counters.count_terminal(&state);
        }
        if status.reason == Some(TaskStatusReason::ContainerLaunchFailed) {
            self.counters.launch_errors += 1;
        }
        task.state = state.clone();
        // Like Mesos's Master::updateTask: an update repeating the state (a
        // health change) replaces the last status instead of adding one.
        match task.statuses.last_mut() {
            Some(last) if last.state == state => *last = status.clone(),
            _ => task.statuses.push(status.clone()),
        }
        task.pending.push_back(status.clone());
        let deliver_now = task.pending.len() == 1;
        let resources = task.resources.clone();
        if became_terminal {
            self.used.subtract(&resources);
        }
        self.push(Action::CheckpointTask { framework_id: fid.clone(), task_id: tid.clone() });
        self.push(Action::Operator(Box::new(OperatorEvent::TaskUpdated(TaskUpdated {
            framework_id: fid.clone(),
            status,
            state,
        }))));
        if deliver_now {
            self.deliver_front(clock, fid, tid);
        }
        if became_terminal {
            self.allocate(clock);
        }
    }

    /// Sends the task's oldest unacknowledged update and arms its resend timer.
    pub(super) fn deliver_front(&mut self, clock: Clock, fid: &FrameworkId, tid: &TaskId) {
        let Some(framework) = self.frameworks.get_mut(fid) else { return };
        let connected = framework.connected();
        let Some(task) = framework.tasks.get_mut(tid) else { return };
        let Some(front) = task.pending.front().cloned() else {
            task.resend_at = None;
            return;
        };
        // Disconnected: nothing to time out; resubscription delivers it.
        task.resend_at = connected.then(|| clock.mono + task.resend_interval);
        if connected {
            self.send(fid, Event::Update(Update { status: front }));
        }
    }

    pub(super) fn resend_due_updates(&mut self, clock: Clock) {
        let due: Vec<(FrameworkId, TaskId)> = self
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values().filter(|t| t.resend_at.is_some_and(|at| clock.mono >= at)))
            .map(|t| (t.framework_id.clone(), t.id().clone()))
            .collect();
        for (fid, tid) in due {
            if let Some(t) = self.frameworks.get_mut(&fid).and_then(|f| f.tasks.get_mut(&tid)) {
                t.resend_interval = (t.resend_interval * 2).min(STATUS_RETRY_MAX);
            }
            self.deliver_front(clock, &fid, &tid);
        }
    }

    /// After a (re)subscription: deliver every task's front update again.
    pub(super) fn redeliver_all(&mut self, clock: Clock, fid: &FrameworkId) {
        let tids: Vec<TaskId> = self.frameworks.get(fid).map(|f| f.tasks.keys().cloned().collect()).unwrap_or_default();
        for tid in tids {
            if let Some(t) = self.frameworks.get_mut(fid).and_then(|f| f.tasks.get_mut(&tid)) {
                t.resend_interval = STATUS_RETRY_INITIAL;
            }
            self.deliver_front(clock, fid, &tid);
        }
    }

    /// ACKNOWLEDGE: the framework processed the update with this uuid.
    /// Returns false when no pending update matches (already acknowledged).
    pub(super) fn acknowledge_update(&mut self, clock: Clock, fid: &FrameworkId, tid: &TaskId, uuid: &[u8]) -> bool {
        let Some(framework) = self.frameworks.get_mut(fid) else { return false };
        let Some(task) = framework.tasks.get_mut(tid) else { return false };
        let Some(pos) = task.pending.iter().position(|s| s.uuid.as_ref().is_some_and(|u| u.0 == uuid)) else {
            return false;
        };
        // Acknowledging a later update implies the earlier ones (they were superseded).
        task.pending.drain(..=pos);
        task.resend_interval = STATUS_RETRY_INITIAL;
        task.resend_at = None;
        let done = task.pending.is_empty() && task.state.is_terminal();
        self.push(Action::CheckpointTask { framework_id: fid.clone(), task_id: tid.clone() });
        if done {
            // The terminal update is acknowledged: the task is completed.
            let framework = self.frameworks.get_mut(fid).expect("checked above");
            if let Some(task) = framework.tasks.remove(tid) {
                framework.completed_tasks.push_back(task);
                if framework.completed_tasks.len() > MAX_COMPLETED_TASKS {
                    framework.completed_tasks.pop_front();
                }
            }
        } else {
            self.deliver_front(clock, fid, tid);
        }
        true
    }

    /// An update the master makes itself (TASK_ERROR, TASK_LOST for invalid
    /// offers, reconciliation): sent once, no uuid, not acknowledged.
    pub(super) fn master_update(&mut self, clock: Clock, fid: &FrameworkId, mut status: TaskStatus) {
        status.source = Some(TaskStatusSource::Master);
        status.timestamp = Some(clock.unix);
        status.uuid = None;
        let partition_aware = self.frameworks.get(fid).is_some_and(|f| f.partition_aware());
        status.state = visible_state(status.state, partition_aware);
        self.send(fid, Event::Update(Update { status }));
    }
}

/// States only PARTITION_AWARE frameworks understand become TASK_LOST for others.
fn visible_state(state: TaskState, partition_aware: bool) -> TaskState {
    match state {
        TaskState::Unreachable
        | TaskState::Gone
        | TaskState::GoneByOperator
        | TaskState::Dropped
        | TaskState::TaskUnknown
            if !partition_aware =>
        {
            TaskState::Lost
        }
        s => s,
    }
}
