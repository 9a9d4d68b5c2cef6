//! Read-only views of the cluster, computed from the [`Master`]: the legacy
//! JSON endpoints (`/master/state`, `/master/frameworks`, `/master/slaves`,
//! `/master/tasks`, `/version`, `/metrics/snapshot`, `/master/flags`, the
//! agent's `/slave(1)/state`) and the answers of the operator API's GET_* calls.
//!
//! Pure functions: no IO and no clock (`now_unix` is an argument where time
//! matters), so the HTTP layer only serializes what they return.
//!
//! Ground truth: Mesos 1.11's writers (`src/master/readonly_handler.cpp`,
//! `src/common/http.cpp`, `src/master/http.cpp`, `src/slave/http.cpp`) and the
//! captures of a real master and agent (`shared/reference/mesos-captures`,
//! 01-06, 09-29, 44): field names, which fields are always written, number
//! formats and orders. Where m3s differs on purpose:
//! - One process is master and agent: the agent's port is the master's, its pid
//!   `slave(1)@<ip>:<port>`, its registration time the master's start time.
//! - Command tasks only, each run by its own supervisor: on the agent every task
//!   is one executor (id and source the task id, named as Mesos names command
//!   executors) with no resources of its own; the master lists no executors
//!   (Mesos does not list command executors either).
//! - Capabilities list only what m3s honours: agents `MULTI_ROLE` (offers and
//!   allocations carry `allocation_info`); none for the master (no agent
//!   updates, draining or quota).
//! - Build information: m3s has no build timestamp of its own (reproducible
//!   builds). `build_time` is `SOURCE_DATE_EPOCH` when the build set it, else the
//!   master's start time; `build_date` is that time as `YYYY-MM-DD HH:MM:SS`
//!   UTC; `build_user` is empty (as in the captures); `git_tag` names the m3s
//!   release (`m3s-<version>`), so operators can tell m3s from Mesos.
//! - A task's statuses keep one entry per consecutive state, the latest (Mesos's
//!   master replaces the last status when an update repeats its state, e.g. a
//!   health check result while RUNNING).

use std::collections::BTreeMap;

use mesos::legacy::{
    AgentExecutor, AgentFramework, AgentState, AttributeValue, Attributes, Frameworks, LeaderInfo, LegacyAgent,
    LegacyContainerStatus, LegacyFramework, LegacyNetworkInfo, LegacyOffer, LegacyResources, LegacyTask,
    LegacyTaskStatus, MasterState, MetricsSnapshot, Slaves, Tasks, Version,
};
use mesos::v1::operator::response;
use mesos::v1::{
    Address, AgentCapability, AgentCapabilityType, AgentId, AgentInfo, AllocationInfo, Attribute, Flag, FrameworkId,
    Metric, Offer, OfferId, Resource, Role, TaskInfo, TaskState, TaskStatus, TimeInfo, Url, ValueType, VersionInfo,
};

use crate::master::{Framework, Master, Task, operator_framework, operator_task};
use crate::resources::Resources;

mod agent;
mod legacy;
mod operator;

pub use agent::*;
pub use legacy::*;
pub use operator::*;

/// Command-line flags as the HTTP layer configures them, `(name, value)`; a
/// name given twice keeps its last value. The agent's state reads `log_dir`,
/// `external_log_file` and `work_dir` (the root of the sandboxes) from them,
/// the master's `cluster`, `log_dir` and `external_log_file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(pub Vec<(String, String)>);

impl Flags {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// By name, as Mesos writes them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

/// What the agent's capabilities claim: only what m3s honours.
const AGENT_CAPABILITIES: [AgentCapabilityType; 1] = [AgentCapabilityType::MultiRole];

/// How many completed executors the agent lists per framework (Mesos's
/// `--max_completed_executors_per_framework` default).
const MAX_COMPLETED_EXECUTORS: usize = 150;

/// Host facts for the `system/*` metrics, read by the caller (`/proc`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemStats {
    pub cpus_total: f64,
    pub load_1min: f64,
    pub load_5min: f64,
    pub load_15min: f64,
    pub mem_free_bytes: f64,
    pub mem_total_bytes: f64,
}

/// Sort order of `/master/tasks`: by the time of each task's first status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    Asc,
    /// Mesos's default.
    #[default]
    Des,
}

/// The query of `/master/tasks` (`/tasks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TasksQuery {
    /// At most this many tasks; negative means no limit. Default 100.
    pub limit: i64,
    /// Skip this many (after sorting).
    pub offset: usize,
    pub order: Order,
    pub framework_id: Option<String>,
    pub task_id: Option<String>,
}

impl Default for TasksQuery {
    fn default() -> Self {
        TasksQuery { limit: 100, offset: 0, order: Order::Des, framework_id: None, task_id: None }
    }
}

