//! A service's keys, typed: command, environment, ports, volumes,
//! dependencies, deploy, restart and health check.

use super::*;

impl Cx<'_> {
    pub(super) fn service(&mut self, n: &Node, path: &str, name_node: &Node) -> Option<Service> {
        if !matches!(n.value, Value::Map(_)) {
            self.err(n, path, format!("a service must be a mapping, not {}", n.kind()));
            return None;
        }
        let mut s = Service::default();
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "image" => s.image = self.opt_string(v, &p),
                "build" => s.build = self.build(v, &p),
                "command" => s.command = self.command(v, &p),
                "entrypoint" => s.entrypoint = self.command(v, &p),
                "environment" => s.environment = self.key_values_or_env(v, &p),
                "env_file" => s.env_file = self.env_file(v, &p),
                "ports" => s.ports = self.ports(v, &p),
                "volumes" => s.volumes = self.mounts(v, &p),
                "depends_on" => s.depends_on = self.depends_on(v, &p),
                "deploy" => s.deploy = self.deploy(v, &p),
                "cpus" => s.cpus = self.float(v, &p),
                "mem_limit" => s.mem_limit = self.bytes(v, &p),
                "mem_reservation" => s.mem_reservation = self.bytes(v, &p),
                "restart" => s.restart = self.restart(v, &p),
                "healthcheck" => s.healthcheck = self.healthcheck(v, &p),
                "working_dir" => s.working_dir = self.opt_string(v, &p),
                "user" => s.user = self.opt_string(v, &p),
                "hostname" => s.hostname = self.opt_string(v, &p),
                "labels" => s.labels = self.labels(v, &p),
                "stop_signal" => s.stop_signal = self.opt_string(v, &p),
                "stop_grace_period" => s.stop_grace_period = self.duration(v, &p),
                "profiles" => s.profiles = self.strings(v, &p),
                "container_type" => s.container_type = self.container_type(v, &p),
                "container_name" => s.container_name = self.opt_string(v, &p),
                "privileged" => s.privileged = self.boolean(v, &p).unwrap_or(false),
                "cap_add" => s.cap_add = self.strings(v, &p),
                "cap_drop" => s.cap_drop = self.strings(v, &p),
                "network_mode" | "network" => {
                    let mode = self.opt_string(v, &p);
                    if s.network_mode.is_some() && mode.is_some() && s.network_mode != mode {
                        self.err(k, &p, "network_mode and network disagree; give one");
                    }
                    s.network_mode = mode.or(s.network_mode.take());
                }
                "networks" => s.networks = self.service_networks(v, &p),
                "ulimits" => s.ulimits = self.ulimits(v, &p),
                "gpus" => s.gpus = self.gpus(v, &p),
                "pull_policy" => s.pull_policy = self.pull_policy(v, &p),
                "arguments" => s.arguments = self.strings(v, &p),
                "shell" => s.shell = self.boolean(v, &p),
                "mesos" => s.mesos = self.mesos_block(v, &p),
                // Applied before typing (extends.rs).
                "extends" => {}
                x if MEANINGLESS_ON_MESOS.contains(&x) => {
                    self.warn(k, &p, "has no meaning on Mesos, ignored");
                }
                x if KEPT_SERVICE_KEYS.contains(&x) => {
                    s.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    s.other.insert(key, v.clone());
                }
            }
        }
        if let Some(files) = n.get("env_file") {
            self.apply_env_files(files, &join(path, "env_file"), &mut s);
        }
        if s.gpus.is_none()
            && let Some(devices) = n
                .get("deploy")
                .and_then(|d| d.get("resources"))
                .and_then(|r| r.get("reservations"))
                .and_then(|r| r.get("devices"))
        {
            s.gpus = self.gpu_devices(devices, &join(path, "deploy.resources.reservations.devices"));
        }
        if s.container_name.is_some() && s.deploy.replicas.is_some_and(|r| r > 1) {
            self.err(
                name_node,
                &join(path, "container_name"),
                "a container_name needs a single replica (deploy.replicas > 1)",
            );
        }
        if s.image.is_none()
            && s.build.is_none()
            && s.command.is_none()
            && s.entrypoint.is_none()
            && s.mesos.executor_command.is_none()
        {
            let why = if n.get("extends").is_some() { " (extends is not supported yet)" } else { "" };
            self.err(name_node, path, format!("no image, command or entrypoint: nothing to run{why}"));
        }
        Some(s)
    }

    /// Reads each `env_file` (relative to the project directory) into `environment`,
    /// below the service's own `environment`.
    pub(super) fn apply_env_files(&mut self, n: &Node, path: &str, s: &mut Service) {
        let Some(reader) = self.reader else {
            if !s.env_file.is_empty() {
                self.warn(n, path, "env_file is read where the files are (m3s compose -f ...); ignored here");
            }
            return;
        };
        for (i, f) in s.env_file.clone().iter().enumerate() {
            let at = match &n.value {
                Value::Seq(items) => items.get(i).unwrap_or(n),
                _ => n,
            };
            let p = if matches!(n.value, Value::Seq(_)) { index(path, i) } else { path.to_owned() };
            let text = match reader(&f.path) {
                Ok(t) => t,
                Err(_) if !f.required => continue,
                Err(e) => {
                    self.err(at, &p, e.to_string());
                    continue;
                }
            };
            match parse_dotenv(&text) {
                Ok(vars) => {
                    for (k, v) in vars {
                        s.environment.entry(k).or_insert(Some(v));
                    }
                }
                Err(e) => self.err(at, &p, format!("{}:{}: {e}", f.path, e.line)),
            }
        }
    }

    pub(super) fn command(&mut self, n: &Node, path: &str) -> Option<Command> {
        match &n.value {
            Value::Null => None,
            Value::Seq(_) => Some(Command::Exec(self.strings(n, path))),
            _ => self.string(n, path).map(Command::Shell),
        }
    }

    pub(super) fn env_file(&mut self, n: &Node, path: &str) -> Vec<EnvFile> {
        let one = |path: String| EnvFile { path, required: true };
        match &n.value {
            Value::Null => Vec::new(),
            Value::Str(s) => vec![one(s.clone())],
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = index(path, i);
                    if let Value::Map(_) = it.value {
                        let mut f = EnvFile { path: String::new(), required: true };
                        for (key, k, v) in self.map(it, &p) {
                            match key.as_str() {
                                "path" => f.path = self.string(v, &join(&p, "path")).unwrap_or_default(),
                                "required" => f.required = self.boolean(v, &join(&p, "required")).unwrap_or(true),
                                "format" => {}
                                _ => self.unknown(k, &join(&p, &key)),
                            }
                        }
                        if f.path.is_empty() {
                            self.err(it, &p, "env_file entry needs a path");
                        } else {
                            out.push(f);
                        }
                    } else if let Some(s) = self.string(it, &p) {
                        out.push(one(s));
                    }
                }
                out
            }
            _ => {
                self.err(n, path, format!("must be a path or a list, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    /// The entries of a list with their key paths (`ports[0]`); null is an empty list.
    pub(super) fn items<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node)> {
        match &n.value {
            Value::Seq(items) => items.iter().enumerate().map(|(i, it)| (index(path, i), it)).collect(),
            Value::Null => Vec::new(),
            _ => {
                self.err(n, path, format!("must be a list, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    pub(super) fn ports(&mut self, n: &Node, path: &str) -> Vec<Port> {
        let mut out = Vec::new();
        for (p, it) in self.items(n, path) {
            match &it.value {
                Value::Map(_) => {
                    if let Some(port) = self.long_port(it, &p) {
                        out.push(port);
                    }
                }
                Value::Str(_) | Value::Int(_) => {
                    let text = it.scalar_text().unwrap_or_default();
                    match parse_short_port(&text) {
                        Ok(ports) => out.extend(ports),
                        Err(e) => self.err(it, &p, format!("invalid port {text:?}: {e}")),
                    }
                }
                _ => self.err(it, &p, format!("a port must be a string, a number or a mapping, not {}", it.kind())),
            }
        }
        out
    }

    pub(super) fn long_port(&mut self, n: &Node, path: &str) -> Option<Port> {
        let mut port = Port {
            target: 0,
            published: None,
            host_ip: None,
            protocol: "tcp".into(),
            mode: None,
            name: None,
            app_protocol: None,
        };
        let mut target = None;
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "target" => {
                    let t = v.scalar_text().unwrap_or_default();
                    match parse_port_number(&t) {
                        Ok(t) => target = Some(t),
                        Err(e) => self.err(v, &p, format!("invalid port {t:?}: {e}")),
                    }
                }
                "published" => {
                    let t = v.scalar_text().unwrap_or_default();
                    if !t.is_empty() {
                        match parse_range(&t) {
                            Ok(r) => port.published = Some(r),
                            Err(e) => self.err(v, &p, format!("invalid port {t:?}: {e}")),
                        }
                    }
                }
                "host_ip" => port.host_ip = self.opt_string(v, &p),
                "protocol" => {
                    if let Some(proto) = self.opt_string(v, &p) {
                        if check_protocol(&proto).is_err() {
                            self.err(v, &p, format!("unknown protocol {proto:?}"));
                        }
                        port.protocol = proto;
                    }
                }
                "mode" => {
                    port.mode = self.opt_string(v, &p);
                    if let Some(m) = &port.mode
                        && m != "host"
                        && m != "ingress"
                    {
                        self.err(v, &p, format!("mode must be host or ingress, not {m:?}"));
                    }
                }
                "name" => port.name = self.opt_string(v, &p),
                "app_protocol" => port.app_protocol = self.opt_string(v, &p),
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        match target {
            Some(t) => {
                port.target = t;
                Some(port)
            }
            None => {
                self.err(n, path, "a port mapping needs a target");
                None
            }
        }
    }

    pub(super) fn mounts(&mut self, n: &Node, path: &str) -> Vec<Mount> {
        let mut out = Vec::new();
        for (p, it) in self.items(n, path) {
            match &it.value {
                Value::Str(s) => match parse_short_volume(s) {
                    Ok(m) => out.push(m),
                    Err(e) => self.err(it, &p, format!("invalid volume {s:?}: {e}")),
                },
                Value::Map(_) => {
                    if let Some(m) = self.long_mount(it, &p) {
                        out.push(m);
                    }
                }
                _ => self.err(it, &p, format!("a volume must be a string or a mapping, not {}", it.kind())),
            }
        }
        out
    }

    pub(super) fn long_mount(&mut self, n: &Node, path: &str) -> Option<Mount> {
        let mut kind = None;
        let mut m = Mount {
            kind: MountType::Volume,
            source: None,
            target: String::new(),
            read_only: false,
            options: Vec::new(),
            tmpfs_size: None,
            create_host_path: None,
        };
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "type" => {
                    let t = self.string(v, &p).unwrap_or_default();
                    kind = Some(match t.as_str() {
                        "volume" => MountType::Volume,
                        "bind" => MountType::Bind,
                        "tmpfs" => MountType::Tmpfs,
                        "npipe" => MountType::Npipe,
                        "cluster" => MountType::Cluster,
                        "image" => MountType::Image,
                        _ => {
                            self.err(
                                v,
                                &p,
                                format!("unknown volume type {t:?} (volume, bind, tmpfs, npipe, cluster, image)"),
                            );
                            return None;
                        }
                    });
                }
                "source" => m.source = self.opt_string(v, &p),
                "target" => m.target = self.string(v, &p).unwrap_or_default(),
                "read_only" => m.read_only = self.boolean(v, &p).unwrap_or(false),
                "consistency" => {}
                "bind" => {
                    for (bk, bkn, bv) in self.map_or_null(v, &p) {
                        let bp = join(&p, &bk);
                        match bk.as_str() {
                            "propagation" => {
                                if let Some(s) = self.opt_string(bv, &bp) {
                                    m.options.push(s);
                                }
                            }
                            "create_host_path" => m.create_host_path = self.boolean(bv, &bp),
                            "selinux" => {
                                if let Some(s) = self.opt_string(bv, &bp) {
                                    m.options.push(s);
                                }
                            }
                            _ => self.unknown(bkn, &bp),
                        }
                    }
                }
                "volume" => {
                    for (vk, vkn, vv) in self.map_or_null(v, &p) {
                        let vp = join(&p, &vk);
                        match vk.as_str() {
                            "nocopy" => {
                                if self.boolean(vv, &vp) == Some(true) {
                                    m.options.push("nocopy".into());
                                }
                            }
                            "subpath" | "labels" => {}
                            _ => self.unknown(vkn, &vp),
                        }
                    }
                }
                "tmpfs" => {
                    for (tk, tkn, tv) in self.map_or_null(v, &p) {
                        let tp = join(&p, &tk);
                        match tk.as_str() {
                            "size" => m.tmpfs_size = self.bytes(tv, &tp),
                            "mode" => {}
                            _ => self.unknown(tkn, &tp),
                        }
                    }
                }
                "image" => {}
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        let Some(kind) = kind else {
            self.err(n, path, "a volume mapping needs a type");
            return None;
        };
        m.kind = kind;
        if m.target.is_empty() {
            self.err(n, path, "a volume mapping needs a target");
            return None;
        }
        if kind == MountType::Bind && m.source.is_none() {
            self.err(n, path, "a bind mount needs a source");
            return None;
        }
        Some(m)
    }

    pub(super) fn depends_on(&mut self, n: &Node, path: &str) -> BTreeMap<String, Dependency> {
        let plain = Dependency { condition: Condition::ServiceStarted, restart: false, required: true };
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(name) = self.string(it, &index(path, i)) {
                        out.insert(name, plain.clone());
                    }
                }
            }
            Value::Map(_) => {
                for (name, _, v) in self.map(n, path) {
                    let p = join(path, &name);
                    let mut d = plain.clone();
                    for (key, k, vv) in self.map_or_null(v, &p) {
                        let kp = join(&p, &key);
                        match key.as_str() {
                            "condition" => match self.string(vv, &kp).as_deref() {
                                Some("service_started") => d.condition = Condition::ServiceStarted,
                                Some("service_healthy") => d.condition = Condition::ServiceHealthy,
                                Some("service_completed_successfully") => d.condition = Condition::ServiceCompletedSuccessfully,
                                Some(c) => self.err(vv, &kp, format!("unknown condition {c:?} (service_started, service_healthy, service_completed_successfully)")),
                                None => {}
                            },
                            "restart" => d.restart = self.boolean(vv, &kp).unwrap_or(false),
                            "required" => d.required = self.boolean(vv, &kp).unwrap_or(true),
                            _ => self.unknown(k, &kp),
                        }
                    }
                    out.insert(name, d);
                }
            }
            _ => self.err(n, path, format!("must be a list or a mapping, not {}", n.kind())),
        }
        out
    }

    pub(super) fn deploy(&mut self, n: &Node, path: &str) -> Deploy {
        let mut d = Deploy::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "replicas" => d.replicas = self.u32(v, &p),
                "resources" => {
                    for (rk, rkn, rv) in self.map_or_null(v, &p) {
                        let rp = join(&p, &rk);
                        match rk.as_str() {
                            "limits" => d.resources.limits = self.resources(rv, &rp),
                            "reservations" => d.resources.reservations = self.resources(rv, &rp),
                            _ => self.unknown(rkn, &rp),
                        }
                    }
                }
                "restart_policy" => d.restart_policy = self.restart_policy(v, &p),
                "placement" => d.placement = self.placement(v, &p),
                x if DEPLOY_KEYS.contains(&x) => {
                    d.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    d.other.insert(key, v.clone());
                }
            }
        }
        d
    }

    pub(super) fn resources(&mut self, n: &Node, path: &str) -> Resources {
        let mut r = Resources::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "cpus" => r.cpus = self.float(v, &p),
                "memory" => r.memory = self.bytes(v, &p),
                "pids" => r.pids = self.int(v, &p),
                "devices" | "generic_resources" => {
                    r.other.insert(key, v.clone());
                }
                _ => {
                    self.unknown(k, &p);
                    r.other.insert(key, v.clone());
                }
            }
        }
        r
    }

    pub(super) fn restart(&mut self, n: &Node, path: &str) -> Option<Restart> {
        // `restart: no` unquoted is the string "no" in YAML 1.2; a YAML 1.1 reader
        // would see `false`: accept both.
        if n.value == Value::Bool(false) {
            return Some(Restart::No);
        }
        let s = self.string(n, path)?;
        Some(match s.as_str() {
            "no" | "" => Restart::No,
            "always" => Restart::Always,
            "unless-stopped" => Restart::UnlessStopped,
            "on-failure" => Restart::OnFailure { max_retries: None },
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Restart::OnFailure { max_retries: Some(n) },
                _ => {
                    self.err(
                        n,
                        path,
                        format!("invalid restart policy {s:?} (no, always, on-failure[:N], unless-stopped)"),
                    );
                    return None;
                }
            },
        })
    }

    pub(super) fn healthcheck(&mut self, n: &Node, path: &str) -> Option<Healthcheck> {
        let mut h = Healthcheck {
            test: None,
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
        };
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "test" => h.test = self.health_test(v, &p),
                "disable" => {
                    if self.boolean(v, &p) == Some(true) {
                        h.test = Some(HealthTest::None);
                    }
                }
                "interval" => h.interval = self.duration(v, &p),
                "timeout" => h.timeout = self.duration(v, &p),
                "start_period" => h.start_period = self.duration(v, &p),
                "start_interval" => h.start_interval = self.duration(v, &p),
                "retries" => h.retries = self.u32(v, &p),
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        Some(h)
    }

    pub(super) fn health_test(&mut self, n: &Node, path: &str) -> Option<HealthTest> {
        match &n.value {
            Value::Seq(_) => {
                let items = self.strings(n, path);
                match items.split_first() {
                    Some((first, rest)) => match first.as_str() {
                        "NONE" => Some(HealthTest::None),
                        "CMD" if !rest.is_empty() => Some(HealthTest::Exec(rest.to_vec())),
                        "CMD-SHELL" if rest.len() == 1 => Some(HealthTest::Shell(rest[0].clone())),
                        "CMD-SHELL" if rest.len() > 1 => Some(HealthTest::Shell(rest.join(" "))),
                        "CMD" | "CMD-SHELL" => {
                            self.err(n, path, format!("{first} needs a command"));
                            None
                        }
                        _ => {
                            self.err(
                                n,
                                path,
                                format!(
                                    "a test list must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", not {first:?}"
                                ),
                            );
                            None
                        }
                    },
                    None => {
                        self.err(n, path, "an empty test list");
                        None
                    }
                }
            }
            _ => self.string(n, path).map(|s| if s == "NONE" { HealthTest::None } else { HealthTest::Shell(s) }),
        }
    }
}
