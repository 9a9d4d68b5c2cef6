//! Container networks on the embedded agent, as Mesos's `network/cni`
//! isolator makes them: each container that is not on the host's network
//! gets a network namespace of its own (`netns.rs`), joined to CNI networks
//! by the reference plugins (`cni.rs`). A network named in a task that no
//! CNI configuration defines is made by m3s (a bridge with host-local
//! addresses, portmap and firewall; the subnet from the task's labels or the
//! first free one of 10.90.0.0/16) and removed when its last container
//! leaves, as `docker compose down` removes a project's networks. Each
//! network m3s made has a DNS server on its gateway answering the names of
//! the containers on it (`names.rs`), forwarding the rest to the host's
//! resolvers.
//!
//! Everything a restart needs is on disk under `<work_dir>/networks/`:
//! `auto/<network>.json` (networks m3s made), `attachments/<container>.json`
//! (what each container joined, with the CNI results DEL needs), `netns/`
//! (the namespaces' bind mounts), `ipam/` (host-local's allocations).

pub mod cni;
mod names;
pub mod netns;
pub mod ports;
pub mod request;
pub mod subnet;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesos::v1::TaskInfo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use cni::NetConf;
use names::NameTable;
use request::{Join, PortMap, Wanted};
use subnet::Subnet;

#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `<work_dir>/networks`.
    pub state_dir: PathBuf,
    /// Mesos's `--network_cni_config_dir`: networks the operator defined.
    pub cni_config_dir: Option<PathBuf>,
    /// Mesos's `--network_cni_plugins_dir`.
    pub cni_plugins_dir: PathBuf,
    /// Where unknown names are forwarded; `None`: the host's resolv.conf.
    pub dns_upstreams: Option<Vec<SocketAddr>>,
}

/// What a container joined: kept on disk until it leaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub netns: PathBuf,
    pub joined: Vec<Joined>,
    #[serde(default)]
    pub port_mappings: Vec<Value>,
    /// m3s's DNS server for this container: the gateway of its first network that has one.
    #[serde(default)]
    pub nameserver: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joined {
    pub network: String,
    pub ifname: String,
    /// The configuration ADD ran with: DEL runs with the same.
    pub conf: Value,
    pub result: Value,
    pub ip: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub names: Vec<String>,
}

impl Attachment {
    /// The gateway of the container's first network (Docker's `host-gateway`).
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.joined.iter().find_map(|j| j.gateway)
    }

    /// The container's own address, for its /etc/hosts.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.joined.iter().find_map(|j| j.ip)
    }
}

use crate::dns;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AutoNetwork {
    name: String,
    subnet: String,
    gateway: Ipv4Addr,
    bridge: String,
    conf: Value,
}

#[derive(Default)]
struct State {
    /// network -> containers on it (or joining it now).
    users: HashMap<String, HashSet<String>>,
    /// DNS servers by network (networks m3s made).
    servers: HashMap<String, dns::Server>,
    /// Held host ports by container.
    reserved: HashMap<String, Vec<OwnedFd>>,
    /// Containers being detached: a second detach (the exit, then the
    /// task's removal) leaves it to the first.
    detaching: HashSet<String>,
}

pub struct Networks {
    config: NetworkConfig,
    state: tokio::sync::Mutex<State>,
    names: Arc<NameTable>,
    upstreams: Arc<Vec<SocketAddr>>,
}

