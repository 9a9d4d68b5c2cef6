//! The operator API: `mesos/v1/master/master.proto` (calls posted to the
//! master's `/api/v1`, their responses, and the events of an operator
//! SUBSCRIBE stream) and, in [`agent`], `mesos/v1/agent/agent.proto` (the
//! agent's `/api/v1`).
//!
//! Every call, response and event is a Mesos union `{"type": T, "<t>": {..}}`:
//! [`Call`], [`Response`] and [`Event`] are enums with one variant per type,
//! holding its body, plus `Unknown { type_name }` for types this build does not
//! know. Bodies live in [`call`], [`response`] and [`event`], named as in
//! the .proto (`Call.ReadFile` is [`call::ReadFile`], `Response.ReadFile` is
//! [`response::ReadFile`]).
//!
//! The conventions of [`crate::v1`] hold (proto field names, struct-level
//! `#[serde(default)]`, unset optional fields left out, explicit proto defaults
//! always written), with one exception taken from the master's hand-written JSON
//! writers: the top-level lists of GET_AGENTS, GET_FRAMEWORKS, GET_EXECUTORS and
//! GET_TASKS are always written, empty or not, as a real master writes them
//! (`"recovered_agents":[]`).
//!
//! Mesos validates that a call carries the body its type needs: every call with
//! a body here has to carry it (GET_METRICS included, `{"get_metrics":{}}`, or a
//! real master answers 400 "Expecting 'get_metrics' to be present"); decoding a
//! known type whose body is missing is an error naming the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FrameworkId, MachineId, Resource, Scalar, TimeInfo, Unavailability};
use crate::json::{mesos_enum, tagged_message};

// ---------------------------------------------------------------- maintenance.proto, quota.proto

/// A maintenance window: machines that will be unavailable together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Window {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub machine_ids: Vec<MachineId>,
    pub unavailability: Unavailability,
}

/// The cluster's maintenance schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

mesos_enum!(
    /// `allocator.InverseOfferStatus.Status`. Note the proto numbers start at 1.
    #[derive(Default)]
    InverseOfferStatusKind {
        #[default]
        Unspecified = "UNKNOWN",
        Accept = "ACCEPT",
        Decline = "DECLINE",
    }
);

/// How a framework answered an inverse offer for a draining machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOfferStatus {
    pub status: InverseOfferStatusKind,
    pub framework_id: FrameworkId,
    pub timestamp: TimeInfo,
}

/// `maintenance.ClusterStatus.DrainingMachine`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainingMachine {
    pub id: MachineId,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<InverseOfferStatus>,
}

/// `maintenance.ClusterStatus`: machines being drained and machines down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub draining_machines: Vec<DrainingMachine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub down_machines: Vec<MachineId>,
}

/// `quota.QuotaInfo` (deprecated form of a role's quota).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guarantee: Vec<Resource>,
}

/// `quota.QuotaRequest` (SET_QUOTA, deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guarantee: Vec<Resource>,
}

/// `quota.QuotaConfig`: a role's guarantees and limits, by resource name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaConfig {
    pub role: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub guarantees: BTreeMap<String, Scalar>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Scalar>,
}

/// `quota.QuotaStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<QuotaInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<QuotaConfig>,
}

/// A `google.protobuf.Duration` (DRAIN_AGENT's `max_grace_period`), which Mesos
/// writes as `{"seconds": s, "nanos": n}`, each left out when zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtobufDuration {
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "crate::json::i64_lenient")]
    pub seconds: i64,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub nanos: i32,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

// ---------------------------------------------------------------- calls

/// Bodies of master operator calls (`master.Call.*`).
pub mod call {
    use serde::{Deserialize, Serialize};

    use super::{ProtobufDuration, QuotaConfig, QuotaRequest, Schedule};
    use crate::json::u64_lenient;
    use crate::v1::{AgentId, DurationInfo, FrameworkId, MachineId, Resource, Scalar, WeightInfo};

