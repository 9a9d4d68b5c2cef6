//! From a service spec and the resources taken from an offer to a Mesos `TaskInfo`.

use mesos::v1::{
    AgentId, CommandInfo, CommandUri, ContainerInfo, ContainerType, DiscoveryInfo, DiscoveryPort, DiscoveryPorts,
    DiscoveryVisibility, DockerImage, DockerInfo, DockerNetwork, DurationInfo, Environment, EnvironmentVariable,
    ExecutorId, ExecutorInfo, HealthCheck, HealthCheckType, Image, ImageType, KillPolicy, Label, Labels,
    MesosContainerInfo, NetworkInfo, Parameter, PortMapping, RLimit, RLimitInfo, TaskId, TaskInfo, Volume, VolumeMode,
};

use crate::matching::Taken;
use crate::spec::{CommandSpec, ContainerSpec, ImageSpec, ServiceSpec, VolumeSpec};

/// Labels m3s puts on every task, so that a task can be traced to its service.
pub const LABEL_PROJECT: &str = "m3s.project";
pub const LABEL_SERVICE: &str = "m3s.service";
pub const LABEL_REPLICA: &str = "m3s.replica";

pub struct TaskIdentity<'a> {
    pub task_id: &'a str,
    pub agent_id: &'a AgentId,
    pub project: &'a str,
    pub service: &'a str,
    pub replica: u32,
}