/// Why a container could not join its networks: each names the network,
/// port or file, and the cause.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Request(#[from] request::RequestError),
    #[error(transparent)]
    Port(#[from] ports::PortError),
    #[error("making the network namespace {}: {source}", path.display())]
    Netns { path: PathBuf, source: std::io::Error },
    #[error("writing {}: {source}", path.display())]
    Record { path: PathBuf, source: std::io::Error },
    #[error("the container's loopback: {0}")]
    Loopback(#[source] cni::CniError),
    #[error("network {network}: {source}")]
    Join { network: String, source: cni::CniError },
    #[error("network {network}: {source}")]
    Conf { network: String, source: cni::ConfError },
    #[error(
        "network {network} is declared external and does not exist: define it as a CNI configuration named {network} in {config_dir}"
    )]
    External { network: String, config_dir: String },
    #[error("network {network}: subnet {subnet} overlaps the host's route to {route} on {device}")]
    RouteOverlap { network: String, subnet: Subnet, route: Subnet, device: String },
    #[error("network {network}: subnet {subnet} overlaps network {other} ({other_subnet})")]
    NetworkOverlap { network: String, subnet: Subnet, other: String, other_subnet: Subnet },
    #[error("network {0}: every /24 of 10.90.0.0/16 is routed or taken; give the network a subnet (ipam)")]
    NoFreeSubnet(String),
    #[error("network {network}: gateway {gateway} is not in subnet {subnet}")]
    GatewayOutside { network: String, gateway: Ipv4Addr, subnet: Subnet },
    #[error("network {network}: ip_range {range} is not inside subnet {subnet}")]
    RangeOutside { network: String, range: Subnet, subnet: Subnet },
    #[error("network {network}: writing {}: {source}", path.display())]
    WriteConf { network: String, path: PathBuf, source: std::io::Error },
    #[error("network {network}: making the bridge {bridge}: {source}")]
    Bridge { network: String, bridge: String, source: IpError },
}

/// A failed run of iproute2's `ip`.
#[derive(Debug, thiserror::Error)]
pub enum IpError {
    #[error("cannot run ip (Debian: apt-get install iproute2): {0}")]
    Spawn(#[source] std::io::Error),
    /// Its stderr.
    #[error("{0}")]
    Failed(String),
}

impl Networks {
    pub fn new(config: NetworkConfig) -> std::io::Result<Networks> {
        for dir in ["auto", "attachments", "netns", "ipam"] {
            std::fs::create_dir_all(config.state_dir.join(dir))?;
        }
        let upstreams = config
            .dns_upstreams
            .clone()
            .unwrap_or_else(|| dns::nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()));
        Ok(Networks { config, state: Default::default(), names: Default::default(), upstreams: Arc::new(upstreams) })
    }

    fn attachment_path(&self, container_id: &str) -> PathBuf {
        self.config.state_dir.join("attachments").join(format!("{container_id}.json"))
    }

    fn auto_path(&self, network: &str) -> PathBuf {
        self.config.state_dir.join("auto").join(format!("{network}.json"))
    }

    /// The address of a joined container (from its record: m3s may have restarted).
    pub fn address_of(&self, container_id: &str) -> Option<Ipv4Addr> {
        let bytes = std::fs::read(self.attachment_path(container_id)).ok()?;
        serde_json::from_slice::<Attachment>(&bytes).ok()?.address()
    }

