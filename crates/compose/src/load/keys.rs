//! The service keys that matter on Mesos beyond the common ones: containers,
//! capabilities, networks, limits, GPUs, mesos-compose's extensions, and the
//! restart and placement parts of `deploy`.

use std::collections::BTreeMap;

use super::{Cx, index, join};
use crate::model::*;
use crate::node::{Node, Value};

impl Cx<'_> {
    /// A string that must be one of `allowed`.
    fn one_of(&mut self, n: &Node, path: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(n, path)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            self.err(n, path, format!("{s:?} is not one of {}", allowed.join(", ")));
            None
        }
    }

    pub(super) fn container_type(&mut self, n: &Node, path: &str) -> Option<ContainerType> {
        match self.one_of(n, path, &["docker", "mesos"])?.as_str() {
            "docker" => Some(ContainerType::Docker),
            _ => Some(ContainerType::Mesos),
        }
    }

    pub(super) fn pull_policy(&mut self, n: &Node, path: &str) -> Option<String> {
        let s = self.string(n, path)?;
        let ok = matches!(s.as_str(), "always" | "never" | "missing" | "build" | "if_not_present" | "daily" | "weekly")
            || s.strip_prefix("every_").is_some_and(|d| super::parse_duration(d).is_ok());
        if ok {
            Some(s)
        } else {
            self.err(
                n,
                path,
                format!("{s:?} is not a pull policy (always, never, missing, build, daily, weekly, every_<duration>)"),
            );
            None
        }
    }

    /// `networks:` of a service: a list of names, or a mapping of names to options (or null).
    pub(super) fn service_networks(&mut self, n: &Node, path: &str) -> BTreeMap<String, ServiceNetwork> {
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Null => {}
            Value::Seq(_) => {
                for name in self.strings(n, path) {
                    out.insert(name, ServiceNetwork::default());
                }
            }
            Value::Map(_) => {
                for (name, _, v) in self.map(n, path) {
                    let p = join(path, &name);
                    let mut net = ServiceNetwork::default();
                    for (key, k, vv) in self.map_or_null(v, &p) {
                        let kp = join(&p, &key);
                        match key.as_str() {
                            "aliases" => net.aliases = self.strings(vv, &kp),
                            "ipv4_address" => net.ipv4_address = self.opt_string(vv, &kp),
                            "ipv6_address" | "link_local_ips" | "mac_address" | "driver_opts" | "priority"
                            | "gw_priority" | "interface_name" => {}
                            x if x.starts_with("x-") => {}
                            _ => self.unknown(k, &kp),
                        }
                    }
                    out.insert(name, net);
                }
            }
            _ => self.err(n, path, format!("must be a list or a mapping of networks, not {}", n.kind())),
        }
        out
    }

    /// `ulimits: {nofile: 1024, nproc: {soft: 10, hard: 20}}`.
    pub(super) fn ulimits(&mut self, n: &Node, path: &str) -> BTreeMap<String, Ulimit> {
        let mut out = BTreeMap::new();
        for (name, _, v) in self.map_or_null(n, path) {
            let p = join(path, &name);
            let limit = match &v.value {
                Value::Map(_) => {
                    let (mut soft, mut hard) = (None, None);
                    for (key, k, vv) in self.map(v, &p) {
                        let kp = join(&p, &key);
                        match key.as_str() {
                            "soft" => soft = self.int(vv, &kp),
                            "hard" => hard = self.int(vv, &kp),
                            _ => self.err(k, &kp, "unknown key (soft, hard)"),
                        }
                    }
                    match (soft, hard) {
                        (Some(soft), Some(hard)) if soft <= hard => Some(Ulimit { soft, hard }),
                        (Some(soft), Some(hard)) => {
                            self.err(v, &p, format!("soft limit {soft} is above the hard limit {hard}"));
                            None
                        }
                        _ => {
                            self.err(v, &p, "needs both soft and hard");
                            None
                        }
                    }
                }
                _ => self.int(v, &p).map(|l| Ulimit { soft: l, hard: l }),
            };
            if let Some(l) = limit {
                out.insert(name, l);
            }
        }
        out
    }

    /// `gpus: all`, or a list of device requests (`count`, `driver`, ...).
    pub(super) fn gpus(&mut self, n: &Node, path: &str) -> Option<Gpus> {
        match &n.value {
            Value::Str(s) if s == "all" => Some(Gpus { count: None, driver: None }),
            Value::Seq(items) => {
                let mut total: Option<u32> = Some(0);
                let mut driver = None;
                for (i, it) in items.iter().enumerate() {
                    let p = index(path, i);
                    let (count, d) = self.device_request(it, &p);
                    total = match (total, count) {
                        (Some(t), Some(c)) => Some(t + c),
                        _ => None,
                    };
                    driver = driver.or(d);
                }
                Some(Gpus { count: total, driver })
            }
            _ => {
                self.err(n, path, format!("must be \"all\" or a list of device requests, not {}", n.kind()));
                None
            }
        }
    }

    /// One device request: (count, `None` meaning all; driver).
    fn device_request(&mut self, n: &Node, path: &str) -> (Option<u32>, Option<String>) {
        let (mut count, mut driver, mut ids) = (Some(1), None, None);
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "count" => {
                    count = match &v.value {
                        Value::Str(s) if s == "all" => None,
                        _ => self.u32(v, &p).map(Some).unwrap_or(Some(1)),
                    }
                }
                "driver" => driver = self.opt_string(v, &p),
                "device_ids" => ids = Some(self.strings(v, &p).len() as u32),
                "capabilities" | "options" => {}
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        (ids.or(count), driver)
    }

    /// `deploy.resources.reservations.devices` entries with the `gpu` capability.
    pub(super) fn gpu_devices(&mut self, n: &Node, path: &str) -> Option<Gpus> {
        let Value::Seq(items) = &n.value else { return None };
        let mut found = None;
        for (i, it) in items.iter().enumerate() {
            let is_gpu = it.get("capabilities").is_some_and(|c| match &c.value {
                Value::Seq(caps) => caps.iter().any(|c| c.scalar_text().as_deref() == Some("gpu")),
                _ => false,
            });
            if is_gpu {
                let (count, driver) = self.device_request(it, &index(path, i));
                let prev: Option<Gpus> = found.take();
                found = Some(match prev {
                    None => Gpus { count, driver },
                    Some(g) => Gpus { count: g.count.zip(count).map(|(a, b)| a + b), driver: g.driver.or(driver) },
                });
            }
        }
        found
    }

    /// mesos-compose's `mesos:` block.
    pub(super) fn mesos_block(&mut self, n: &Node, path: &str) -> MesosExtension {
        let mut m = MesosExtension::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "task_name" => m.task_name = self.opt_string(v, &p),
                "executor" => {
                    for (ek, ekn, ev) in self.map_or_null(v, &p) {
                        let ep = join(&p, &ek);
                        match ek.as_str() {
                            "command" => m.executor_command = self.opt_string(ev, &ep),
                            _ => self.err(ekn, &ep, "unknown key in mesos.executor (command)"),
                        }
                    }
                }
                "fetch" => {
                    if let Value::Seq(items) = &v.value {
                        for (i, it) in items.iter().enumerate() {
                            let ip = index(&p, i);
                            if let Some(f) = self.fetch_uri(it, &ip) {
                                m.fetch.push(f);
                            }
                        }
                    } else if v.value != Value::Null {
                        self.err(v, &p, format!("must be a list of URIs, not {}", v.kind()));
                    }
                }
                _ => self.err(k, &p, "unknown key in mesos (task_name, executor, fetch)"),
            }
        }
        m
    }

    fn fetch_uri(&mut self, n: &Node, path: &str) -> Option<FetchUri> {
        if let Value::Str(s) = &n.value {
            return Some(FetchUri { value: s.clone(), ..Default::default() });
        }
        let mut f = FetchUri::default();
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "value" | "uri" => f.value = self.string(v, &p).unwrap_or_default(),
                "executable" => f.executable = self.boolean(v, &p),
                "extract" => f.extract = self.boolean(v, &p),
                "cache" => f.cache = self.boolean(v, &p),
                "output_file" => f.output_file = self.opt_string(v, &p),
                _ => self.err(k, &p, "unknown key (value, executable, extract, cache, output_file)"),
            }
        }
        if f.value.is_empty() {
            self.err(n, path, "needs a value (the URI)");
            return None;
        }
        Some(f)
    }

    pub(super) fn restart_policy(&mut self, n: &Node, path: &str) -> Option<RestartPolicy> {
        let mut r = RestartPolicy { condition: RestartCondition::Any, delay: None, max_attempts: None, window: None };
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "condition" => {
                    r.condition = match self.one_of(v, &p, &["none", "on-failure", "any"]).as_deref() {
                        Some("none") => RestartCondition::None,
                        Some("on-failure") => RestartCondition::OnFailure,
                        _ => RestartCondition::Any,
                    }
                }
                "delay" => r.delay = self.duration(v, &p),
                "max_attempts" => r.max_attempts = self.u32(v, &p),
                "window" => r.window = self.duration(v, &p),
                x if x.starts_with("x-") => {}
                _ => self.err(k, &p, "unknown key (condition, delay, max_attempts, window)"),
            }
        }
        Some(r)
    }

    pub(super) fn placement(&mut self, n: &Node, path: &str) -> Placement {
        let mut pl = Placement::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "constraints" => {
                    if let Value::Seq(items) = &v.value {
                        for (i, it) in items.iter().enumerate() {
                            let ip = index(&p, i);
                            if let Some(text) = self.string(it, &ip) {
                                match parse_constraint(&text) {
                                    Ok(c) => pl.constraints.push(c),
                                    Err(e) => self.err(it, &ip, e.to_string()),
                                }
                            }
                        }
                    } else if v.value != Value::Null {
                        self.err(v, &p, format!("must be a list, not {}", v.kind()));
                    }
                }
                "attributes" => {
                    let list = self.strings(v, &p);
                    for (i, text) in list.into_iter().enumerate() {
                        match text.split_once(':') {
                            Some((a, b)) if !a.trim().is_empty() => {
                                pl.attributes.push((a.trim().to_owned(), b.trim().to_owned()))
                            }
                            _ => {
                                let at = match &v.value {
                                    Value::Seq(items) => items.get(i).unwrap_or(v),
                                    _ => v,
                                };
                                self.err(at, &index(&p, i), format!("{text:?} is not \"key: value\""));
                            }
                        }
                    }
                }
                "max_replicas_per_node" => pl.max_replicas_per_node = self.u32(v, &p),
                "preferences" => self.warn(k, &p, "placement preferences have no Mesos meaning, ignored"),
                x if x.starts_with("x-") => {}
                _ => self.err(k, &p, "unknown key (constraints, attributes, max_replicas_per_node, preferences)"),
            }
        }
        pl
    }
}

