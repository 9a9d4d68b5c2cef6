//! From a `DOCKER` TaskInfo to what the Docker Engine is asked for, as Mesos's
//! Docker containerizer asks it (`src/docker/docker.cpp`, `Docker::RunOptions`):
//! a pure function, so every rule is tested without a daemon.
//!
//! - the container is `mesos-<container id>`; the sandbox is bound at
//!   `/mnt/mesos/sandbox` and `MESOS_SANDBOX` points there;
//! - a shell command runs as `/bin/sh -c <value>` (the image's entrypoint
//!   replaced); otherwise value and arguments replace the image's Cmd and its
//!   Entrypoint stays unless the `entrypoint` parameter replaces it;
//! - HOST, BRIDGE, NONE and USER network modes; port mappings published with
//!   the host address m3s's compose framework gives in labels;
//! - `cpus` as CPU shares (1024 per CPU), a cpus limit as a CFS quota, `mem`
//!   as the memory limit (at least 32 MB, as in Mesos);
//! - `parameters` are `docker run` flags; the ones m3s knows are mapped to
//!   their API fields, any other is refused by name (never dropped silently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use docker::{
    ContainerCreate, DriverConfig, Empty, EndpointConfig, LogConfig, Mount, NetworkingConfig, PortBinding, Ulimit,
    VolumeOptions,
};
use mesos::v1::{ContainerType, DockerNetwork, TaskInfo, VolumeMode};
use serde::{Deserialize, Serialize};

use crate::agent::container::Pull;
use crate::agent::container::spec::{self, Params, SANDBOX_IN_CONTAINER, VolumeProblem, confined, parse_size};
use crate::agent::network::request::{self, Wanted};
use crate::agent::runtime::Limits;

/// Container label: the agent work directory whose container this is (orphans are found by it).
pub const LABEL_WORK_DIR: &str = "m3s.work_dir";
/// Container labels naming the task.
pub const LABEL_CONTAINER_ID: &str = "m3s.container_id";
pub const LABEL_TASK_ID: &str = "m3s.task_id";
pub const LABEL_FRAMEWORK_ID: &str = "m3s.framework_id";
/// Network label: made by m3s (so m3s may remove it once unused).
pub const LABEL_NETWORK_OWNER: &str = "m3s.network";

/// The `docker run` flags m3s maps, for the message refusing the others.
const KNOWN_PARAMETERS: &[&str] = &[
    "add-host",
    "cap-add",
    "cap-drop",
    "dns",
    "dns-opt",
    "dns-option",
    "dns-search",
    "entrypoint",
    "env",
    "hostname",
    "init",
    "label",
    "log-driver",
    "log-opt",
    "memory-swap",
    "network-alias",
    "oom-score-adj",
    "pids-limit",
    "privileged",
    "pull",
    "read-only",
    "security-opt",
    "shm-size",
    "stop-signal",
    "sysctl",
    "tmpfs",
    "ulimit",
    "user",
    "workdir",
];

/// What a `DOCKER` task needs from the agent.
pub struct RunInput<'a> {
    pub task: &'a TaskInfo,
    pub framework_id: &'a str,
    pub container_id: &'a str,
    pub sandbox: &'a Path,
    /// The environment the agent gives every task (`MESOS_*`, `PORT*`, the command's variables).
    pub agent_env: &'a [(String, String)],
    pub limits: Option<Limits>,
    pub work_dir: &'a Path,
    /// SECRET volumes written as files, by volume index.
    pub secret_files: &'a [(usize, PathBuf)],
}

/// A network the container joins (USER mode), made by m3s unless external.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkJoin {
    pub name: String,
    pub aliases: Vec<String>,
    pub internal: bool,
    pub external: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// Everything the Engine is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub name: String,
    pub image: String,
    pub pull: Pull,
    pub create: ContainerCreate,
    /// USER networks: the first is joined at create, the others before start.
    pub networks: Vec<NetworkJoin>,
}

pub fn container_name(container_id: &str) -> String {
    format!("mesos-{container_id}")
}