    /// Joins the task's container to its networks; `None` for the host's
    /// network. On failure nothing is left behind, and the error names the
    /// network or port and the cause.
    pub async fn attach(&self, task: &TaskInfo, container_id: &str) -> Result<Option<Attachment>, NetworkError> {
        let wanted = request::wanted(task)?;
        let joins = match wanted {
            Wanted::Host => return Ok(None),
            Wanted::Isolated => Vec::new(),
            Wanted::Networks(joins) => joins,
        };
        let maps = request::port_mappings(task)?;
        let held = ports::reserve(&maps)?;
        let netns_path = self.config.state_dir.join("netns").join(container_id);
        netns::create(&netns_path).map_err(|source| NetworkError::Netns { path: netns_path.clone(), source })?;
        let mut attachment = Attachment {
            container_id: container_id.to_owned(),
            netns: netns_path.clone(),
            joined: Vec::new(),
            port_mappings: maps.iter().map(PortMap::to_cni).collect(),
            nameserver: None,
        };
        match self.join_all(&mut attachment, &joins).await {
            Ok(()) => {
                let mut state = self.state.lock().await;
                state.reserved.insert(container_id.to_owned(), held);
                attachment.nameserver =
                    attachment.joined.iter().find(|j| state.servers.contains_key(&j.network)).and_then(|j| j.gateway);
                drop(state);
                if let Err(e) = self.record(&attachment) {
                    self.detach_attachment(&attachment).await;
                    let _ = std::fs::remove_file(self.attachment_path(container_id));
                    return Err(e);
                }
                for j in &attachment.joined {
                    if let Some(ip) = j.ip {
                        self.names.add(&j.network, container_id, ip, &j.names);
                    }
                }
                Ok(Some(attachment))
            }
            Err(e) => {
                self.detach_attachment(&attachment).await;
                let _ = std::fs::remove_file(self.attachment_path(container_id));
                // Networks this container was about to join but did not.
                self.release(container_id, joins.iter().map(|j| j.network.as_str())).await;
                Err(e)
            }
        }
    }

    /// Writes the container's attachment record (replaced atomically).
    fn record(&self, attachment: &Attachment) -> Result<(), NetworkError> {
        let path = self.attachment_path(&attachment.container_id);
        let text = serde_json::to_vec_pretty(attachment).expect("json");
        crate::agent::runtime::write_atomic(&path, &text, false).map_err(|source| NetworkError::Record { path, source })
    }

    async fn join_all(&self, attachment: &mut Attachment, joins: &[Join]) -> Result<(), NetworkError> {
        let plugins_dir = &self.config.cni_plugins_dir;
        let lo = NetConf {
            name: "loopback".into(),
            cni_version: "1.0.0".into(),
            plugins: vec![json!({"type": "loopback"})],
        };
        let loopback = cni::Invocation {
            plugins_dir,
            container_id: &attachment.container_id,
            netns: &attachment.netns,
            ifname: "lo",
            port_mappings: &[],
        };
        cni::add(&lo, &loopback).await.map_err(NetworkError::Loopback)?;
        for (i, join) in joins.iter().enumerate() {
            let conf = self.network(join, &attachment.container_id).await?;
            let ifname = format!("eth{i}");
            // Published ports go to the first network, as Docker publishes them.
            let maps = if i == 0 { attachment.port_mappings.clone() } else { Vec::new() };
            let inv = cni::Invocation {
                plugins_dir,
                container_id: &attachment.container_id,
                netns: &attachment.netns,
                ifname: &ifname,
                port_mappings: &maps,
            };
            // Recorded before ADD: if m3s is killed during it, the recovery's DEL
            // undoes what ADD did (its NAT rules above all), as the spec allows
            // DEL without a result.
            attachment.joined.push(Joined {
                network: join.network.clone(),
                ifname: ifname.clone(),
                conf: json!({"conf": conf.to_json(), "port_mappings": maps}),
                result: Value::Null,
                ip: None,
                gateway: None,
                names: join.names.clone(),
            });
            self.record(attachment)?;
            // A half-done ADD is undone by the caller's DEL of everything recorded.
            let result = cni::add(&conf, &inv)
                .await
                .map_err(|source| NetworkError::Join { network: join.network.clone(), source })?;
            let (ip, gateway) = cni::first_ipv4(&result).map_or((None, None), |(ip, gw)| (Some(ip), gw));
            let joined = attachment.joined.last_mut().expect("pushed above");
            joined.result = result;
            joined.ip = ip;
            joined.gateway = gateway;
            if let Some(gateway) = gateway {
                self.start_dns(&join.network, gateway).await;
            }
        }
        Ok(())
    }

