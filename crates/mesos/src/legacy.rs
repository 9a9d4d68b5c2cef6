//! The legacy JSON endpoints of the master and agent (`GET /master/state`,
//! `/master/frameworks`, `/master/slaves`, `/master/tasks`, `/version`,
//! `/metrics/snapshot`, `/flags`, and on the agent `/slave(1)/state`,
//! `/monitor/statistics`, `/containers`, `/files/read`, `/files/browse`).
//!
//! These predate the v1 API and use their own encoding, written by hand in
//! Mesos (`src/common/http.cpp`, `src/master/readonly_handler.cpp`,
//! `src/slave/http.cpp`), not the protobuf mapping of [`crate::v1`]:
//! - ids are plain strings, and agents are `slave`s (`slave_id`, `slaves`);
//! - resources are flattened into [`LegacyResources`]
//!   (`{"cpus":1.0,"gpus":0.0,"mem":128.0,"disk":0.0,"ports":"[31000-32000]"}`),
//!   the four scalars always present;
//! - attributes are `{name: value}` ([`Attributes`]) and labels a bare list of
//!   `{key, value}`;
//! - times are seconds since the epoch as floats.
//!
//! Field presence follows Mesos's writers: what they always write is a plain
//! value here and always written; what they write only sometimes is an
//! `Option` (so `labels: []`, written when a task has an empty `Labels`, still
//! round-trips). Unknown keys are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{f64_lenient, opt_f64_lenient, u64_lenient};
use crate::v1::{
    AgentCapabilityType, AllocationInfo, CgroupInfo, ContainerId, ContainerInfo, ContainerStatus, DiscoveryInfo,
    DrainConfig, DrainInfo, Environment, ExecutorType, FrameworkCapabilityType, HealthCheck, IpAddress, Label,
    MasterCapabilityType, PortMapping, Resource, ResourceStatistics, TaskState,
};

// ---------------------------------------------------------------- resources and attributes

/// Resources flattened by name, as Mesos's `model(Resources)` writes them:
/// scalars summed (`cpus`, `gpus`, `mem` and `disk` always present, 0 when
/// absent), ranges and sets as strings (`"[31000-32000]"`, `"{a,b}"`), revocable
/// resources under `<name>_revocable`. Anything beyond the five usual names is
/// kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyResources {
    #[serde(deserialize_with = "f64_lenient")]
    pub cpus: f64,
    #[serde(deserialize_with = "f64_lenient")]
    pub gpus: f64,
    /// MB.
    #[serde(deserialize_with = "f64_lenient")]
    pub mem: f64,
    /// MB.
    #[serde(deserialize_with = "f64_lenient")]
    pub disk: f64,
    /// Port ranges, `"[31000-31005, 31010-31010]"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl LegacyResources {
    /// Parses `ports` (`"[31000-31005, 31010-31010]"`) into inclusive ranges;
    /// `None` when absent or malformed.
    pub fn port_ranges(&self) -> Option<Vec<(u64, u64)>> {
        parse_ranges(self.ports.as_deref()?)
    }
}

/// Parses Mesos's text form of ranges, `"[a-b, c-d]"`.
pub fn parse_ranges(text: &str) -> Option<Vec<(u64, u64)>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|part| {
            let (begin, end) = part.trim().split_once('-')?;
            Some((begin.trim().parse().ok()?, end.trim().parse().ok()?))
        })
        .collect()
}

/// The value of one agent attribute: scalars are numbers; ranges, sets and
/// text are strings (`"[1-2]"`, `"{a,b}"`, `"rack-1"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Scalar(f64),
    Text(String),
}

/// Agent attributes, `{name: value}`.
pub type Attributes = BTreeMap<String, AttributeValue>;

// ---------------------------------------------------------------- tasks

/// `NetworkInfo` as the legacy endpoints write it (labels as a bare list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyNetworkInfo {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyContainerStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<LegacyNetworkInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_info: Option<CgroupInfo>,
}

/// One status of a task: only state, time, labels, container and health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyTaskStatus {
    pub state: TaskState,
    #[serde(deserialize_with = "f64_lenient")]
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_status: Option<LegacyContainerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
}

