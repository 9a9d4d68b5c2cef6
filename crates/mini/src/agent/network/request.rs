//! What a task asks of the network, read from its TaskInfo: Mesos's
//! `NetworkInfo` names (CNI networks), Docker's network modes, port mappings,
//! and the labels by which m3s's compose framework passes what Mesos has no
//! field for (DNS names, a network's IPAM, published host IPs). Pure functions.

use mesos::v1::{ContainerType, DockerNetwork, Labels, NetworkInfo, TaskInfo};
use serde_json::{Value, json};

use super::subnet::{Subnet, SubnetError};

/// NetworkInfo label: the names a container answers to on that network, comma-separated.
pub const LABEL_DNS_NAMES: &str = "m3s.dns.names";
/// NetworkInfo labels: the network's IPAM when m3s creates it (compose `ipam.config[0]`).
pub const LABEL_SUBNET: &str = "m3s.ipam.subnet";
pub const LABEL_GATEWAY: &str = "m3s.ipam.gateway";
pub const LABEL_IP_RANGE: &str = "m3s.ipam.ip_range";
/// NetworkInfo label `true`: no route out (compose `internal`).
pub const LABEL_INTERNAL: &str = "m3s.network.internal";
/// NetworkInfo label `true`: the network must exist; m3s does not create it.
pub const LABEL_EXTERNAL: &str = "m3s.network.external";
/// Task label prefix: `m3s.host_ip.<host port>/<protocol>` = the host address a port is published on.
pub const LABEL_HOST_IP_PREFIX: &str = "m3s.host_ip.";

/// The network Docker's `bridge` mode joins (Docker's `docker0`).
pub const DEFAULT_BRIDGE: &str = "m3s-bridge";

#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    /// The host's network namespace.
    Host,
    /// A namespace of its own with loopback only (Docker's `none`).
    Isolated,
    Networks(Vec<Join>),
}

/// One network a container joins.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Join {
    pub network: String,
    pub names: Vec<String>,
    pub subnet: Option<Subnet>,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    pub external: bool,
}

/// A published port, as the portmap plugin takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: Option<std::net::IpAddr>,
}

impl PortMap {
    pub fn to_cni(&self) -> Value {
        let mut v =
            json!({"hostPort": self.host_port, "containerPort": self.container_port, "protocol": self.protocol});
        if let Some(ip) = self.host_ip {
            v["hostIP"] = json!(ip.to_string());
        }
        v
    }
}

fn label<'a>(labels: &'a Option<Labels>, key: &str) -> Option<&'a str> {
    labels.as_ref()?.labels.iter().find(|l| l.key == key)?.value.as_deref()
}

/// What in a task's networks or ports cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("network name {0:?}: expected letters, digits, '_', '.' or '-' (at most 128)")]
    BadName(String),
    #[error("network_infos[{0}] has no name (the CNI network to join)")]
    Unnamed(usize),
    #[error("network {network}: {key}: {source}")]
    BadSubnet { network: String, key: &'static str, source: SubnetError },
    #[error("network {network}: {LABEL_GATEWAY}: {value:?} is not an IPv4 address")]
    BadGateway { network: String, value: String },
    #[error("docker network USER needs a NetworkInfo naming the network")]
    UserWithoutNetwork,
    #[error("docker network {0:?} is not known")]
    UnknownDockerNetwork(String),
    #[error("port mapping {host_port}: protocol {protocol:?} (tcp, udp or sctp)")]
    BadProtocol { host_port: u32, protocol: String },
    #[error("port mapping: {what} {port} is not a port")]
    NotAPort { what: &'static str, port: u32 },
    #[error("{key}: {value:?} is not an IP address")]
    BadHostIp { key: String, value: String },
}

/// Network names become file names and bridge records: the compose charset.
pub fn check_name(name: &str) -> Result<(), RequestError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok { Ok(()) } else { Err(RequestError::BadName(name.to_owned())) }
}

fn join(info: &NetworkInfo, i: usize) -> Result<Join, RequestError> {
    let network = info.name.clone().ok_or(RequestError::Unnamed(i))?;
    check_name(&network)?;
    let labels = &info.labels;
    let parse_subnet = |key: &'static str| -> Result<Option<Subnet>, RequestError> {
        label(labels, key)
            .map(|s| s.parse().map_err(|source| RequestError::BadSubnet { network: network.clone(), key, source }))
            .transpose()
    };
    let gateway = label(labels, LABEL_GATEWAY)
        .map(|g| g.parse().map_err(|_| RequestError::BadGateway { network: network.clone(), value: g.to_owned() }))
        .transpose()?;
    let names = label(labels, LABEL_DNS_NAMES)
        .map(|n| n.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    Ok(Join {
        subnet: parse_subnet(LABEL_SUBNET)?,
        ip_range: parse_subnet(LABEL_IP_RANGE)?,
        gateway,
        names,
        internal: label(labels, LABEL_INTERNAL) == Some("true"),
        external: label(labels, LABEL_EXTERNAL) == Some("true"),
        network,
    })
}

