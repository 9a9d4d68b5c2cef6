//! Messages of `mesos/v1/mesos.proto` that the scheduler and operator APIs share,
//! in Mesos's JSON mapping.
//!
//! Conventions, the same in every type here:
//! - field names are the .proto names;
//! - every struct is `#[serde(default)]`: a missing field is its proto default, and
//!   unknown keys are ignored, so newer masters do not break older clients;
//! - optional fields without an explicit proto default are `Option`/empty `Vec` and
//!   are left out of the output when unset;
//! - fields with an explicit proto default (`CommandInfo.shell = true`,
//!   `Filters.refuse_seconds = 5`, ...) are plain values and always written, as
//!   Mesos itself writes them;
//! - numbers are accepted as JSON numbers or strings (`"Infinity"` included).
//!
//! Validation of required fields is the receiver's business (`m3s mini` answers
//! 400 as Mesos does); decoding here never fails for a missing field.

pub mod operator;
pub mod scheduler;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::json::Bytes;
use crate::json::{f64_lenient, i64_lenient, mesos_enum, opt_f64_lenient, opt_u64_lenient, u64_lenient};

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name {
            pub value: String,
        }

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name { value: value.into() }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.value)
            }
        }
    )+};
}

id_type!(
    /// `<master id>-<4 digits>` on a real master.
    FrameworkId,
    /// `<master id>-O<n>` on a real master.
    OfferId,
    /// `<master id>-S<n>` on a real master.
    AgentId,
    TaskId,
    ExecutorId,
    OperationId,
    ResourceProviderId,
);

/// A container id; nested containers name their parent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerId {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<ContainerId>>,
}

/// A `google.protobuf`-style duration: Mesos's `DurationInfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationInfo {
    #[serde(deserialize_with = "i64_lenient")]
    pub nanoseconds: i64,
}

impl DurationInfo {
    pub fn from_secs_f64(secs: f64) -> Self {
        DurationInfo { nanoseconds: (secs * 1e9) as i64 }
    }
}

/// `TimeInfo`: nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeInfo {
    #[serde(deserialize_with = "i64_lenient")]
    pub nanoseconds: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Labels {
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameters {
    pub parameter: Vec<Parameter>,
}

// ---------------------------------------------------------------- values

mesos_enum!(
    /// `Value.Type`.
    #[derive(Default)]
    ValueType {
        #[default]
        Scalar = "SCALAR",
        Ranges = "RANGES",
        Set = "SET",
        Text = "TEXT",
    }
);

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    #[serde(deserialize_with = "f64_lenient")]
    pub value: f64,
}

