//! What the engine runs: projects of services, each a template for its tasks.
//!
//! A spec is plain data, serialisable, compared by equality: a service whose
//! spec changes gets a new generation and its tasks are replaced; an unchanged
//! one keeps its tasks. Translation from compose lives in [`crate::translate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectSpec {
    pub name: String,
    pub services: BTreeMap<String, ServiceSpec>,
}

/// Compose's rule for project names: 1-63 lowercase letters, digits, `-` or
/// `_`, starting with a letter or digit. Names become task names, directory
/// names and URL segments, so anything else is refused, never rewritten.
pub fn check_project_name(name: &str) -> Result<(), InvalidProjectName> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if valid { Ok(()) } else { Err(InvalidProjectName(name.to_owned())) }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("project name '{0}' must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit")]
pub struct InvalidProjectName(pub String);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub replicas: u32,
    /// Mesos task name (`mesos.task_name`, else `<project>_<service>`).
    pub task_name: String,
    pub run: RunSpec,
    pub resources: ResourceSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
    /// Health is decided above the engine ([`crate::engine::Engine::set_health`]) rather than
    /// by a Mesos check: the K3s framework's "a Ready Kubernetes node carries the task's label".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external_health: bool,
    pub restart: RestartSpec,
    /// Services of the same project that must reach a condition before this one starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<PlacementRule>,
    /// At most this many replicas on one agent (`unique` is 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_node: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Seconds between SIGTERM and SIGKILL (`stop_grace_period`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace_seconds: Option<f64>,
}

/// How a task runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// What to execute; `None` runs the image's own command. With an image it
    /// replaces the image's Cmd (compose's `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// With an image: replaces the image's Entrypoint (compose's `entrypoint`).
    /// Host processes have `entrypoint` and `command` joined into `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables sent as Mesos SECRET variables (VALUE secrets): absent from the
    /// master's and agent's state views, and never shown by m3s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    pub container: ContainerSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<FetchSpec>,
    /// mesos-compose's `mesos.executor.command`: run the task under this custom executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_command: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandSpec {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// argv, run directly.
    Exec(Vec<String>),
}

/// Which containerizer runs the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerSpec {
    /// No image: the command runs as a host process in its sandbox (Mesos containerizer, no image).
    Host {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        volumes: Vec<VolumeSpec>,
    },
    /// The Docker containerizer.
    Docker(ImageSpec),
    /// The Mesos containerizer with a Docker image.
    MesosImage(ImageSpec),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub image: String,
    /// `host`, `none` or `bridge` (Docker's modes), or empty: the container
    /// joins `networks` (compose's default, the project's `default` network).
    pub network: String,
    /// The networks the container joins, first the one its ports are published on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkSpec>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// name -> (soft, hard)
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, (i64, i64)>,
    #[serde(default)]
    pub force_pull: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// `docker run` flags of the Docker containerizer (`read-only`, `shm-size`,
    /// `tmpfs`, `sysctl`, `device`), as DockerInfo parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<(String, String)>,
}

/// A network a service's containers join (a CNI network on the agent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network's own name (`<project>_<network>`, or an external one's name).
    pub name: String,
    /// The names the service answers to on it (service, aliases, container_name, hostname, links).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// compose `ipam.config[0]`: `subnet`, `gateway`, `ip_range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// Absolute host path (bind mounts, and named volumes as per-project directories);
    /// empty for a secret given by content.
    pub host_path: String,
    pub container_path: String,
    #[serde(default)]
    pub read_only: bool,
    /// A compose secret or config given by `content`: a Mesos SECRET volume of this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchSpec {
    pub uri: String,
    #[serde(default)]
    pub executable: bool,
    #[serde(default = "yes")]
    pub extract: bool,
    #[serde(default)]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus: f64,
    /// Limits above the request (`deploy.resources.limits` when reservations are given too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit_mb: Option<f64>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The port the process listens on inside its container (for host processes: the host port itself).
    pub container_port: u16,
    /// A fixed host port, taken only from an offer that has it; `None` takes any port of the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// `tcp`, `udp`, or mesos-compose's `http`, `https`, `h2c`, `wss`.
    pub protocol: String,
    /// Discovery name of the port (`<task>_<port>` as mesos-compose names them, for traefik).
    pub name: String,
    /// The host address the port is published on (`127.0.0.1:8088:80`); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub command: CommandSpec,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub retries: u32,
    pub start_period_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartWhen {
    Never,
    OnFailure,
    Always,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartSpec {
    pub when: RestartWhen,
    /// Wait before a restart; doubled after each quick failure (crash loop), up to [`crate::engine::MAX_BACKOFF_MS`].
    pub delay_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Window in which attempts count; `None` counts them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// One placement rule checked against an offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRule {
    pub field: PlacementField,
    pub equal: bool,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementField {
    Hostname,
    Os,
    Arch,
    /// An agent attribute (text or scalar, compared as text).
    Attribute(String),
}
