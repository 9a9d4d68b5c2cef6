//! Mesos-DNS's names, from a master's `/master/state`: what `m3s dns` serves
//! beside a Mesos cluster in place of Mesos-DNS. A pure function from the
//! state to a table; the table answers questions (it is a [`Resolve`]).
//!
//! As Mesos-DNS names them (its "Service Naming"), for every running task:
//! - `<task>.<framework>.<domain>` A: the task's address (its container's, from
//!   its status's NetworkInfo, else its agent's: Mesos-DNS's `netinfo, mesos,
//!   host` order);
//! - `_<task>._tcp.<framework>.<domain>` and `_udp` SRV: one per port of the
//!   task's `ports` resources, to the A name above;
//! - and `leader.<domain>`, `master.<domain>` (the leading master),
//!   `slave.<domain>` (every agent).
//!
//! Names are lowercased, other characters than letters, digits and `-` become
//! `-`, each label trimmed of `-` and cut to 63 bytes (RFC 1123 labels).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use mesos::legacy::MasterState;
use mesos::v1::TaskState;

use super::wire::{Record, TYPE_A, TYPE_ANY, TYPE_SRV};
use super::{Answer, Resolve};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MesosNames {
    pub domain: String,
    /// Name -> addresses.
    pub hosts: BTreeMap<String, Vec<Ipv4Addr>>,
    /// SRV name -> (port, target A name).
    pub services: BTreeMap<String, Vec<(u16, String)>>,
}

/// A label as Mesos-DNS writes it.
pub fn label(text: &str) -> String {
    let mapped: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_matches('-');
    trimmed[..trimmed.len().min(63)].trim_end_matches('-').to_owned()
}

/// The IPv4 address in a libprocess pid (`slave(1)@10.0.0.5:5051`).
fn pid_ip(pid: &str) -> Option<Ipv4Addr> {
    pid.split_once('@')?.1.rsplit_once(':')?.0.parse().ok()
}

impl MesosNames {
    pub fn from_state(state: &MasterState, domain: &str) -> MesosNames {
        let domain = domain.trim_matches('.').to_ascii_lowercase();
        let mut names = MesosNames { domain: domain.clone(), ..Default::default() };
        let mut add = |name: String, ip: Ipv4Addr| {
            let list = names.hosts.entry(name).or_default();
            if !list.contains(&ip) {
                list.push(ip);
            }
        };
        if let Some(leader) = state.leader.as_deref().and_then(pid_ip) {
            add(format!("leader.{domain}"), leader);
            add(format!("master.{domain}"), leader);
        }
        let agents: BTreeMap<&str, Ipv4Addr> =
            state.slaves.iter().filter_map(|a| Some((a.id.as_str(), pid_ip(&a.pid)?))).collect();
        for ip in agents.values() {
            add(format!("slave.{domain}"), *ip);
        }
        let mut services: Vec<(String, u16, String)> = Vec::new();
        for framework in &state.frameworks {
            let fw = label(&framework.name);
            for task in &framework.tasks {
                if task.state != TaskState::Running {
                    continue;
                }
                let container_ip = task.latest_status().and_then(|s| {
                    s.container_status
                        .as_ref()?
                        .network_infos
                        .iter()
                        .flat_map(|n| &n.ip_addresses)
                        .find_map(|a| a.ip_address.as_deref()?.parse::<Ipv4Addr>().ok())
                });
                let Some(ip) = container_ip.or_else(|| agents.get(task.slave_id.as_str()).copied()) else { continue };
                let name = label(&task.name);
                if name.is_empty() || fw.is_empty() {
                    continue;
                }
                let host = format!("{name}.{fw}.{domain}");
                add(host.clone(), ip);
                for (lo, hi) in task.resources.port_ranges().unwrap_or_default() {
                    for port in lo..=hi.min(lo + 1023) {
                        let Ok(port) = u16::try_from(port) else { continue };
                        for proto in ["tcp", "udp"] {
                            services.push((format!("_{name}._{proto}.{fw}.{domain}"), port, host.clone()));
                        }
                    }
                }
            }
        }
        for (service, port, target) in services {
            let list = names.services.entry(service).or_default();
            if !list.contains(&(port, target.clone())) {
                list.push((port, target));
            }
        }
        names
    }
}

impl Resolve for MesosNames {
    fn resolve(&self, name: &str, qtype: u16, _: std::net::IpAddr) -> Answer {
        let in_zone = name == self.domain || name.ends_with(&format!(".{}", self.domain));
        if !in_zone {
            return Answer::Forward;
        }
        let hosts = self.hosts.get(name);
        let services = self.services.get(name);
        if hosts.is_none() && services.is_none() {
            return Answer::NoSuchName;
        }
        let mut records = Vec::new();
        if qtype == TYPE_A || qtype == TYPE_ANY {
            records.extend(hosts.into_iter().flatten().map(|ip| Record::A(*ip)));
        }
        if qtype == TYPE_SRV || qtype == TYPE_ANY {
            records.extend(services.into_iter().flatten().map(|(port, target)| Record::Srv {
                priority: 0,
                weight: 0,
                port: *port,
                target: target.clone(),
            }));
        }
        Answer::Records(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_rfc_1123() {
        assert_eq!(label("demo_Web.1"), "demo-web-1");
        assert_eq!(label("--x--"), "x");
        assert_eq!(label(&"a".repeat(80)).len(), 63);
    }
}