    /// GET_METRICS; `timeout` bounds how long the master waits for slow gauges.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetMetrics {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub timeout: Option<DurationInfo>,
    }

    /// SET_LOGGING_LEVEL: glog verbosity `level` for `duration`, then back.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SetLoggingLevel {
        pub level: u32,
        pub duration: DurationInfo,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ListFiles {
        pub path: String,
    }

    /// READ_FILE: up to `length` bytes (all when unset) from `offset`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ReadFile {
        pub path: String,
        #[serde(deserialize_with = "u64_lenient")]
        pub offset: u64,
        #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "crate::json::opt_u64_lenient")]
        pub length: Option<u64>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct UpdateWeights {
        pub weight_infos: Vec<WeightInfo>,
    }

    /// RESERVE_RESOURCES; `source` (the resources before the reservation) is
    /// needed only for reservation refinement.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ReserveResources {
        pub agent_id: AgentId,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub source: Vec<Resource>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub resources: Vec<Resource>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct UnreserveResources {
        pub agent_id: AgentId,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub resources: Vec<Resource>,
    }

    /// CREATE_VOLUMES and DESTROY_VOLUMES.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Volumes {
        pub agent_id: AgentId,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub volumes: Vec<Resource>,
    }

    /// GROW_VOLUME. `agent_id` is optional in the proto but required by the
    /// master's validation.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GrowVolume {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub agent_id: Option<AgentId>,
        pub volume: Resource,
        pub addition: Resource,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ShrinkVolume {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub agent_id: Option<AgentId>,
        pub volume: Resource,
        pub subtract: Scalar,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct UpdateMaintenanceSchedule {
        pub schedule: Schedule,
    }

    /// START_MAINTENANCE and STOP_MAINTENANCE.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Machines {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub machines: Vec<MachineId>,
    }

    /// DRAIN_AGENT. `mark_gone` has the proto default `false`, always written.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct DrainAgent {
        pub agent_id: AgentId,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub max_grace_period: Option<ProtobufDuration>,
        pub mark_gone: bool,
    }

    /// DEACTIVATE_AGENT, REACTIVATE_AGENT and MARK_AGENT_GONE.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct AgentRef {
        pub agent_id: AgentId,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct UpdateQuota {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub force: Option<bool>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub quota_configs: Vec<QuotaConfig>,
    }

    /// SET_QUOTA (deprecated; UPDATE_QUOTA replaces it).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SetQuota {
        pub quota_request: QuotaRequest,
    }

    /// REMOVE_QUOTA (deprecated; UPDATE_QUOTA replaces it).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct RemoveQuota {
        pub role: String,
    }

    /// TEARDOWN: removes the framework and kills its tasks.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Teardown {
        pub framework_id: FrameworkId,
    }
}