pub fn task_info(spec: &ServiceSpec, id: &TaskIdentity<'_>, taken: &Taken) -> TaskInfo {
    let run = &spec.run;
    let mut command = match &run.container {
        ContainerSpec::Host { .. } => command_info(run.command.as_ref(), run.working_dir.as_deref()),
        ContainerSpec::Docker(_) => docker_command(run.command.as_ref(), run.entrypoint.as_deref()),
        ContainerSpec::MesosImage(_) => mesos_image_command(run.command.as_ref(), run.entrypoint.as_deref()),
    };
    let mut variables: Vec<EnvironmentVariable> = run
        .env
        .iter()
        .map(|(name, value)| EnvironmentVariable {
            name: name.clone(),
            value: Some(value.clone()),
            ..Default::default()
        })
        .collect();
    for (name, value) in &run.secret_env {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        variables.push(EnvironmentVariable {
            name: name.clone(),
            kind: Some(mesos::v1::VariableType::Secret),
            secret: Some(serde_json::json!({"type": "VALUE", "value": {"data": data}})),
            ..Default::default()
        });
    }
    // The host port of each declared port, by container port, for processes that need to find theirs.
    for (p, host) in spec.ports.iter().zip(&taken.host_ports) {
        variables.push(EnvironmentVariable {
            name: format!("M3S_PORT_{}", p.container_port),
            value: Some(host.to_string()),
            ..Default::default()
        });
    }
    if !variables.is_empty() {
        command.environment = Some(Environment { variables });
    }
    // A Docker task's user is the container's (a `user` parameter); others name a host user, as in Mesos.
    command.user = match &run.container {
        ContainerSpec::Docker(_) => None,
        _ => run.user.clone(),
    };
    command.uris = run
        .fetch
        .iter()
        .map(|f| CommandUri {
            value: f.uri.clone(),
            executable: Some(f.executable),
            extract: f.extract,
            cache: Some(f.cache),
            output_file: f.output_file.clone(),
        })
        .collect();

    let container = match &run.container {
        ContainerSpec::Host { volumes } if volumes.is_empty() => None,
        ContainerSpec::Host { volumes } => Some(ContainerInfo {
            kind: ContainerType::Mesos,
            volumes: volumes.iter().map(volume).collect(),
            ..Default::default()
        }),
        ContainerSpec::Docker(image) => Some(docker_container(image, spec, taken, id)),
        ContainerSpec::MesosImage(image) => Some(mesos_image_container(image, spec, taken, id)),
    };

    let mut labels: Vec<Label> =
        spec.labels.iter().map(|(k, v)| Label { key: k.clone(), value: Some(v.clone()) }).collect();
    for (key, value) in [
        (LABEL_PROJECT, id.project.to_owned()),
        (LABEL_SERVICE, id.service.to_owned()),
        (LABEL_REPLICA, id.replica.to_string()),
    ] {
        labels.push(Label { key: key.to_owned(), value: Some(value) });
    }
    // Where a published port listens on the host: Mesos's PortMapping has no field for it.
    for (p, host) in spec.ports.iter().zip(&taken.host_ports) {
        if let Some(ip) = &p.host_ip {
            let protocol = if p.protocol == "udp" { "udp" } else { "tcp" };
            labels.push(Label { key: format!("m3s.host_ip.{host}/{protocol}"), value: Some(ip.clone()) });
        }
    }

    let discovery = (!spec.ports.is_empty()).then(|| DiscoveryInfo {
        visibility: DiscoveryVisibility::External,
        name: Some(spec.task_name.clone()),
        ports: Some(DiscoveryPorts {
            ports: spec
                .ports
                .iter()
                .zip(&taken.host_ports)
                .map(|(p, host)| DiscoveryPort {
                    number: *host as u32,
                    name: Some(p.name.clone()),
                    protocol: Some(p.protocol.clone()),
                    ..Default::default()
                })
                .collect(),
        }),
        ..Default::default()
    });

    let health_check = spec.health.as_ref().map(|h| HealthCheck {
        kind: Some(HealthCheckType::Command),
        command: Some(command_info(Some(&h.command), None)),
        // Compose has no initial delay; failures inside the start period do not count.
        delay_seconds: 0.0,
        interval_seconds: h.interval_seconds,
        timeout_seconds: h.timeout_seconds,
        consecutive_failures: h.retries.max(1),
        grace_period_seconds: h.start_period_seconds,
        ..Default::default()
    });

    let mut info = TaskInfo {
        name: spec.task_name.clone(),
        task_id: TaskId::new(id.task_id),
        agent_id: id.agent_id.clone(),
        resources: taken.resources.clone(),
        container,
        health_check,
        kill_policy: spec.kill_grace_seconds.map(|s| KillPolicy { grace_period: Some(DurationInfo::from_secs_f64(s)) }),
        labels: Some(Labels { labels }),
        discovery,
        ..Default::default()
    };
    if let Some(c) = spec.resources.cpus_limit {
        info.limits.insert("cpus".into(), mesos::v1::Scalar { value: c });
    }
    if let Some(m) = spec.resources.mem_limit_mb {
        info.limits.insert("mem".into(), mesos::v1::Scalar { value: m });
    }
    match &run.executor_command {
        // A custom executor runs the task: the command moves to the executor.
        Some(executor) => {
            info.executor = Some(ExecutorInfo {
                executor_id: ExecutorId::new(format!("{}.executor", id.task_id)),
                command: Some(CommandInfo::shell(executor.clone())),
                container: info.container.take(),
                name: Some(format!("{} executor", spec.task_name)),
                ..Default::default()
            });
            info.data = None;
        }
        None => info.command = Some(command),
    }
    info
}

/// A shell command, an argv, or (for an image) the image's own command. A
/// working directory is entered by a fixed wrapper script that receives the
/// directory and the command as arguments, so nothing from the spec is pasted
/// into shell text.
fn command_info(command: Option<&CommandSpec>, working_dir: Option<&str>) -> CommandInfo {
    match (command, working_dir) {
        (None, _) => CommandInfo { shell: false, ..Default::default() },
        (Some(CommandSpec::Shell(s)), None) => CommandInfo::shell(s.clone()),
        (Some(CommandSpec::Exec(argv)), None) => {
            CommandInfo { shell: false, value: argv.first().cloned(), arguments: argv.clone(), ..Default::default() }
        }
        (Some(CommandSpec::Shell(s)), Some(dir)) => CommandInfo {
            shell: false,
            value: Some("/bin/sh".into()),
            arguments: vec!["sh".into(), "-c".into(), "cd -- \"$0\" && eval \"$1\"".into(), dir.into(), s.clone()],
            ..Default::default()
        },
        (Some(CommandSpec::Exec(argv)), Some(dir)) => {
            let mut arguments = vec!["sh".into(), "-c".into(), "cd -- \"$0\" && exec \"$@\"".into(), dir.into()];
            arguments.extend(argv.iter().cloned());
            CommandInfo { shell: false, value: Some("/bin/sh".into()), arguments, ..Default::default() }
        }
    }
}

