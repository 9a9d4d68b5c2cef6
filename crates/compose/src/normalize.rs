//! A loaded [`Project`] as one self-contained compose document (JSON, which is
//! also YAML): long syntax everywhere, interpolation done (a literal `$` is
//! written `$$`), `env_file`, `extends`, `include` and profiles already applied.
//! Loading the document again gives an equal project; `m3s compose config`
//! prints it and `m3s compose up` sends it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::model::*;
use crate::node::{self, Node};

pub fn normalize(p: &Project) -> Value {
    let mut root = Map::new();
    if let Some(n) = &p.name {
        root.insert("name".into(), s(n));
    }
    root.insert("services".into(), Value::Object(p.services.iter().map(|(k, v)| (k.clone(), service(v))).collect()));
    if !p.networks.is_empty() {
        root.insert(
            "networks".into(),
            Value::Object(p.networks.iter().map(|(k, v)| (k.clone(), network(v))).collect()),
        );
    }
    if !p.volumes.is_empty() {
        root.insert("volumes".into(), Value::Object(p.volumes.iter().map(|(k, v)| (k.clone(), volume(v))).collect()));
    }
    for (key, map) in [("configs", &p.configs), ("secrets", &p.secrets)] {
        if !map.is_empty() {
            root.insert(key.into(), Value::Object(map.iter().map(|(k, v)| (k.clone(), file_object(v))).collect()));
        }
    }
    Value::Object(root)
}

/// A string as compose text: `$` escaped, so that loading it again does not interpolate.
fn s(text: &str) -> Value {
    Value::String(text.replace('$', "$$"))
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|x| s(x)).collect())
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn duration(d: Duration) -> Value {
    let ns = d.as_nanos();
    if ns.is_multiple_of(1_000_000) {
        Value::String(format!("{}ms", ns / 1_000_000))
    } else {
        Value::String(format!("{ns}ns"))
    }
}

/// Kept-as-parsed YAML, as JSON (strings escaped like the rest).
fn yaml(n: &Node) -> Value {
    match &n.value {
        node::Value::Null => Value::Null,
        node::Value::Bool(b) => Value::Bool(*b),
        node::Value::Int(i) => json!(i),
        node::Value::Float(f) => json!(f),
        node::Value::Str(t) => s(t),
        node::Value::Seq(items) => Value::Array(items.iter().map(yaml).collect()),
        // Keys are never interpolated, so they are written as they are.
        node::Value::Map(entries) => {
            Value::Object(entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default(), yaml(v))).collect())
        }
    }
}

fn others(target: &mut Map<String, Value>, other: &BTreeMap<String, Node>) {
    for (k, v) in other {
        target.insert(k.clone(), yaml(v));
    }
}

fn command(c: &Command) -> Value {
    match c {
        Command::Shell(t) => s(t),
        Command::Exec(v) => strings(v),
    }
}

fn build(b: &Build) -> Value {
    let mut m = Map::new();
    m.insert("context".into(), s(&b.context));
    for (key, value) in [
        ("dockerfile", &b.dockerfile),
        ("dockerfile_inline", &b.dockerfile_inline),
        ("target", &b.target),
        ("network", &b.network),
    ] {
        if let Some(x) = value {
            m.insert(key.into(), s(x));
        }
    }
    if !b.args.is_empty() {
        let args = b.args.iter().map(|(k, v)| (k.clone(), v.as_deref().map_or(Value::Null, s))).collect();
        m.insert("args".into(), Value::Object(args));
    }
    if !b.labels.is_empty() {
        m.insert("labels".into(), string_map(&b.labels));
    }
    if !b.additional_contexts.is_empty() {
        m.insert("additional_contexts".into(), string_map(&b.additional_contexts));
    }
    if !b.secrets.is_empty() {
        m.insert("secrets".into(), strings(&b.secrets));
    }
    if !b.tags.is_empty() {
        m.insert("tags".into(), strings(&b.tags));
    }
    if b.no_cache {
        m.insert("no_cache".into(), Value::Bool(true));
    }
    if b.pull {
        m.insert("pull".into(), Value::Bool(true));
    }
    others(&mut m, &b.other);
    Value::Object(m)
}