tagged_message! {
    /// A master operator call, posted to `/api/v1`: `{"type": T, "<t>": {..}}`.
    /// SUBSCRIBE answers with a RecordIO stream of [`Event`]s; GET_* calls with a
    /// [`Response`] of the same type; the others with an empty 200 or 202.
    // Volume calls carry two whole `Resource`s; calls are built once and sent.
    #[allow(clippy::large_enum_variant)]
    pub enum Call {
        GetHealth = "GET_HEALTH",
        GetFlags = "GET_FLAGS",
        GetVersion = "GET_VERSION",
        GetMetrics = "GET_METRICS" { get_metrics: call::GetMetrics },
        GetLoggingLevel = "GET_LOGGING_LEVEL",
        SetLoggingLevel = "SET_LOGGING_LEVEL" { set_logging_level: call::SetLoggingLevel },
        ListFiles = "LIST_FILES" { list_files: call::ListFiles },
        ReadFile = "READ_FILE" { read_file: call::ReadFile },
        GetState = "GET_STATE",
        GetAgents = "GET_AGENTS",
        GetFrameworks = "GET_FRAMEWORKS",
        GetExecutors = "GET_EXECUTORS",
        GetOperations = "GET_OPERATIONS",
        GetTasks = "GET_TASKS",
        GetRoles = "GET_ROLES",
        GetWeights = "GET_WEIGHTS",
        UpdateWeights = "UPDATE_WEIGHTS" { update_weights: call::UpdateWeights },
        GetMaster = "GET_MASTER",
        Subscribe = "SUBSCRIBE",
        ReserveResources = "RESERVE_RESOURCES" { reserve_resources: call::ReserveResources },
        UnreserveResources = "UNRESERVE_RESOURCES" { unreserve_resources: call::UnreserveResources },
        CreateVolumes = "CREATE_VOLUMES" { create_volumes: call::Volumes },
        DestroyVolumes = "DESTROY_VOLUMES" { destroy_volumes: call::Volumes },
        GrowVolume = "GROW_VOLUME" { grow_volume: call::GrowVolume },
        ShrinkVolume = "SHRINK_VOLUME" { shrink_volume: call::ShrinkVolume },
        GetMaintenanceStatus = "GET_MAINTENANCE_STATUS",
        GetMaintenanceSchedule = "GET_MAINTENANCE_SCHEDULE",
        UpdateMaintenanceSchedule = "UPDATE_MAINTENANCE_SCHEDULE" { update_maintenance_schedule: call::UpdateMaintenanceSchedule },
        StartMaintenance = "START_MAINTENANCE" { start_maintenance: call::Machines },
        StopMaintenance = "STOP_MAINTENANCE" { stop_maintenance: call::Machines },
        DrainAgent = "DRAIN_AGENT" { drain_agent: call::DrainAgent },
        DeactivateAgent = "DEACTIVATE_AGENT" { deactivate_agent: call::AgentRef },
        ReactivateAgent = "REACTIVATE_AGENT" { reactivate_agent: call::AgentRef },
        GetQuota = "GET_QUOTA",
        UpdateQuota = "UPDATE_QUOTA" { update_quota: call::UpdateQuota },
        /// Deprecated: use UPDATE_QUOTA.
        SetQuota = "SET_QUOTA" { set_quota: call::SetQuota },
        /// Deprecated: use UPDATE_QUOTA.
        RemoveQuota = "REMOVE_QUOTA" { remove_quota: call::RemoveQuota },
        Teardown = "TEARDOWN" { teardown: call::Teardown },
        MarkAgentGone = "MARK_AGENT_GONE" { mark_agent_gone: call::AgentRef },
    }
}

impl Call {
    /// GET_METRICS with the body a real master requires (`{"get_metrics":{}}`).
    pub fn get_metrics() -> Self {
        Call::GetMetrics(call::GetMetrics::default())
    }

    /// TEARDOWN of one framework.
    pub fn teardown(framework_id: FrameworkId) -> Self {
        Call::Teardown(call::Teardown { framework_id })
    }
}

// ---------------------------------------------------------------- responses

/// Bodies of master operator responses (`master.Response.*`).
pub mod response {
    use serde::{Deserialize, Serialize};

    use super::{ClusterStatus, QuotaStatus, Schedule};
    use crate::json::{opt_f64_lenient, u64_lenient};
    use crate::v1::{
        AgentCapability, AgentId, AgentInfo, Bytes, DrainInfo, ExecutorInfo, FileInfo, Flag, FrameworkInfo,
        InverseOffer, MasterInfo, Metric, Offer, Resource, ResourceProviderId, Role, Task, TimeInfo, TrackedOperation,
        VersionInfo, WeightInfo,
    };

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetHealth {
        pub healthy: bool,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetFlags {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub flags: Vec<Flag>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetVersion {
        pub version_info: VersionInfo,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetMetrics {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub metrics: Vec<Metric>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetLoggingLevel {
        pub level: u32,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ListFiles {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub file_infos: Vec<FileInfo>,
    }

    /// READ_FILE: `size` is the whole file's size, `data` the bytes read.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ReadFile {
        #[serde(deserialize_with = "u64_lenient")]
        pub size: u64,
        pub data: Bytes,
    }

    /// GET_STATE: the other four GET_* answers in one (a real master writes all
    /// four).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetState {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub get_tasks: Option<GetTasks>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub get_executors: Option<GetExecutors>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub get_frameworks: Option<GetFrameworks>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub get_agents: Option<GetAgents>,
    }

    /// `GetAgents.Agent.ResourceProvider`; the provider's info is kept as JSON.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ResourceProvider {
        pub resource_provider_info: serde_json::Value,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub total_resources: Vec<Resource>,
    }

    impl ResourceProvider {
        /// The provider's id, when its info carries one.
        pub fn id(&self) -> Option<ResourceProviderId> {
            serde_json::from_value(self.resource_provider_info.get("id")?.clone()).ok()
        }
    }

    /// A registered agent (`GetAgents.Agent`), also the body of AGENT_ADDED.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Agent {
        pub agent_info: AgentInfo,
        pub active: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub deactivated: Option<bool>,
        pub version: String,
        /// `slave(1)@ip:port`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub pid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub registered_time: Option<TimeInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub reregistered_time: Option<TimeInfo>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub total_resources: Vec<Resource>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub allocated_resources: Vec<Resource>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub offered_resources: Vec<Resource>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub capabilities: Vec<AgentCapability>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub resource_providers: Vec<ResourceProvider>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub drain_info: Option<DrainInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub estimated_drain_start_time: Option<TimeInfo>,
    }

    /// GET_AGENTS: registered agents, and agents known from the registry that
    /// have not reregistered since the master failed over.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetAgents {
        pub agents: Vec<Agent>,
        pub recovered_agents: Vec<AgentInfo>,
    }