/// A Docker task's command, as Mesos's Docker containerizer passes it to
/// `docker run IMAGE ARGS...`: no value, the arguments replace the image's
/// Cmd; an entrypoint's first word goes in the `entrypoint` parameter (see
/// [`docker_container`]), its other words before the arguments.
fn docker_command(command: Option<&CommandSpec>, entrypoint: Option<&[String]>) -> CommandInfo {
    let mut arguments: Vec<String> = entrypoint.map(|e| e.iter().skip(1).cloned().collect()).unwrap_or_default();
    match command {
        Some(CommandSpec::Shell(s)) if entrypoint.is_none() => return CommandInfo::shell(s.clone()),
        Some(CommandSpec::Shell(s)) => arguments.push(s.clone()),
        Some(CommandSpec::Exec(argv)) => arguments.extend(argv.iter().cloned()),
        None => {}
    }
    CommandInfo { shell: false, value: None, arguments, ..Default::default() }
}

/// A task with an image under the Mesos containerizer: a value replaces the
/// image's command (arguments start with argv0); arguments alone replace Cmd.
fn mesos_image_command(command: Option<&CommandSpec>, entrypoint: Option<&[String]>) -> CommandInfo {
    match (entrypoint, command) {
        (Some(e), c) if !e.is_empty() => {
            let mut arguments = e.to_vec();
            match c {
                Some(CommandSpec::Exec(argv)) => arguments.extend(argv.iter().cloned()),
                Some(CommandSpec::Shell(s)) => arguments.push(s.clone()),
                None => {}
            }
            CommandInfo { shell: false, value: Some(e[0].clone()), arguments, ..Default::default() }
        }
        (_, Some(CommandSpec::Shell(s))) => CommandInfo::shell(s.clone()),
        (_, Some(CommandSpec::Exec(argv))) => {
            CommandInfo { shell: false, value: None, arguments: argv.clone(), ..Default::default() }
        }
        (_, None) => CommandInfo { shell: false, ..Default::default() },
    }
}

fn volume(v: &VolumeSpec) -> Volume {
    let mode = if v.read_only { VolumeMode::Ro } else { VolumeMode::Rw };
    match &v.content {
        // Mesos's `volume/secret` isolator form: the value travels with the task.
        Some(content) => {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD.encode(content);
            Volume {
                mode,
                container_path: v.container_path.clone(),
                source: Some(
                    serde_json::json!({"type": "SECRET", "secret": {"type": "VALUE", "value": {"data": data}}}),
                ),
                ..Default::default()
            }
        }
        None => Volume {
            mode,
            container_path: v.container_path.clone(),
            host_path: Some(v.host_path.clone()),
            ..Default::default()
        },
    }
}

fn port_mappings(spec: &ServiceSpec, taken: &Taken) -> Vec<PortMapping> {
    spec.ports
        .iter()
        .zip(&taken.host_ports)
        .map(|(p, host)| PortMapping {
            host_port: *host as u32,
            container_port: p.container_port as u32,
            protocol: Some(if p.protocol == "udp" { "udp".into() } else { "tcp".into() }),
        })
        .collect()
}

