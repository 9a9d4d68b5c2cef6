//! From a loaded compose project to the engine's [`ProjectSpec`].
//!
//! Compose describes containers; Mesos runs tasks. What has no Mesos meaning
//! is reported as a warning naming the key, never silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use compose::{
    Command, Condition, Constraint, ConstraintField, ContainerType, HealthTest, MountType, Project, Restart,
    RestartCondition, Service,
};

use crate::spec::*;

/// Framework-wide defaults (mesos-compose's DEFAULT_* variables).
#[derive(Clone, Debug)]
pub struct Settings {
    pub default_cpus: f64,
    pub default_mem_mb: f64,
    pub default_disk_mb: f64,
    /// Containerizer for services with an image and no `container_type`.
    pub default_container: ContainerType,
    /// Relative bind-mount sources are resolved against this directory.
    pub project_dir: PathBuf,
    /// Named volumes become `<volumes_dir>/<project>_<volume>` on the agent.
    pub volumes_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_cpus: 0.1,
            default_mem_mb: 50.0,
            default_disk_mb: 0.0,
            default_container: ContainerType::Docker,
            project_dir: PathBuf::from("."),
            volumes_dir: PathBuf::from("/var/lib/m3s/volumes"),
        }
    }
}

/// A translation problem, naming the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug)]
pub struct Translated {
    pub spec: ProjectSpec,
    pub warnings: Vec<Problem>,
}

/// Project names as compose normalises them: lowercase, `[a-z0-9_-]`, starting alphanumeric.
pub fn normalize_project_name(raw: &str) -> String {
    let s: String = raw
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    s.trim_start_matches(['-', '_']).to_owned()
}

pub fn translate(name: &str, project: &Project, settings: &Settings) -> Result<Translated, Vec<Problem>> {
    let mut cx = Cx { warnings: Vec::new(), errors: Vec::new() };
    let mut services = BTreeMap::new();
    for (service_name, service) in &project.services {
        let path = format!("services.{service_name}");
        if let Some(spec) = cx.service(name, service_name, service, project, settings, &path) {
            services.insert(service_name.clone(), spec);
        }
    }
    if cx.errors.is_empty() {
        Ok(Translated { spec: ProjectSpec { name: name.to_owned(), services }, warnings: cx.warnings })
    } else {
        Err(cx.errors)
    }
}

struct Cx {
    warnings: Vec<Problem>,
    errors: Vec<Problem>,
}

const MB: f64 = 1024.0 * 1024.0;