/// A task (`/master/tasks`, `/tasks`, and inside frameworks and executors).
/// `executor_id` is `""` for command tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyTask {
    pub id: String,
    pub name: String,
    pub framework_id: String,
    pub executor_id: String,
    pub slave_id: String,
    pub state: TaskState,
    pub resources: LegacyResources,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, f64>,
    /// The role the task's resources are allocated to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Oldest first.
    pub statuses: Vec<LegacyTaskStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

impl LegacyTask {
    /// The latest status (what `avmesos task list` shows).
    pub fn latest_status(&self) -> Option<&LegacyTaskStatus> {
        self.statuses.last()
    }

    /// The container id of the first status that names one.
    pub fn container_id(&self) -> Option<&str> {
        self.statuses
            .iter()
            .find_map(|s| s.container_status.as_ref()?.container_id.as_ref())
            .map(|id| id.value.as_str())
    }
}

/// `{"tasks": [..]}`: `/master/tasks` and `/tasks` (`?limit=&offset=&order=`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tasks {
    pub tasks: Vec<LegacyTask>,
}

// ---------------------------------------------------------------- frameworks

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyUri {
    pub value: String,
    pub executable: bool,
}

/// `CommandInfo` as the legacy endpoints write it (`argv`, not `arguments`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyCommandInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub argv: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    pub uris: Vec<LegacyUri>,
}

/// An executor in a master framework object (custom executors only: command
/// executors are unknown to the master).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyExecutorInfo {
    pub executor_id: String,
    pub name: String,
    pub framework_id: String,
    pub command: LegacyCommandInfo,
    pub resources: LegacyResources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExecutorType>,
    pub slave_id: String,
}

/// An outstanding offer in a master framework object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyOffer {
    pub id: String,
    pub framework_id: String,
    pub allocation_info: AllocationInfo,
    pub slave_id: String,
    pub resources: LegacyResources,
}

/// A framework as the master's `/master/state` and `/master/frameworks` write it.
/// A multi-role framework has `roles`, any other `role`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyFramework {
    pub id: String,
    pub name: String,
    /// Only for frameworks using the old libprocess driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    pub used_resources: LegacyResources,
    pub offered_resources: LegacyResources,
    pub capabilities: Vec<FrameworkCapabilityType>,
    pub hostname: String,
    pub webui_url: String,
    pub active: bool,
    pub connected: bool,
    pub recovered: bool,
    pub user: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub failover_timeout: f64,
    pub checkpoint: bool,
    #[serde(deserialize_with = "f64_lenient")]
    pub registered_time: f64,
    /// 0 while registered.
    #[serde(deserialize_with = "f64_lenient")]
    pub unregistered_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Used plus offered.
    pub resources: LegacyResources,
    /// Written only when different from `registered_time`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub reregistered_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub tasks: Vec<LegacyTask>,
    pub unreachable_tasks: Vec<LegacyTask>,
    pub completed_tasks: Vec<LegacyTask>,
    pub offers: Vec<LegacyOffer>,
    pub executors: Vec<LegacyExecutorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    /// `scheduler.OfferConstraints` (`{}` when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<serde_json::Value>,
}

/// `/master/frameworks` (`?framework_id=`). `unregistered_frameworks` is always
/// empty on 1.11.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Frameworks {
    pub frameworks: Vec<LegacyFramework>,
    pub completed_frameworks: Vec<LegacyFramework>,
    pub unregistered_frameworks: Vec<String>,
}

// ---------------------------------------------------------------- agents as the master sees them

/// An agent in `/master/state`, `/master/slaves` and `/slaves`. The `*_full`
/// lists (v1 `Resource` objects) are written by the slaves endpoints only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyAgent {
    pub id: String,
    pub hostname: String,
    pub port: u32,
    pub attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    /// `slave(1)@ip:port`.
    pub pid: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub registered_time: f64,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub reregistered_time: Option<f64>,
    pub resources: LegacyResources,
    pub used_resources: LegacyResources,
    pub offered_resources: LegacyResources,
    /// By role.
    pub reserved_resources: BTreeMap<String, LegacyResources>,
    pub unreserved_resources: LegacyResources,
    pub active: bool,
    pub deactivated: bool,
    pub version: String,
    pub capabilities: Vec<AgentCapabilityType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_info: Option<DrainInfo>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub estimated_drain_start_time_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_resources_full: Option<BTreeMap<String, Vec<Resource>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreserved_resources_full: Option<Vec<Resource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_resources_full: Option<Vec<Resource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_resources_full: Option<Vec<Resource>>,
}