/// What the task's ContainerInfo asks for, as Mesos reads it: the Mesos
/// containerizer joins its NetworkInfos' CNI networks (none: the host's);
/// Docker's HOST, BRIDGE, NONE and USER modes.
pub fn wanted(task: &TaskInfo) -> Result<Wanted, RequestError> {
    let Some(c) = &task.container else { return Ok(Wanted::Host) };
    let joins =
        || -> Result<Vec<Join>, RequestError> { c.network_infos.iter().enumerate().map(|(i, n)| join(n, i)).collect() };
    match c.kind {
        ContainerType::Docker => match c.docker.as_ref().map(|d| d.network.clone()).unwrap_or(DockerNetwork::Host) {
            DockerNetwork::Host => Ok(Wanted::Host),
            DockerNetwork::None => Ok(Wanted::Isolated),
            DockerNetwork::Bridge => {
                Ok(Wanted::Networks(vec![Join { network: DEFAULT_BRIDGE.into(), ..Default::default() }]))
            }
            DockerNetwork::User => {
                let joins = joins()?;
                if joins.is_empty() {
                    return Err(RequestError::UserWithoutNetwork);
                }
                Ok(Wanted::Networks(joins))
            }
            DockerNetwork::Unknown(other) => Err(RequestError::UnknownDockerNetwork(other)),
        },
        _ if c.network_infos.is_empty() => Ok(Wanted::Host),
        _ => Ok(Wanted::Networks(joins()?)),
    }
}

/// The task's published ports: DockerInfo's port_mappings, else the first
/// NetworkInfo's; the host address from the task's `m3s.host_ip.*` labels.
pub fn port_mappings(task: &TaskInfo) -> Result<Vec<PortMap>, RequestError> {
    let Some(c) = &task.container else { return Ok(Vec::new()) };
    let docker = c.docker.as_ref().map(|d| d.port_mappings.as_slice()).unwrap_or_default();
    let mappings = if docker.is_empty() {
        c.network_infos.first().map(|n| n.port_mappings.as_slice()).unwrap_or_default()
    } else {
        docker
    };
    mappings
        .iter()
        .map(|m| {
            let protocol = m.protocol.clone().unwrap_or_else(|| "tcp".into()).to_ascii_lowercase();
            if protocol != "tcp" && protocol != "udp" && protocol != "sctp" {
                return Err(RequestError::BadProtocol { host_port: m.host_port, protocol });
            }
            let port = |port: u32, what: &'static str| {
                u16::try_from(port).ok().filter(|p| *p > 0).ok_or(RequestError::NotAPort { what, port })
            };
            let host_port = port(m.host_port, "host port")?;
            let key = format!("{LABEL_HOST_IP_PREFIX}{host_port}/{protocol}");
            let host_ip = label(&task.labels, &key)
                .map(|ip| ip.parse().map_err(|_| RequestError::BadHostIp { key: key.clone(), value: ip.to_owned() }))
                .transpose()?;
            Ok(PortMap { host_port, container_port: port(m.container_port, "container port")?, protocol, host_ip })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos::v1::{ContainerInfo, DockerInfo, Label, PortMapping};

    fn labels(kv: &[(&str, &str)]) -> Option<Labels> {
        Some(Labels { labels: kv.iter().map(|(k, v)| Label { key: (*k).into(), value: Some((*v).into()) }).collect() })
    }

    #[test]
    fn docker_modes_and_network_infos_say_which_networks() {
        let mut task = TaskInfo::default();
        assert_eq!(wanted(&task), Ok(Wanted::Host));
        task.container = Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo { network: DockerNetwork::Bridge, ..Default::default() }),
            ..Default::default()
        });
        let Ok(Wanted::Networks(j)) = wanted(&task) else { panic!() };
        assert_eq!(j[0].network, DEFAULT_BRIDGE);
        let c = task.container.as_mut().unwrap();
        c.docker.as_mut().unwrap().network = DockerNetwork::User;
        assert!(wanted(&task).unwrap_err() == RequestError::UserWithoutNetwork);
        let c = task.container.as_mut().unwrap();
        c.network_infos = vec![NetworkInfo {
            name: Some("demo_default".into()),
            labels: labels(&[
                (LABEL_DNS_NAMES, "Web, web.demo"),
                (LABEL_SUBNET, "10.5.0.0/24"),
                (LABEL_INTERNAL, "true"),
            ]),
            ..Default::default()
        }];
        let Ok(Wanted::Networks(j)) = wanted(&task) else { panic!() };
        assert_eq!(j[0].names, vec!["web", "web.demo"]);
        assert_eq!(j[0].subnet.unwrap().to_string(), "10.5.0.0/24");
        assert!(j[0].internal && !j[0].external);
        task.container.as_mut().unwrap().network_infos[0].labels = labels(&[(LABEL_SUBNET, "10.5.0.1/24")]);
        assert!(wanted(&task).unwrap_err().to_string().contains("network demo_default: m3s.ipam.subnet"));
        task.container.as_mut().unwrap().network_infos[0].name = Some("../x".into());
        assert!(wanted(&task).unwrap_err().to_string().contains("network name \"../x\""));
    }

    #[test]
    fn port_mappings_take_their_host_ip_from_labels() {
        let task = TaskInfo {
            labels: labels(&[("m3s.host_ip.8088/tcp", "127.0.0.1")]),
            container: Some(ContainerInfo {
                kind: ContainerType::Docker,
                docker: Some(DockerInfo {
                    network: DockerNetwork::Bridge,
                    port_mappings: vec![
                        PortMapping { host_port: 8088, container_port: 80, protocol: Some("tcp".into()) },
                        PortMapping { host_port: 5353, container_port: 53, protocol: Some("UDP".into()) },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let maps = port_mappings(&task).unwrap();
        assert_eq!(
            maps[0].to_cni(),
            json!({"hostPort": 8088, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"})
        );
        assert_eq!((maps[1].protocol.as_str(), maps[1].host_ip), ("udp", None));
    }
}