impl Cx {
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem { path: path.into(), message: message.into() });
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem { path: path.into(), message: message.into() });
    }

    fn service(
        &mut self,
        project_name: &str,
        name: &str,
        s: &Service,
        project: &Project,
        settings: &Settings,
        path: &str,
    ) -> Option<ServiceSpec> {
        let task_name = s.mesos.task_name.clone().unwrap_or_else(|| format!("{project_name}_{name}"));
        let mut volumes = self.volumes(project_name, name, s, project, settings, path);
        if s.build.is_some() && s.image.is_none() {
            // The compose CLI builds where the files are and sends the image's name; a
            // document with a bare `build` came from elsewhere, with nothing built.
            self.error(
                format!("{path}.build"),
                "is built by `m3s compose build` (or `m3s compose up`, `m3s up FILE`) where the files are; \
                 sent alone, with no image, there is nothing to run",
            );
            return None;
        }
        let container = match &s.image {
            None => {
                for key in s.other.keys() {
                    self.warn(format!("{path}.{key}"), "has no effect on a host process (it needs an image)");
                }
                if s.privileged || !s.cap_add.is_empty() || !s.cap_drop.is_empty() {
                    self.warn(
                        path,
                        "privileged, cap_add and cap_drop need an image; a host process runs as the agent lets it",
                    );
                }
                if s.hostname.is_some() {
                    self.warn(format!("{path}.hostname"), "a host process keeps the agent's hostname");
                }
                ContainerSpec::Host { volumes }
            }
            Some(image) => {
                let (network, networks) = self.networks(project_name, name, s, project, path);
                let mut parameters = self.container_options(s, project, settings, path, &mut volumes);
                if let Some(sig) = s.stop_signal.as_deref().filter(|s| !matches!(*s, "SIGTERM" | "TERM" | "15")) {
                    parameters.push(("stop-signal".into(), sig.to_owned()));
                }
                match s.pull_policy.as_deref() {
                    // `docker run --pull`: `always` is also Mesos's force_pull_image.
                    Some(p @ ("always" | "missing" | "never")) => parameters.push(("pull".into(), p.into())),
                    // Built where the files are, into this machine's image store (or pushed, and
                    // then named by its registry with another policy): nothing to pull.
                    Some("build") => parameters.push(("pull".into(), "never".into())),
                    Some(other) => self.warn(format!("{path}.pull_policy"), format!("{other:?} is taken as `missing`")),
                    None => {}
                }
                if !parameters.is_empty()
                    && s.container_type.unwrap_or(settings.default_container) == ContainerType::Mesos
                {
                    let keys: Vec<&str> = parameters.iter().map(|(k, _)| k.as_str()).collect();
                    self.warn(
                        path,
                        format!("{} need container_type docker; the Mesos containerizer ignores them", keys.join(", ")),
                    );
                }
                let spec = ImageSpec {
                    parameters,
                    image: image.clone(),
                    network,
                    networks,
                    privileged: s.privileged,
                    cap_add: s.cap_add.clone(),
                    cap_drop: s.cap_drop.clone(),
                    ulimits: s.ulimits.iter().map(|(k, u)| (k.clone(), (u.soft, u.hard))).collect(),
                    force_pull: s.pull_policy.as_deref() == Some("always"),
                    hostname: s.hostname.clone(),
                    volumes,
                };
                match s.container_type.unwrap_or(settings.default_container) {
                    ContainerType::Docker => ContainerSpec::Docker(spec),
                    ContainerType::Mesos => ContainerSpec::MesosImage(spec),
                }
            }
        };
        let (command, entrypoint) = if s.image.is_some() && s.arguments.is_empty() {
            // As docker compose runs them: strings are split into words, not run by a shell;
            // the entrypoint replaces the image's, the command its Cmd.
            let mut words = |c: &Command, key: &str| -> Option<Vec<String>> {
                match c {
                    Command::Exec(v) => Some(v.clone()),
                    Command::Shell(s) => shlex::split(s).or_else(|| {
                        self.error(format!("{path}.{key}"), "unbalanced quotes");
                        None
                    }),
                }
            };
            let command = s.command.as_ref().and_then(|c| words(c, "command")).map(CommandSpec::Exec);
            let entrypoint = s.entrypoint.as_ref().and_then(|c| words(c, "entrypoint"));
            (command, entrypoint)
        } else {
            (self.command(s, path), None)
        };
        if command.is_none() && s.image.is_none() && s.mesos.executor_command.is_none() {
            self.error(path, "nothing to run: a service without `image` needs a `command` (it runs as a host process)");
            return None;
        }

        // `- NAME` without a value was filled from the environment of whoever read the
        // file (the loader did it); still without one, it is unset, as in compose.
        let env: BTreeMap<String, String> =
            s.environment.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect();

        let reservations = &s.deploy.resources.reservations;
        let cpu_limit = s.cpu_limit();
        let mem_limit = s.memory_limit().map(|b| b as f64 / MB);
        let cpus = reservations.cpus.or(cpu_limit).unwrap_or(settings.default_cpus);
        let mem_mb = reservations
            .memory
            .or(s.mem_reservation)
            .map(|b| b as f64 / MB)
            .or(mem_limit)
            .unwrap_or(settings.default_mem_mb);
        let resources = ResourceSpec {
            cpus,
            mem_mb,
            disk_mb: settings.default_disk_mb,
            gpus: s.gpus.as_ref().map_or(0.0, |g| g.count.unwrap_or(1) as f64),
            cpus_limit: cpu_limit.filter(|&l| l > cpus),
            mem_limit_mb: mem_limit.filter(|&l| l > mem_mb),
        };
        if s.gpus.as_ref().is_some_and(|g| g.count.is_none()) {
            self.warn(format!("{path}.gpus"), "`all` GPUs is translated to one GPU: Mesos needs a count");
        }

        let mut ports = Vec::new();
        for (i, p) in s.ports.iter().enumerate() {
            // Without a published port the task gets one from the offer; a host
            // process learns it from $PORT0.. or $M3S_PORT_<target>.
            let published: Vec<Option<u16>> = match p.published {
                Some(r) => (r.start..=r.end).map(Some).collect(),
                None => vec![None],
            };
            if published.len() > 1 {
                self.warn(format!("{path}.ports[{i}]"), "a published range is taken port by port from the offer");
            }
            for (j, host_port) in published.into_iter().enumerate() {
                let container_port = p.target.saturating_add(j as u16);
                let name = p.name.clone().unwrap_or_else(|| format!("{task_name}_{container_port}"));
                ports.push(PortSpec {
                    container_port,
                    host_port,
                    protocol: p.protocol.clone(),
                    name,
                    host_ip: p.host_ip.clone().filter(|ip| ip != "0.0.0.0" && ip != "::"),
                });
            }
        }

        let health = self.health(s, path);
        let restart = self.restart(s, path);
        let depends_on = s
            .depends_on
            .iter()
            .filter(|(dep, d)| d.required || project.services.contains_key(*dep))
            .map(|(dep, d)| {
                let c = match d.condition {
                    Condition::ServiceStarted => DependCondition::ServiceStarted,
                    Condition::ServiceHealthy => DependCondition::ServiceHealthy,
                    Condition::ServiceCompletedSuccessfully => DependCondition::ServiceCompletedSuccessfully,
                };
                (dep.clone(), c)
            })
            .collect::<BTreeMap<_, _>>();
        for (dep, c) in &depends_on {
            if *c == DependCondition::ServiceHealthy
                && project.services.get(dep).is_some_and(|d| {
                    d.healthcheck.as_ref().is_none_or(|h| h.test.is_none() || h.test == Some(HealthTest::None))
                })
            {
                self.warn(
                    format!("{path}.depends_on.{dep}"),
                    format!("'{dep}' has no health check: healthy means running"),
                );
            }
        }

        let mut placement = Vec::new();
        let mut max_per_node = s.deploy.placement.max_replicas_per_node;
        for c in &s.deploy.placement.constraints {
            match c {
                Constraint::Unique => max_per_node = Some(1),
                Constraint::Compare { field, equal, value } => placement.push(PlacementRule {
                    field: match field {
                        ConstraintField::Hostname => PlacementField::Hostname,
                        ConstraintField::Os => PlacementField::Os,
                        ConstraintField::Arch => PlacementField::Arch,
                        ConstraintField::Attribute(a) => PlacementField::Attribute(a.clone()),
                    },
                    equal: *equal,
                    value: value.clone(),
                }),
            }
        }
        for (k, v) in &s.deploy.placement.attributes {
            placement.push(PlacementRule {
                field: PlacementField::Attribute(k.clone()),
                equal: true,
                value: v.clone(),
            });
        }

        if let Some(sig) = s.stop_signal.as_deref().filter(|s| !matches!(*s, "SIGTERM" | "TERM" | "15")) {
            // A Docker container's stop signal is `docker run --stop-signal`, which
            // the image branch passes on; a host process or a Mesos container gets SIGTERM.
            let docker =
                s.image.is_some() && s.container_type.unwrap_or(settings.default_container) == ContainerType::Docker;
            if !docker {
                self.warn(
                    format!("{path}.stop_signal"),
                    format!("Mesos stops this task with SIGTERM, then SIGKILL; {sig} needs an image and container_type docker"),
                );
            }
        }
        if s.container_name.is_some() && s.deploy.replicas.unwrap_or(1) > 1 {
            self.error(format!("{path}.container_name"), "container_name needs a single replica");
        }

        Some(ServiceSpec {
            replicas: s.deploy.replicas.unwrap_or(1),
            task_name,
            run: RunSpec {
                command,
                entrypoint,
                env,
                secret_env: Default::default(),
                user: s.user.clone(),
                working_dir: s.working_dir.clone(),
                container,
                fetch: s
                    .mesos
                    .fetch
                    .iter()
                    .map(|f| FetchSpec {
                        uri: f.value.clone(),
                        executable: f.executable.unwrap_or(false),
                        extract: f.extract.unwrap_or(true),
                        cache: f.cache.unwrap_or(false),
                        output_file: f.output_file.clone(),
                    })
                    .collect(),
                executor_command: s.mesos.executor_command.clone(),
            },
            resources,
            ports,
            health,
            external_health: false,
            restart,
            depends_on,
            placement,
            max_per_node,
            labels: s.labels.clone(),
            kill_grace_seconds: s.stop_grace_period.map(|d| d.as_secs_f64()),
        })
    }

    /// entrypoint + command (+ mesos-compose's `arguments`).
    fn command(&mut self, s: &Service, path: &str) -> Option<CommandSpec> {
        let mut cmd = match (&s.entrypoint, &s.command) {
            (None, None) => None,
            (None, Some(c)) | (Some(c), None) => Some(to_spec(c)),
            (Some(Command::Exec(e)), Some(Command::Exec(c))) => {
                Some(CommandSpec::Exec(e.iter().chain(c).cloned().collect()))
            }
            (Some(e), Some(c)) => Some(CommandSpec::Shell(format!("{} {}", text(e), text(c)))),
        };
        if !s.arguments.is_empty() {
            cmd = match cmd {
                // mesos-compose: the command is the program, `arguments` its arguments, no shell.
                Some(CommandSpec::Shell(program)) => {
                    Some(CommandSpec::Exec(std::iter::once(program).chain(s.arguments.iter().cloned()).collect()))
                }
                Some(CommandSpec::Exec(mut v)) => {
                    v.extend(s.arguments.iter().cloned());
                    Some(CommandSpec::Exec(v))
                }
                None => {
                    self.warn(
                        format!("{path}.arguments"),
                        "arguments without a command are passed to the image's command",
                    );
                    Some(CommandSpec::Exec(s.arguments.clone()))
                }
            };
        }
        if s.shell == Some(true)
            && let Some(CommandSpec::Exec(v)) = &cmd
        {
            cmd = Some(CommandSpec::Shell(v.join(" ")));
        }
        cmd
    }

    fn health(&mut self, s: &Service, path: &str) -> Option<HealthSpec> {
        let h = s.healthcheck.as_ref()?;
        let command = match &h.test {
            None => {
                if s.image.is_none() {
                    self.warn(
                        format!("{path}.healthcheck"),
                        "timings without `test`: a host process has no image check",
                    );
                }
                return None;
            }
            Some(HealthTest::None) => return None,
            Some(HealthTest::Exec(argv)) => CommandSpec::Exec(argv.clone()),
            Some(HealthTest::Shell(cmd)) => CommandSpec::Shell(cmd.clone()),
        };
        Some(HealthSpec {
            command,
            interval_seconds: h.interval.map_or(30.0, |d| d.as_secs_f64()),
            timeout_seconds: h.timeout.map_or(30.0, |d| d.as_secs_f64()),
            retries: h.retries.unwrap_or(3),
            start_period_seconds: h.start_period.map_or(0.0, |d| d.as_secs_f64()),
        })
    }

    fn restart(&mut self, s: &Service, path: &str) -> RestartSpec {
        if let Some(p) = &s.deploy.restart_policy {
            if s.restart.is_some() {
                self.warn(format!("{path}.restart"), "deploy.restart_policy is given too and wins");
            }
            return RestartSpec {
                when: match p.condition {
                    RestartCondition::None => RestartWhen::Never,
                    RestartCondition::OnFailure => RestartWhen::OnFailure,
                    RestartCondition::Any => RestartWhen::Always,
                },
                delay_ms: p.delay.map_or(5000, |d| d.as_millis() as u64),
                max_attempts: p.max_attempts,
                window_ms: p.window.map(|d| d.as_millis() as u64),
            };
        }
        let (when, max_attempts) = match s.restart {
            Some(Restart::No) => (RestartWhen::Never, None),
            Some(Restart::OnFailure { max_retries }) => (RestartWhen::OnFailure, max_retries),
            // mesos-compose's default is unless-stopped.
            Some(Restart::Always) | Some(Restart::UnlessStopped) | None => (RestartWhen::Always, None),
        };
        RestartSpec { when, delay_ms: 1000, max_attempts, window_ms: None }
    }

    fn volumes(
        &mut self,
        project_name: &str,
        service: &str,
        s: &Service,
        project: &Project,
        settings: &Settings,
        path: &str,
    ) -> Vec<VolumeSpec> {
        let mut out = Vec::new();
        for (i, m) in s.volumes.iter().enumerate() {
            let p = format!("{path}.volumes[{i}]");
            let host_path = match m.kind {
                MountType::Bind => {
                    let Some(src) = &m.source else { continue };
                    absolute(&settings.project_dir, src)
                }
                MountType::Volume => {
                    let dir = volume_dir_name(project_name, project, service, i, m.source.as_deref());
                    settings.volumes_dir.join(dir).to_string_lossy().into_owned()
                }
                MountType::Tmpfs => {
                    self.warn(p, "tmpfs mounts are not supported on Mesos; the path is part of the sandbox");
                    continue;
                }
                _ => {
                    self.warn(p, "this mount type has no Mesos equivalent and is ignored");
                    continue;
                }
            };
            if s.image.is_none() {
                self.warn(p.clone(), "a host process sees the host's filesystem; the mount applies only where the agent isolates filesystems");
            }
            out.push(VolumeSpec { host_path, container_path: m.target.clone(), read_only: m.read_only, content: None });
        }
        out
    }
}