/// An agent known from the registry that has not reregistered since the master
/// failed over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecoveredAgent {
    pub id: String,
    pub hostname: String,
    pub port: u32,
    pub attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
}

/// `/master/slaves` and `/slaves` (`?slave_id=`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slaves {
    pub slaves: Vec<LegacyAgent>,
    pub recovered_slaves: Vec<RecoveredAgent>,
}

// ---------------------------------------------------------------- /master/state

/// `leader_info` of `/master/state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaderInfo {
    pub id: String,
    pub pid: String,
    pub port: u32,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
}

/// `/master/state`. The slave counts are gauges, hence floats. `flags` and the
/// log settings are present only for principals allowed to view flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterState {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_tag: Option<String>,
    pub build_date: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub build_time: f64,
    pub build_user: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub elected_time: Option<f64>,
    pub id: String,
    /// `master@ip:port`.
    pub pid: String,
    pub hostname: String,
    pub capabilities: Vec<MasterCapabilityType>,
    #[serde(deserialize_with = "f64_lenient")]
    pub activated_slaves: f64,
    #[serde(deserialize_with = "f64_lenient")]
    pub deactivated_slaves: f64,
    #[serde(deserialize_with = "f64_lenient")]
    pub unreachable_slaves: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    /// The leading master's pid, when one is elected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_info: Option<LeaderInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_log_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<BTreeMap<String, String>>,
    pub slaves: Vec<LegacyAgent>,
    pub recovered_slaves: Vec<RecoveredAgent>,
    pub frameworks: Vec<LegacyFramework>,
    pub completed_frameworks: Vec<LegacyFramework>,
    /// Always empty on 1.11.
    pub orphan_tasks: Vec<LegacyTask>,
    /// Always empty on 1.11.
    pub unregistered_frameworks: Vec<String>,
}

impl MasterState {
    /// Registered frameworks, then completed ones.
    pub fn all_frameworks(&self) -> impl Iterator<Item = &LegacyFramework> {
        self.frameworks.iter().chain(&self.completed_frameworks)
    }

    /// Every task of every framework (active, unreachable and completed, of
    /// registered and completed frameworks).
    pub fn all_tasks(&self) -> impl Iterator<Item = &LegacyTask> {
        self.all_frameworks().flat_map(LegacyFramework::all_tasks)
    }
}

impl LegacyFramework {
    /// The framework's active, unreachable and completed tasks.
    pub fn all_tasks(&self) -> impl Iterator<Item = &LegacyTask> {
        self.tasks.iter().chain(&self.unreachable_tasks).chain(&self.completed_tasks)
    }
}

// ---------------------------------------------------------------- /version, /flags, /metrics/snapshot

/// `/version`: the same fields as [`crate::v1::VersionInfo`]. Clients such as
/// pymesos parse `version` as dotted integers.
pub type Version = crate::v1::VersionInfo;

/// `/master/flags` and the agent's `/flags`: `{"flags": {name: value}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flags {
    pub flags: BTreeMap<String, String>,
}

/// `/metrics/snapshot`: a flat `{name: number}` object. Counters and gauges
/// alike are floats (`"master/elected": 1.0`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricsSnapshot(pub BTreeMap<String, f64>);