fn service(v: &Service) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, val: Value| {
        m.insert(k.to_owned(), val);
    };
    if let Some(i) = &v.image {
        put("image", s(i));
    }
    if let Some(b) = &v.build {
        put("build", build(b));
    }
    if let Some(c) = &v.command {
        put("command", command(c));
    }
    if let Some(c) = &v.entrypoint {
        put("entrypoint", command(c));
    }
    if !v.environment.is_empty() {
        put(
            "environment",
            Value::Object(
                v.environment.iter().map(|(k, val)| (k.clone(), val.as_deref().map_or(Value::Null, s))).collect(),
            ),
        );
    }
    if !v.ports.is_empty() {
        put("ports", Value::Array(v.ports.iter().map(port).collect()));
    }
    if !v.volumes.is_empty() {
        put("volumes", Value::Array(v.volumes.iter().map(mount).collect()));
    }
    if !v.depends_on.is_empty() {
        put(
            "depends_on",
            Value::Object(
                v.depends_on
                    .iter()
                    .map(|(k, d)| {
                        let condition = match d.condition {
                            Condition::ServiceStarted => "service_started",
                            Condition::ServiceHealthy => "service_healthy",
                            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
                        };
                        (k.clone(), json!({ "condition": condition, "restart": d.restart, "required": d.required }))
                    })
                    .collect(),
            ),
        );
    }
    let d = deploy(&v.deploy);
    if d.as_object().is_some_and(|o| !o.is_empty()) {
        put("deploy", d);
    }
    if let Some(c) = v.cpus {
        put("cpus", json!(c));
    }
    if let Some(b) = v.mem_limit {
        put("mem_limit", json!(b));
    }
    if let Some(b) = v.mem_reservation {
        put("mem_reservation", json!(b));
    }
    if let Some(r) = v.restart {
        put(
            "restart",
            Value::String(match r {
                Restart::No => "no".into(),
                Restart::Always => "always".into(),
                Restart::UnlessStopped => "unless-stopped".into(),
                Restart::OnFailure { max_retries: None } => "on-failure".into(),
                Restart::OnFailure { max_retries: Some(n) } => format!("on-failure:{n}"),
            }),
        );
    }
    if let Some(h) = &v.healthcheck {
        put("healthcheck", healthcheck(h));
    }
    for (key, value) in [
        ("working_dir", &v.working_dir),
        ("user", &v.user),
        ("hostname", &v.hostname),
        ("stop_signal", &v.stop_signal),
        ("container_name", &v.container_name),
        ("network_mode", &v.network_mode),
        ("pull_policy", &v.pull_policy),
    ] {
        if let Some(x) = value {
            put(key, s(x));
        }
    }
    if !v.labels.is_empty() {
        put("labels", string_map(&v.labels));
    }
    if let Some(d) = v.stop_grace_period {
        put("stop_grace_period", duration(d));
    }
    // `profiles` are left out: the project holds the enabled services only.
    if let Some(t) = v.container_type {
        put(
            "container_type",
            json!(match t {
                ContainerType::Docker => "docker",
                ContainerType::Mesos => "mesos",
            }),
        );
    }
    if v.privileged {
        put("privileged", json!(true));
    }
    if !v.cap_add.is_empty() {
        put("cap_add", strings(&v.cap_add));
    }
    if !v.cap_drop.is_empty() {
        put("cap_drop", strings(&v.cap_drop));
    }
    if !v.networks.is_empty() {
        put(
            "networks",
            Value::Object(
                v.networks
                    .iter()
                    .map(|(k, n)| {
                        let mut o = Map::new();
                        if !n.aliases.is_empty() {
                            o.insert("aliases".into(), strings(&n.aliases));
                        }
                        if let Some(ip) = &n.ipv4_address {
                            o.insert("ipv4_address".into(), s(ip));
                        }
                        (k.clone(), if o.is_empty() { Value::Null } else { Value::Object(o) })
                    })
                    .collect(),
            ),
        );
    }
    if !v.ulimits.is_empty() {
        put(
            "ulimits",
            Value::Object(
                v.ulimits.iter().map(|(k, u)| (k.clone(), json!({ "soft": u.soft, "hard": u.hard }))).collect(),
            ),
        );
    }
    if let Some(g) = &v.gpus {
        let mut o = Map::new();
        match g.count {
            Some(c) => o.insert("count".into(), json!(c)),
            None => o.insert("count".into(), json!("all")),
        };
        if let Some(d) = &g.driver {
            o.insert("driver".into(), s(d));
        }
        put("gpus", Value::Array(vec![Value::Object(o)]));
    }
    if !v.arguments.is_empty() {
        put("arguments", strings(&v.arguments));
    }
    if let Some(sh) = v.shell {
        put("shell", json!(sh));
    }
    let mesos = mesos(&v.mesos);
    if mesos.as_object().is_some_and(|o| !o.is_empty()) {
        put("mesos", mesos);
    }
    others(&mut m, &v.other);
    Value::Object(m)
}

