//! The typed compose model.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Warnings;
use crate::node::Node;

/// A loaded compose project.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Project {
    /// Top-level `name`, if given.
    pub name: Option<String>,
    /// Top-level `version`, accepted and ignored (2.x, 3.x or absent).
    pub version: Option<String>,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub configs: BTreeMap<String, FileObject>,
    pub secrets: BTreeMap<String, FileObject>,
    /// Warnings produced while loading (unknown keys, keys with no meaning on Mesos, ...).
    pub warnings: Warnings,
}

impl Project {
    /// Bind-mount sources and `file` secrets and configs, relative to `dir`, made absolute.
    pub fn make_paths_absolute(&mut self, dir: &std::path::Path) {
        let absolute = |p: &str| -> String {
            if p.starts_with('/') || p.starts_with('~') {
                return p.to_owned();
            }
            let mut out = dir.to_path_buf();
            for part in std::path::Path::new(p).components() {
                match part {
                    std::path::Component::CurDir => {}
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    other => out.push(other),
                }
            }
            out.display().to_string()
        };
        for s in self.services.values_mut() {
            if let Some(b) = &mut s.build {
                if !is_remote_context(&b.context) {
                    b.context = absolute(&b.context);
                }
                for c in b.additional_contexts.values_mut() {
                    if !is_remote_context(c) && !c.contains("://") {
                        *c = absolute(c);
                    }
                }
            }
            for m in &mut s.volumes {
                if m.kind == MountType::Bind
                    && let Some(src) = &m.source
                {
                    m.source = Some(absolute(src));
                }
            }
        }
        for o in self.secrets.values_mut().chain(self.configs.values_mut()) {
            if let Some(f) = &o.file {
                o.file = Some(absolute(f));
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub image: Option<String>,
    /// `build`: how to build the image where the files are (`m3s compose build`).
    pub build: Option<Build>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    /// `None` value: pass the variable through from the environment (`- FOO` / `FOO:`).
    pub environment: BTreeMap<String, Option<String>>,
    pub env_file: Vec<EnvFile>,
    pub ports: Vec<Port>,
    pub volumes: Vec<Mount>,
    pub depends_on: BTreeMap<String, Dependency>,
    pub deploy: Deploy,
    /// Service-level `cpus` (compose v2 style).
    pub cpus: Option<f64>,
    /// Service-level `mem_limit` in bytes.
    pub mem_limit: Option<u64>,
    /// Service-level `mem_reservation` in bytes.
    pub mem_reservation: Option<u64>,
    pub restart: Option<Restart>,
    pub healthcheck: Option<Healthcheck>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub profiles: Vec<String>,
    /// `container_type` (mesos-compose): which containerizer runs a service with an image.
    pub container_type: Option<ContainerType>,
    pub container_name: Option<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `network_mode`, or mesos-compose's `network`: `bridge`, `host`, `none`, or a user network name.
    pub network_mode: Option<String>,
    /// `networks` of the service: network name to its aliases.
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// `ulimits`: name (`nofile`, `memlock`, ...) to limits.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `gpus` (`all` or device requests), or `deploy.resources.reservations.devices` with the gpu capability.
    pub gpus: Option<Gpus>,
    pub pull_policy: Option<String>,
    /// mesos-compose's non-standard `arguments` list (appended to `command`).
    pub arguments: Vec<String>,
    /// mesos-compose's `shell: true`: run `command` through a shell.
    pub shell: Option<bool>,
    /// mesos-compose's `mesos:` extension block.
    pub mesos: MesosExtension,
    /// Keys of the compose specification (or of mesos-compose) not yet typed
    /// here, kept as parsed (interpolated) YAML.
    pub other: BTreeMap<String, Node>,
}

impl Service {
    /// Effective CPU limit: `deploy.resources.limits.cpus`, else `cpus`.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.deploy.resources.limits.cpus.or(self.cpus)
    }
    /// Effective memory limit in bytes: `deploy.resources.limits.memory`, else `mem_limit`.
    pub fn memory_limit(&self) -> Option<u64> {
        self.deploy.resources.limits.memory.or(self.mem_limit)
    }
}

/// A service's `build`, in its long form (`build: DIR` is `context: DIR`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Build {
    /// The context directory (absolute once loaded from disk), or a URL.
    pub context: String,
    /// The Dockerfile, relative to the context unless absolute.
    pub dockerfile: Option<String>,
    /// The Dockerfile's text, in place of a file.
    pub dockerfile_inline: Option<String>,
    /// `ARG`s; `None`: taken from the environment of whoever builds.
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Named contexts (`FROM name`, `COPY --from=name`): a directory, or `docker-image://REF`.
    pub additional_contexts: BTreeMap<String, String>,
    /// Top-level secrets the build may mount (`RUN --mount=type=secret,id=NAME`).
    pub secrets: Vec<String>,
    /// The network of RUN steps: `host`, `none` or the builder's default.
    pub network: Option<String>,
    pub no_cache: bool,
    /// Pull newer base images first.
    pub pull: bool,
    /// More names for the built image.
    pub tags: Vec<String>,
    /// Keys the builder does not apply (cache_from, platforms, ssh, ...), kept for the record.
    pub other: BTreeMap<String, Node>,
}

/// A context that is not a directory on disk: a git or HTTP(S) URL.
pub fn is_remote_context(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

/// `command` / `entrypoint`: a string is run by a shell-like split, a list as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFile {
    pub path: String,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Container port.
    pub target: u16,
    /// Host port range; `None` lets the scheduler pick one from an offer.
    pub published: Option<PortRange>,
    pub host_ip: Option<String>,
    /// `tcp`, `udp`, `sctp` (and mesos-compose's `http`, `https`, `h2c`, `wss`).
    pub protocol: String,
    pub mode: Option<String>,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
    Npipe,
    Cluster,
    Image,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// Host path (bind), volume name (volume), `None` for anonymous volumes and tmpfs.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Other short-syntax mode flags (`z`, `Z`, `nocopy`, propagation) or long-syntax options.
    pub options: Vec<String>,
    /// tmpfs size in bytes.
    pub tmpfs_size: Option<u64>,
    pub create_host_path: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub condition: Condition,
    pub restart: bool,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerType {
    Docker,
    Mesos,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpus {
    /// `None`: all GPUs.
    pub count: Option<u32>,
    /// `nvidia`, `amd`, ... when given.
    pub driver: Option<String>,
}

/// The `mesos:` block of mesos-compose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MesosExtension {
    /// `mesos.task_name`: the Mesos task name instead of `<project>_<service>`.
    pub task_name: Option<String>,
    /// `mesos.executor.command`: a custom executor command.
    pub executor_command: Option<String>,
    /// `mesos.fetch`: URIs fetched into the sandbox before start.
    pub fetch: Vec<FetchUri>,
}

/// One `mesos.fetch` entry (Mesos CommandInfo.URI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchUri {
    pub value: String,
    pub executable: Option<bool>,
    pub extract: Option<bool>,
    pub cache: Option<bool>,
    pub output_file: Option<String>,
}

/// `deploy.restart_policy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    /// Wait between restart attempts (default 5 s in the spec; m3s backs off exponentially from it).
    pub delay: Option<Duration>,
    pub max_attempts: Option<u32>,
    /// Window in which attempts are counted (unbounded when `None`).
    pub window: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RestartCondition {
    None,
    OnFailure,
    #[default]
    Any,
}

/// `deploy.placement`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub constraints: Vec<Constraint>,
    /// mesos-compose's `deploy.placement.attributes`: `"key: value"` pairs an offer's text attributes must have.
    pub attributes: Vec<(String, String)>,
    /// `max_replicas_per_node`.
    pub max_replicas_per_node: Option<u32>,
}