macro_rules! metric_accessors {
    ($($(#[$meta:meta])* $fn_name:ident => $key:literal,)+) => {
        $(
            $(#[$meta])*
            #[doc = concat!("`", $key, "`")]
            pub fn $fn_name(&self) -> Option<f64> {
                self.get($key)
            }
        )+

        /// Every key that has a typed accessor.
        pub const WELL_KNOWN_KEYS: &'static [&'static str] = &[$($key,)+];
    };
}

impl MetricsSnapshot {
    /// Any metric by name.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }

    /// Whether this master is the elected leader (`master/elected` is 1).
    pub fn is_elected(&self) -> Option<bool> {
        self.master_elected().map(|v| v != 0.0)
    }

    /// Whether this agent is registered with a master (`slave/registered`).
    pub fn is_registered(&self) -> Option<bool> {
        self.agent_registered().map(|v| v != 0.0)
    }

    metric_accessors! {
        master_cpus_total => "master/cpus_total",
        master_cpus_used => "master/cpus_used",
        master_cpus_percent => "master/cpus_percent",
        master_mem_total => "master/mem_total",
        master_mem_used => "master/mem_used",
        master_mem_percent => "master/mem_percent",
        master_disk_total => "master/disk_total",
        master_disk_used => "master/disk_used",
        master_disk_percent => "master/disk_percent",
        master_gpus_total => "master/gpus_total",
        master_gpus_used => "master/gpus_used",
        master_gpus_percent => "master/gpus_percent",
        master_elected => "master/elected",
        master_uptime_secs => "master/uptime_secs",
        master_slaves_active => "master/slaves_active",
        master_slaves_connected => "master/slaves_connected",
        master_slaves_disconnected => "master/slaves_disconnected",
        master_slaves_inactive => "master/slaves_inactive",
        master_slaves_unreachable => "master/slaves_unreachable",
        master_frameworks_active => "master/frameworks_active",
        master_frameworks_connected => "master/frameworks_connected",
        master_frameworks_disconnected => "master/frameworks_disconnected",
        master_frameworks_inactive => "master/frameworks_inactive",
        master_outstanding_offers => "master/outstanding_offers",
        master_tasks_staging => "master/tasks_staging",
        master_tasks_starting => "master/tasks_starting",
        master_tasks_running => "master/tasks_running",
        master_tasks_killing => "master/tasks_killing",
        master_tasks_unreachable => "master/tasks_unreachable",
        master_tasks_finished => "master/tasks_finished",
        master_tasks_failed => "master/tasks_failed",
        master_tasks_killed => "master/tasks_killed",
        master_tasks_lost => "master/tasks_lost",
        master_tasks_error => "master/tasks_error",
        master_tasks_dropped => "master/tasks_dropped",
        master_tasks_gone => "master/tasks_gone",
        master_tasks_gone_by_operator => "master/tasks_gone_by_operator",
        master_valid_status_updates => "master/valid_status_updates",
        master_invalid_status_updates => "master/invalid_status_updates",
        master_dropped_messages => "master/dropped_messages",
        system_cpus_total => "system/cpus_total",
        system_load_1min => "system/load_1min",
        system_load_5min => "system/load_5min",
        system_load_15min => "system/load_15min",
        system_mem_free_bytes => "system/mem_free_bytes",
        system_mem_total_bytes => "system/mem_total_bytes",
        agent_cpus_total => "slave/cpus_total",
        agent_cpus_used => "slave/cpus_used",
        agent_cpus_percent => "slave/cpus_percent",
        agent_mem_total => "slave/mem_total",
        agent_mem_used => "slave/mem_used",
        agent_mem_percent => "slave/mem_percent",
        agent_disk_total => "slave/disk_total",
        agent_disk_used => "slave/disk_used",
        agent_disk_percent => "slave/disk_percent",
        agent_gpus_total => "slave/gpus_total",
        agent_gpus_used => "slave/gpus_used",
        agent_gpus_percent => "slave/gpus_percent",
        agent_registered => "slave/registered",
        agent_uptime_secs => "slave/uptime_secs",
        agent_frameworks_active => "slave/frameworks_active",
        agent_tasks_staging => "slave/tasks_staging",
        agent_tasks_starting => "slave/tasks_starting",
        agent_tasks_running => "slave/tasks_running",
        agent_tasks_killing => "slave/tasks_killing",
        agent_tasks_finished => "slave/tasks_finished",
        agent_tasks_failed => "slave/tasks_failed",
        agent_tasks_killed => "slave/tasks_killed",
        agent_tasks_lost => "slave/tasks_lost",
        agent_tasks_gone => "slave/tasks_gone",
        agent_executors_registering => "slave/executors_registering",
        agent_executors_running => "slave/executors_running",
        agent_executors_terminating => "slave/executors_terminating",
        agent_executors_terminated => "slave/executors_terminated",
        agent_executors_preempted => "slave/executors_preempted",
        agent_valid_status_updates => "slave/valid_status_updates",
        agent_invalid_status_updates => "slave/invalid_status_updates",
        agent_container_launch_errors => "slave/container_launch_errors",
        agent_recovery_errors => "slave/recovery_errors",
    }
}

// ---------------------------------------------------------------- agent endpoints

/// One entry of the agent's `/monitor/statistics` (an array of these): an
/// executor's container usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorEntry {
    pub framework_id: String,
    pub executor_id: String,
    pub executor_name: String,
    pub source: String,
    pub statistics: ResourceStatistics,
}

/// `/monitor/statistics`.
pub type MonitorStatistics = Vec<MonitorEntry>;

/// One entry of the agent's `/containers` (an array of these). Nested and
/// standalone containers carry only `container_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub container_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ContainerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<ResourceStatistics>,
}

