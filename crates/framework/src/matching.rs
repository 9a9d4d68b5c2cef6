//! Offer matching: what is left of one offer while tasks are packed into it.

use std::collections::BTreeMap;
use std::fmt;

use mesos::v1::{AllocationInfo, Offer, Resource, ValueType};

use crate::spec::{PlacementField, ServiceSpec};

/// The unused part of one offer during an offer round.
#[derive(Clone, Debug)]
pub struct OfferPool {
    pub hostname: String,
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: f64,
    /// Free port ranges, inclusive, sorted.
    ports: Vec<(u64, u64)>,
    attributes: BTreeMap<String, String>,
    allocation: Option<AllocationInfo>,
}

/// Resources taken from a pool for one task.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    pub resources: Vec<Resource>,
    /// Host ports, in the order of the service's ports.
    pub host_ports: Vec<u16>,
}

/// Why a task did not fit an offer (shown while it is pending).
#[derive(Clone, Debug, PartialEq)]
pub enum Misfit {
    Resource {
        name: &'static str,
        wanted: f64,
        left: f64,
    },
    PortTaken(u16),
    NoFreePort,
    Placement(String),
    /// `max_replicas_per_node` (1 for a `unique` constraint) is reached on the offer's agent.
    PerNode {
        max: u32,
    },
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::Resource { name, wanted, left } => write!(f, "needs {wanted} {name}, the offer has {left} left"),
            Misfit::PortTaken(p) => write!(f, "host port {p} is not in the offer (in use or not offered)"),
            Misfit::NoFreePort => f.write_str("no free port left in the offer"),
            Misfit::Placement(rule) => write!(f, "placement rule {rule} does not match the agent"),
            Misfit::PerNode { max: 1 } => f.write_str("at most one replica per node (unique), and this node has one"),
            Misfit::PerNode { max } => write!(f, "at most {max} replicas per node, and this node has {max}"),
        }
    }
}

// Floating-point resource sums drift; Mesos itself compares with a small tolerance.
const EPSILON: f64 = 1e-9;

impl OfferPool {
    pub fn new(offer: &Offer) -> OfferPool {
        let mut pool = OfferPool {
            hostname: offer.hostname.clone(),
            cpus: 0.0,
            mem: 0.0,
            disk: 0.0,
            gpus: 0.0,
            ports: Vec::new(),
            attributes: BTreeMap::new(),
            allocation: None,
        };
        for r in &offer.resources {
            if !r.reservations.is_empty() {
                continue; // reserved for a role other than the default: m3s does not use reservations
            }
            if pool.allocation.is_none() {
                pool.allocation = r.allocation_info.clone();
            }
            let scalar = r.scalar.as_ref().map_or(0.0, |s| s.value);
            match r.name.as_str() {
                "cpus" => pool.cpus += scalar,
                "mem" => pool.mem += scalar,
                "disk" => pool.disk += scalar,
                "gpus" => pool.gpus += scalar,
                "ports" => {
                    if let Some(ranges) = &r.ranges {
                        pool.ports.extend(ranges.range.iter().map(|x| (x.begin, x.end)));
                    }
                }
                _ => {}
            }
        }
        pool.ports.sort_unstable();
        for a in &offer.attributes {
            let value = match a.kind {
                ValueType::Text => a.text.as_ref().map(|t| t.value.clone()),
                ValueType::Scalar => a.scalar.as_ref().map(|s| s.value.to_string()),
                _ => None,
            };
            if let Some(v) = value {
                pool.attributes.insert(a.name.clone(), v);
            }
        }
        pool
    }

    /// Checks the service's placement rules against this agent.
    pub fn placement_fits(&self, spec: &ServiceSpec) -> Result<(), Misfit> {
        for rule in &spec.placement {
            let actual = match &rule.field {
                PlacementField::Hostname => Some(self.hostname.as_str()),
                // Agents rarely advertise these; without the attribute the rule holds
                // (Mesos agents are Linux machines), so common compose files still run.
                PlacementField::Os => self.attributes.get("os").map(String::as_str),
                PlacementField::Arch => self.attributes.get("arch").map(String::as_str),
                PlacementField::Attribute(name) => Some(self.attributes.get(name).map_or("", String::as_str)),
            };
            let Some(actual) = actual else { continue };
            if (actual == rule.value) != rule.equal {
                let field = match &rule.field {
                    PlacementField::Hostname => "node.hostname".to_owned(),
                    PlacementField::Os => "node.platform.os".to_owned(),
                    PlacementField::Arch => "node.platform.arch".to_owned(),
                    PlacementField::Attribute(n) => format!("node.labels.{n}"),
                };
                let op = if rule.equal { "==" } else { "!=" };
                return Err(Misfit::Placement(format!("{field}{op}{}", rule.value)));
            }
        }
        Ok(())
    }