impl Cx {
    /// The container keys compose keeps untyped: secrets and configs become
    /// volumes, the `docker run` options DockerInfo parameters; the rest is
    /// reported, never dropped silently.
    fn container_options(
        &mut self,
        s: &Service,
        project: &Project,
        settings: &Settings,
        path: &str,
        volumes: &mut Vec<VolumeSpec>,
    ) -> Vec<(String, String)> {
        use compose::node::Value;
        let mut params = Vec::new();
        let strings = |n: &compose::node::Node| -> Vec<String> {
            match &n.value {
                Value::Seq(items) => items.iter().filter_map(|i| i.scalar_text()).collect(),
                _ => n.scalar_text().into_iter().collect(),
            }
        };
        for (key, node) in &s.other {
            let p = format!("{path}.{key}");
            match key.as_str() {
                "secrets" | "configs" => self.file_objects(key, node, project, settings, &p, volumes),
                "read_only" => {
                    if node.scalar_text().as_deref() == Some("true") {
                        params.push(("read-only".into(), "true".into()));
                    }
                }
                "init" => {
                    if node.scalar_text().as_deref() == Some("true") {
                        params.push(("init".into(), "true".into()));
                    }
                }
                "shm_size" => match node.scalar_text() {
                    Some(size) => params.push(("shm-size".into(), size)),
                    None => self.error(p, "must be a size such as 64m"),
                },
                "tmpfs" => params.extend(strings(node).into_iter().map(|t| ("tmpfs".to_owned(), t))),
                "dns" => params.extend(strings(node).into_iter().map(|d| ("dns".to_owned(), d))),
                "dns_search" => params.extend(strings(node).into_iter().map(|d| ("dns-search".to_owned(), d))),
                "dns_opt" => params.extend(strings(node).into_iter().map(|d| ("dns-option".to_owned(), d))),
                // Applied as names on the linked service's networks (`networks`).
                "links" => {}
                "extra_hosts" => match &node.value {
                    Value::Map(entries) => {
                        for (k, v) in entries {
                            if let (Some(k), Some(v)) = (k.scalar_text(), v.scalar_text()) {
                                params.push(("add-host".into(), format!("{k}:{v}")));
                            }
                        }
                    }
                    _ => params.extend(strings(node).into_iter().map(|h| ("add-host".to_owned(), h))),
                },
                "devices" => params.extend(strings(node).into_iter().map(|d| ("device".to_owned(), d))),
                "sysctls" => match &node.value {
                    Value::Map(entries) => {
                        for (k, v) in entries {
                            if let (Some(k), Some(v)) = (k.scalar_text(), v.scalar_text()) {
                                params.push(("sysctl".into(), format!("{k}={v}")));
                            }
                        }
                    }
                    _ => params.extend(strings(node).into_iter().map(|kv| ("sysctl".to_owned(), kv))),
                },
                _ => self.warn(p, "is not applied by m3s; the service runs without it"),
            }
        }
        params
    }