/// A task an executor has not started yet (`queued_tasks` of the agent state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueuedTask {
    pub id: String,
    pub name: String,
    pub slave_id: String,
    pub resources: LegacyResources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<LegacyCommandInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
}

/// An executor in the agent's state; `container` is its container id and
/// `directory` its sandbox (what `/files/browse?path=` takes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentExecutor {
    pub id: String,
    pub name: String,
    pub source: String,
    pub container: String,
    pub directory: String,
    pub resources: LegacyResources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExecutorType>,
    pub tasks: Vec<LegacyTask>,
    pub queued_tasks: Vec<QueuedTask>,
    pub completed_tasks: Vec<LegacyTask>,
}

/// A framework in the agent's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentFramework {
    pub id: String,
    pub name: String,
    pub user: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub failover_timeout: f64,
    pub checkpoint: bool,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub executors: Vec<AgentExecutor>,
    pub completed_executors: Vec<AgentExecutor>,
}

/// The agent's `/slave(1)/state` (also `/state` on the agent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentState {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_tag: Option<String>,
    pub build_date: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub build_time: f64,
    pub build_user: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub start_time: f64,
    /// The agent id; empty until the agent has registered.
    pub id: String,
    /// `slave(1)@ip:port`.
    pub pid: String,
    pub hostname: String,
    pub capabilities: Vec<AgentCapabilityType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_config: Option<DrainConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_drain_start_time_seconds: Option<i64>,
    pub resources: LegacyResources,
    pub reserved_resources: BTreeMap<String, LegacyResources>,
    pub unreserved_resources: LegacyResources,
    pub reserved_resources_full: BTreeMap<String, Vec<Resource>>,
    pub unreserved_resources_full: Vec<Resource>,
    pub reserved_resources_allocated: BTreeMap<String, LegacyResources>,
    pub unreserved_resources_allocated: LegacyResources,
    /// `agent.Response.GetResourceProviders.ResourceProvider`, kept as JSON.
    pub resource_providers: Vec<serde_json::Value>,
    pub attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_log_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<BTreeMap<String, String>>,
    pub frameworks: Vec<AgentFramework>,
    pub completed_frameworks: Vec<AgentFramework>,
}

impl AgentState {
    /// The sandbox directory of an executor, searching running and completed
    /// executors of running and completed frameworks.
    pub fn executor_directory(&self, framework_id: &str, executor_id: &str) -> Option<&str> {
        self.frameworks
            .iter()
            .chain(&self.completed_frameworks)
            .filter(|f| f.id == framework_id)
            .flat_map(|f| f.executors.iter().chain(&f.completed_executors))
            .find(|e| e.id == executor_id)
            .map(|e| e.directory.as_str())
    }
}

// ---------------------------------------------------------------- sandbox files

/// `/files/read?path=&offset=&length=`: `data` is text (not base64); `offset`
/// is where it starts, or the file's size when asked with `offset=-1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileChunk {
    pub data: String,
    #[serde(deserialize_with = "u64_lenient")]
    pub offset: u64,
}

impl FileChunk {
    /// Where the next read continues: the offset just past `data`.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// One entry of `/files/browse?path=` (an array of these). `mtime` is seconds
/// since the epoch; `mode` is `ls`-style (`"drwxr-xr-x"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileEntry {
    pub path: String,
    pub nlink: i64,
    #[serde(deserialize_with = "u64_lenient")]
    pub size: u64,
    #[serde(deserialize_with = "f64_lenient")]
    pub mtime: f64,
    pub mode: String,
    pub uid: String,
    pub gid: String,
}

impl FileEntry {
    pub fn is_dir(&self) -> bool {
        self.mode.starts_with('d')
    }
}

/// `/files/browse`.
pub type FileListing = Vec<FileEntry>;