/// `node.hostname==a`, `node.labels.rack != r2`, `node.platform.os==linux`, `unique`.
/// A placement constraint that does not parse, with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {problem}")]
pub struct ConstraintError {
    pub text: String,
    pub problem: ConstraintProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintProblem {
    #[error("expected FIELD==VALUE, FIELD!=VALUE or unique")]
    Form,
    #[error("unknown field {0:?} (node.hostname, node.platform.os, node.platform.arch, node.labels.<name>)")]
    UnknownField(String),
    #[error("the value is empty")]
    EmptyValue,
}

pub fn parse_constraint(text: &str) -> Result<Constraint, ConstraintError> {
    let bad = |problem| ConstraintError { text: text.to_owned(), problem };
    let t = text.trim();
    if t == "unique" {
        return Ok(Constraint::Unique);
    }
    let (field, equal, value) = if let Some((f, v)) = t.split_once("==") {
        (f, true, v)
    } else if let Some((f, v)) = t.split_once("!=") {
        (f, false, v)
    } else {
        return Err(bad(ConstraintProblem::Form));
    };
    let (field, value) = (field.trim(), value.trim());
    let field = match field {
        "node.hostname" => ConstraintField::Hostname,
        "node.platform.os" => ConstraintField::Os,
        "node.platform.arch" => ConstraintField::Arch,
        f => match f.strip_prefix("node.labels.").or_else(|| f.strip_prefix("engine.labels.")) {
            Some(label) if !label.is_empty() => ConstraintField::Attribute(label.to_owned()),
            _ => return Err(bad(ConstraintProblem::UnknownField(f.to_owned()))),
        },
    };
    if value.is_empty() {
        return Err(bad(ConstraintProblem::EmptyValue));
    }
    Ok(Constraint::Compare { field, equal, value: value.to_owned() })
}