/// One `deploy.placement.constraints` entry: `node.hostname==x`, `node.platform.os!=linux`,
/// `node.labels.<attr>==v`, or mesos-compose's `unique`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// At most one replica of the service per node.
    Unique,
    Compare {
        field: ConstraintField,
        equal: bool,
        value: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstraintField {
    Hostname,
    Os,
    Arch,
    /// `node.labels.<name>`: an agent attribute.
    Attribute(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deploy {
    pub replicas: Option<u32>,
    pub resources: DeployResources,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    /// Other `deploy` keys (update_config, labels, ...), kept as parsed.
    pub other: BTreeMap<String, Node>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeployResources {
    pub limits: Resources,
    pub reservations: Resources,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub cpus: Option<f64>,
    /// Bytes.
    pub memory: Option<u64>,
    pub pids: Option<i64>,
    /// Other keys (`devices`, `generic_resources`), kept as parsed.
    pub other: BTreeMap<String, Node>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    OnFailure { max_retries: Option<u32> },
    UnlessStopped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthTest {
    /// `NONE` or `disable: true`: inherited checks are off.
    None,
    /// `["CMD", args...]`.
    Exec(Vec<String>),
    /// A string, or `["CMD-SHELL", "cmd"]`.
    Shell(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    /// `None` when only timings are given (the image's check would be used).
    pub test: Option<HealthTest>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Network {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub external: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub other: BTreeMap<String, Node>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Volume {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    pub other: BTreeMap<String, Node>,
}

/// A top-level `configs` or `secrets` entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileObject {
    pub name: Option<String>,
    pub file: Option<String>,
    pub environment: Option<String>,
    pub content: Option<String>,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    pub other: BTreeMap<String, Node>,
}