    /// A framework as the master knows it (`GetFrameworks.Framework`), also the
    /// body of FRAMEWORK_ADDED and FRAMEWORK_UPDATED.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Framework {
        pub framework_info: FrameworkInfo,
        pub active: bool,
        pub connected: bool,
        /// Known only from reregistering agents since a master failover.
        pub recovered: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub registered_time: Option<TimeInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub reregistered_time: Option<TimeInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub unregistered_time: Option<TimeInfo>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub offers: Vec<Offer>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub inverse_offers: Vec<InverseOffer>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub allocated_resources: Vec<Resource>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub offered_resources: Vec<Resource>,
        /// `scheduler.OfferConstraints`, kept as JSON (a real master writes `{}`
        /// when the framework set none).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub offer_constraints: Option<serde_json::Value>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetFrameworks {
        pub frameworks: Vec<Framework>,
        pub completed_frameworks: Vec<Framework>,
        /// Deprecated, always empty on 1.11.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub recovered_frameworks: Vec<FrameworkInfo>,
    }

    /// `GetExecutors.Executor`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Executor {
        pub executor_info: ExecutorInfo,
        pub agent_id: AgentId,
    }

    /// GET_EXECUTORS. Command executors are not listed (the master does not know
    /// them), so a cluster running only command tasks answers `executors: []`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetExecutors {
        pub executors: Vec<Executor>,
        /// Deprecated, always empty on 1.11.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub orphan_executors: Vec<Executor>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetOperations {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub operations: Vec<TrackedOperation>,
    }

    /// GET_TASKS: active tasks, tasks on unreachable agents, and the most recent
    /// terminal tasks (bounded by `--max_completed_tasks_per_framework`).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetTasks {
        /// Deprecated, always empty on 1.11.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub pending_tasks: Vec<Task>,
        pub tasks: Vec<Task>,
        pub unreachable_tasks: Vec<Task>,
        pub completed_tasks: Vec<Task>,
        /// Deprecated, always empty on 1.11.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub orphan_tasks: Vec<Task>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetRoles {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub roles: Vec<Role>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetWeights {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub weight_infos: Vec<WeightInfo>,
    }

    /// GET_MASTER. `start_time` and `elected_time` are seconds since the epoch.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetMaster {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub master_info: Option<MasterInfo>,
        #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
        pub start_time: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
        pub elected_time: Option<f64>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetMaintenanceStatus {
        pub status: ClusterStatus,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetMaintenanceSchedule {
        pub schedule: Schedule,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetQuota {
        pub status: QuotaStatus,
    }
}

pub use response::{Agent, Executor, Framework};

tagged_message! {
    /// The answer to a master operator GET_* call: `{"type": T, "<t>": {..}}`,
    /// where `T` is the call's type.
    pub enum Response {
        GetHealth = "GET_HEALTH" { get_health: response::GetHealth },
        GetFlags = "GET_FLAGS" { get_flags: response::GetFlags },
        GetVersion = "GET_VERSION" { get_version: response::GetVersion },
        GetMetrics = "GET_METRICS" { get_metrics: response::GetMetrics },
        GetLoggingLevel = "GET_LOGGING_LEVEL" { get_logging_level: response::GetLoggingLevel },
        ListFiles = "LIST_FILES" { list_files: response::ListFiles },
        ReadFile = "READ_FILE" { read_file: response::ReadFile },
        GetState = "GET_STATE" { get_state: response::GetState },
        GetAgents = "GET_AGENTS" { get_agents: response::GetAgents },
        GetFrameworks = "GET_FRAMEWORKS" { get_frameworks: response::GetFrameworks },
        GetExecutors = "GET_EXECUTORS" { get_executors: response::GetExecutors },
        GetOperations = "GET_OPERATIONS" { get_operations: response::GetOperations },
        GetTasks = "GET_TASKS" { get_tasks: response::GetTasks },
        GetRoles = "GET_ROLES" { get_roles: response::GetRoles },
        GetWeights = "GET_WEIGHTS" { get_weights: response::GetWeights },
        GetMaster = "GET_MASTER" { get_master: response::GetMaster },
        GetMaintenanceStatus = "GET_MAINTENANCE_STATUS" { get_maintenance_status: response::GetMaintenanceStatus },
        GetMaintenanceSchedule = "GET_MAINTENANCE_SCHEDULE" { get_maintenance_schedule: response::GetMaintenanceSchedule },
        GetQuota = "GET_QUOTA" { get_quota: response::GetQuota },
    }
}

// ---------------------------------------------------------------- events

/// Bodies of operator events (`master.Event.*`).
pub mod event {
    use serde::{Deserialize, Serialize};

    use super::response::{Agent, Framework, GetState};
    use crate::json::opt_f64_lenient;
    use crate::v1::{AgentId, FrameworkId, FrameworkInfo, Task, TaskState, TaskStatus};

    /// First event of an operator subscription: a snapshot of the cluster.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Subscribed {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub get_state: Option<GetState>,
        #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
        pub heartbeat_interval_seconds: Option<f64>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct TaskAdded {
        pub task: Task,
    }

    /// A task changed state. `state` is the task's latest state, `status` the
    /// status update that caused the event (whose state can differ while
    /// earlier updates are still unacknowledged).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct TaskUpdated {
        pub framework_id: FrameworkId,
        pub status: TaskStatus,
        pub state: TaskState,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct AgentAdded {
        pub agent: Agent,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct AgentRemoved {
        pub agent_id: AgentId,
    }

    /// FRAMEWORK_ADDED and FRAMEWORK_UPDATED.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct FrameworkChanged {
        pub framework: Framework,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct FrameworkRemoved {
        pub framework_info: FrameworkInfo,
    }
}

tagged_message! {
    /// An event of an operator SUBSCRIBE stream: `{"type": T, "<t>": {..}}`.
    // AGENT_ADDED carries a whole agent; events are decoded once and consumed,
    // so boxing would only make matching clumsier.
    #[allow(clippy::large_enum_variant)]
    pub enum Event {
        Subscribed = "SUBSCRIBED" { subscribed: event::Subscribed },
        TaskAdded = "TASK_ADDED" { task_added: event::TaskAdded },
        TaskUpdated = "TASK_UPDATED" { task_updated: event::TaskUpdated },
        AgentAdded = "AGENT_ADDED" { agent_added: event::AgentAdded },
        AgentRemoved = "AGENT_REMOVED" { agent_removed: event::AgentRemoved },
        FrameworkAdded = "FRAMEWORK_ADDED" { framework_added: event::FrameworkChanged },
        FrameworkUpdated = "FRAMEWORK_UPDATED" { framework_updated: event::FrameworkChanged },
        FrameworkRemoved = "FRAMEWORK_REMOVED" { framework_removed: event::FrameworkRemoved },
        Heartbeat = "HEARTBEAT",
    }
}

// ---------------------------------------------------------------- agent API

/// The agent's operator API (`mesos/v1/agent/agent.proto`), posted to the
/// agent's `/api/v1`. Calls and responses are typed where m3s reads them (state,
/// tasks, containers, nested container sessions); resource provider
/// configuration is kept as JSON.
pub mod agent {
    use serde::{Deserialize, Serialize};

    use crate::json::{mesos_enum, tagged_message};
    use crate::v1::{Bytes, DurationInfo};

    /// Bodies of agent operator calls (`agent.Call.*`).
    pub mod call {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Serialize};

        use super::ProcessIo;
        use crate::json::mesos_enum;
        use crate::v1::{CommandInfo, ContainerId, ContainerInfo, Image, Resource, ResourceProviderId, Scalar};

        /// GET_CONTAINERS; by default nested and standalone containers are left
        /// out.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetContainers {
            #[serde(skip_serializing_if = "Option::is_none")]
            pub show_nested: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub show_standalone: Option<bool>,
        }

        /// LAUNCH_NESTED_CONTAINER (deprecated) and LAUNCH_NESTED_CONTAINER_SESSION:
        /// `container_id` names the new container, with its parent.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct LaunchNestedContainer {
            pub container_id: ContainerId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub command: Option<CommandInfo>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub container: Option<ContainerInfo>,
        }

        /// The calls that name one container: WAIT_*, REMOVE_*,
        /// ATTACH_CONTAINER_OUTPUT.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct ContainerRef {
            pub container_id: ContainerId,
        }

        /// KILL_CONTAINER and KILL_NESTED_CONTAINER; `signal` defaults to SIGKILL.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct KillContainer {
            pub container_id: ContainerId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub signal: Option<i32>,
        }

        mesos_enum!(
            /// `AttachContainerInput.Type`.
            AttachContainerInputType {
                Unspecified = "UNKNOWN",
                ContainerId = "CONTAINER_ID",
                ProcessIo = "PROCESS_IO",
            }
        );

        /// One record of an ATTACH_CONTAINER_INPUT request stream: the first names
        /// the container, the rest carry ProcessIO.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct AttachContainerInput {
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            pub kind: Option<AttachContainerInputType>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub container_id: Option<ContainerId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub process_io: Option<ProcessIo>,
        }

        /// LAUNCH_CONTAINER: a standalone or nested container.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct LaunchContainer {
            pub container_id: ContainerId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub command: Option<CommandInfo>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub resources: Vec<Resource>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub container: Option<ContainerInfo>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            pub limits: BTreeMap<String, Scalar>,
        }

        /// ADD_RESOURCE_PROVIDER_CONFIG and UPDATE_RESOURCE_PROVIDER_CONFIG; the
        /// `ResourceProviderInfo` is kept as JSON.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct ResourceProviderConfig {
            pub info: serde_json::Value,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct RemoveResourceProviderConfig {
            #[serde(rename = "type")]
            pub kind: String,
            pub name: String,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct MarkResourceProviderGone {
            pub resource_provider_id: ResourceProviderId,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct PruneImages {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub excluded_images: Vec<Image>,
        }
    }

    tagged_message! {
        /// An agent operator call, posted to the agent's `/api/v1`.
        pub enum Call {
            GetHealth = "GET_HEALTH",
            GetFlags = "GET_FLAGS",
            GetVersion = "GET_VERSION",
            GetMetrics = "GET_METRICS" { get_metrics: super::call::GetMetrics },
            GetLoggingLevel = "GET_LOGGING_LEVEL",
            SetLoggingLevel = "SET_LOGGING_LEVEL" { set_logging_level: super::call::SetLoggingLevel },
            ListFiles = "LIST_FILES" { list_files: super::call::ListFiles },
            ReadFile = "READ_FILE" { read_file: super::call::ReadFile },
            GetState = "GET_STATE",
            GetContainers = "GET_CONTAINERS" { get_containers: call::GetContainers = default },
            GetFrameworks = "GET_FRAMEWORKS",
            GetExecutors = "GET_EXECUTORS",
            GetOperations = "GET_OPERATIONS",
            GetTasks = "GET_TASKS",
            GetAgent = "GET_AGENT",
            GetResourceProviders = "GET_RESOURCE_PROVIDERS",
            /// Deprecated: use LAUNCH_CONTAINER.
            LaunchNestedContainer = "LAUNCH_NESTED_CONTAINER" { launch_nested_container: call::LaunchNestedContainer },
            /// Deprecated: use WAIT_CONTAINER.
            WaitNestedContainer = "WAIT_NESTED_CONTAINER" { wait_nested_container: call::ContainerRef },
            /// Deprecated: use KILL_CONTAINER.
            KillNestedContainer = "KILL_NESTED_CONTAINER" { kill_nested_container: call::KillContainer },
            /// Deprecated: use REMOVE_CONTAINER.
            RemoveNestedContainer = "REMOVE_NESTED_CONTAINER" { remove_nested_container: call::ContainerRef },
            LaunchNestedContainerSession = "LAUNCH_NESTED_CONTAINER_SESSION" { launch_nested_container_session: call::LaunchNestedContainer },
            AttachContainerInput = "ATTACH_CONTAINER_INPUT" { attach_container_input: call::AttachContainerInput },
            AttachContainerOutput = "ATTACH_CONTAINER_OUTPUT" { attach_container_output: call::ContainerRef },
            LaunchContainer = "LAUNCH_CONTAINER" { launch_container: call::LaunchContainer },
            WaitContainer = "WAIT_CONTAINER" { wait_container: call::ContainerRef },
            KillContainer = "KILL_CONTAINER" { kill_container: call::KillContainer },
            RemoveContainer = "REMOVE_CONTAINER" { remove_container: call::ContainerRef },
            AddResourceProviderConfig = "ADD_RESOURCE_PROVIDER_CONFIG" { add_resource_provider_config: call::ResourceProviderConfig },
            UpdateResourceProviderConfig = "UPDATE_RESOURCE_PROVIDER_CONFIG" { update_resource_provider_config: call::ResourceProviderConfig },
            RemoveResourceProviderConfig = "REMOVE_RESOURCE_PROVIDER_CONFIG" { remove_resource_provider_config: call::RemoveResourceProviderConfig },
            MarkResourceProviderGone = "MARK_RESOURCE_PROVIDER_GONE" { mark_resource_provider_gone: call::MarkResourceProviderGone },
            PruneImages = "PRUNE_IMAGES" { prune_images: call::PruneImages = default },
        }
    }

    /// Bodies of agent operator responses (`agent.Response.*`).
    pub mod response {
        use serde::{Deserialize, Serialize};

        use crate::v1::{
            AgentInfo, ContainerId, ContainerStatus, DrainConfig, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
            ResourceStatistics, Task, TaskResourceLimitation, TaskState, TaskStatusReason, TimeInfo,
        };

        /// GET_STATE: the agent's GET_TASKS, GET_EXECUTORS and GET_FRAMEWORKS.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetState {
            #[serde(skip_serializing_if = "Option::is_none")]
            pub get_tasks: Option<GetTasks>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub get_executors: Option<GetExecutors>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub get_frameworks: Option<GetFrameworks>,
        }

        /// `GetContainers.Container`: one container with its status and usage.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Container {
            #[serde(skip_serializing_if = "Option::is_none")]
            pub framework_id: Option<FrameworkId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub executor_id: Option<ExecutorId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub executor_name: Option<String>,
            pub container_id: ContainerId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub container_status: Option<ContainerStatus>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub resource_statistics: Option<ResourceStatistics>,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetContainers {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub containers: Vec<Container>,
        }

        /// `GetFrameworks.Framework`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Framework {
            pub framework_info: FrameworkInfo,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetFrameworks {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub frameworks: Vec<Framework>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub completed_frameworks: Vec<Framework>,
        }

        /// `GetExecutors.Executor`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Executor {
            pub executor_info: ExecutorInfo,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetExecutors {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub executors: Vec<Executor>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub completed_executors: Vec<Executor>,
        }

        /// GET_TASKS on an agent: tasks waiting for their executor (pending,
        /// queued), launched, terminated but unacknowledged, and completed.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetTasks {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub pending_tasks: Vec<Task>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub queued_tasks: Vec<Task>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub launched_tasks: Vec<Task>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub terminated_tasks: Vec<Task>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub completed_tasks: Vec<Task>,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetAgent {
            #[serde(skip_serializing_if = "Option::is_none")]
            pub agent_info: Option<AgentInfo>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub drain_config: Option<DrainConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub estimated_drain_start_time: Option<TimeInfo>,
        }

        /// GET_RESOURCE_PROVIDERS; the providers are kept as JSON.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct GetResourceProviders {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub resource_providers: Vec<serde_json::Value>,
        }

        /// WAIT_CONTAINER and WAIT_NESTED_CONTAINER: how the container ended.
        /// `exit_status` is the raw `wait(2)` status.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct WaitContainer {
            #[serde(skip_serializing_if = "Option::is_none")]
            pub exit_status: Option<i32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub state: Option<TaskState>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub reason: Option<TaskStatusReason>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub limitation: Option<TaskResourceLimitation>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub message: Option<String>,
        }
    }

    tagged_message! {
        /// The answer to an agent operator call that returns data.
        pub enum Response {
            GetHealth = "GET_HEALTH" { get_health: super::response::GetHealth },
            GetFlags = "GET_FLAGS" { get_flags: super::response::GetFlags },
            GetVersion = "GET_VERSION" { get_version: super::response::GetVersion },
            GetMetrics = "GET_METRICS" { get_metrics: super::response::GetMetrics },
            GetLoggingLevel = "GET_LOGGING_LEVEL" { get_logging_level: super::response::GetLoggingLevel },
            ListFiles = "LIST_FILES" { list_files: super::response::ListFiles },
            ReadFile = "READ_FILE" { read_file: super::response::ReadFile },
            GetState = "GET_STATE" { get_state: response::GetState },
            GetContainers = "GET_CONTAINERS" { get_containers: response::GetContainers },
            GetFrameworks = "GET_FRAMEWORKS" { get_frameworks: response::GetFrameworks },
            GetExecutors = "GET_EXECUTORS" { get_executors: response::GetExecutors },
            GetOperations = "GET_OPERATIONS" { get_operations: super::response::GetOperations },
            GetTasks = "GET_TASKS" { get_tasks: response::GetTasks },
            GetAgent = "GET_AGENT" { get_agent: response::GetAgent },
            GetResourceProviders = "GET_RESOURCE_PROVIDERS" { get_resource_providers: response::GetResourceProviders },
            /// Deprecated: answers WAIT_NESTED_CONTAINER.
            WaitNestedContainer = "WAIT_NESTED_CONTAINER" { wait_nested_container: response::WaitContainer },
            WaitContainer = "WAIT_CONTAINER" { wait_container: response::WaitContainer },
        }
    }

    mesos_enum!(
        /// `ProcessIO.Data.Type`.
        ProcessIoDataType {
            Unspecified = "UNKNOWN",
            Stdin = "STDIN",
            Stdout = "STDOUT",
            Stderr = "STDERR",
        }
    );

    mesos_enum!(
        /// `ProcessIO.Control.Type`.
        ProcessIoControlType {
            Unspecified = "UNKNOWN",
            TtyInfo = "TTY_INFO",
            Heartbeat = "HEARTBEAT",
        }
    );

    /// `ProcessIO.Data`: bytes of one standard stream, base64 on the wire.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ProcessIoData {
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        pub kind: Option<ProcessIoDataType>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data: Option<Bytes>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ProcessIoHeartbeat {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub interval: Option<DurationInfo>,
    }

    /// `ProcessIO.Control`: terminal size changes and keep-alive heartbeats.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ProcessIoControl {
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        pub kind: Option<ProcessIoControlType>,
        /// `TTYInfo` (window size), kept as JSON.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tty_info: Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub heartbeat: Option<ProcessIoHeartbeat>,
    }

    mesos_enum!(
        /// `ProcessIO.Type`.
        ProcessIoType {
            Unspecified = "UNKNOWN",
            Data = "DATA",
            Control = "CONTROL",
        }
    );

    /// One record of a nested container session's I/O (`ProcessIO`), streamed
    /// as RecordIO by LAUNCH_NESTED_CONTAINER_SESSION and
    /// ATTACH_CONTAINER_OUTPUT answers and inside ATTACH_CONTAINER_INPUT.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ProcessIo {
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        pub kind: Option<ProcessIoType>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data: Option<ProcessIoData>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub control: Option<ProcessIoControl>,
    }
}