fn port(p: &Port) -> Value {
    let mut o = Map::new();
    o.insert("target".into(), json!(p.target));
    if let Some(r) = p.published {
        let text = if r.start == r.end { r.start.to_string() } else { format!("{}-{}", r.start, r.end) };
        o.insert("published".into(), Value::String(text));
    }
    if let Some(ip) = &p.host_ip {
        o.insert("host_ip".into(), s(ip));
    }
    o.insert("protocol".into(), s(&p.protocol));
    for (k, val) in [("mode", &p.mode), ("name", &p.name), ("app_protocol", &p.app_protocol)] {
        if let Some(x) = val {
            o.insert(k.into(), s(x));
        }
    }
    Value::Object(o)
}

fn mount(m: &Mount) -> Value {
    let kind = match m.kind {
        MountType::Volume => "volume",
        MountType::Bind => "bind",
        MountType::Tmpfs => "tmpfs",
        MountType::Npipe => "npipe",
        MountType::Cluster => "cluster",
        MountType::Image => "image",
    };
    let mut o = Map::new();
    o.insert("type".into(), json!(kind));
    if let Some(src) = &m.source {
        o.insert("source".into(), s(src));
    }
    o.insert("target".into(), s(&m.target));
    if m.read_only {
        o.insert("read_only".into(), json!(true));
    }
    if let Some(size) = m.tmpfs_size {
        o.insert("tmpfs".into(), json!({ "size": size }));
    }
    if let Some(c) = m.create_host_path {
        o.insert("bind".into(), json!({ "create_host_path": c }));
    }
    Value::Object(o)
}

fn resources(r: &Resources) -> Value {
    let mut o = Map::new();
    if let Some(c) = r.cpus {
        o.insert("cpus".into(), json!(c));
    }
    if let Some(m) = r.memory {
        o.insert("memory".into(), json!(m));
    }
    if let Some(p) = r.pids {
        o.insert("pids".into(), json!(p));
    }
    others(&mut o, &r.other);
    Value::Object(o)
}

fn deploy(d: &Deploy) -> Value {
    let mut o = Map::new();
    if let Some(r) = d.replicas {
        o.insert("replicas".into(), json!(r));
    }
    let limits = resources(&d.resources.limits);
    let reservations = resources(&d.resources.reservations);
    let mut res = Map::new();
    if limits.as_object().is_some_and(|m| !m.is_empty()) {
        res.insert("limits".into(), limits);
    }
    if reservations.as_object().is_some_and(|m| !m.is_empty()) {
        res.insert("reservations".into(), reservations);
    }
    if !res.is_empty() {
        o.insert("resources".into(), Value::Object(res));
    }
    if let Some(p) = &d.restart_policy {
        let mut rp = Map::new();
        rp.insert(
            "condition".into(),
            json!(match p.condition {
                RestartCondition::None => "none",
                RestartCondition::OnFailure => "on-failure",
                RestartCondition::Any => "any",
            }),
        );
        if let Some(x) = p.delay {
            rp.insert("delay".into(), duration(x));
        }
        if let Some(x) = p.max_attempts {
            rp.insert("max_attempts".into(), json!(x));
        }
        if let Some(x) = p.window {
            rp.insert("window".into(), duration(x));
        }
        o.insert("restart_policy".into(), Value::Object(rp));
    }
    let pl = &d.placement;
    if !pl.constraints.is_empty() || !pl.attributes.is_empty() || pl.max_replicas_per_node.is_some() {
        let mut p = Map::new();
        if !pl.constraints.is_empty() {
            p.insert(
                "constraints".into(),
                Value::Array(
                    pl.constraints
                        .iter()
                        .map(|c| match c {
                            Constraint::Unique => json!("unique"),
                            Constraint::Compare { field, equal, value } => {
                                let f = match field {
                                    ConstraintField::Hostname => "node.hostname".to_owned(),
                                    ConstraintField::Os => "node.platform.os".to_owned(),
                                    ConstraintField::Arch => "node.platform.arch".to_owned(),
                                    ConstraintField::Attribute(a) => format!("node.labels.{a}"),
                                };
                                s(&format!("{f}{}{value}", if *equal { "==" } else { "!=" }))
                            }
                        })
                        .collect(),
                ),
            );
        }
        if !pl.attributes.is_empty() {
            p.insert(
                "attributes".into(),
                Value::Array(pl.attributes.iter().map(|(k, v)| s(&format!("{k}: {v}"))).collect()),
            );
        }
        if let Some(m) = pl.max_replicas_per_node {
            p.insert("max_replicas_per_node".into(), json!(m));
        }
        o.insert("placement".into(), Value::Object(p));
    }
    others(&mut o, &d.other);
    Value::Object(o)
}