impl TasksQuery {
    /// From query parameters, read as Mesos reads them: an unparsable `limit`
    /// or `offset` is the default, a negative limit means no limit, a negative
    /// offset skips everything, `order` is ascending only for `asc`.
    /// (Mesos computes `offset + limit` in `size_t`, so `limit=-1` with an
    /// offset returns nothing there; here it returns the rest.)
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut q = TasksQuery::default();
        for (key, value) in params {
            let value = value.trim();
            match key {
                "limit" => {
                    if let Ok(n) = value.parse::<i32>() {
                        q.limit = i64::from(n);
                    }
                }
                "offset" => {
                    if let Ok(n) = value.parse::<i32>() {
                        q.offset = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                "order" => q.order = if value == "asc" { Order::Asc } else { Order::Des },
                "framework_id" => q.framework_id = Some(value.to_owned()),
                "task_id" => q.task_id = Some(value.to_owned()),
                _ => {}
            }
        }
        q
    }
}

// ---------------------------------------------------------------- legacy building blocks

fn master_pid(m: &Master) -> String {
    format!("master@{}:{}", m.config().ip, m.config().port)
}

fn agent_pid(m: &Master) -> String {
    format!("slave(1)@{}:{}", m.config().ip, m.config().port)
}

fn build_time(m: &Master) -> f64 {
    option_env!("SOURCE_DATE_EPOCH").and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(m.start_time())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn format_utc(unix: f64) -> String {
    mesos::utc::format_seconds(if unix.is_finite() { unix.floor() as i64 } else { 0 })
}

fn time_info(unix: f64) -> TimeInfo {
    TimeInfo { nanoseconds: (unix * 1e9) as i64 }
}

/// The flattened form: the four usual scalars always, ranges as text
/// (`"[31000-31005, 31010-31010]"`), other scalars by name.
fn legacy_resources(r: &Resources) -> LegacyResources {
    let mut out = LegacyResources::default();
    for (name, value) in r.scalars() {
        match name {
            "cpus" => out.cpus = value,
            "gpus" => out.gpus = value,
            "mem" => out.mem = value,
            "disk" => out.disk = value,
            other if value != 0.0 => {
                out.extra.insert(other.to_owned(), serde_json::Value::from(value));
            }
            _ => {}
        }
    }
    for (name, set) in r.range_sets().filter(|(_, s)| !s.is_empty()) {
        if name == "ports" {
            out.ports = Some(set.to_string());
        } else {
            out.extra.insert(name.to_owned(), serde_json::Value::String(set.to_string()));
        }
    }
    out
}

/// Attributes as `{name: value}`: scalars as numbers, the rest as Mesos's text.
fn legacy_attributes(attributes: &[Attribute]) -> Attributes {
    attributes
        .iter()
        .filter_map(|a| {
            let value = match &a.kind {
                ValueType::Scalar => AttributeValue::Scalar(a.scalar?.value),
                ValueType::Ranges => {
                    let ranges = a.ranges.as_ref()?;
                    let parts: Vec<String> = ranges.range.iter().map(|r| format!("{}-{}", r.begin, r.end)).collect();
                    AttributeValue::Text(format!("[{}]", parts.join(", ")))
                }
                ValueType::Set => AttributeValue::Text(format!("{{{}}}", a.set.as_ref()?.item.join(", "))),
                ValueType::Text => AttributeValue::Text(a.text.as_ref()?.value.clone()),
                ValueType::Unknown(_) => return None,
            };
            Some((a.name.clone(), value))
        })
        .collect()
}

/// The agent as `/master/state` lists it (the slaves endpoints add the full lists).
fn legacy_agent(m: &Master) -> LegacyAgent {
    let c = m.config();
    LegacyAgent {
        id: m.agent_id().value.clone(),
        hostname: c.hostname.clone(),
        port: u32::from(c.port),
        attributes: legacy_attributes(&c.attributes),
        domain: None,
        pid: agent_pid(m),
        registered_time: m.start_time(),
        reregistered_time: None,
        resources: legacy_resources(&c.resources),
        used_resources: legacy_resources(m.used_resources()),
        offered_resources: legacy_resources(&m.offered_resources()),
        reserved_resources: BTreeMap::new(),
        unreserved_resources: legacy_resources(&c.resources),
        active: true,
        deactivated: false,
        version: c.version.clone(),
        capabilities: AGENT_CAPABILITIES.to_vec(),
        ..Default::default()
    }
}

/// `role` for single-role frameworks (default `*`), `roles` for MULTI_ROLE ones.
fn legacy_roles(f: &Framework) -> (Option<String>, Option<Vec<String>>) {
    if f.multi_role() {
        (None, Some(f.info.roles.clone()))
    } else {
        (Some(f.info.role.clone().unwrap_or_else(|| "*".to_owned())), None)
    }
}

/// When the framework disconnected, or was removed; 0 while connected.
fn unregistered_time(f: &Framework) -> Option<f64> {
    f.unregistered_time.or(f.removed_time)
}

fn legacy_framework(m: &Master, f: &Framework) -> LegacyFramework {
    let agent_id = m.agent_id();
    let used = f.used();
    let offers = offers_of(m, f);
    let mut offered = Resources::default();
    for o in &offers {
        offered.add(&o.resources);
    }
    let mut resources = used.clone();
    resources.add(&offered);
    let (role, roles) = legacy_roles(f);
    LegacyFramework {
        id: f.id.value.clone(),
        name: f.info.name.clone(),
        // HTTP frameworks have no libprocess pid.
        pid: None,
        used_resources: legacy_resources(&used),
        offered_resources: legacy_resources(&offered),
        capabilities: f.info.capabilities.iter().map(|c| c.kind.clone()).collect(),
        hostname: f.info.hostname.clone().unwrap_or_default(),
        webui_url: f.info.webui_url.clone().unwrap_or_default(),
        active: f.connected(),
        connected: f.connected(),
        recovered: false,
        user: f.info.user.clone(),
        failover_timeout: f.info.failover_timeout,
        checkpoint: f.info.checkpoint,
        registered_time: f.registered_time,
        unregistered_time: unregistered_time(f).unwrap_or(0.0),
        principal: f.info.principal.clone(),
        resources: legacy_resources(&resources),
        reregistered_time: f.reregistered_time,
        roles,
        role,
        tasks: f.tasks.values().map(|t| legacy_task(t, agent_id)).collect(),
        unreachable_tasks: Vec::new(),
        completed_tasks: f.completed_tasks.iter().map(|t| legacy_task(t, agent_id)).collect(),
        offers: offers
            .iter()
            .map(|o| LegacyOffer {
                id: o.id.clone(),
                framework_id: f.id.value.clone(),
                allocation_info: AllocationInfo { role: Some(o.role.clone()) },
                slave_id: agent_id.value.clone(),
                resources: legacy_resources(&o.resources),
            })
            .collect(),
        // Command executors are unknown to the master.
        executors: Vec::new(),
        labels: f.info.labels.as_ref().map(|l| l.labels.clone()),
        offer_constraints: Some(serde_json::Value::Object(Default::default())),
    }
}

/// The task's resources; from its TaskInfo when the bookkeeping copy is empty
/// (it is not checkpointed).
fn task_resources(t: &Task) -> Resources {
    if t.resources.is_empty() {
        Resources::from_wire(&t.info.resources).unwrap_or_default()
    } else {
        t.resources.clone()
    }
}

/// The statuses as Mesos's master keeps them: an update repeating the state
/// of the one before replaces it.
fn mesos_statuses(statuses: &[TaskStatus]) -> impl Iterator<Item = &TaskStatus> {
    statuses
        .iter()
        .enumerate()
        .filter(|(i, s)| statuses.get(i + 1).is_none_or(|next| next.state != s.state))
        .map(|(_, s)| s)
}

fn legacy_task(t: &Task, agent_id: &AgentId) -> LegacyTask {
    LegacyTask {
        id: t.id().value.clone(),
        name: t.info.name.clone(),
        framework_id: t.framework_id.value.clone(),
        // Command tasks have no executor id of their own.
        executor_id: String::new(),
        slave_id: agent_id.value.clone(),
        state: t.state.clone(),
        resources: legacy_resources(&task_resources(t)),
        limits: t.info.limits.iter().map(|(k, v)| (k.clone(), v.value)).collect(),
        role: Some(t.role.clone()),
        statuses: mesos_statuses(&t.statuses).map(legacy_status).collect(),
        user: t.info.command.as_ref().and_then(|c| c.user.clone()),
        labels: t.info.labels.as_ref().map(|l| l.labels.clone()),
        discovery: t.info.discovery.clone(),
        container: t.info.container.clone(),
        health_check: t.info.health_check.clone(),
    }
}

fn legacy_status(s: &TaskStatus) -> LegacyTaskStatus {
    LegacyTaskStatus {
        state: s.state.clone(),
        timestamp: s.timestamp.unwrap_or_default(),
        labels: s.labels.as_ref().map(|l| l.labels.clone()),
        container_status: s.container_status.as_ref().map(|c| LegacyContainerStatus {
            container_id: c.container_id.clone(),
            network_infos: c
                .network_infos
                .iter()
                .map(|n| LegacyNetworkInfo {
                    groups: n.groups.clone(),
                    labels: n.labels.as_ref().map(|l| l.labels.clone()),
                    ip_addresses: n.ip_addresses.clone(),
                    name: n.name.clone(),
                    port_mappings: n.port_mappings.clone(),
                })
                .collect(),
            cgroup_info: c.cgroup_info.clone(),
        }),
        healthy: s.healthy,
    }
}

// ---------------------------------------------------------------- resources by role, offers

/// Wire resources in Mesos's order (cpus, gpus, mem, disk, other scalars,
/// then ranges), unreserved (`role: "*"`), with `allocation_info` when given.
fn wire(r: &Resources, allocation_role: Option<&str>) -> Vec<Resource> {
    let rank = |r: &Resource| match (&r.kind, r.name.as_str()) {
        (ValueType::Scalar, "cpus") => 0,
        (ValueType::Scalar, "gpus") => 1,
        (ValueType::Scalar, "mem") => 2,
        (ValueType::Scalar, "disk") => 3,
        (ValueType::Scalar, _) => 4,
        _ => 5,
    };
    let mut out = r.to_wire(allocation_role);
    out.sort_by_key(rank);
    out
}

fn by_role_wire(by_role: &BTreeMap<String, Resources>) -> Vec<Resource> {
    by_role.iter().flat_map(|(role, r)| wire(r, Some(role))).collect()
}

/// Resources of non-terminal tasks of registered frameworks, by the role they
/// are allocated to.
fn used_by_role(m: &Master) -> BTreeMap<String, Resources> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for f in m.frameworks() {
        for (role, r) in framework_used_by_role(f) {
            out.entry(role).or_default().add(&r);
        }
    }
    out
}

fn framework_used_by_role(f: &Framework) -> BTreeMap<String, Resources> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for t in f.tasks.values().filter(|t| !t.state.is_terminal()) {
        out.entry(t.role.clone()).or_default().add(&task_resources(t));
    }
    out
}