    /// The service's network mode (`host`, `none`, `bridge`, or empty) and the
    /// networks it joins: its `networks`, else the project's `default`; each
    /// with the names it answers to there and the network's IPAM.
    fn networks(
        &mut self,
        project_name: &str,
        name: &str,
        s: &Service,
        project: &Project,
        path: &str,
    ) -> (String, Vec<NetworkSpec>) {
        match s.network_mode.as_deref() {
            Some(mode @ ("host" | "none" | "bridge")) => return (mode.to_owned(), Vec::new()),
            Some(other) => {
                self.error(
                    format!("{path}.network_mode"),
                    format!("{other:?} is not supported: host, none, bridge, or the service's networks"),
                );
                return (String::new(), Vec::new());
            }
            None => {}
        }
        let default = compose::model::ServiceNetwork::default();
        let joined: Vec<(&str, &compose::model::ServiceNetwork)> = if s.networks.is_empty() {
            vec![("default", &default)]
        } else {
            s.networks.iter().map(|(n, sn)| (n.as_str(), sn)).collect()
        };
        let mut out = Vec::new();
        for (key, sn) in joined {
            let declared = project.networks.get(key);
            let p = format!("networks.{key}");
            let full = declared.and_then(|d| d.name.clone()).unwrap_or_else(|| format!("{project_name}_{key}"));
            let mut names = vec![name.to_owned(), format!("{name}.{project_name}")];
            names.extend(s.container_name.iter().cloned());
            names.extend(s.hostname.iter().cloned());
            names.extend(sn.aliases.iter().cloned());
            names.extend(self.linked_as(name, project));
            names.dedup();
            if sn.ipv4_address.is_some() {
                self.warn(
                    format!("{path}.networks.{key}.ipv4_address"),
                    "is not applied: addresses come from the network's pool",
                );
            }
            let mut spec = NetworkSpec { name: full, names, ..Default::default() };
            if let Some(d) = declared {
                spec.internal = d.internal;
                spec.external = d.external;
                if d.driver.as_deref().is_some_and(|dr| dr != "bridge") {
                    self.warn(format!("{p}.driver"), "m3s makes bridge networks (CNI); the driver is not applied");
                }
                if let Some(ipam) = d.other.get("ipam") {
                    let first = ipam.get("config").and_then(|c| match &c.value {
                        compose::node::Value::Seq(items) => items.first(),
                        _ => None,
                    });
                    let text = |k: &str| first.and_then(|f| f.get(k)).and_then(|v| v.scalar_text());
                    spec.subnet = text("subnet");
                    spec.gateway = text("gateway");
                    spec.ip_range = text("ip_range");
                }
            }
            out.push(spec);
        }
        (String::new(), out)
    }