    /// Takes the service's resources and ports, or says why they do not fit
    /// (the pool is then unchanged).
    pub fn take(&mut self, spec: &ServiceSpec) -> Result<Taken, Misfit> {
        self.placement_fits(spec)?;
        let r = &spec.resources;
        for (name, wanted, left) in [
            ("cpus", r.cpus, self.cpus),
            ("mem", r.mem_mb, self.mem),
            ("disk", r.disk_mb, self.disk),
            ("gpus", r.gpus, self.gpus),
        ] {
            if wanted > left + EPSILON {
                return Err(Misfit::Resource { name, wanted, left });
            }
        }
        let mut ports = self.ports.clone();
        let mut host_ports = Vec::with_capacity(spec.ports.len());
        // Fixed ports first, so a dynamic port cannot take a port another entry names.
        for p in spec.ports.iter().filter_map(|p| p.host_port) {
            if !remove_port(&mut ports, p as u64) {
                return Err(Misfit::PortTaken(p));
            }
        }
        for p in &spec.ports {
            match p.host_port {
                Some(fixed) => host_ports.push(fixed),
                None => {
                    let Some(&(begin, _)) = ports.first() else { return Err(Misfit::NoFreePort) };
                    remove_port(&mut ports, begin);
                    host_ports.push(begin as u16);
                }
            }
        }
        self.cpus -= r.cpus;
        self.mem -= r.mem_mb;
        self.disk -= r.disk_mb;
        self.gpus -= r.gpus;
        self.ports = ports;

        let mut resources = Vec::new();
        for (name, value) in [("cpus", r.cpus), ("mem", r.mem_mb), ("disk", r.disk_mb), ("gpus", r.gpus)] {
            if value > 0.0 {
                resources.push(Resource::scalar(name, value));
            }
        }
        if !host_ports.is_empty() {
            resources.push(Resource::ranges("ports", host_ports.iter().map(|&p| (p as u64, p as u64))));
        }
        for res in &mut resources {
            res.allocation_info = self.allocation.clone();
        }
        Ok(Taken { resources, host_ports })
    }
}

/// Removes one port from sorted inclusive ranges; false when it is not there.
fn remove_port(ranges: &mut Vec<(u64, u64)>, port: u64) -> bool {
    let Some(i) = ranges.iter().position(|&(b, e)| b <= port && port <= e) else { return false };
    let (b, e) = ranges[i];
    ranges.remove(i);
    if port < e {
        ranges.insert(i, (port + 1, e));
    }
    if b < port {
        ranges.insert(i, (b, port - 1));
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::*;
    use mesos::v1::{Attribute, Text};

    fn offer() -> Offer {
        Offer {
            hostname: "node1".into(),
            resources: vec![
                Resource::scalar("cpus", 1.0),
                Resource::scalar("mem", 1000.0),
                Resource::scalar("disk", 1000.0),
                Resource::ranges("ports", [(31000, 31002)]),
            ],
            attributes: vec![Attribute {
                name: "rack".into(),
                kind: ValueType::Text,
                text: Some(Text { value: "r1".into() }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    pub(crate) fn service(cpus: f64, ports: &[Option<u16>]) -> ServiceSpec {
        ServiceSpec {
            replicas: 1,
            task_name: "p_s".into(),
            run: RunSpec {
                command: Some(CommandSpec::Shell("true".into())),
                entrypoint: None,
                env: Default::default(),
                secret_env: Default::default(),
                user: None,
                working_dir: None,
                container: ContainerSpec::Host { volumes: vec![] },
                fetch: vec![],
                executor_command: None,
            },
            resources: ResourceSpec { cpus, mem_mb: 100.0, disk_mb: 0.0, ..Default::default() },
            ports: ports
                .iter()
                .map(|&host_port| PortSpec {
                    container_port: 80,
                    host_port,
                    protocol: "tcp".into(),
                    name: "p".into(),
                    host_ip: None,
                })
                .collect(),
            health: None,
            external_health: false,
            restart: RestartSpec { when: RestartWhen::Always, delay_ms: 1000, max_attempts: None, window_ms: None },
            depends_on: Default::default(),
            placement: vec![],
            max_per_node: None,
            labels: Default::default(),
            kill_grace_seconds: None,
        }
    }

    #[test]
    fn packs_until_a_resource_runs_out() {
        let mut pool = OfferPool::new(&offer());
        let s = service(0.4, &[]);
        assert!(pool.take(&s).is_ok());
        assert!(pool.take(&s).is_ok());
        match pool.take(&s) {
            Err(Misfit::Resource { name: "cpus", .. }) => {}
            other => panic!("expected a cpus misfit, got {other:?}"),
        }
    }

    #[test]
    fn fixed_ports_come_only_from_the_offer_and_dynamic_ones_avoid_them() {
        let mut pool = OfferPool::new(&offer());
        let t = pool.take(&service(0.1, &[None, Some(31000)])).unwrap();
        assert_eq!(t.host_ports, vec![31001, 31000]);
        assert_eq!(pool.take(&service(0.1, &[Some(31000)])), Err(Misfit::PortTaken(31000)));
        assert_eq!(pool.take(&service(0.1, &[Some(8080)])), Err(Misfit::PortTaken(8080)));
        assert_eq!(pool.take(&service(0.1, &[None])).unwrap().host_ports, vec![31002]);
        assert_eq!(pool.take(&service(0.1, &[None])), Err(Misfit::NoFreePort));
    }

    #[test]
    fn placement_rules_compare_hostname_and_attributes() {
        let pool = OfferPool::new(&offer());
        let mut s = service(0.1, &[]);
        s.placement =
            vec![PlacementRule { field: PlacementField::Attribute("rack".into()), equal: true, value: "r1".into() }];
        assert!(pool.placement_fits(&s).is_ok());
        s.placement = vec![PlacementRule { field: PlacementField::Hostname, equal: false, value: "node1".into() }];
        assert_eq!(pool.placement_fits(&s), Err(Misfit::Placement("node.hostname!=node1".into())));
        s.placement = vec![PlacementRule { field: PlacementField::Os, equal: true, value: "linux".into() }];
        assert!(pool.placement_fits(&s).is_ok(), "an agent without an os attribute counts as linux");
    }

    #[test]
    fn removing_a_port_splits_its_range() {
        let mut r = vec![(10, 20)];
        assert!(remove_port(&mut r, 15));
        assert_eq!(r, vec![(10, 14), (16, 20)]);
        assert!(remove_port(&mut r, 10));
        assert!(remove_port(&mut r, 20));
        assert_eq!(r, vec![(11, 14), (16, 19)]);
        assert!(!remove_port(&mut r, 15));
    }
}