/// An inclusive range, as Mesos port ranges are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(deserialize_with = "u64_lenient")]
    pub begin: u64,
    #[serde(deserialize_with = "u64_lenient")]
    pub end: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ranges {
    pub range: Vec<Range>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Set {
    pub item: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Text {
    pub value: String,
}

/// An agent attribute (`rack:r1`, `zone:a`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

// ---------------------------------------------------------------- resources

mesos_enum!(
    ReservationType {
        Unspecified = "UNKNOWN",
        Static = "STATIC",
        Dynamic = "DYNAMIC",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocationInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReservationInfo {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReservationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// `Resource.DiskInfo`: persistent volumes and disk sources. Kept as JSON: m3s
/// neither creates nor reads volumes through the scheduler API yet.
pub type DiskInfo = serde_json::Value;

/// One resource of an offer or a task (`cpus`, `mem`, `disk`, `ports`, `gpus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    /// Deprecated pre-refinement role; a real master sends `"*"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<ReservationInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocable: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<ResourceProviderId>,
}

impl Resource {
    /// A scalar resource (`cpus`, `mem` in MB, `disk` in MB, `gpus`).
    pub fn scalar(name: impl Into<String>, value: f64) -> Self {
        Resource { name: name.into(), kind: ValueType::Scalar, scalar: Some(Scalar { value }), ..Default::default() }
    }

    /// A ranges resource such as `ports`, ranges inclusive.
    pub fn ranges(name: impl Into<String>, ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        Resource {
            name: name.into(),
            kind: ValueType::Ranges,
            ranges: Some(Ranges { range: ranges.into_iter().map(|(begin, end)| Range { begin, end }).collect() }),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------- framework and master

mesos_enum!(
    /// `FrameworkInfo.Capability.Type`.
    FrameworkCapabilityType {
        Unspecified = "UNKNOWN",
        RevocableResources = "REVOCABLE_RESOURCES",
        TaskKillingState = "TASK_KILLING_STATE",
        GpuResources = "GPU_RESOURCES",
        SharedResources = "SHARED_RESOURCES",
        PartitionAware = "PARTITION_AWARE",
        MultiRole = "MULTI_ROLE",
        ReservationRefinement = "RESERVATION_REFINEMENT",
        RegionAware = "REGION_AWARE",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkCapability {
    #[serde(rename = "type")]
    pub kind: FrameworkCapabilityType,
}

impl FrameworkCapability {
    /// The `capabilities` list of a FrameworkInfo announcing these kinds.
    pub fn list(kinds: &[FrameworkCapabilityType]) -> Vec<FrameworkCapability> {
        kinds.iter().map(|kind| FrameworkCapability { kind: kind.clone() }).collect()
    }
}

/// Describes a framework to the master. `failover_timeout` (seconds) is how long
/// the master keeps the framework and its tasks after its connection breaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    #[serde(deserialize_with = "f64_lenient")]
    pub failover_timeout: f64,
    pub checkpoint: bool,
    /// Deprecated single role; exclusive with `roles` (which needs MULTI_ROLE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<FrameworkCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub offer_filters: BTreeMap<String, serde_json::Value>,
}

impl Default for FrameworkInfo {
    fn default() -> Self {
        FrameworkInfo {
            user: String::new(),
            name: String::new(),
            id: None,
            failover_timeout: 0.0,
            checkpoint: false,
            role: None,
            roles: Vec::new(),
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Vec::new(),
            labels: None,
            offer_filters: BTreeMap::new(),
        }
    }
}

impl FrameworkInfo {
    pub fn has_capability(&self, kind: &FrameworkCapabilityType) -> bool {
        self.capabilities.iter().any(|c| &c.kind == kind)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Url {
    pub scheme: String,
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment: Option<String>,
}

/// The master's self-description. `ip` is an IPv4 address as a u32 in network
/// byte order, read as a little-endian integer (127.0.0.1 is 16777343).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterInfo {
    pub id: String,
    pub ip: u32,
    pub port: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<serde_json::Value>,
}

impl Default for MasterInfo {
    fn default() -> Self {
        MasterInfo {
            id: String::new(),
            ip: 0,
            port: 5050,
            pid: None,
            hostname: None,
            version: None,
            address: None,
            domain: None,
            capabilities: Vec::new(),
        }
    }
}

/// An agent's self-description. `port` has the proto default 5051.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    pub hostname: String,
    pub port: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
}

impl Default for AgentInfo {
    fn default() -> Self {
        AgentInfo {
            hostname: String::new(),
            port: 5051,
            resources: Vec::new(),
            attributes: Vec::new(),
            id: None,
            domain: None,
        }
    }
}

// ---------------------------------------------------------------- commands and containers

mesos_enum!(
    /// `Environment.Variable.Type`.
    VariableType {
        Unspecified = "UNKNOWN",
        Value = "VALUE",
        Secret = "SECRET",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvironmentVariable {
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<VariableType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub variables: Vec<EnvironmentVariable>,
}

/// An artifact the Mesos fetcher downloads into the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandUri {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    /// Proto default `true`: archives are unpacked unless told otherwise.
    pub extract: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

impl Default for CommandUri {
    fn default() -> Self {
        CommandUri { value: String::new(), executable: None, extract: true, cache: None, output_file: None }
    }
}

/// What to run. With `shell` (the proto default) `value` runs under `/bin/sh -c`;
/// without it `value` is the program and `arguments` its argv (`argv[0]` first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandInfo {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<CommandUri>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    pub shell: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Default for CommandInfo {
    fn default() -> Self {
        CommandInfo { uris: Vec::new(), environment: None, shell: true, value: None, arguments: Vec::new(), user: None }
    }
}

impl CommandInfo {
    /// A shell command (`/bin/sh -c value`).
    pub fn shell(value: impl Into<String>) -> Self {
        CommandInfo { value: Some(value.into()), ..Default::default() }
    }
}

mesos_enum!(
    ContainerType {
        Docker = "DOCKER",
        Mesos = "MESOS",
    }
);

mesos_enum!(
    DockerNetwork {
        Host = "HOST",
        Bridge = "BRIDGE",
        None = "NONE",
        User = "USER",
    }
);

mesos_enum!(
    VolumeMode {
        Rw = "RW",
        Ro = "RO",
    }
);

mesos_enum!(
    ImageType {
        Appc = "APPC",
        Docker = "DOCKER",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerImage {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Image {
    #[serde(rename = "type")]
    pub kind: ImageType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appc: Option<serde_json::Value>,
    /// Proto default `true`.
    pub cached: bool,
}

impl Default for Image {
    fn default() -> Self {
        Image { kind: ImageType::Docker, docker: None, appc: None, cached: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub mode: VolumeMode,
    pub container_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

impl Default for Volume {
    fn default() -> Self {
        Volume { mode: VolumeMode::Rw, container_path: String::new(), host_path: None, image: None, source: None }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerInfo {
    pub image: String,
    /// Proto default `HOST`.
    pub network: DockerNetwork,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_driver: Option<String>,
}

impl Default for DockerInfo {
    fn default() -> Self {
        DockerInfo {
            image: String::new(),
            network: DockerNetwork::Host,
            port_mappings: Vec::new(),
            privileged: None,
            parameters: Vec::new(),
            force_pull_image: None,
            volume_driver: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MesosContainerInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RLimit {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub hard: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub soft: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RLimitInfo {
    pub rlimits: Vec<RLimit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    #[serde(rename = "type")]
    pub kind: ContainerType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosContainerInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
    /// Capabilities, seccomp, shared pid namespace: kept as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux_info: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_info: Option<RLimitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty_info: Option<serde_json::Value>,
}

impl Default for ContainerInfo {
    fn default() -> Self {
        ContainerInfo {
            kind: ContainerType::Mesos,
            volumes: Vec::new(),
            hostname: None,
            docker: None,
            mesos: None,
            network_infos: Vec::new(),
            linux_info: None,
            rlimit_info: None,
            tty_info: None,
        }
    }
}

// ---------------------------------------------------------------- health checks, kill policy

mesos_enum!(
    HealthCheckType {
        Unspecified = "UNKNOWN",
        Command = "COMMAND",
        Http = "HTTP",
        Tcp = "TCP",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpCheckInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub port: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpCheckInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub port: u32,
}

/// A health check; timing fields carry Mesos's explicit defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<HealthCheckType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckInfo>,
    #[serde(deserialize_with = "f64_lenient")]
    pub delay_seconds: f64,
    #[serde(deserialize_with = "f64_lenient")]
    pub interval_seconds: f64,
    #[serde(deserialize_with = "f64_lenient")]
    pub timeout_seconds: f64,
    pub consecutive_failures: u32,
    #[serde(deserialize_with = "f64_lenient")]
    pub grace_period_seconds: f64,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: None,
            command: None,
            http: None,
            tcp: None,
            delay_seconds: 15.0,
            interval_seconds: 10.0,
            timeout_seconds: 20.0,
            consecutive_failures: 3,
            grace_period_seconds: 10.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KillPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

mesos_enum!(
    DiscoveryVisibility {
        Framework = "FRAMEWORK",
        Cluster = "CLUSTER",
        External = "EXTERNAL",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryPort {
    pub number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<DiscoveryVisibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts {
    pub ports: Vec<DiscoveryPort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryInfo {
    pub visibility: DiscoveryVisibility,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<DiscoveryPorts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

impl Default for DiscoveryInfo {
    fn default() -> Self {
        DiscoveryInfo {
            visibility: DiscoveryVisibility::Framework,
            name: None,
            environment: None,
            location: None,
            version: None,
            ports: None,
            labels: None,
        }
    }
}

// ---------------------------------------------------------------- executors and tasks

mesos_enum!(
    ExecutorType {
        Unspecified = "UNKNOWN",
        Default = "DEFAULT",
        Custom = "CUSTOM",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutorInfo {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExecutorType>,
    pub executor_id: ExecutorId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<DurationInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// A task to launch. It needs exactly one of `command` or `executor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// `CheckInfo` (non-health checks): kept as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    /// Resource limits above the request, `{"cpus": 2.0, "mem": "Infinity"}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Scalar>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskGroupInfo {
    pub tasks: Vec<TaskInfo>,
}

mesos_enum!(
    /// `TaskState`.
    #[derive(Default)]
    TaskState {
        #[default]
        Staging = "TASK_STAGING",
        Starting = "TASK_STARTING",
        Running = "TASK_RUNNING",
        Killing = "TASK_KILLING",
        Finished = "TASK_FINISHED",
        Failed = "TASK_FAILED",
        Killed = "TASK_KILLED",
        Error = "TASK_ERROR",
        Lost = "TASK_LOST",
        Dropped = "TASK_DROPPED",
        Unreachable = "TASK_UNREACHABLE",
        Gone = "TASK_GONE",
        GoneByOperator = "TASK_GONE_BY_OPERATOR",
        TaskUnknown = "TASK_UNKNOWN",
    }
);

impl TaskState {
    /// Terminal states: the task will not change state again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
                | TaskState::GoneByOperator
        )
    }
}

mesos_enum!(
    TaskStatusSource {
        Master = "SOURCE_MASTER",
        Agent = "SOURCE_AGENT",
        Executor = "SOURCE_EXECUTOR",
    }
);

mesos_enum!(
    /// `TaskStatus.Reason`.
    TaskStatusReason {
        CommandExecutorFailed = "REASON_COMMAND_EXECUTOR_FAILED",
        ContainerLaunchFailed = "REASON_CONTAINER_LAUNCH_FAILED",
        ContainerLimitation = "REASON_CONTAINER_LIMITATION",
        ContainerLimitationDisk = "REASON_CONTAINER_LIMITATION_DISK",
        ContainerLimitationMemory = "REASON_CONTAINER_LIMITATION_MEMORY",
        ContainerPreempted = "REASON_CONTAINER_PREEMPTED",
        ContainerUpdateFailed = "REASON_CONTAINER_UPDATE_FAILED",
        MaxCompletionTimeReached = "REASON_MAX_COMPLETION_TIME_REACHED",
        ExecutorRegistrationTimeout = "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        ExecutorReregistrationTimeout = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
        ExecutorTerminated = "REASON_EXECUTOR_TERMINATED",
        ExecutorUnregistered = "REASON_EXECUTOR_UNREGISTERED",
        FrameworkRemoved = "REASON_FRAMEWORK_REMOVED",
        GcError = "REASON_GC_ERROR",
        InvalidFrameworkId = "REASON_INVALID_FRAMEWORKID",
        InvalidOffers = "REASON_INVALID_OFFERS",
        IoSwitchboardExited = "REASON_IO_SWITCHBOARD_EXITED",
        MasterDisconnected = "REASON_MASTER_DISCONNECTED",
        Reconciliation = "REASON_RECONCILIATION",
        ResourcesUnknown = "REASON_RESOURCES_UNKNOWN",
        AgentDisconnected = "REASON_AGENT_DISCONNECTED",
        AgentDrained = "REASON_AGENT_DRAINED",
        AgentRemoved = "REASON_AGENT_REMOVED",
        AgentRemovedByOperator = "REASON_AGENT_REMOVED_BY_OPERATOR",
        AgentReregistered = "REASON_AGENT_REREGISTERED",
        AgentRestarted = "REASON_AGENT_RESTARTED",
        AgentUnknown = "REASON_AGENT_UNKNOWN",
        TaskCheckStatusUpdated = "REASON_TASK_CHECK_STATUS_UPDATED",
        TaskHealthCheckStatusUpdated = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
        TaskGroupInvalid = "REASON_TASK_GROUP_INVALID",
        TaskGroupUnauthorized = "REASON_TASK_GROUP_UNAUTHORIZED",
        TaskInvalid = "REASON_TASK_INVALID",
        TaskKilledDuringLaunch = "REASON_TASK_KILLED_DURING_LAUNCH",
        TaskUnauthorized = "REASON_TASK_UNAUTHORIZED",
        TaskUnknown = "REASON_TASK_UNKNOWN",
        SlaveDisconnected = "REASON_SLAVE_DISCONNECTED",
        SlaveRemoved = "REASON_SLAVE_REMOVED",
        SlaveRestarted = "REASON_SLAVE_RESTARTED",
        SlaveUnknown = "REASON_SLAVE_UNKNOWN",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_cls: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_info: Option<CgroupInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_pid: Option<u32>,
}

/// Which resources a task overran (`TaskResourceLimitation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskResourceLimitation {
    pub resources: Vec<Resource>,
}

/// A task's state as reported by the master, agent or executor. `uuid` is set
/// on updates that must be acknowledged and absent on reconciliation answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<TaskStatusSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<TaskStatusReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub timestamp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_status: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_time: Option<TimeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limitation: Option<TaskResourceLimitation>,
}

// ---------------------------------------------------------------- offers

/// Offer filters. `refuse_seconds` (proto default 5) is how long the master
/// keeps the declined resources away from this framework.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    #[serde(deserialize_with = "f64_lenient")]
    pub refuse_seconds: f64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters { refuse_seconds: 5.0 }
    }
}

mesos_enum!(
    /// `Offer.Operation.Type`.
    OperationType {
        Unspecified = "UNKNOWN",
        Launch = "LAUNCH",
        LaunchGroup = "LAUNCH_GROUP",
        Reserve = "RESERVE",
        Unreserve = "UNRESERVE",
        Create = "CREATE",
        Destroy = "DESTROY",
        GrowVolume = "GROW_VOLUME",
        ShrinkVolume = "SHRINK_VOLUME",
        CreateDisk = "CREATE_DISK",
        DestroyDisk = "DESTROY_DISK",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    pub task_infos: Vec<TaskInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchGroup {
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourcesOperation {
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumesOperation {
    pub volumes: Vec<Resource>,
}

/// An operation inside ACCEPT. LAUNCH and LAUNCH_GROUP are typed; the reservation
/// and volume operations keep their resources typed and the rest as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Operation {
    #[serde(rename = "type")]
    pub kind: OperationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve: Option<ResourcesOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreserve: Option<ResourcesOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<VolumesOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy: Option<VolumesOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grow_volume: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink_volume: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_disk: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy_disk: Option<serde_json::Value>,
}

impl Default for Operation {
    fn default() -> Self {
        Operation {
            kind: OperationType::Unspecified,
            id: None,
            launch: None,
            launch_group: None,
            reserve: None,
            unreserve: None,
            create: None,
            destroy: None,
            grow_volume: None,
            shrink_volume: None,
            create_disk: None,
            destroy_disk: None,
        }
    }
}

impl Operation {
    pub fn launch(task_infos: Vec<TaskInfo>) -> Self {
        Operation { kind: OperationType::Launch, launch: Some(Launch { task_infos }), ..Default::default() }
    }

    pub fn launch_group(executor: ExecutorInfo, tasks: Vec<TaskInfo>) -> Self {
        Operation {
            kind: OperationType::LaunchGroup,
            launch_group: Some(LaunchGroup { executor, task_group: TaskGroupInfo { tasks } }),
            ..Default::default()
        }
    }
}

/// Resources of one agent offered to one framework.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailability: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

/// Maintenance: the master asks the framework to give resources back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffer {
    pub id: OfferId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    pub framework_id: FrameworkId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub unavailability: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

mesos_enum!(
    OperationState {
        Unsupported = "OPERATION_UNSUPPORTED",
        Pending = "OPERATION_PENDING",
        Finished = "OPERATION_FINISHED",
        Failed = "OPERATION_FAILED",
        Error = "OPERATION_ERROR",
        Dropped = "OPERATION_DROPPED",
        Unreachable = "OPERATION_UNREACHABLE",
        GoneByOperator = "OPERATION_GONE_BY_OPERATOR",
        Recovering = "OPERATION_RECOVERING",
        OperationUnknown = "OPERATION_UNKNOWN",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<OperationId>,
    pub state: OperationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub converted_resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_id: Option<ResourceProviderId>,
}

impl Default for OperationStatus {
    fn default() -> Self {
        OperationStatus {
            operation_id: None,
            state: OperationState::OperationUnknown,
            message: None,
            converted_resources: Vec::new(),
            uuid: None,
            agent_id: None,
            resource_provider_id: None,
        }
    }
}

/// `Request` (REQUEST call, unused by the allocator but part of the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

// ---------------------------------------------------------------- tasks as the master and agent keep them

/// A task as the master and agents track it (`Task` of mesos.proto): what the
/// operator API (GET_TASKS, TASK_ADDED) returns, unlike `TaskInfo`, which is what
/// a framework launches. `state` is the latest state; `status_update_state` and
/// `status_update_uuid` are those of the latest update still to be acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    pub name: String,
    pub task_id: TaskId,
    pub framework_id: FrameworkId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    pub agent_id: AgentId,
    pub state: TaskState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<TaskStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_update_state: Option<TaskState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_update_uuid: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Resource limits above the request, as in `TaskInfo.limits`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Scalar>,
}

// ---------------------------------------------------------------- resource usage

/// `ResourceStatistics.RatePercentiles`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RatePercentiles {
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub min: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub max: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p50: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p90: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p95: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p99: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p999: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub p9999: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub samples: Option<u64>,
}

/// `ResourceStatistics.RateStatistics`: network rates sampled by the agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateStatistics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_packet_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_drop_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_error_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_packet_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_drop_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_error_rate: Option<RatePercentiles>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub sampling_window_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub sampling_interval_secs: Option<f64>,
}

/// A container's resource usage snapshot (`ResourceStatistics` of mesos.proto),
/// as the agent's `/monitor/statistics` and the v1 agent API (GET_CONTAINERS)
/// report it. Everything but `timestamp` (seconds since the epoch) is optional:
/// which fields are set depends on the agent's isolators. Disk, blkio, perf,
/// traffic control and SNMP details are kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceStatistics {
    #[serde(deserialize_with = "f64_lenient")]
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub cpus_user_time_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub cpus_system_time_secs: Option<f64>,
    /// CPU hard limit (CFS quota), in cpus.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub cpus_limit: Option<f64>,
    /// CPU shares, in cpus.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub cpus_soft_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_nr_periods: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_nr_throttled: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub cpus_throttled_time_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_total_memsw_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_kmem_usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_kmem_tcp_usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_soft_limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_file_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_anon_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_cache_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_mapped_file_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_swap_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_unevictable_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_low_pressure_counter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_medium_pressure_counter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub mem_critical_pressure_counter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub disk_limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub disk_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disk_statistics: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_statistics: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perf: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_rate_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_burst_rate_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_tx_burst_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_rate_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_burst_rate_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub net_rx_burst_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_rate_statistics: Option<RateStatistics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_ephemeral_ports: Option<Range>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_rtt_microsecs_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_rtt_microsecs_p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_rtt_microsecs_p95: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_rtt_microsecs_p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_active_connections: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub net_tcp_time_wait_connections: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub net_traffic_control_statistics: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_snmp_statistics: Option<serde_json::Value>,
}

// ---------------------------------------------------------------- operator API building blocks

/// One command-line flag of a master or agent (`Flag`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flag {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Build information (`VersionInfo`). `build_time` is seconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub build_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_tag: Option<String>,
}

/// One metric (`Metric`), as GET_METRICS lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metric {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_f64_lenient")]
    pub value: Option<f64>,
}

/// A file in a sandbox or log directory (`FileInfo`). `mode` is the raw
/// `st_mode` (file type and permission bits).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nlink: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64_lenient")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime: Option<TimeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// A role as GET_ROLES reports it: its weight, the frameworks subscribed to it
/// and the resources allocated to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    pub name: String,
    #[serde(deserialize_with = "f64_lenient")]
    pub weight: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<FrameworkId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// A role's weight (`WeightInfo`), for GET_WEIGHTS and UPDATE_WEIGHTS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightInfo {
    #[serde(deserialize_with = "f64_lenient")]
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A machine of the maintenance schedule (`MachineID`): hostname, IP or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// A maintenance window (`Unavailability`): from `start`, for `duration` (forever
/// when unset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Unavailability {
    pub start: TimeInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationInfo>,
}

mesos_enum!(
    /// `DrainState`.
    #[derive(Default)]
    DrainState {
        #[default]
        Unspecified = "UNKNOWN",
        Draining = "DRAINING",
        Drained = "DRAINED",
    }
);

/// How an agent is drained (`DrainConfig`); `mark_gone` has the proto default
/// `false` and is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_grace_period: Option<DurationInfo>,
    pub mark_gone: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainInfo {
    pub state: DrainState,
    pub config: DrainConfig,
}

mesos_enum!(
    /// `AgentInfo.Capability.Type`.
    AgentCapabilityType {
        Unspecified = "UNKNOWN",
        MultiRole = "MULTI_ROLE",
        HierarchicalRole = "HIERARCHICAL_ROLE",
        ReservationRefinement = "RESERVATION_REFINEMENT",
        ResourceProvider = "RESOURCE_PROVIDER",
        ResizeVolume = "RESIZE_VOLUME",
        AgentOperationFeedback = "AGENT_OPERATION_FEEDBACK",
        AgentDraining = "AGENT_DRAINING",
        TaskResourceLimits = "TASK_RESOURCE_LIMITS",
    }
);

mesos_enum!(
    /// `MasterInfo.Capability.Type`.
    MasterCapabilityType {
        Unspecified = "UNKNOWN",
        AgentUpdate = "AGENT_UPDATE",
        AgentDraining = "AGENT_DRAINING",
        QuotaV2 = "QUOTA_V2",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCapability {
    #[serde(rename = "type")]
    pub kind: AgentCapabilityType,
}

/// `UUID`: 16 raw bytes, base64 on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Uuid {
    pub value: Bytes,
}

/// An offer operation the master tracks (the top-level `Operation` message of
/// mesos.proto, named so here to keep it apart from [`Operation`], which is
/// `Offer.Operation`): GET_OPERATIONS lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackedOperation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub info: Operation,
    pub latest_status: OperationStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<OperationStatus>,
    pub uuid: Uuid,
}