fn healthcheck(h: &Healthcheck) -> Value {
    let mut o = Map::new();
    match &h.test {
        None => {}
        Some(HealthTest::None) => {
            o.insert("test".into(), json!(["NONE"]));
        }
        Some(HealthTest::Exec(argv)) => {
            let mut v = vec![json!("CMD")];
            v.extend(argv.iter().map(|a| s(a)));
            o.insert("test".into(), Value::Array(v));
        }
        Some(HealthTest::Shell(cmd)) => {
            o.insert("test".into(), Value::Array(vec![json!("CMD-SHELL"), s(cmd)]));
        }
    }
    for (k, d) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start_period", h.start_period),
        ("start_interval", h.start_interval),
    ] {
        if let Some(d) = d {
            o.insert(k.into(), duration(d));
        }
    }
    if let Some(r) = h.retries {
        o.insert("retries".into(), json!(r));
    }
    Value::Object(o)
}

fn mesos(m: &MesosExtension) -> Value {
    let mut o = Map::new();
    if let Some(t) = &m.task_name {
        o.insert("task_name".into(), s(t));
    }
    if let Some(c) = &m.executor_command {
        o.insert("executor".into(), json!({ "command": s(c) }));
    }
    if !m.fetch.is_empty() {
        o.insert(
            "fetch".into(),
            Value::Array(
                m.fetch
                    .iter()
                    .map(|f| {
                        let mut e = Map::new();
                        e.insert("value".into(), s(&f.value));
                        for (k, b) in [("executable", f.executable), ("extract", f.extract), ("cache", f.cache)] {
                            if let Some(b) = b {
                                e.insert(k.into(), json!(b));
                            }
                        }
                        if let Some(out) = &f.output_file {
                            e.insert("output_file".into(), s(out));
                        }
                        Value::Object(e)
                    })
                    .collect(),
            ),
        );
    }
    Value::Object(o)
}

fn network(n: &Network) -> Value {
    let mut o = Map::new();
    if let Some(x) = &n.name {
        o.insert("name".into(), s(x));
    }
    if let Some(x) = &n.driver {
        o.insert("driver".into(), s(x));
    }
    if n.external {
        o.insert("external".into(), json!(true));
    }
    if n.internal {
        o.insert("internal".into(), json!(true));
    }
    if !n.labels.is_empty() {
        o.insert("labels".into(), string_map(&n.labels));
    }
    others(&mut o, &n.other);
    Value::Object(o)
}

fn volume(v: &Volume) -> Value {
    let mut o = Map::new();
    if let Some(x) = &v.name {
        o.insert("name".into(), s(x));
    }
    if let Some(x) = &v.driver {
        o.insert("driver".into(), s(x));
    }
    if !v.driver_opts.is_empty() {
        o.insert("driver_opts".into(), string_map(&v.driver_opts));
    }
    if v.external {
        o.insert("external".into(), json!(true));
    }
    if !v.labels.is_empty() {
        o.insert("labels".into(), string_map(&v.labels));
    }
    others(&mut o, &v.other);
    Value::Object(o)
}

fn file_object(f: &FileObject) -> Value {
    let mut o = Map::new();
    for (k, v) in [("name", &f.name), ("file", &f.file), ("environment", &f.environment), ("content", &f.content)] {
        if let Some(x) = v {
            o.insert(k.into(), s(x));
        }
    }
    if f.external {
        o.insert("external".into(), json!(true));
    }
    if !f.labels.is_empty() {
        o.insert("labels".into(), string_map(&f.labels));
    }
    others(&mut o, &f.other);
    Value::Object(o)
}