/// The NetworkInfos of the service's networks, with what the embedded
/// agent reads from their labels: the names the container answers to (with
/// its replica's own, `<project>-<service>-<n>` as docker compose names
/// containers) and the network's IPAM. Published ports go on the first.
fn network_infos(image: &ImageSpec, mappings: Vec<PortMapping>, id: &TaskIdentity<'_>) -> Vec<NetworkInfo> {
    let mut mappings = Some(mappings);
    image
        .networks
        .iter()
        .map(|n| {
            let mut names = n.names.clone();
            names.push(format!("{}-{}-{}", id.project, id.service, id.replica + 1));
            let mut labels = vec![Label { key: "m3s.dns.names".into(), value: Some(names.join(",")) }];
            for (key, value) in
                [("m3s.ipam.subnet", &n.subnet), ("m3s.ipam.gateway", &n.gateway), ("m3s.ipam.ip_range", &n.ip_range)]
            {
                if let Some(v) = value {
                    labels.push(Label { key: key.into(), value: Some(v.clone()) });
                }
            }
            for (key, set) in [("m3s.network.internal", n.internal), ("m3s.network.external", n.external)] {
                if set {
                    labels.push(Label { key: key.into(), value: Some("true".into()) });
                }
            }
            NetworkInfo {
                name: Some(n.name.clone()),
                labels: Some(Labels { labels }),
                port_mappings: mappings.take().unwrap_or_default(),
                ..Default::default()
            }
        })
        .collect()
}

fn docker_container(image: &ImageSpec, spec: &ServiceSpec, taken: &Taken, id: &TaskIdentity<'_>) -> ContainerInfo {
    let network = match image.network.as_str() {
        "host" => DockerNetwork::Host,
        "none" => DockerNetwork::None,
        "bridge" => DockerNetwork::Bridge,
        _ if image.networks.is_empty() => DockerNetwork::Bridge,
        _ => DockerNetwork::User,
    };
    let mut parameters = Vec::new();
    for cap in &image.cap_add {
        parameters.push(Parameter { key: "cap-add".into(), value: cap.clone() });
    }
    for cap in &image.cap_drop {
        parameters.push(Parameter { key: "cap-drop".into(), value: cap.clone() });
    }
    for (name, (soft, hard)) in &image.ulimits {
        parameters.push(Parameter { key: "ulimit".into(), value: format!("{name}={soft}:{hard}") });
    }
    if let Some(e) = spec.run.entrypoint.as_ref().and_then(|e| e.first()) {
        parameters.push(Parameter { key: "entrypoint".into(), value: e.clone() });
    }
    if let Some(dir) = &spec.run.working_dir {
        parameters.push(Parameter { key: "workdir".into(), value: dir.clone() });
    }
    if let Some(user) = &spec.run.user {
        parameters.push(Parameter { key: "user".into(), value: user.clone() });
    }
    for (key, value) in &image.parameters {
        parameters.push(Parameter { key: key.clone(), value: value.clone() });
    }
    let mappings = if network == DockerNetwork::Bridge || network == DockerNetwork::User {
        port_mappings(spec, taken)
    } else {
        Vec::new()
    };
    ContainerInfo {
        kind: ContainerType::Docker,
        volumes: image.volumes.iter().map(volume).collect(),
        hostname: image.hostname.clone(),
        docker: Some(DockerInfo {
            image: image.image.clone(),
            network: network.clone(),
            port_mappings: mappings,
            privileged: Some(image.privileged),
            parameters,
            force_pull_image: Some(image.force_pull),
            volume_driver: None,
        }),
        // Docker's USER mode carries the network in NetworkInfo (its port mappings stay in DockerInfo).
        network_infos: if network == DockerNetwork::User { network_infos(image, Vec::new(), id) } else { Vec::new() },
        ..Default::default()
    }
}