    /// The configuration of `join`'s network, made if m3s makes it; the
    /// container is counted among its users before the lock is let go, so
    /// the network cannot be removed under it.
    async fn network(&self, join: &Join, container_id: &str) -> Result<NetConf, NetworkError> {
        let mut state = self.state.lock().await;
        let conf = self.find_or_make(join)?;
        state.users.entry(join.network.clone()).or_default().insert(container_id.to_owned());
        Ok(conf)
    }

    fn find_or_make(&self, join: &Join) -> Result<NetConf, NetworkError> {
        let name = &join.network;
        if let Some(dir) = &self.config.cni_config_dir {
            match cni::find(dir, name) {
                Ok(Some(conf)) => return Ok(conf),
                Ok(None) => {}
                Err(source) => return Err(NetworkError::Conf { network: name.clone(), source }),
            }
        }
        if let Some(auto) = self.read_auto(name) {
            return NetConf::parse(&auto.conf.to_string(), &self.auto_path(name))
                .map_err(|source| NetworkError::Conf { network: name.clone(), source });
        }
        if join.external {
            return Err(NetworkError::External {
                network: name.clone(),
                config_dir: self
                    .config
                    .cni_config_dir
                    .as_ref()
                    .map_or("--network-cni-config-dir".to_owned(), |d| d.display().to_string()),
            });
        }
        self.make(join)
    }

    fn read_auto(&self, network: &str) -> Option<AutoNetwork> {
        serde_json::from_slice(&std::fs::read(self.auto_path(network)).ok()?).ok()
    }