/// What in a DOCKER task the Docker containerizer cannot run, naming the
/// field or parameter.
#[derive(Debug, thiserror::Error)]
pub enum InvalidDockerTask {
    #[error("not a DOCKER task")]
    NotDocker,
    #[error("a DOCKER container needs ContainerInfo.docker")]
    NoDockerInfo,
    #[error("ContainerInfo.docker.image is empty")]
    NoImage,
    #[error(
        "docker parameter {0:?} is not supported by m3s's Docker containerizer (supported: {supported})",
        supported = KNOWN_PARAMETERS.join(", ")
    )]
    UnknownParameter(String),
    #[error("a shell command needs a value")]
    EmptyShellCommand,
    /// A parameter's value is not of its form: `env "X": expected NAME=value`.
    #[error("{parameter} {value:?}: {expected}")]
    BadParameter { parameter: &'static str, value: String, expected: &'static str },
    #[error("volumes[{index}]: {problem}")]
    Volume { index: usize, problem: VolumeProblem },
    #[error("port mappings need network BRIDGE or USER, not {0}")]
    PortsWithoutNetwork(String),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Network(#[from] request::RequestError),
}

pub fn run(input: &RunInput<'_>) -> Result<Run, InvalidDockerTask> {
    let task = input.task;
    let container =
        task.container.as_ref().filter(|c| c.kind == ContainerType::Docker).ok_or(InvalidDockerTask::NotDocker)?;
    let docker = container.docker.as_ref().ok_or(InvalidDockerTask::NoDockerInfo)?;
    if docker.image.trim().is_empty() {
        return Err(InvalidDockerTask::NoImage);
    }
    let params = Params::of(container);
    if let Some((key, _)) = params.0.iter().find(|(k, _)| !KNOWN_PARAMETERS.contains(k) && !is_short(k)) {
        return Err(InvalidDockerTask::UnknownParameter(key.to_string()));
    }
    let bad = |parameter: &'static str, value: &str, expected: &'static str| InvalidDockerTask::BadParameter {
        parameter,
        value: value.to_owned(),
        expected,
    };
    let bad_volume = |index: usize, problem: VolumeProblem| InvalidDockerTask::Volume { index, problem };
    let name = container_name(input.container_id);
    let mut create = ContainerCreate { image: docker.image.clone(), ..Default::default() };

    // The command, as Mesos's Docker containerizer runs it.
    let command = task.command.clone().unwrap_or_default();
    if command.shell {
        let value = command.value.clone().filter(|v| !v.is_empty()).ok_or(InvalidDockerTask::EmptyShellCommand)?;
        create.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        create.cmd = Some(vec![value]);
    } else {
        if let Some(e) = params.last("entrypoint") {
            create.entrypoint = Some(vec![e.to_owned()]);
            // `--entrypoint` clears the image's Cmd, as docker run does.
            create.cmd = Some(Vec::new());
        }
        let given: Vec<String> = command.value.iter().cloned().chain(command.arguments.iter().cloned()).collect();
        if !given.is_empty() {
            create.cmd = Some(given);
        }
    }

    // Environment: the agent's (the sandbox as the container sees it), then `env` parameters.
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_owned(), v.to_owned()));
    };
    for (k, v) in input.agent_env {
        match k.as_str() {
            "MESOS_SANDBOX" | "MESOS_DIRECTORY" => set(k, SANDBOX_IN_CONTAINER),
            _ => set(k, v),
        }
    }
    set("MESOS_CONTAINER_NAME", &name);
    for e in params.all("env").chain(params.all("e")) {
        let (k, v) = e.split_once('=').ok_or_else(|| bad("env", e, "expected NAME=value"))?;
        set(k, v);
    }
    create.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

    create.user = params.last("user").or(params.last("u")).map(str::to_owned);
    create.working_dir = params.last("workdir").or(params.last("w")).map(str::to_owned);
    if let Some(w) = &create.working_dir
        && !w.starts_with('/')
    {
        return Err(bad("workdir", w, "not an absolute path"));
    }
    create.hostname =
        container.hostname.clone().or_else(|| params.last("hostname").or(params.last("h")).map(str::to_owned));
    create.stop_signal = params.last("stop-signal").map(str::to_owned);
    for l in params.all("label").chain(params.all("l")) {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        create.labels.insert(k.to_owned(), v.to_owned());
    }
    for (k, v) in [
        (LABEL_WORK_DIR, input.work_dir.display().to_string()),
        (LABEL_CONTAINER_ID, input.container_id.to_owned()),
        (LABEL_TASK_ID, task.task_id.value.clone()),
        (LABEL_FRAMEWORK_ID, input.framework_id.to_owned()),
    ] {
        create.labels.insert(k.to_owned(), v);
    }

    let host = &mut create.host_config;
    host.privileged = docker.privileged.unwrap_or(false) || params.last("privileged").is_some_and(|v| v != "false");
    host.cap_add = params.all("cap-add").map(str::to_owned).collect();
    host.cap_drop = params.all("cap-drop").map(str::to_owned).collect();
    host.security_opt = params.all("security-opt").map(str::to_owned).collect();
    host.readonly_rootfs = params.last("read-only").is_some_and(|v| v != "false");
    host.init = params.last("init").map(|v| v != "false");
    host.shm_size = params.last("shm-size").map(size).transpose()?;
    // The same reading (and checks) as m3s's own runtime gives these flags.
    let names = spec::name_params(task)?;
    host.dns = names.dns;
    host.dns_search = names.dns_search;
    host.dns_options = names.dns_options;
    host.extra_hosts = names.hosts.into_iter().map(|(name, ip)| format!("{name}:{ip}")).collect();
    for t in params.all("tmpfs") {
        let (path, options) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            return Err(bad("tmpfs", t, "the path must be absolute"));
        }
        host.tmpfs.insert(path.to_owned(), options.to_owned());
    }
    for s in params.all("sysctl") {
        let (k, v) = s.split_once('=').ok_or_else(|| bad("sysctl", s, "expected name=value"))?;
        host.sysctls.insert(k.to_owned(), v.to_owned());
    }
    // `ulimit` parameters, then RLimitInfo, as m3s's own runtime reads them (unlimited: -1).
    let as_docker = |n: u64| if n == u64::MAX { -1 } else { i64::try_from(n).unwrap_or(-1) };
    for r in spec::rlimits(container, &params)? {
        let name = r.kind.trim_start_matches("RLIMIT_").to_ascii_lowercase();
        host.ulimits.push(Ulimit { name, soft: as_docker(r.soft), hard: as_docker(r.hard) });
    }
    if let Some(p) = params.last("pids-limit") {
        host.pids_limit = Some(p.parse().map_err(|_| bad("pids-limit", p, "not a number"))?);
    }
    if let Some(p) = params.last("oom-score-adj") {
        host.oom_score_adj = Some(p.parse().map_err(|_| bad("oom-score-adj", p, "not a number"))?);
    }
    if let Some(driver) = params.last("log-driver") {
        let mut config = BTreeMap::new();
        for o in params.all("log-opt") {
            let (k, v) = o.split_once('=').ok_or_else(|| bad("log-opt", o, "expected name=value"))?;
            config.insert(k.to_owned(), v.to_owned());
        }
        host.log_config = Some(LogConfig { kind: driver.to_owned(), config });
    }

    // Resources, as Mesos's Docker containerizer sets them.
    if let Some(limits) = input.limits {
        host.cpu_shares = ((limits.cpus * 1024.0) as i64).max(2);
        if let Some(cap) = limits.cpus_limit {
            host.cpu_period = 100_000;
            host.cpu_quota = ((cap * 100_000.0) as i64).max(1000);
        }
        if let Some(limit) = limits.mem_limit_bytes {
            host.memory = i64::try_from(limit.max(32 << 20)).unwrap_or(i64::MAX);
            if limits.mem_bytes < limit {
                host.memory_reservation = i64::try_from(limits.mem_bytes).unwrap_or(0);
            }
        }
    }
    if let Some(s) = params.last("memory-swap") {
        host.memory_swap = if s == "-1" { -1 } else { size(s)? };
    }

    // The sandbox, then the task's volumes.
    host.binds.push(format!("{}:{SANDBOX_IN_CONTAINER}", input.sandbox.display()));
    for (i, v) in container.volumes.iter().enumerate() {
        let target = if v.container_path.starts_with('/') {
            v.container_path.clone()
        } else {
            let inside = confined(&v.container_path).ok_or_else(|| {
                bad_volume(i, VolumeProblem::LeavesSandbox { field: "container_path", path: v.container_path.clone() })
            })?;
            format!("{SANDBOX_IN_CONTAINER}/{inside}")
        };
        let read_only = v.mode == VolumeMode::Ro;
        let source_type = v.source.as_ref().and_then(|s| s.get("type")).and_then(|t| t.as_str());
        if let Some((_, file)) = input.secret_files.iter().find(|(j, _)| *j == i) {
            host.binds.push(format!("{}:{target}:ro", file.display()));
            continue;
        }
        let source = match (&v.host_path, source_type) {
            (Some(h), _) if h.starts_with('/') => h.clone(),
            // A relative host path is inside the sandbox, as in Mesos.
            (Some(h), _) => {
                let inside = confined(h).ok_or_else(|| {
                    bad_volume(i, VolumeProblem::LeavesSandbox { field: "host_path", path: h.clone() })
                })?;
                input.sandbox.join(inside).display().to_string()
            }
            (None, Some("DOCKER_VOLUME")) => {
                let source = v.source.as_ref().expect("checked");
                let volume = &source["docker_volume"];
                let name = volume["name"].as_str().filter(|n| !n.is_empty());
                let name = name.ok_or_else(|| bad_volume(i, VolumeProblem::UnnamedDockerVolume))?;
                let driver = volume["driver"].as_str().filter(|d| !d.is_empty()).or(docker.volume_driver.as_deref());
                let options: BTreeMap<String, String> = volume["driver_options"]["parameter"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p["key"].as_str()?.to_owned(), p["value"].as_str()?.to_owned())))
                    .collect();
                host.mounts.push(Mount {
                    kind: "volume".into(),
                    source: name.to_owned(),
                    target,
                    read_only,
                    volume_options: driver
                        .map(|d| VolumeOptions { driver_config: DriverConfig { name: d.to_owned(), options } }),
                });
                continue;
            }
            (None, Some("SANDBOX_PATH")) => {
                let path = v.source.as_ref().and_then(|s| s.pointer("/sandbox_path/path")).and_then(|p| p.as_str());
                let path = path.unwrap_or("");
                let inside = confined(path).ok_or_else(|| {
                    bad_volume(i, VolumeProblem::LeavesSandbox { field: "sandbox path", path: path.to_owned() })
                })?;
                input.sandbox.join(inside).display().to_string()
            }
            (None, Some(other)) => {
                return Err(bad_volume(i, VolumeProblem::UnsupportedByDocker(other.to_owned())));
            }
            (None, None) => return Err(bad_volume(i, VolumeProblem::NoSource)),
        };
        host.binds.push(if read_only { format!("{source}:{target}:ro") } else { format!("{source}:{target}") });
    }

    // Networks and published ports.
    let mut networks = Vec::new();
    host.network_mode = match request::wanted(task)? {
        Wanted::Host => "host".into(),
        Wanted::Isolated => "none".into(),
        Wanted::Networks(_) if docker.network == DockerNetwork::Bridge => "bridge".into(),
        Wanted::Networks(joins) => {
            let alias_params: Vec<String> = params.all("network-alias").map(str::to_owned).collect();
            for (n, join) in joins.into_iter().enumerate() {
                let mut aliases = join.names;
                if n == 0 {
                    aliases.extend(alias_params.iter().cloned());
                }
                networks.push(NetworkJoin {
                    name: join.network,
                    aliases,
                    internal: join.internal,
                    external: join.external,
                    subnet: join.subnet.map(|s| s.to_string()),
                    gateway: join.gateway.map(|g| g.to_string()),
                    ip_range: join.ip_range.map(|r| r.to_string()),
                });
            }
            let first = &networks[0];
            create.networking_config = Some(NetworkingConfig {
                endpoints_config: BTreeMap::from([(
                    first.name.clone(),
                    EndpointConfig { aliases: first.aliases.clone() },
                )]),
            });
            first.name.clone()
        }
    };
    let ports = request::port_mappings(task)?;
    if !ports.is_empty() && matches!(host.network_mode.as_str(), "host" | "none") {
        return Err(InvalidDockerTask::PortsWithoutNetwork(host.network_mode.to_uppercase()));
    }
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        create.exposed_ports.insert(key.clone(), Empty {});
        host.port_bindings.entry(key).or_default().push(PortBinding {
            host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: p.host_port.to_string(),
        });
    }

    Ok(Run { name, image: docker.image.clone(), pull: Pull::of(task), create, networks })
}