fn offered_by_role(m: &Master) -> BTreeMap<String, Resources> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for f in m.frameworks() {
        for o in offers_of(m, f) {
            out.entry(o.role).or_default().add(&o.resources);
        }
    }
    out
}

/// An outstanding offer as the views need it.
struct OfferView {
    id: String,
    role: String,
    resources: Resources,
}

/// The framework's outstanding offers. [`Master`] exposes offer ids and the
/// framework's total offered resources, not each offer's resources and role:
/// the allocator keeps at most one offer per framework, so the total is that
/// offer's, and its role is the framework's first unsuppressed role (the
/// allocator's choice unless that role's offers are filtered). With several
/// offers the first one would be shown holding everything.
fn offers_of(m: &Master, f: &Framework) -> Vec<OfferView> {
    let roles = f.roles();
    let role = roles.iter().find(|r| !f.suppressed_roles.contains(*r)).or(roles.first()).cloned().unwrap_or_default();
    let mut total = Some(m.offered_to(&f.id));
    m.offers_of(&f.id)
        .into_iter()
        .map(|id| OfferView { id, role: role.clone(), resources: total.take().unwrap_or_default() })
        .collect()
}

/// An offer as the framework received it.
fn v1_offer(m: &Master, f: &Framework, o: &OfferView) -> Offer {
    let c = m.config();
    let multi_role = f.multi_role();
    Offer {
        id: OfferId::new(o.id.clone()),
        framework_id: f.id.clone(),
        agent_id: m.agent_id().clone(),
        hostname: c.hostname.clone(),
        url: Some(Url {
            scheme: "http".into(),
            address: Address {
                hostname: Some(c.hostname.clone()),
                ip: Some(c.ip.to_string()),
                port: u32::from(c.port),
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }),
        resources: wire(&o.resources, multi_role.then_some(o.role.as_str())),
        attributes: c.attributes.clone(),
        allocation_info: multi_role.then(|| AllocationInfo { role: Some(o.role.clone()) }),
        ..Default::default()
    }
}

// ---------------------------------------------------------------- operator building blocks

/// A framework for GET_FRAMEWORKS: [`operator_framework`] completed with what
/// a real master adds: `reregistered_time` (the registration time until the
/// framework resubscribes), the removal time as `unregistered_time`,
/// allocations by the role of each task (always with `allocation_info`, as
/// the master allocates every framework's resources to a role), outstanding
/// offers, and `offer_constraints: {}`.
fn framework_view(m: &Master, f: &Framework) -> response::Framework {
    let mut out = operator_framework(f);
    out.reregistered_time = out.reregistered_time.or(out.registered_time);
    if out.unregistered_time.is_none() {
        out.unregistered_time = unregistered_time(f).map(time_info);
    }
    out.allocated_resources = by_role_wire(&framework_used_by_role(f));
    let offers = offers_of(m, f);
    let mut offered: BTreeMap<String, Resources> = BTreeMap::new();
    for o in &offers {
        offered.entry(o.role.clone()).or_default().add(&o.resources);
    }
    out.offered_resources = by_role_wire(&offered);
    out.offers = offers.iter().map(|o| v1_offer(m, f, o)).collect();
    out.offer_constraints = Some(serde_json::Value::Object(Default::default()));
    out
}

/// A task for GET_TASKS: [`operator_task`] with what a real master records:
/// the role the task's resources are allocated to, one status per state
/// without `data`, and
/// as `status_update_state`/`status_update_uuid` those of the latest update
/// from the agent (kept after it is acknowledged, as the captures show).
fn task_view(t: &Task, agent_id: &AgentId) -> mesos::v1::Task {
    let mut out = operator_task(t, agent_id);
    for r in &mut out.resources {
        if r.allocation_info.is_none() {
            r.allocation_info = Some(AllocationInfo { role: Some(t.role.clone()) });
        }
    }
    // Mesos's master drops each status's `data` (MESOS-1746).
    out.statuses = mesos_statuses(&t.statuses).map(|s| TaskStatus { data: None, ..s.clone() }).collect();
    if let Some(latest) = t.latest() {
        out.status_update_state = Some(latest.state.clone());
        out.status_update_uuid = latest.uuid.clone();
    }
    out
}

/// `TASK_RUNNING` → `running`, as metric names spell states.
fn metric_state(state: &TaskState) -> String {
    state.as_str().trim_start_matches("TASK_").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use mesos::v1::operator::Response;
    use mesos::v1::scheduler::{Acknowledge, Call, CallKind, Event, Subscribe};
    use mesos::v1::{
        CommandInfo, FrameworkCapability, FrameworkCapabilityType, FrameworkInfo, HealthCheck, HealthCheckType, Label,
        Labels, Operation, TaskId,
    };
    use serde_json::Value;

    use super::*;
    use crate::master::{Action, Clock, Exit, MasterConfig};

    // ------------------------------------------------------------ a scripted cluster

    const START: f64 = 1_800_000_000.0;

    struct Sim {
        master: Master,
        mono: Instant,
        unix: f64,
        fid: FrameworkId,
        stream: String,
        offers: Vec<OfferId>,
    }

    fn config() -> MasterConfig {
        MasterConfig {
            master_id: "m1".into(),
            hostname: "localhost".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 5050,
            resources: Resources::parse("cpus:2;mem:8192;disk:20000;ports:[31000-32000]").unwrap(),
            attributes: Vec::new(),
            version: "1.11.0".into(),
            heartbeat_interval: Duration::from_secs(15),
            seed: 7,
            allowed_users: crate::master::AllowedUsers::Any,
        }
    }

    /// The framework of the captures: MULTI_ROLE with role `capture`.
    fn capture_framework() -> FrameworkInfo {
        FrameworkInfo {
            user: "root".into(),
            name: "capture".into(),
            failover_timeout: 60.0,
            checkpoint: true,
            roles: vec!["capture".into()],
            capabilities: FrameworkCapability::list(&[
                FrameworkCapabilityType::MultiRole,
                FrameworkCapabilityType::TaskKillingState,
                FrameworkCapabilityType::PartitionAware,
            ]),
            ..Default::default()
        }
    }

    fn task(id: &str, cmd: &str) -> TaskInfo {
        TaskInfo {
            name: id.split('-').next().unwrap().into(),
            task_id: TaskId::new(id),
            agent_id: AgentId::new("m1-S0"),
            resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
            command: Some(CommandInfo::shell(cmd)),
            ..Default::default()
        }
    }

    /// `sleeper-1` as the captures launched it: a label and a COMMAND health check.
    fn sleeper() -> TaskInfo {
        TaskInfo {
            labels: Some(Labels { labels: vec![Label { key: "k".into(), value: Some("v".into()) }] }),
            health_check: Some(HealthCheck {
                kind: Some(HealthCheckType::Command),
                command: Some(CommandInfo::shell("true")),
                delay_seconds: 0.0,
                interval_seconds: 1.0,
                grace_period_seconds: 0.0,
                ..Default::default()
            }),
            ..task("sleeper-1", "sleep 300")
        }
    }

    impl Sim {
        fn new(framework: FrameworkInfo) -> Sim {
            let mono = Instant::now();
            let master = Master::new(config(), Clock { mono, unix: START });
            let mut sim =
                Sim { master, mono, unix: START, fid: FrameworkId::new(""), stream: String::new(), offers: Vec::new() };
            let clock = sim.tick();
            let (fid, stream) = sim
                .master
                .subscribe(clock, None, Subscribe { framework_info: framework, ..Default::default() })
                .unwrap();
            sim.fid = fid;
            sim.stream = stream;
            sim.step();
            sim
        }

        fn tick(&mut self) -> Clock {
            self.mono += Duration::from_millis(10);
            self.unix += 0.01;
            Clock { mono: self.mono, unix: self.unix }
        }

        /// Events for the framework since the last step; offers are remembered.
        fn step(&mut self) -> Vec<Event> {
            let mut events = Vec::new();
            while let Some(action) = self.master.poll_action() {
                if let Action::Send { event, .. } = action {
                    if let Event::Offers(o) = &event {
                        self.offers.extend(o.offers.iter().map(|o| o.id.clone()));
                    }
                    events.push(event);
                }
            }
            events
        }

        fn call(&mut self, kind: CallKind) {
            let clock = self.tick();
            self.master.handle_call(clock, Some(&self.stream.clone()), Call::new(self.fid.clone(), kind)).unwrap();
        }

        /// Acknowledges every update, and the ones they release, until none is left.
        fn ack_all(&mut self) {
            loop {
                let acks: Vec<Acknowledge> = self
                    .step()
                    .into_iter()
                    .filter_map(|e| match e {
                        Event::Update(u) => Some(u.status),
                        _ => None,
                    })
                    .filter_map(|s| Some(Acknowledge { agent_id: s.agent_id?, task_id: s.task_id, uuid: s.uuid? }))
                    .collect();
                if acks.is_empty() {
                    return;
                }
                for ack in acks {
                    self.call(CallKind::Acknowledge(ack));
                }
            }
        }

        fn launch(&mut self, tasks: Vec<TaskInfo>) {
            let offer = self.offers.pop().expect("an offer");
            let accept = mesos::v1::scheduler::Accept {
                offer_ids: vec![offer],
                operations: vec![Operation::launch(tasks)],
                filters: None,
            };
            self.call(CallKind::Accept(accept));
        }

        fn container(&self, tid: &str) -> String {
            self.master.framework(&self.fid).unwrap().tasks[&TaskId::new(tid)].container_id.clone().unwrap()
        }

        fn started(&mut self, tid: &str, pid: u32) {
            let (clock, c) = (self.tick(), self.container(tid));
            self.master.task_started(clock, &c, Some(pid));
            self.ack_all();
        }
    }

    /// The scenario of the captures (08-29): `failer-1` (exits 3) and `sleeper-1`
    /// (running, healthy) launched together with the invalid `bad-1`; every
    /// update acknowledged, so `failer-1` is completed. With `stager`, a fourth
    /// task `stager-1` is launched and never started.
    fn capture_scenario(stager: bool) -> Sim {
        let mut sim = Sim::new(capture_framework());
        let mut bad = task("bad-1", "x");
        bad.command = None;
        let mut tasks = vec![task("failer-1", "exit 3"), sleeper(), bad];
        if stager {
            tasks.push(task("stager-1", "sleep 1"));
        }
        sim.launch(tasks);
        sim.ack_all();
        sim.started("failer-1", 101);
        sim.started("sleeper-1", 102);
        let (clock, c) = (sim.tick(), sim.container("sleeper-1"));
        sim.master.task_health(clock, &c, true);
        sim.ack_all();
        let (clock, c) = (sim.tick(), sim.container("failer-1"));
        sim.master.task_exited(clock, &c, Exit::Code(3));
        sim.ack_all();
        sim
    }

    fn master_flags() -> Flags {
        // Unsorted, with `port` given twice: the last value wins.
        let flags = [("port", "1"), ("work_dir", "/var/lib/m3s"), ("log_dir", "/var/log/m3s"), ("port", "5050")];
        Flags(flags.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    // ------------------------------------------------------------ the captures

    // captures_dir(), shared with mesos's tests.
    include!("../../../../mesos/tests/support/captures.rs");

    /// The JSON body of the answer in the capture whose name starts with `prefix`.
    fn capture(prefix: &str) -> Value {
        let dir = captures_dir();
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("no capture {prefix} in {}", dir.display()));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let status = lines.iter().position(|l| l.starts_with("HTTP ")).expect("a status line");
        let blank = status + lines[status..].iter().position(|l| l.trim().is_empty()).expect("end of headers");
        let body = lines[blank..].join("\n");
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
    }

    /// `ours` has the keys of the capture's object, except `lacks` (keys m3s
    /// legitimately does not write), and no others, except `adds`.
    fn same_keys(what: &str, ours: &Value, theirs: &Value, lacks: &[&str], adds: &[&str]) {
        let (ours, theirs) = (keys(ours), keys(theirs));
        let missing: Vec<_> = theirs.iter().filter(|k| !ours.contains(*k) && !lacks.contains(&k.as_str())).collect();
        let extra: Vec<_> = ours.iter().filter(|k| !theirs.contains(*k) && !adds.contains(&k.as_str())).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:?}, extra {extra:?}");
    }

    fn find<'a>(list: &'a Value, key: &str, id: &str) -> &'a Value {
        list.as_array().unwrap().iter().find(|v| v[key] == id).unwrap_or_else(|| panic!("no {key} == {id} in {list}"))
    }

    fn states(task: &Value) -> Vec<String> {
        task["statuses"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap().to_owned()).collect()
    }

    // ------------------------------------------------------------ legacy master endpoints

    #[test]
    fn master_state_matches_the_capture_while_tasks_run() {
        let sim = capture_scenario(false);
        let state = master_state(&sim.master, &master_flags());
        let ours = json(&state);
        let theirs = capture("13-");

        // m3s adds git_tag (its own release, see the module docs).
        same_keys("state", &ours, &theirs, &[], &["git_tag"]);
        same_keys("leader_info", &ours["leader_info"], &theirs["leader_info"], &[], &[]);
        same_keys("slave", &ours["slaves"][0], &theirs["slaves"][0], &[], &[]);
        let (f, tf) = (&ours["frameworks"][0], &theirs["frameworks"][0]);
        same_keys("framework", f, tf, &[], &[]);
        let (sleeper, their_sleeper) = (find(&f["tasks"], "id", "sleeper-1"), find(&tf["tasks"], "id", "sleeper-1"));
        same_keys("task", sleeper, their_sleeper, &[], &[]);
        same_keys("status", &sleeper["statuses"][1], &their_sleeper["statuses"][1], &[], &[]);
        same_keys(
            "container_status",
            &sleeper["statuses"][0]["container_status"],
            &their_sleeper["statuses"][0]["container_status"],
            &[],
            &[],
        );
        let failer = find(&f["completed_tasks"], "id", "failer-1");
        same_keys("completed task", failer, find(&tf["completed_tasks"], "id", "failer-1"), &[], &[]);

        assert_eq!(state.pid, "master@127.0.0.1:5050");
        assert_eq!(state.leader.as_deref(), Some("master@127.0.0.1:5050"));
        assert_eq!(state.elected_time, Some(START));
        assert_eq!(state.log_dir.as_deref(), Some("/var/log/m3s"));
        assert_eq!(state.activated_slaves, 1.0);
        let slave = &state.slaves[0];
        assert_eq!(slave.pid, "slave(1)@127.0.0.1:5050");
        assert_eq!((slave.id.as_str(), slave.port), ("m1-S0", 5050));
        assert_eq!((slave.used_resources.cpus, slave.used_resources.mem), (0.1, 32.0));
        assert_eq!(slave.resources.ports.as_deref(), Some("[31000-32000]"));
        assert_eq!(slave.unreserved_resources, slave.resources);
        assert_eq!(ours["slaves"][0]["capabilities"], serde_json::json!(["MULTI_ROLE"]));

        let fw = &state.frameworks[0];
        assert_eq!(fw.id, "m1-0000");
        assert_eq!(fw.roles.as_deref(), Some(&["capture".to_owned()][..]));
        assert_eq!(fw.role, None);
        assert_eq!(f["capabilities"], serde_json::json!(["MULTI_ROLE", "TASK_KILLING_STATE", "PARTITION_AWARE"]));
        assert!(fw.active && fw.connected && !fw.recovered);
        assert_eq!((fw.unregistered_time, fw.failover_timeout, fw.checkpoint), (0.0, 60.0, true));
        assert_eq!((fw.used_resources.cpus, fw.resources.mem), (0.1, 32.0));
        assert_eq!(f["offer_constraints"], serde_json::json!({}));
        assert_eq!(fw.tasks.len(), 1, "failer-1 is completed, bad-1 was never a task");

        // The health update replaced the RUNNING status before it, as on Mesos.
        assert_eq!(states(sleeper), ["TASK_STARTING", "TASK_RUNNING"]);
        assert_eq!(sleeper["statuses"][1]["healthy"], true);
        assert_eq!(sleeper["executor_id"], "");
        assert_eq!(sleeper["role"], "capture");
        assert_eq!(sleeper["labels"], serde_json::json!([{"key": "k", "value": "v"}]));
        assert_eq!(sleeper["health_check"], their_sleeper["health_check"]);
        let cs = &sleeper["statuses"][0]["container_status"];
        assert_eq!(cs["container_id"]["value"], sim.container("sleeper-1"));
        assert_eq!(cs["network_infos"], their_sleeper["statuses"][0]["container_status"]["network_infos"]);
        assert_eq!(states(failer), ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]);
    }

    #[test]
    fn master_state_after_teardown_matches_the_capture() {
        let mut sim = capture_scenario(false);
        sim.call(CallKind::Teardown);
        let state = master_state(&sim.master, &master_flags());
        let ours = json(&state);
        let theirs = capture("44-");
        same_keys("state", &ours, &theirs, &[], &["git_tag"]);
        assert!(state.frameworks.is_empty());
        let (f, tf) = (&ours["completed_frameworks"][0], &theirs["completed_frameworks"][0]);
        same_keys("completed framework", f, tf, &[], &[]);
        let done = &state.completed_frameworks[0];
        assert!(!done.active && !done.connected);
        assert!(done.unregistered_time > START, "removal time");
        assert_eq!(done.used_resources, LegacyResources::default());
        let ids: BTreeSet<&str> = done.completed_tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, BTreeSet::from(["failer-1", "sleeper-1"]));
        assert_eq!(state.slaves[0].used_resources, LegacyResources::default());
    }

    #[test]
    fn frameworks_filter_by_id_and_match_the_capture() {
        let sim = capture_scenario(false);
        let ours = json(&frameworks(&sim.master, None));
        let theirs = capture("15-");
        same_keys("frameworks", &ours, &theirs, &[], &[]);
        same_keys("framework", &ours["frameworks"][0], &theirs["frameworks"][0], &[], &[]);
        // avmesos-cli `framework list`.
        for key in ["id", "active", "hostname", "name", "webui_url"] {
            assert!(!ours["frameworks"][0][key].is_null(), "{key}");
        }
        assert_eq!(frameworks(&sim.master, Some("m1-0000")).frameworks.len(), 1);
        assert!(frameworks(&sim.master, Some("other")).frameworks.is_empty());
    }

    #[test]
    fn slaves_match_the_captures_with_full_resources() {
        let sim = capture_scenario(false);
        let s = slaves(&sim.master);
        let ours = json(&s);
        for prefix in ["16-", "18-"] {
            let theirs = capture(prefix);
            same_keys("slaves", &ours, &theirs, &[], &[]);
            same_keys("slave", &ours["slaves"][0], &theirs["slaves"][0], &[], &[]);
            assert_eq!(
                ours["slaves"][0]["unreserved_resources_full"],
                theirs["slaves"][0]["unreserved_resources_full"]
            );
            assert_eq!(ours["slaves"][0]["used_resources_full"], theirs["slaves"][0]["used_resources_full"]);
            assert_eq!(ours["slaves"][0]["reserved_resources_full"], serde_json::json!({}));
            assert_eq!(ours["slaves"][0]["offered_resources_full"], serde_json::json!([]));
        }
        // avmesos-cli `agent list`.
        let agent = &s.slaves[0];
        assert_eq!((agent.id.as_str(), agent.hostname.as_str(), agent.active), ("m1-S0", "localhost", true));
        assert_eq!(agent.pid, "slave(1)@127.0.0.1:5050");
    }

    #[test]
    fn tasks_are_sorted_paged_and_filtered_like_mesos() {
        let sim = capture_scenario(true);
        let ids = |q: &TasksQuery| -> Vec<String> { tasks(&sim.master, q).tasks.into_iter().map(|t| t.id).collect() };
        let all = TasksQuery { limit: -1, ..Default::default() };
        // By first status: failer-1 started before sleeper-1; stager-1 has none.
        assert_eq!(ids(&all), ["sleeper-1", "failer-1", "stager-1"]);
        let asc = TasksQuery { order: Order::Asc, ..all.clone() };
        assert_eq!(ids(&asc), ["stager-1", "failer-1", "sleeper-1"]);
        assert_eq!(ids(&TasksQuery { limit: 1, offset: 1, ..all.clone() }), ["failer-1"]);
        assert_eq!(ids(&TasksQuery { offset: 2, ..all.clone() }), ["stager-1"]);
        assert!(ids(&TasksQuery { offset: 5, ..all.clone() }).is_empty());
        assert!(ids(&TasksQuery { limit: 0, ..all.clone() }).is_empty());
        assert_eq!(ids(&TasksQuery { task_id: Some("failer-1".into()), ..all.clone() }), ["failer-1"]);
        assert_eq!(ids(&TasksQuery { framework_id: Some("m1-0000".into()), ..all.clone() }).len(), 3);
        assert!(ids(&TasksQuery { framework_id: Some("other".into()), ..all.clone() }).is_empty());

        // The answers of the captures: default descending, and avmesos-cli's query.
        for (prefix, query) in [("14-", "limit=-1"), ("17-", "order=asc&limit=-1")] {
            let q = TasksQuery::from_params(query.split('&').map(|kv| kv.split_once('=').unwrap()));
            let ours = json(&tasks(&sim.master, &q));
            let theirs = capture(prefix);
            same_keys("tasks", &ours, &theirs, &[], &[]);
            let sleeper = find(&ours["tasks"], "id", "sleeper-1");
            same_keys("task", sleeper, find(&theirs["tasks"], "id", "sleeper-1"), &[], &[]);
            let failer = find(&ours["tasks"], "id", "failer-1");
            same_keys("task", failer, find(&theirs["tasks"], "id", "failer-1"), &[], &[]);
            // What avmesos-cli `task list` reads; a STAGING task has no status yet
            // (as on Mesos), the others have their container id in the first one.
            for t in ours["tasks"].as_array().unwrap() {
                for key in ["id", "state", "framework_id", "executor_id", "slave_id"] {
                    assert!(t[key].is_string(), "{key} in {t}");
                }
                let statuses = t["statuses"].as_array().unwrap();
                if t["id"] == "stager-1" {
                    assert!(statuses.is_empty());
                    assert_eq!(t["state"], "TASK_STAGING");
                } else {
                    assert!(statuses.last().unwrap()["state"].is_string());
                    assert!(statuses[0]["container_status"]["container_id"]["value"].is_string());
                }
            }
        }
    }

    #[test]
    fn tasks_query_parses_like_mesos() {
        let parse = |q: &str| TasksQuery::from_params(q.split('&').filter_map(|kv| kv.split_once('=')));
        assert_eq!(parse(""), TasksQuery::default());
        assert_eq!(TasksQuery::default().limit, 100);
        assert_eq!(TasksQuery::default().order, Order::Des);
        let q = parse("order=asc&limit=-1&offset=2&framework_id=f&task_id=t");
        assert_eq!(
            q,
            TasksQuery {
                limit: -1,
                offset: 2,
                order: Order::Asc,
                framework_id: Some("f".into()),
                task_id: Some("t".into())
            }
        );
        assert_eq!(parse("limit=x&offset=y&order=ASC"), TasksQuery::default());
        assert_eq!(parse("offset=-1").offset, usize::MAX);
    }

    #[test]
    fn version_is_dotted_integers_with_a_utc_build_date() {
        let sim = Sim::new(capture_framework());
        let v = version(&sim.master);
        let ours = json(&v);
        // m3s adds git_tag (its own release).
        same_keys("version", &ours, &capture("01-"), &[], &["git_tag"]);
        assert_eq!(v.version, "1.11.0");
        assert!(v.version.split('.').all(|p| p.parse::<u32>().is_ok()), "pymesos int()s each part");
        assert_eq!(v.git_tag, Some(format!("m3s-{}", env!("CARGO_PKG_VERSION"))));
        assert_eq!(v.build_user.as_deref(), Some(""));
        assert_eq!(v.build_date, v.build_time.map(format_utc));
        assert_eq!(format_utc(1_795_535_822.0), "2026-11-24 15:57:02", "the capture's build_time and build_date");
        assert_eq!(format_utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(get_version(&sim.master).version_info, v);
    }

    #[test]
    fn flags_answer_like_the_capture() {
        let ours = json(&flags(&master_flags()));
        same_keys("flags", &ours, &capture("06-"), &[], &[]);
        assert_eq!(
            ours["flags"],
            serde_json::json!({"log_dir": "/var/log/m3s", "port": "5050", "work_dir": "/var/lib/m3s"})
        );
        let listed = get_flags(&master_flags()).flags;
        let listed: Vec<(&str, Option<&str>)> = listed.iter().map(|f| (f.name.as_str(), f.value.as_deref())).collect();
        assert_eq!(
            listed,
            [("log_dir", Some("/var/log/m3s")), ("port", Some("5050")), ("work_dir", Some("/var/lib/m3s"))]
        );
        assert_eq!(master_flags().get("port"), Some("5050"));
        assert_eq!(master_flags().get("nope"), None);
    }

    // ------------------------------------------------------------ metrics

    #[test]
    fn metrics_use_mesos_names_and_count_tasks() {
        let sim = capture_scenario(false);
        let system = SystemStats {
            cpus_total: 2.0,
            load_1min: 0.5,
            load_5min: 0.25,
            load_15min: 0.125,
            mem_free_bytes: 1e9,
            mem_total_bytes: 4e9,
        };
        let now = START + 100.0;
        let snapshot = metrics_snapshot(&sim.master, &system, now);
        let mesos: BTreeSet<String> = keys(&capture("19-")).into_iter().chain(keys(&capture("12-"))).collect();
        let invented: Vec<&String> = snapshot.0.keys().filter(|k| !mesos.contains(*k)).collect();
        assert!(invented.is_empty(), "not Mesos metric names: {invented:?}");
        let mut required = vec![
            "master/elected",
            "master/uptime_secs",
            "master/outstanding_offers",
            "slave/registered",
            "slave/uptime_secs",
        ];
        for r in ["cpus", "mem", "disk", "gpus"] {
            for k in ["total", "used", "percent"] {
                required.push(Box::leak(format!("master/{r}_{k}").into_boxed_str()));
                required.push(Box::leak(format!("slave/{r}_{k}").into_boxed_str()));
            }
        }
        for k in ["slaves", "frameworks"] {
            for s in ["active", "connected", "disconnected", "inactive"] {
                required.push(Box::leak(format!("master/{k}_{s}").into_boxed_str()));
            }
        }
        for s in ["staging", "starting", "running", "killing", "finished", "failed", "killed", "lost", "error"] {
            required.push(Box::leak(format!("master/tasks_{s}").into_boxed_str()));
        }
        for s in ["staging", "starting", "running", "killing", "finished", "failed", "killed", "lost"] {
            required.push(Box::leak(format!("slave/tasks_{s}").into_boxed_str()));
        }
        for s in ["cpus_total", "load_1min", "load_5min", "load_15min", "mem_free_bytes", "mem_total_bytes"] {
            required.push(Box::leak(format!("system/{s}").into_boxed_str()));
        }
        for key in required {
            assert!(snapshot.get(key).is_some(), "{key} missing");
        }
        let get = |k: &str| snapshot.get(k).unwrap();
        assert_eq!(get("master/cpus_used"), 0.1);
        assert_eq!(get("master/cpus_percent"), 0.05);
        assert_eq!(get("master/mem_percent"), 32.0 / 8192.0);
        assert_eq!(get("master/uptime_secs"), 100.0);
        assert_eq!(get("master/tasks_running"), 1.0);
        assert_eq!(get("master/tasks_failed"), 1.0);
        assert_eq!(get("master/frameworks_active"), 1.0);
        assert_eq!(get("master/frameworks_disconnected"), 0.0);
        assert_eq!(get("slave/tasks_running"), 1.0);
        assert_eq!(get("slave/executors_running"), 1.0);
        assert_eq!(get("slave/executors_terminated"), 1.0);
        assert_eq!(get("master/valid_status_updates"), 6.0, "failer 3, sleeper 3 (with the health update)");
        assert_eq!(get("master/tasks_error"), 1.0, "bad-1, refused at launch");
        assert_eq!(get("system/mem_total_bytes"), 4e9);
        assert_eq!(get("system/load_15min"), 0.125);

        let listed = get_metrics(&snapshot).metrics;
        assert_eq!(listed.len(), snapshot.0.len());
        assert!(listed.windows(2).all(|w| w[0].name < w[1].name));
    }

    // ------------------------------------------------------------ operator API

    #[test]
    fn operator_answers_match_the_captures() {
        let sim = capture_scenario(false);
        let m = &sim.master;
        let answers = [
            ("20-", Response::GetHealth(get_health())),
            ("21-", Response::GetVersion(get_version(m))),
            ("22-", Response::GetState(get_state(m))),
            ("23-", Response::GetAgents(get_agents(m))),
            ("24-", Response::GetFrameworks(get_frameworks(m))),
            ("25-", Response::GetTasks(get_tasks(m))),
            ("26-", Response::GetExecutors(get_executors(m))),
            ("27-", Response::GetRoles(get_roles(m))),
            ("28-", Response::GetMaster(get_master(m))),
        ];
        for (prefix, answer) in answers {
            let (ours, theirs) = (json(&answer), capture(prefix));
            same_keys(prefix, &ours, &theirs, &[], &[]);
            assert_eq!(ours["type"], theirs["type"]);
            let body = theirs["type"].as_str().unwrap().to_ascii_lowercase();
            same_keys(prefix, &ours[&body], &theirs[&body], &[], &[]);
        }

        let get =
            |prefix: &str, body: &str, answer: Response| (json(&answer)[body].clone(), capture(prefix)[body].clone());
        let (ours, theirs) = get("21-", "get_version", Response::GetVersion(get_version(m)));
        same_keys("version_info", &ours["version_info"], &theirs["version_info"], &[], &["git_tag"]);

        let (ours, theirs) = get("22-", "get_state", Response::GetState(get_state(m)));
        for part in ["get_tasks", "get_executors", "get_frameworks", "get_agents"] {
            same_keys(part, &ours[part], &theirs[part], &[], &[]);
        }

        let (ours, theirs) = get("23-", "get_agents", Response::GetAgents(get_agents(m)));
        let (a, ta) = (&ours["agents"][0], &theirs["agents"][0]);
        same_keys("agent", a, ta, &[], &[]);
        // `AgentInfo.checkpoint` is not in mesos::v1::AgentInfo yet.
        same_keys("agent_info", &a["agent_info"], &ta["agent_info"], &["checkpoint"], &[]);
        assert_eq!(a["agent_info"]["resources"], ta["agent_info"]["resources"]);
        assert_eq!(a["total_resources"], ta["total_resources"]);
        assert_eq!(a["allocated_resources"], ta["allocated_resources"]);
        assert_eq!(a["pid"], "slave(1)@127.0.0.1:5050");
        assert_eq!(a["registered_time"]["nanoseconds"], 1_800_000_000_000_000_000i64);

        let (ours, theirs) = get("24-", "get_frameworks", Response::GetFrameworks(get_frameworks(m)));
        let (f, tf) = (&ours["frameworks"][0], &theirs["frameworks"][0]);
        same_keys("framework", f, tf, &[], &[]);
        same_keys("framework_info", &f["framework_info"], &tf["framework_info"], &[], &[]);
        assert_eq!(f["reregistered_time"], f["registered_time"]);
        assert_eq!(f["allocated_resources"], tf["allocated_resources"]);
        assert_eq!(f["offer_constraints"], serde_json::json!({}));

        let (ours, theirs) = get("25-", "get_tasks", Response::GetTasks(get_tasks(m)));
        for list in ["tasks", "completed_tasks"] {
            let (t, tt) = (&ours[list][0], &theirs[list][0]);
            same_keys(list, t, tt, &[], &[]);
            assert_eq!(t["resources"], tt["resources"], "{list}: with allocation_info");
            for (s, ts) in t["statuses"].as_array().unwrap().iter().zip(tt["statuses"].as_array().unwrap()) {
                // m3s gives a failed command REASON_COMMAND_EXECUTOR_FAILED
                // (master/updates.rs); Mesos's command executor sends no reason.
                let adds: &[&str] = if s["state"] == "TASK_FAILED" { &["reason"] } else { &[] };
                same_keys("status", s, ts, &[], adds);
            }
        }
        assert_eq!(states(&ours["tasks"][0]), ["TASK_STARTING", "TASK_RUNNING"]);
        assert_eq!(ours["tasks"][0]["status_update_state"], "TASK_RUNNING");
        assert_eq!(ours["tasks"][0]["status_update_uuid"], ours["tasks"][0]["statuses"][1]["uuid"]);
        assert_eq!(ours["completed_tasks"][0]["status_update_state"], "TASK_FAILED");
        assert_eq!(ours["tasks"][0]["statuses"][1]["reason"], "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED");
        assert_eq!(ours["tasks"][0]["statuses"][0]["container_status"]["executor_pid"], 102);

        let (ours, theirs) = get("27-", "get_roles", Response::GetRoles(get_roles(m)));
        assert_eq!(ours["roles"][0]["resources"], theirs["roles"][0]["resources"]);
        assert_eq!(ours["roles"][0]["name"], "capture");
        assert_eq!(ours["roles"][0]["frameworks"], serde_json::json!([{"value": "m1-0000"}]));

        let (ours, theirs) = get("28-", "get_master", Response::GetMaster(get_master(m)));
        // m3s claims no master capability (no agent update, draining or quota).
        same_keys("master_info", &ours["master_info"], &theirs["master_info"], &["capabilities"], &[]);
        assert_eq!((ours["start_time"].as_f64(), ours["elected_time"].as_f64()), (Some(START), Some(START)));

        let snapshot = metrics_snapshot(m, &SystemStats::default(), START + 1.0);
        let (ours, theirs) = get("29-", "get_metrics", Response::GetMetrics(get_metrics(&snapshot)));
        same_keys("get_metrics", &ours, &theirs, &[], &[]);
        let names = |v: &Value| -> BTreeSet<String> {
            v["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
        };
        // The master's names, and the agent's (capture 12): one process is both.
        let mesos: BTreeSet<String> = names(&theirs).into_iter().chain(keys(&capture("12-"))).collect();
        let invented: Vec<String> = names(&ours).difference(&mesos).cloned().collect();
        assert!(invented.is_empty(), "not Mesos metric names: {invented:?}");
    }

    #[test]
    fn outstanding_offers_show_in_every_view() {
        let sim = Sim::new(capture_framework());
        let m = &sim.master;
        let state = master_state(m, &Flags::default());
        let fw = &state.frameworks[0];
        assert_eq!(fw.offers.len(), 1);
        let offer = &fw.offers[0];
        assert_eq!((offer.id.as_str(), offer.slave_id.as_str()), ("m1-O0", "m1-S0"));
        assert_eq!(offer.allocation_info.role.as_deref(), Some("capture"));
        assert_eq!((offer.resources.cpus, offer.resources.ports.as_deref()), (2.0, Some("[31000-32000]")));
        assert_eq!(fw.offered_resources, offer.resources);
        assert_eq!(fw.resources, offer.resources);
        assert_eq!(state.slaves[0].offered_resources.mem, 8192.0);
        assert_eq!(state.flags, Some(BTreeMap::new()));
        assert_eq!(state.log_dir, None);

        let s = slaves(m);
        let full = s.slaves[0].offered_resources_full.as_ref().unwrap();
        assert_eq!(full.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["cpus", "mem", "disk", "ports"]);
        assert!(full.iter().all(|r| r.allocation_info.as_ref().unwrap().role.as_deref() == Some("capture")));

        let f = &get_frameworks(m).frameworks[0];
        assert_eq!(f.offers.len(), 1);
        assert_eq!(f.offers[0].id.value, "m1-O0");
        assert_eq!(f.offers[0].url.as_ref().unwrap().path.as_deref(), Some("/slave(1)"));
        assert_eq!(f.offered_resources.len(), 4);
        assert!(f.allocated_resources.is_empty());
        assert_eq!(get_agents(m).agents[0].offered_resources.len(), 4);
        let role = &get_roles(m).roles[0];
        assert_eq!(role.resources.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["cpus", "disk", "mem"]);

        let snapshot = metrics_snapshot(m, &SystemStats::default(), START);
        assert_eq!(snapshot.get("master/outstanding_offers"), Some(1.0));
    }

    #[test]
    fn single_role_frameworks_have_role_star() {
        let mut info = capture_framework();
        info.roles.clear();
        info.capabilities.retain(|c| c.kind != FrameworkCapabilityType::MultiRole);
        let mut sim = Sim::new(info);
        sim.launch(vec![task("t-1", "sleep 9")]);
        sim.ack_all();
        let state = master_state(&sim.master, &Flags::default());
        let fw = &state.frameworks[0];
        assert_eq!((fw.role.as_deref(), fw.roles.as_ref()), (Some("*"), None));
        assert_eq!(fw.tasks[0].role.as_deref(), Some("*"));
        assert!(fw.tasks[0].statuses.is_empty(), "STAGING: no status yet");
        assert_eq!(fw.tasks[0].resources.cpus, 0.1);
        let roles = get_roles(&sim.master).roles;
        assert_eq!(roles[0].name, "*");
        let f = &get_frameworks(&sim.master).frameworks[0];
        let allocated = &f.allocated_resources;
        assert!(allocated.iter().all(|r| r.allocation_info.as_ref().unwrap().role.as_deref() == Some("*")));
        let agent = agent_state(&sim.master, &Flags::default());
        assert_eq!(agent.frameworks[0].role.as_deref(), Some("*"));
    }

    // ------------------------------------------------------------ agent

    #[test]
    fn agent_state_matches_the_capture() {
        let sim = capture_scenario(false);
        let mut flags = master_flags();
        flags.0.push(("work_dir".into(), "/var/lib/m3s/agent/".into()));
        let state = agent_state(&sim.master, &flags);
        let ours = json(&state);
        let theirs = capture("09-");
        same_keys("agent state", &ours, &theirs, &[], &["git_tag"]);
        let (f, tf) = (&ours["frameworks"][0], &theirs["frameworks"][0]);
        same_keys("agent framework", f, tf, &[], &[]);
        let (e, te) = (find(&f["executors"], "id", "sleeper-1"), find(&tf["executors"], "id", "sleeper-1"));
        same_keys("executor", e, te, &[], &[]);
        same_keys("executor task", &e["tasks"][0], &te["tasks"][0], &[], &[]);
        assert_eq!(e["name"], te["name"]);
        assert_eq!(e["source"], "sleeper-1");
        let container = sim.container("sleeper-1");
        assert_eq!(e["container"], container.as_str());
        assert_eq!(
            e["directory"],
            format!("/var/lib/m3s/agent/slaves/m1-S0/frameworks/m1-0000/executors/sleeper-1/runs/{container}")
        );
        assert_eq!(e["labels"], te["labels"]);
        assert_eq!(e["resources"]["cpus"], 0.1);
        assert_eq!(state.id, "m1-S0");
        assert_eq!(state.pid, "slave(1)@127.0.0.1:5050");
        assert_eq!(state.master_hostname.as_deref(), Some("localhost"));
        assert_eq!(state.unreserved_resources_allocated.mem, 32.0);
        assert_eq!(ours["unreserved_resources_full"], theirs["unreserved_resources_full"]);

        // failer-1 is done: its executor is completed, holding nothing.
        let failer = &state.frameworks[0].completed_executors[0];
        assert_eq!(failer.id, "failer-1");
        assert_eq!(failer.name, "Command Executor (Task: failer-1) (Command: sh -c 'exit 3')");
        assert_eq!(failer.completed_tasks[0].state, TaskState::Failed);
        assert!(failer.tasks.is_empty());
        assert_eq!(failer.resources, LegacyResources::default());
        assert_eq!(
            state.executor_directory("m1-0000", "failer-1"),
            Some(failer.directory.as_str()),
            "the sandbox lookup of log tools finds completed executors"
        );
    }

    #[test]
    fn agent_moves_frameworks_without_running_tasks_to_completed() {
        let mut sim = capture_scenario(false);
        sim.call(CallKind::Teardown);
        let state = agent_state(&sim.master, &Flags::default());
        assert!(state.frameworks.is_empty());
        assert_eq!(state.flags, Some(BTreeMap::new()));
        assert_eq!(state.completed_frameworks[0].completed_executors[0].directory, "", "no work_dir flag");
        let done = &state.completed_frameworks[0];
        assert_eq!(done.completed_executors.len(), 2);
        assert!(done.executors.is_empty());
    }

    #[test]
    fn executor_names_abbreviate_commands_like_mesos() {
        let name = |c: Option<CommandInfo>| {
            executor_name(&TaskInfo { task_id: TaskId::new("t"), command: c, ..Default::default() })
        };
        assert_eq!(
            name(Some(CommandInfo::shell("sleep 300"))),
            "Command Executor (Task: t) (Command: sh -c 'sleep 300')"
        );
        assert_eq!(
            name(Some(CommandInfo::shell("echo hello world forever"))),
            "Command Executor (Task: t) (Command: sh -c 'echo hello w...')"
        );
        let argv = CommandInfo {
            shell: false,
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "hi".into()],
            ..Default::default()
        };
        assert_eq!(name(Some(argv)), "Command Executor (Task: t) (Command: [/bin/echo, e...])");
        assert_eq!(name(Some(CommandInfo::default())), "Command Executor (Task: t) (Command: NO COMMAND)");
        // Cut on a character boundary.
        assert_eq!(
            name(Some(CommandInfo::shell("ééééééééé"))),
            "Command Executor (Task: t) (Command: sh -c 'éééééé...')"
        );
    }

    #[test]
    fn legacy_resources_and_attributes_use_mesos_text_forms() {
        let r = Resources::parse("cpus:1.5;mem:64;bogus:2;ports:[31000-31005,31010-31010];other:[1-2]").unwrap();
        let l = json(&legacy_resources(&r));
        assert_eq!(
            l,
            serde_json::json!({
                "cpus": 1.5, "gpus": 0.0, "mem": 64.0, "disk": 0.0,
                "ports": "[31000-31005, 31010-31010]", "bogus": 2.0, "other": "[1-2]"
            })
        );
        let attrs = vec![
            Attribute {
                name: "rack".into(),
                kind: ValueType::Text,
                text: Some(mesos::v1::Text { value: "r1".into() }),
                ..Default::default()
            },
            Attribute {
                name: "n".into(),
                kind: ValueType::Scalar,
                scalar: Some(mesos::v1::Scalar { value: 3.0 }),
                ..Default::default()
            },
            Attribute {
                name: "s".into(),
                kind: ValueType::Set,
                set: Some(mesos::v1::Set { item: vec!["a".into(), "b".into()] }),
                ..Default::default()
            },
        ];
        assert_eq!(json(&legacy_attributes(&attrs)), serde_json::json!({"rack": "r1", "n": 3.0, "s": "{a, b}"}));
    }
}