    fn autos(&self) -> Vec<AutoNetwork> {
        let Ok(entries) = std::fs::read_dir(self.config.state_dir.join("auto")) else { return Vec::new() };
        entries.flatten().filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()).collect()
    }

    /// A new bridge network: the subnet asked for, checked against the host's
    /// routes and m3s's other networks, or the first free one.
    fn make(&self, join: &Join) -> Result<NetConf, NetworkError> {
        let name = &join.network;
        // Other agents on this machine (other m3s instances) pick subnets too:
        // one at a time, each seeing the routes of the bridges made before.
        let _machine_lock = machine_lock(&self.config.state_dir);
        let routes = subnet::parse_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
        let others: Vec<(String, Subnet)> =
            self.autos().into_iter().filter_map(|a| Some((a.name, a.subnet.parse().ok()?))).collect();
        let subnet = match join.subnet {
            Some(s) => {
                if let Some(r) = routes.iter().find(|r| r.subnet.overlaps(&s)) {
                    return Err(NetworkError::RouteOverlap {
                        network: name.clone(),
                        subnet: s,
                        route: r.subnet,
                        device: r.device.clone(),
                    });
                }
                if let Some((other, o)) = others.iter().find(|(_, o)| o.overlaps(&s)) {
                    return Err(NetworkError::NetworkOverlap {
                        network: name.clone(),
                        subnet: s,
                        other: other.clone(),
                        other_subnet: *o,
                    });
                }
                s
            }
            None => {
                let taken: Vec<Subnet> =
                    routes.iter().map(|r| r.subnet).chain(others.iter().map(|(_, s)| *s)).collect();
                subnet::pick(&taken).ok_or_else(|| NetworkError::NoFreeSubnet(name.clone()))?
            }
        };
        let gateway = join.gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) {
            return Err(NetworkError::GatewayOutside { network: name.clone(), gateway, subnet });
        }
        let mut range = json!({"subnet": subnet.to_string(), "gateway": gateway.to_string()});
        if let Some(r) = join.ip_range {
            if !subnet.overlaps(&r) || r.prefix < subnet.prefix {
                return Err(NetworkError::RangeOutside { network: name.clone(), range: r, subnet });
            }
            range["rangeStart"] = json!(Ipv4Addr::from(u32::from(r.base) + 1).to_string());
            range["rangeEnd"] = json!(Ipv4Addr::from(u32::from(r.base) + (1u32 << (32 - r.prefix)) - 2).to_string());
        }
        let bridge = bridge_name(&self.config.state_dir, name);
        let mut ipam = json!({
            "type": "host-local",
            "ranges": [[range]],
            "dataDir": self.config.state_dir.join("ipam").display().to_string(),
        });
        if !join.internal {
            ipam["routes"] = json!([{"dst": "0.0.0.0/0"}]);
        }
        let conf = NetConf {
            name: name.clone(),
            cni_version: "1.0.0".into(),
            plugins: vec![
                json!({"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": !join.internal,
                       "hairpinMode": true, "ipam": ipam}),
                json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
                json!({"type": "firewall", "backend": "iptables"}),
            ],
        };
        let auto = AutoNetwork {
            name: name.clone(),
            subnet: subnet.to_string(),
            gateway,
            bridge: bridge.clone(),
            conf: conf.to_json(),
        };
        let path = self.auto_path(name);
        crate::agent::runtime::write_atomic(&path, &serde_json::to_vec_pretty(&auto).expect("json"), false)
            .map_err(|source| NetworkError::WriteConf { network: name.clone(), path: path.clone(), source })?;
        // The bridge and its address now, not at the first ADD: its route
        // marks the subnet taken for whoever picks next.
        let prefix = subnet.prefix.to_string();
        let steps: [&[&str]; 3] = [
            &["link", "add", "name", &bridge, "type", "bridge"],
            &["addr", "add", &format!("{gateway}/{prefix}"), "dev", &bridge],
            &["link", "set", &bridge, "up"],
        ];
        // A bridge of this name is a leftover of this agent's (the name hashes
        // its state directory): made anew, with this subnet.
        let _ = ip(&["link", "delete", &bridge, "type", "bridge"]);
        for args in steps {
            if let Err(source) = ip(args) {
                self.remove_auto(name);
                return Err(NetworkError::Bridge { network: name.clone(), bridge: bridge.clone(), source });
            }
        }
        tracing::info!(network = %name, %subnet, %bridge, "made a network");
        Ok(conf)
    }

    async fn start_dns(&self, network: &str, gateway: Ipv4Addr) {
        let mut state = self.state.lock().await;
        if state.servers.contains_key(network) || self.read_auto(network).is_none() {
            return;
        }
        let bound = tokio::net::UdpSocket::bind((gateway, 53)).await;
        match bound.and_then(|socket| dns::serve(socket, self.names.resolver(network), self.upstreams.clone())) {
            Ok(server) => {
                state.servers.insert(network.to_owned(), server);
            }
            Err(e) => tracing::warn!(
                network,
                %gateway,
                error = %e,
                "no DNS server on the network's gateway: its containers use the host's resolvers and cannot resolve each other's names"
            ),
        }
    }

    /// Takes the container off its networks: CNI DEL, the namespace, its
    /// names and ports; a network m3s made goes with its last container.
    pub async fn detach(&self, container_id: &str) {
        if !self.state.lock().await.detaching.insert(container_id.to_owned()) {
            return;
        }
        self.detach_once(container_id).await;
        self.state.lock().await.detaching.remove(container_id);
    }

    async fn detach_once(&self, container_id: &str) {
        let path = self.attachment_path(container_id);
        let Some(attachment) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Attachment>(&b).ok())
        else {
            let netns = self.config.state_dir.join("netns").join(container_id);
            if netns.exists() {
                let _ = netns::remove(&netns);
            }
            return;
        };
        self.detach_attachment(&attachment).await;
        let _ = std::fs::remove_file(&path);
        let networks: Vec<String> = attachment.joined.iter().map(|j| j.network.clone()).collect();
        self.release(container_id, networks.iter().map(String::as_str)).await;
    }

    async fn detach_attachment(&self, attachment: &Attachment) {
        self.names.remove_container(&attachment.container_id);
        self.state.lock().await.reserved.remove(&attachment.container_id);
        for j in attachment.joined.iter().rev() {
            let Ok(conf) = NetConf::parse(&j.conf["conf"].to_string(), Path::new(&j.network)) else { continue };
            let maps: Vec<Value> = j.conf["port_mappings"].as_array().cloned().unwrap_or_default();
            let inv = cni::Invocation {
                plugins_dir: &self.config.cni_plugins_dir,
                container_id: &attachment.container_id,
                netns: &attachment.netns,
                ifname: &j.ifname,
                port_mappings: &maps,
            };
            // No result: m3s stopped during ADD. The plugins that need one to
            // undo their rules (firewall) get the addresses the interface has.
            let recovered;
            let result = if j.result.is_null() {
                let ips: Vec<Value> = netns::ipv4_addresses(&attachment.netns, &j.ifname)
                    .into_iter()
                    .map(|address| json!({"address": address, "interface": 0}))
                    .collect();
                recovered = json!({
                    "cniVersion": conf.cni_version,
                    "interfaces": [{"name": j.ifname, "sandbox": attachment.netns}],
                    "ips": ips,
                });
                (!ips.is_empty()).then_some(&recovered)
            } else {
                Some(&j.result)
            };
            for e in cni::del(&conf, &inv, result).await {
                tracing::warn!(container_id = %attachment.container_id, network = %j.network, error = %e, "CNI DEL");
            }
        }
        if let Err(e) = netns::remove(&attachment.netns) {
            tracing::warn!(path = %attachment.netns.display(), error = %e, "removing a network namespace");
        }
    }

    /// The container no longer uses these networks; networks m3s made that
    /// nobody uses are removed.
    async fn release<'a>(&self, container_id: &str, networks: impl Iterator<Item = &'a str>) {
        let mut state = self.state.lock().await;
        for network in networks {
            let Some(users) = state.users.get_mut(network) else { continue };
            users.remove(container_id);
            if users.is_empty() {
                state.users.remove(network);
                state.servers.remove(network);
                self.remove_auto(network);
            }
        }
    }

    fn remove_auto(&self, network: &str) {
        let Some(auto) = self.read_auto(network) else { return };
        let out = std::process::Command::new("ip").args(["link", "delete", &auto.bridge, "type", "bridge"]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Cannot find device") => {}
            Ok(o) => {
                tracing::warn!(bridge = %auto.bridge, stderr = %String::from_utf8_lossy(&o.stderr).trim(), "removing a bridge")
            }
            Err(e) => tracing::warn!(bridge = %auto.bridge, error = %e, "removing a bridge: cannot run ip"),
        }
        let _ = std::fs::remove_dir_all(self.config.state_dir.join("ipam").join(network));
        let _ = std::fs::remove_file(self.auto_path(network));
        tracing::info!(network, "removed a network: its last container left");
    }

    /// After a restart: containers in `live` keep their networks (names,
    /// ports and DNS servers come back); the rest are detached, and networks
    /// nobody uses removed.
    pub async fn recover(&self, live: &HashSet<String>) {
        let dir = self.config.state_dir.join("attachments");
        let mut kept: Vec<Attachment> = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Some(id) = entry.path().file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
            let attachment =
                std::fs::read(entry.path()).ok().and_then(|b| serde_json::from_slice::<Attachment>(&b).ok());
            match attachment {
                Some(a) if live.contains(&id) && netns::is_namespace(&a.netns) => kept.push(a),
                _ => self.detach(&id).await,
            }
        }
        for a in &kept {
            let maps: Vec<PortMap> = a.port_mappings.iter().filter_map(port_map_of_cni).collect();
            match ports::reserve(&maps) {
                Ok(held) => {
                    self.state.lock().await.reserved.insert(a.container_id.clone(), held);
                }
                Err(e) => {
                    tracing::warn!(container_id = %a.container_id, error = %e, "holding a re-adopted container's ports")
                }
            }
            for j in &a.joined {
                self.state.lock().await.users.entry(j.network.clone()).or_default().insert(a.container_id.clone());
                if let Some(ip) = j.ip {
                    self.names.add(&j.network, &a.container_id, ip, &j.names);
                }
                if let Some(gateway) = j.gateway {
                    self.start_dns(&j.network, gateway).await;
                }
            }
        }
        // Namespaces of containers without a record, and networks nobody uses.
        for entry in std::fs::read_dir(self.config.state_dir.join("netns")).into_iter().flatten().flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !kept.iter().any(|a| a.container_id == id) {
                let _ = netns::remove(&entry.path());
            }
        }
        let used: HashSet<String> = self.state.lock().await.users.keys().cloned().collect();
        for auto in self.autos() {
            if !used.contains(&auto.name) {
                self.remove_auto(&auto.name);
            }
        }
    }
}