fn mesos_image_container(image: &ImageSpec, spec: &ServiceSpec, taken: &Taken, id: &TaskIdentity<'_>) -> ContainerInfo {
    // The Mesos containerizer: no NetworkInfo is the host's network.
    let network_infos = match image.network.as_str() {
        "" => network_infos(image, port_mappings(spec, taken), id),
        // The embedded agent's default bridge, as Docker's `bridge` mode joins it.
        "bridge" => vec![NetworkInfo {
            name: Some("m3s-bridge".into()),
            port_mappings: port_mappings(spec, taken),
            ..Default::default()
        }],
        _ => Vec::new(),
    };
    let mut linux = serde_json::Map::new();
    if image.privileged || !image.cap_add.is_empty() || !image.cap_drop.is_empty() {
        let caps =
            |list: &[String]| list.iter().map(|c| format!("CAP_{}", c.trim_start_matches("CAP_"))).collect::<Vec<_>>();
        if !image.cap_add.is_empty() {
            linux.insert("effective_capabilities".into(), serde_json::json!({ "capabilities": caps(&image.cap_add) }));
        }
        if !image.cap_drop.is_empty() {
            linux.insert("bounding_capabilities".into(), serde_json::json!({ "dropped": caps(&image.cap_drop) }));
        }
    }
    ContainerInfo {
        kind: ContainerType::Mesos,
        volumes: image.volumes.iter().map(volume).collect(),
        hostname: image.hostname.clone(),
        mesos: Some(MesosContainerInfo {
            image: Some(Image {
                kind: ImageType::Docker,
                docker: Some(DockerImage { name: image.image.clone(), ..Default::default() }),
                cached: !image.force_pull,
                ..Default::default()
            }),
        }),
        network_infos,
        linux_info: (!linux.is_empty()).then_some(serde_json::Value::Object(linux)),
        rlimit_info: (!image.ulimits.is_empty()).then(|| RLimitInfo {
            rlimits: image
                .ulimits
                .iter()
                .map(|(name, (soft, hard))| RLimit {
                    kind: format!("RLMT_{}", name.to_ascii_uppercase()),
                    soft: u64::try_from(*soft).ok(),
                    hard: u64::try_from(*hard).ok(),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::service;

    fn identity<'a>(agent: &'a AgentId) -> TaskIdentity<'a> {
        TaskIdentity { task_id: "p_s.1.0", agent_id: agent, project: "p", service: "s", replica: 0 }
    }

    #[test]
    fn a_working_dir_is_passed_as_an_argument_not_pasted_into_the_shell() {
        let c = command_info(Some(&CommandSpec::Shell("echo hi".into())), Some("/tmp/a'; rm -rf /"));
        assert!(!c.shell);
        assert_eq!(c.arguments[3], "/tmp/a'; rm -rf /");
        assert_eq!(c.arguments[4], "echo hi");
        assert!(!c.arguments[2].contains("rm"));
    }

    #[test]
    fn host_tasks_carry_ports_labels_and_discovery() {
        let agent = AgentId::new("a1");
        let spec = service(0.5, &[None]);
        let taken = Taken { resources: vec![], host_ports: vec![31005] };
        let info = task_info(&spec, &identity(&agent), &taken);
        assert!(info.container.is_none());
        let env = &info.command.as_ref().unwrap().environment.as_ref().unwrap().variables;
        assert!(env.iter().any(|v| v.name == "M3S_PORT_80" && v.value.as_deref() == Some("31005")));
        let labels = &info.labels.as_ref().unwrap().labels;
        assert!(labels.iter().any(|l| l.key == LABEL_SERVICE && l.value.as_deref() == Some("s")));
        assert_eq!(info.discovery.unwrap().ports.unwrap().ports[0].number, 31005);
    }

    #[test]
    fn docker_tasks_map_ports_and_keep_both_capability_lists() {
        let agent = AgentId::new("a1");
        let mut spec = service(0.5, &[Some(8080)]);
        spec.run.container = ContainerSpec::Docker(ImageSpec {
            image: "nginx:1".into(),
            network: "bridge".into(),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["MKNOD".into()],
            ..Default::default()
        });
        let taken = Taken { resources: vec![], host_ports: vec![8080] };
        let info = task_info(&spec, &identity(&agent), &taken);
        let docker = info.container.unwrap().docker.unwrap();
        assert_eq!(docker.port_mappings[0].host_port, 8080);
        assert_eq!(docker.port_mappings[0].container_port, 80);
        let keys: Vec<_> = docker.parameters.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert!(keys.contains(&("cap-add", "NET_ADMIN")) && keys.contains(&("cap-drop", "MKNOD")));
    }
}