/// Docker's one-letter forms of the flags above (`-e`, `-u`, `-w`, `-h`, `-l`).
fn is_short(key: &str) -> bool {
    matches!(key, "e" | "u" | "w" | "h" | "l")
}

fn size(s: &str) -> Result<i64, InvalidDockerTask> {
    Ok(i64::try_from(parse_size(s)?).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos::v1::{
        CommandInfo, ContainerInfo, DockerInfo, Label, Labels, NetworkInfo, Parameter, PortMapping, Volume,
    };

    fn task(docker: DockerInfo, command: CommandInfo) -> TaskInfo {
        TaskInfo {
            task_id: mesos::v1::TaskId { value: "web.1".into() },
            command: Some(command),
            container: Some(ContainerInfo { kind: ContainerType::Docker, docker: Some(docker), ..Default::default() }),
            ..Default::default()
        }
    }

    fn docker(image: &str, params: &[(&str, &str)]) -> DockerInfo {
        DockerInfo {
            image: image.into(),
            parameters: params.iter().map(|(k, v)| Parameter { key: (*k).into(), value: (*v).into() }).collect(),
            ..Default::default()
        }
    }

    fn build(t: &TaskInfo) -> Result<Run, String> {
        let env = vec![("MESOS_SANDBOX".to_owned(), "/w/sandbox".to_owned()), ("A".to_owned(), "1".to_owned())];
        run(&RunInput {
            task: t,
            framework_id: "fw",
            container_id: "c1",
            sandbox: Path::new("/w/sandbox"),
            agent_env: &env,
            limits: Some(Limits {
                cpus: 0.5,
                cpus_limit: Some(1.5),
                mem_bytes: 64 << 20,
                mem_limit_bytes: Some(128 << 20),
            }),
            work_dir: Path::new("/w"),
            secret_files: &[],
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn commands_follow_mesos_docker_containerizer() {
        let r = build(&task(docker("img:1", &[]), CommandInfo::shell("echo $A"))).unwrap();
        assert_eq!(r.name, "mesos-c1");
        assert_eq!(r.create.entrypoint, Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]));
        assert_eq!(r.create.cmd, Some(vec!["echo $A".to_owned()]));
        let argv = CommandInfo {
            shell: false,
            value: Some("httpd".into()),
            arguments: vec!["-f".into()],
            ..Default::default()
        };
        let r = build(&task(docker("img:1", &[]), argv)).unwrap();
        assert_eq!((r.create.entrypoint, r.create.cmd), (None, Some(vec!["httpd".to_owned(), "-f".to_owned()])));
        let none = CommandInfo { shell: false, ..Default::default() };
        let r = build(&task(docker("img:1", &[("entrypoint", "/bin/app")]), none.clone())).unwrap();
        assert_eq!(r.create.entrypoint, Some(vec!["/bin/app".to_owned()]));
        assert_eq!(r.create.cmd, Some(Vec::new()), "--entrypoint clears the image's Cmd");
        let r = build(&task(docker("img:1", &[]), none)).unwrap();
        assert_eq!((r.create.entrypoint, r.create.cmd), (None, None), "the image's own command");
    }

    #[test]
    fn sandbox_environment_labels_and_limits() {
        let r = build(&task(
            docker("img:1", &[("env", "B=2"), ("label", "team=data"), ("user", "nobody")]),
            CommandInfo::shell("x"),
        ))
        .unwrap();
        let c = &r.create;
        assert_eq!(c.env, ["MESOS_SANDBOX=/mnt/mesos/sandbox", "A=1", "MESOS_CONTAINER_NAME=mesos-c1", "B=2"]);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.labels["team"], "data");
        assert_eq!((c.labels[LABEL_WORK_DIR].as_str(), c.labels[LABEL_CONTAINER_ID].as_str()), ("/w", "c1"));
        assert_eq!(c.labels[LABEL_TASK_ID], "web.1");
        let h = &c.host_config;
        assert_eq!(h.binds, ["/w/sandbox:/mnt/mesos/sandbox"]);
        assert_eq!((h.cpu_shares, h.cpu_quota, h.cpu_period), (512, 150_000, 100_000));
        assert_eq!((h.memory, h.memory_reservation), (128 << 20, 64 << 20));
        assert_eq!(h.network_mode, "host", "Mesos's default network is HOST");
        assert!(!h.privileged);
    }

    #[test]
    fn unknown_parameters_and_escaping_volumes_are_refused_by_name() {
        let e = build(&task(docker("img:1", &[("volumes-from", "x")]), CommandInfo::shell("x"))).unwrap_err();
        assert!(e.starts_with("docker parameter \"volumes-from\" is not supported"), "{e}");
        let mut t = task(docker("img:1", &[]), CommandInfo::shell("x"));
        let c = t.container.as_mut().unwrap();
        c.volumes =
            vec![Volume { container_path: "/data".into(), host_path: Some("../../etc".into()), ..Default::default() }];
        assert_eq!(build(&t).unwrap_err(), "volumes[0]: host_path \"../../etc\" leaves the sandbox");
        let c = t.container.as_mut().unwrap();
        c.volumes = vec![
            Volume {
                container_path: "/data".into(),
                host_path: Some("cache".into()),
                mode: VolumeMode::Ro,
                ..Default::default()
            },
            Volume {
                container_path: "db".into(),
                source: Some(
                    serde_json::json!({"type": "DOCKER_VOLUME", "docker_volume": {"name": "pg", "driver": "local"}}),
                ),
                ..Default::default()
            },
        ];
        let r = build(&t).unwrap();
        assert_eq!(r.create.host_config.binds[1], "/w/sandbox/cache:/data:ro");
        let m = &r.create.host_config.mounts[0];
        assert_eq!((m.kind.as_str(), m.source.as_str(), m.target.as_str()), ("volume", "pg", "/mnt/mesos/sandbox/db"));
    }

    #[test]
    fn bridge_and_user_networks_publish_ports() {
        let mut d = docker("img:1", &[("network-alias", "www")]);
        d.network = DockerNetwork::Bridge;
        d.port_mappings = vec![PortMapping { host_port: 8080, container_port: 80, protocol: None }];
        let mut t = task(d, CommandInfo::shell("x"));
        t.labels = Some(Labels {
            labels: vec![Label { key: "m3s.host_ip.8080/tcp".into(), value: Some("127.0.0.1".into()) }],
        });
        let r = build(&t).unwrap();
        let h = &r.create.host_config;
        assert_eq!(h.network_mode, "bridge");
        assert_eq!(h.port_bindings["80/tcp"], [PortBinding { host_ip: "127.0.0.1".into(), host_port: "8080".into() }]);
        assert!(r.create.exposed_ports.contains_key("80/tcp"));
        assert!(r.networks.is_empty());

        let c = t.container.as_mut().unwrap();
        c.docker.as_mut().unwrap().network = DockerNetwork::User;
        c.network_infos = vec![
            NetworkInfo {
                name: Some("demo_default".into()),
                labels: Some(Labels { labels: vec![Label { key: "m3s.dns.names".into(), value: Some("web".into()) }] }),
                ..Default::default()
            },
            NetworkInfo { name: Some("demo_back".into()), ..Default::default() },
        ];
        let r = build(&t).unwrap();
        assert_eq!(r.create.host_config.network_mode, "demo_default");
        assert_eq!(r.networks.len(), 2);
        assert_eq!(r.networks[0].aliases, ["web", "www"]);
        let endpoints = &r.create.networking_config.as_ref().unwrap().endpoints_config;
        assert_eq!(endpoints["demo_default"].aliases, ["web", "www"]);

        let c = t.container.as_mut().unwrap();
        c.docker.as_mut().unwrap().network = DockerNetwork::Host;
        assert_eq!(build(&t).unwrap_err(), "port mappings need network BRIDGE or USER, not HOST");
    }

    #[test]
    fn names_and_ulimits_are_read_as_the_native_runtime_reads_them() {
        let params =
            [("add-host", "db=10.0.0.5"), ("dns", "10.0.0.53"), ("ulimit", "nofile=1024:2048"), ("ulimit", "core=-1")];
        let r = build(&task(docker("img:1", &params), CommandInfo::shell("x"))).unwrap();
        let h = &r.create.host_config;
        assert_eq!(
            (h.extra_hosts.as_slice(), h.dns.as_slice()),
            (&["db:10.0.0.5".to_owned()][..], &["10.0.0.53".to_owned()][..])
        );
        assert_eq!(
            h.ulimits,
            [
                Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 },
                Ulimit { name: "core".into(), soft: -1, hard: -1 },
            ]
        );
        let e = build(&task(docker("img:1", &[("dns", "not-an-ip")]), CommandInfo::shell("x"))).unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
    }

    #[test]
    fn privilege_only_when_asked() {
        let mut d = docker("img:1", &[("cap-add", "NET_ADMIN")]);
        let r = build(&task(d.clone(), CommandInfo::shell("x"))).unwrap();
        assert!(!r.create.host_config.privileged);
        assert_eq!(r.create.host_config.cap_add, ["NET_ADMIN"]);
        d.privileged = Some(true);
        assert!(build(&task(d, CommandInfo::shell("x"))).unwrap().create.host_config.privileged);
    }
}