    /// Aliases other services give `name` by `links: [name:alias]`: names of
    /// `name` on its networks (Docker scopes them to the linking container).
    fn linked_as(&self, name: &str, project: &Project) -> Vec<String> {
        let mut out = Vec::new();
        for other in project.services.values() {
            let Some(links) = other.other.get("links") else { continue };
            let compose::node::Value::Seq(items) = &links.value else { continue };
            for link in items.iter().filter_map(|i| i.scalar_text()) {
                if let Some((target, alias)) = link.split_once(':')
                    && target == name
                {
                    out.push(alias.to_owned());
                }
            }
        }
        out
    }

    /// `secrets:` and `configs:` of a service: read-only files at
    /// `/run/secrets/<name>` (secrets) or `/<name>` (configs), or their target.
    fn file_objects(
        &mut self,
        kind: &str,
        node: &compose::node::Node,
        project: &Project,
        settings: &Settings,
        path: &str,
        volumes: &mut Vec<VolumeSpec>,
    ) {
        use compose::node::Value;
        let Value::Seq(items) = &node.value else {
            self.error(path, "must be a list");
            return;
        };
        let declared = if kind == "secrets" { &project.secrets } else { &project.configs };
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let (source, target) = match &item.value {
                Value::Map(_) => {
                    if item.get("mode").is_some() || item.get("uid").is_some() || item.get("gid").is_some() {
                        self.warn(p.clone(), "mode, uid and gid are not applied: the file keeps its own");
                    }
                    (item.get("source").and_then(|n| n.scalar_text()), item.get("target").and_then(|n| n.scalar_text()))
                }
                _ => (item.scalar_text(), None),
            };
            let Some(source) = source else {
                self.error(p, "needs a source");
                continue;
            };
            let Some(object) = declared.get(&source) else { continue }; // the loader reported it
            let target = match (kind, target) {
                ("secrets", None) => format!("/run/secrets/{source}"),
                ("secrets", Some(t)) if !t.starts_with('/') => format!("/run/secrets/{t}"),
                (_, None) => format!("/{source}"),
                (_, Some(t)) if !t.starts_with('/') => format!("/{t}"),
                (_, Some(t)) => t,
            };
            let (host_path, content) = match (&object.file, &object.content) {
                (Some(f), _) => (absolute(&settings.project_dir, f), None),
                (None, Some(c)) => (String::new(), Some(c.clone())),
                (None, None) => {
                    self.error(
                        p,
                        format!(
                            "{kind} {source:?}: only `file` and `content` are supported (not environment or external)"
                        ),
                    );
                    continue;
                }
            };
            volumes.push(VolumeSpec { host_path, container_path: target, read_only: true, content });
        }
    }
}