/// Runs iproute2's `ip`; the error is its stderr.
fn ip(args: &[&str]) -> Result<(), IpError> {
    let out = std::process::Command::new("ip").args(args).output().map_err(IpError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(IpError::Failed(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// An exclusive lock held by every m3s agent on this machine while it picks
/// a subnet (`/run/m3s-networks.lock`, else in the state directory).
fn machine_lock(state_dir: &Path) -> Option<std::fs::File> {
    let open = |p: PathBuf| std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(p).ok();
    let file = open(PathBuf::from("/run/m3s-networks.lock")).or_else(|| open(state_dir.join("lock")))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).ok()?;
    Some(file)
}

/// A network m3s made, as `m3s networks ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    pub name: String,
    pub subnet: String,
    pub bridge: String,
    /// (container id, its address) of the containers on it.
    pub containers: Vec<(String, Option<Ipv4Addr>)>,
}

impl Networks {
    /// The networks m3s made and who is on them, from the files (m3s may be down).
    pub fn list(&self) -> Vec<NetworkSummary> {
        let attachments: Vec<Attachment> = std::fs::read_dir(self.config.state_dir.join("attachments"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        let mut out: Vec<NetworkSummary> = self
            .autos()
            .into_iter()
            .map(|a| NetworkSummary {
                containers: attachments
                    .iter()
                    .flat_map(|att| att.joined.iter().map(move |j| (att, j)))
                    .filter(|(_, j)| j.network == a.name)
                    .map(|(att, j)| (att.container_id.clone(), j.ip))
                    .collect(),
                name: a.name,
                subnet: a.subnet,
                bridge: a.bridge,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn port_map_of_cni(v: &Value) -> Option<PortMap> {
    Some(PortMap {
        host_port: u16::try_from(v["hostPort"].as_u64()?).ok()?,
        container_port: u16::try_from(v["containerPort"].as_u64()?).ok()?,
        protocol: v["protocol"].as_str()?.to_owned(),
        host_ip: v["hostIP"].as_str().and_then(|s| s.parse().ok()),
    })
}

/// A bridge's name: `m3s-` and a hash of the agent's state directory and the
/// network's name (interface names have 15 bytes; two m3s instances on one
/// machine may both run a project `demo`).
fn bridge_name(state_dir: &Path, network: &str) -> String {
    // FNV-1a: stable across releases, unlike std's hasher.
    let bytes = state_dir.as_os_str().as_encoded_bytes().iter().chain([0u8].iter()).chain(network.as_bytes());
    let hash = bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    format!("m3s-{:010x}", hash & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_an_interface_name_and_are_stable() {
        let dir = Path::new("/var/lib/m3s/mini/networks");
        let a = bridge_name(dir, "a_very_long_project_name_default");
        assert_eq!(a.len(), 14);
        assert_eq!(a, bridge_name(dir, "a_very_long_project_name_default"));
        assert_ne!(a, bridge_name(dir, "a_very_long_project_name_other"));
        assert_ne!(a, bridge_name(Path::new("/tmp/other"), "a_very_long_project_name_default"));
    }
}