fn to_spec(c: &Command) -> CommandSpec {
    match c {
        Command::Shell(s) => CommandSpec::Shell(s.clone()),
        Command::Exec(v) => CommandSpec::Exec(v.clone()),
    }
}

fn text(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => v.join(" "),
    }
}

fn absolute(base: &Path, p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() { p.to_owned() } else { base.join(path).to_string_lossy().into_owned() }
}

/// The directory (under the volumes directory) of a volume mount: an
/// external volume's own name, `<project>_<volume>` for a named one, and
/// `<project>_<service>_anon<index>` for an anonymous one (`index` is the
/// mount's place in the service's `volumes`).
pub fn volume_dir_name(
    project_name: &str,
    project: &Project,
    service: &str,
    index: usize,
    source: Option<&str>,
) -> String {
    match source {
        Some(name) => {
            let declared = project.volumes.get(name);
            match declared.and_then(|v| v.name.clone()) {
                Some(n) if declared.is_some_and(|v| v.external) => n,
                _ => format!("{project_name}_{name}"),
            }
        }
        None => format!("{project_name}_{service}_anon{index}"),
    }
}

/// The volume directories the project owns: what `compose down -v` removes,
/// as docker compose removes named and anonymous volumes but never external ones.
pub fn owned_volume_dirs(project_name: &str, project: &Project) -> Vec<String> {
    let mut dirs: Vec<String> = project
        .volumes
        .iter()
        .filter(|(_, v)| !v.external)
        .map(|(name, _)| volume_dir_name(project_name, project, "", 0, Some(name)))
        .collect();
    for (service, s) in &project.services {
        for (i, m) in s.volumes.iter().enumerate() {
            if m.kind == MountType::Volume && m.source.is_none() {
                dirs.push(volume_dir_name(project_name, project, service, i, None));
            }
        }
    }
    dirs
}
