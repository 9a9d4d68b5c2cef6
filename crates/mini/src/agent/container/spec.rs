//! From a Mesos `TaskInfo` and an image's configuration to an OCI runtime
//! spec: a pure function, tested like the HTTP views.
//!
//! What runs follows the containerizer the task names. `DOCKER` tasks follow
//! Mesos's Docker containerizer (`docker run` semantics: the image's
//! Entrypoint stays unless the `entrypoint` parameter replaces it, the
//! task's command replaces Cmd; `user`, `workdir` and the other `docker run`
//! flags come as `parameters`). `MESOS` tasks with a Docker image follow the
//! unified containerizer's rules (`isolators/docker/runtime.cpp`): a command
//! with a value ignores the image's command; arguments alone replace Cmd.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use image::config::{ImageConfig, resolve_user};
use mesos::v1::{CommandInfo, ContainerInfo, ContainerType, TaskInfo, VariableType, VolumeMode};

use super::oci::{Capabilities, Linux, Mount, Namespace, Process, Rlimit, Root, Spec, User};

/// Where the task's sandbox appears inside its container (Mesos's path).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
/// Where Docker puts its init (`docker run --init`).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set without `CAP_MKNOD`: m3s does not run a
/// device cgroup for containers, so a new device node would not be fenced
/// off. `cap_add: [MKNOD]` gives it back.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this kernel generation knows (what `privileged` gives).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths Docker hides from a container, and those it makes read-only.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Everything the spec is made of.
pub struct SpecInput<'a> {
    pub task: &'a TaskInfo,
    pub image: &'a ImageConfig,
    /// The image's unpacked layers, lowest first: users are resolved in their files.
    pub layers: &'a [PathBuf],
    pub sandbox: &'a Path,
    pub container_id: &'a str,
    /// The variables every task gets from the agent (`MESOS_*`, `PORT*`, `HOST`).
    pub agent_env: &'a [(String, String)],
    /// The container's `/etc/hosts` and `/etc/resolv.conf`, made by the caller.
    pub hosts: &'a Path,
    pub resolv_conf: &'a Path,
    /// Whether `/sys/fs/cgroup` can be mounted in the container (not on hybrid v1/v2 hosts).
    pub mount_cgroups: bool,
    /// The files the caller wrote for SECRET volumes, by volume index.
    pub secret_files: &'a [(usize, PathBuf)],
    /// Host devices given to the container (`device` parameters, resolved by the caller).
    pub devices: &'a [super::oci::Device],
    /// A static init (tini) on the host, for `init=true`: mounted at
    /// `/sbin/docker-init` and run as PID 1, as Docker runs its own.
    pub init: Option<&'a Path>,
    /// The network namespace the container joins; `None`: the host's network.
    pub netns: Option<&'a Path>,
}

/// What in a task's container the runtime cannot run, naming the field or
/// parameter.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A parameter's value is not of its form: `sysctl "x": expected name=value`.
    #[error("{parameter} {value:?}: {expected}")]
    BadParameter { parameter: &'static str, value: String, expected: &'static str },
    #[error("ulimit {value:?}: {number:?} is not a number")]
    UlimitNumber { value: String, number: String },
    #[error("{origin} {name:?} is not a signal (SIGUSR1, USR1 or a number from 1 to 31)")]
    Signal { origin: &'static str, name: String },
    #[error("the task has no container")]
    NoContainer,
    #[error("init=true needs tini on the agent (Debian's tini package: /usr/bin/tini-static)")]
    NoInit,
    #[error("user {user:?}: {source}")]
    User { user: String, source: image::config::UserError },
    #[error("working directory {0:?} is not absolute")]
    RelativeWorkdir(String),
    #[error("volumes[{index}]: {problem}")]
    Volume { index: usize, problem: VolumeProblem },
    #[error("a shell command needs a value")]
    EmptyShellCommand,
    #[error("nothing to run: the image has no Entrypoint or Cmd and the task gives no command")]
    NothingToRun,
    #[error("No executable is found: the image has no Entrypoint or Cmd and the task gives no command")]
    NoExecutable,
    #[error("unknown capability {0}")]
    UnknownCapability(String),
    #[error(
        "sysctl {0}: only IPC sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and, off the host's network, net.* are the container's own"
    )]
    HostSysctl(String),
    #[error("size {value:?}: {problem}")]
    Size { value: String, problem: SizeProblem },
    #[error("device {value:?}: {problem}")]
    Device { value: String, problem: DeviceProblem },
}

/// What is wrong with one of a task's volumes (both containerizers).
#[derive(Debug, thiserror::Error)]
pub enum VolumeProblem {
    #[error("{field} {path:?} leaves the sandbox")]
    LeavesSandbox { field: &'static str, path: String },
    #[error("no host_path and no source")]
    NoSource,
    #[error("only HOST_PATH and SANDBOX_PATH volumes are supported")]
    NotHostOrSandbox,
    #[error(
        "{0} volumes are not supported by the Docker containerizer (host_path, DOCKER_VOLUME, SANDBOX_PATH, SECRET)"
    )]
    UnsupportedByDocker(String),
    #[error("a DOCKER_VOLUME needs a name")]
    UnnamedDockerVolume,
    #[error("{host_path} does not exist (mounted read-only at {container_path})")]
    MissingReadOnly { host_path: String, container_path: String },
    #[error("creating {}: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Secret(#[from] crate::agent::SecretError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeProblem {
    #[error("not a number with k, m or g")]
    NotANumber,
    #[error("unknown unit {0:?}")]
    Unit(String),
    #[error("too large")]
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceProblem {
    #[error("{0}")]
    Stat(#[from] rustix::io::Errno),
    #[error("not a device")]
    NotADevice,
}

fn bad(parameter: &'static str, value: &str, expected: &'static str) -> SpecError {
    SpecError::BadParameter { parameter, value: value.to_owned(), expected }
}

/// `docker run` flags given as DockerInfo parameters, in order.
pub(crate) struct Params<'a>(pub(crate) Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    pub(crate) fn of(container: &'a ContainerInfo) -> Params<'a> {
        Params(
            container
                .docker
                .iter()
                .flat_map(|d| d.parameters.iter())
                .map(|p| (p.key.trim_start_matches('-'), p.value.as_str()))
                .collect(),
        )
    }

    pub(crate) fn last(&self, key: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    pub(crate) fn all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.0.iter().filter(move |(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// How names resolve in a container: `dns`, `dns-search`, `dns-option` and
/// `add-host` parameters (compose `dns`, `dns_search`, `dns_opt`, `extra_hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParams {
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// (name, address) lines for /etc/hosts.
    pub hosts: Vec<(String, String)>,
}

pub fn name_params(task: &TaskInfo) -> Result<NameParams, SpecError> {
    let Some(container) = task.container.as_ref() else { return Ok(NameParams::default()) };
    let params = Params::of(container);
    let mut out = NameParams::default();
    for d in params.all("dns") {
        d.parse::<std::net::IpAddr>().map_err(|_| bad("dns", d, "not an IP address"))?;
        out.dns.push(d.to_owned());
    }
    out.dns_search.extend(params.all("dns-search").map(str::to_owned));
    out.dns_options.extend(params.all("dns-option").chain(params.all("dns-opt")).map(str::to_owned));
    for h in params.all("add-host") {
        // `name:ip` as docker run takes it, or `name=ip` as compose writes it.
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| bad("add-host", h, "expected name:address"))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let valid = ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_ok();
        if name.is_empty() || name.contains(char::is_whitespace) || !valid {
            return Err(bad("add-host", h, "expected name:address"));
        }
        out.hosts.push((name.to_owned(), ip.to_owned()));
    }
    Ok(out)
}

/// The signal that asks a container to stop, as `docker stop` sends it: a
/// DOCKER task's `stop-signal` parameter, else its image's StopSignal. A MESOS
/// task gets SIGTERM, as Mesos's unified containerizer sends (`None`).
pub fn stop_signal(task: &TaskInfo, image: &ImageConfig) -> Result<Option<i32>, SpecError> {
    let Some(container) = task.container.as_ref().filter(|c| c.kind == ContainerType::Docker) else {
        return Ok(None);
    };
    let (name, origin) = match Params::of(container).last("stop-signal") {
        Some(param) => (param, "the stop-signal parameter"),
        None => match image.config.stop_signal.as_deref() {
            Some(image_signal) => (image_signal, "the image's StopSignal"),
            None => return Ok(None),
        },
    };
    crate::signals::signal_number(name).map(Some).ok_or_else(|| SpecError::Signal { origin, name: name.to_owned() })
}

pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let task = input.task;
    let container = task.container.as_ref().ok_or(SpecError::NoContainer)?;
    let command = task.command.clone().unwrap_or_default();
    let params = Params::of(container);
    let run = &input.image.config;
    let docker = container.kind == ContainerType::Docker;
    let privileged = container.docker.as_ref().and_then(|d| d.privileged).unwrap_or(false);

    let mut args = if docker { docker_args(&command, &params, run)? } else { mesos_args(&command, run)? };
    let init = match (docker && params.last("init") == Some("true"), input.init) {
        (false, _) => None,
        (true, Some(init)) => Some(init),
        (true, None) => {
            return Err(SpecError::NoInit);
        }
    };
    if init.is_some() {
        args.splice(0..0, [INIT_IN_CONTAINER.to_owned(), "--".to_owned()]);
    }

    let user_text = match (params.last("user").or(params.last("u")), &command.user) {
        (Some(u), _) => u.to_owned(),
        (None, Some(u)) if !docker => u.clone(),
        _ => run.user.clone().unwrap_or_default(),
    };
    let user = if user_text.is_empty() || user_text == "root" || user_text == "0" {
        resolve_user(input.layers, "0").unwrap_or(image::config::User { uid: 0, gid: 0, additional_gids: Vec::new() })
    } else {
        resolve_user(input.layers, &user_text).map_err(|source| SpecError::User { user: user_text.clone(), source })?
    };

    let mut env = EnvList::default();
    for kv in run.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        env.set(k, v);
    }
    for v in command.environment.iter().flat_map(|e| e.variables.iter()) {
        if v.kind == Some(VariableType::Secret) {
            continue;
        }
        if let Some(value) = &v.value {
            env.set(&v.name, value);
        }
    }
    for (k, v) in input.agent_env {
        match k.as_str() {
            "MESOS_SANDBOX" | "MESOS_DIRECTORY" => env.set(k, SANDBOX_IN_CONTAINER),
            _ => env.set(k, v),
        }
    }
    env.set("MESOS_CONTAINER_NAME", &format!("mesos-{}", input.container_id));
    if !env.has("PATH") {
        env.set("PATH", DEFAULT_PATH);
    }
    if !env.has("HOME") {
        let home =
            home_of(input.layers, user.uid).unwrap_or_else(|| if user.uid == 0 { "/root".into() } else { "/".into() });
        env.set("HOME", &home);
    }
    let hostname = container
        .hostname
        .clone()
        .or_else(|| params.last("hostname").map(str::to_owned))
        .unwrap_or_else(|| input.container_id.chars().take(12).collect());
    if !env.has("HOSTNAME") {
        env.set("HOSTNAME", &hostname);
    }

    let cwd = match params.last("workdir").or(params.last("w")) {
        Some(w) => w.to_owned(),
        None => match run.working_dir.as_deref().filter(|w| !w.is_empty()) {
            Some(w) => w.to_owned(),
            None if docker => "/".to_owned(),
            None => SANDBOX_IN_CONTAINER.to_owned(),
        },
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeWorkdir(cwd.clone()));
    }

    let capabilities = Capabilities::all_of(capabilities(container, &params, privileged)?);
    let rlimits = rlimits(container, &params)?;

    let shm_size = params.last("shm-size").map(parse_size).transpose()?.unwrap_or(64 << 20);
    let mut mounts = vec![
        Mount::new("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        Mount::new("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        Mount::new(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        Mount::new(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &format!("size={shm_size}")],
        ),
        Mount::new("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        Mount::new(
            "/sys",
            "sysfs",
            "sysfs",
            if privileged { &["nosuid", "noexec", "nodev"] } else { &["nosuid", "noexec", "nodev", "ro"] },
        ),
    ];
    if input.mount_cgroups {
        mounts.push(Mount::new("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]));
    }
    mounts.push(Mount::bind(&input.hosts.display().to_string(), "/etc/hosts", true));
    mounts.push(Mount::bind(&input.resolv_conf.display().to_string(), "/etc/resolv.conf", true));
    mounts.push(Mount::bind(&input.sandbox.display().to_string(), SANDBOX_IN_CONTAINER, false));
    if let Some(init) = init {
        mounts.push(Mount::bind(&init.display().to_string(), INIT_IN_CONTAINER, true));
    }
    for (i, v) in container.volumes.iter().enumerate() {
        let target = if v.container_path.starts_with('/') {
            v.container_path.clone()
        } else {
            format!(
                "{SANDBOX_IN_CONTAINER}/{}",
                confined(&v.container_path).ok_or_else(|| SpecError::Volume {
                    index: i,
                    problem: VolumeProblem::LeavesSandbox { field: "container_path", path: v.container_path.clone() },
                })?
            )
        };
        let secret = input.secret_files.iter().find(|(j, _)| *j == i).map(|(_, p)| p.display().to_string());
        let source = match (&v.host_path, &v.source) {
            _ if secret.is_some() => secret.expect("checked"),
            (Some(h), _) => h.clone(),
            (None, Some(source)) => {
                sandbox_source(source, input.sandbox).map_err(|problem| SpecError::Volume { index: i, problem })?
            }
            (None, None) => return Err(SpecError::Volume { index: i, problem: VolumeProblem::NoSource }),
        };
        mounts.push(Mount::bind(&source, &target, v.mode == VolumeMode::Ro));
    }
    for t in params.all("tmpfs") {
        let (path, options) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            return Err(bad("tmpfs", t, "the path must be absolute"));
        }
        let mut opts = vec!["nosuid", "nodev"];
        opts.extend(options.split(',').filter(|o| !o.is_empty()));
        mounts.push(Mount::new(path, "tmpfs", "tmpfs", &opts));
    }

    let mut linux = Linux {
        namespaces: ["pid", "ipc", "uts", "mount"]
            .into_iter()
            .map(|k| Namespace { kind: k.into(), path: None })
            .collect(),
        devices: input.devices.to_vec(),
        ..Default::default()
    };
    if let Some(netns) = input.netns {
        linux.namespaces.push(Namespace { kind: "network".into(), path: Some(netns.display().to_string()) });
        // As Docker does in a container's own network: any user may bind port 80.
        linux.sysctl.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
    }
    if !privileged {
        linux.masked_paths = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        linux.readonly_paths = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
    }
    for s in params.all("sysctl") {
        let (k, v) = s.split_once('=').ok_or_else(|| bad("sysctl", s, "expected name=value"))?;
        // Only what the container's own namespaces hold: anything else would change the host.
        let ipc = k.starts_with("kernel.msg")
            || k.starts_with("kernel.sem")
            || k.starts_with("kernel.shm")
            || k.starts_with("fs.mqueue.");
        let net = k.starts_with("net.") && input.netns.is_some();
        if !ipc && !net {
            return Err(SpecError::HostSysctl(k.to_owned()));
        }
        linux.sysctl.insert(k.to_owned(), v.to_owned());
    }

    Ok(Spec {
        oci_version: "1.0.2".into(),
        process: Process {
            terminal: false,
            user: User { uid: user.uid, gid: user.gid, additional_gids: user.additional_gids },
            args,
            env: env.0.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd,
            capabilities,
            rlimits,
            no_new_privileges: false,
        },
        root: Root { path: "rootfs".into(), readonly: params.last("read-only").is_some_and(|v| v != "false") },
        hostname,
        mounts,
        linux,
    })
}

/// Variables in the order they were first set; a later value replaces an earlier one.
#[derive(Default)]
struct EnvList(Vec<(String, String)>);

impl EnvList {
    fn set(&mut self, k: &str, v: &str) {
        match self.0.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v.to_owned(),
            None => self.0.push((k.to_owned(), v.to_owned())),
        }
    }

    fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(name, _)| name == k)
    }
}

fn docker_args(
    command: &CommandInfo,
    params: &Params<'_>,
    run: &image::config::RunConfig,
) -> Result<Vec<String>, SpecError> {
    let entrypoint_param = params.last("entrypoint").map(|e| vec![e.to_owned()]);
    let (entrypoint, cmd) = if command.shell {
        let value = command.value.clone().filter(|v| !v.is_empty()).ok_or(SpecError::EmptyShellCommand)?;
        (vec!["/bin/sh".to_owned(), "-c".to_owned()], vec![value])
    } else {
        let given: Vec<String> = command.value.iter().cloned().chain(command.arguments.iter().cloned()).collect();
        let entrypoint = entrypoint_param.clone().or_else(|| run.entrypoint.clone()).unwrap_or_default();
        let cmd = if !given.is_empty() {
            given
        } else if entrypoint_param.is_some() {
            Vec::new() // --entrypoint clears the image's Cmd, as docker run does
        } else {
            run.cmd.clone().unwrap_or_default()
        };
        (entrypoint, cmd)
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NothingToRun);
    }
    Ok(args)
}

fn mesos_args(command: &CommandInfo, run: &image::config::RunConfig) -> Result<Vec<String>, SpecError> {
    if command.shell {
        let value = command.value.clone().filter(|v| !v.is_empty()).ok_or(SpecError::EmptyShellCommand)?;
        return Ok(vec!["/bin/sh".into(), "-c".into(), value]);
    }
    if let Some(value) = command.value.clone().filter(|v| !v.is_empty()) {
        // `arguments` starts with argv0, as for a command task.
        let mut args = vec![value];
        args.extend(command.arguments.iter().skip(1).cloned());
        return Ok(args);
    }
    let entrypoint = run.entrypoint.clone().unwrap_or_default();
    let cmd = run.cmd.clone().unwrap_or_default();
    let args: Vec<String> = match (command.arguments.is_empty(), entrypoint.is_empty()) {
        (true, _) => entrypoint.into_iter().chain(cmd).collect(),
        (false, false) => entrypoint.into_iter().chain(command.arguments.iter().cloned()).collect(),
        (false, true) => cmd.into_iter().take(1).chain(command.arguments.iter().cloned()).collect(),
    };
    if args.is_empty() {
        return Err(SpecError::NoExecutable);
    }
    Ok(args)
}

fn capabilities(container: &ContainerInfo, params: &Params<'_>, privileged: bool) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    let mut set: BTreeSet<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let name = |c: &str| -> Result<String, SpecError> {
        let c = c.trim().to_ascii_uppercase();
        let full = if c.starts_with("CAP_") { c } else { format!("CAP_{c}") };
        if full == "CAP_ALL" || ALL_CAPABILITIES.contains(&full.as_str()) {
            Ok(full)
        } else {
            Err(SpecError::UnknownCapability(full))
        }
    };
    let linux = container.linux_info.as_ref();
    let listed = |key: &str, field: &str| -> Vec<String> {
        linux
            .and_then(|l| l.get(key))
            .and_then(|c| c.get(field))
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let adds: Vec<String> =
        params.all("cap-add").map(str::to_owned).chain(listed("effective_capabilities", "capabilities")).collect();
    let drops: Vec<String> =
        params.all("cap-drop").map(str::to_owned).chain(listed("bounding_capabilities", "dropped")).collect();
    for c in drops {
        match name(&c)?.as_str() {
            "CAP_ALL" => set.clear(),
            c => {
                set.remove(c);
            }
        }
    }
    for c in adds {
        match name(&c)?.as_str() {
            "CAP_ALL" => set.extend(ALL_CAPABILITIES.iter().map(|c| c.to_string())),
            c => {
                set.insert(c.to_owned());
            }
        }
    }
    Ok(set.into_iter().collect())
}

pub(crate) fn rlimits(container: &ContainerInfo, params: &Params<'_>) -> Result<Vec<Rlimit>, SpecError> {
    // Unless told otherwise a container has m3s's own limits, as a Docker
    // container has dockerd's (raising a hard limit needs a capability the
    // container's process no longer has when its runtime sets them).
    let mut out: Vec<Rlimit> = Vec::new();
    let mut put = |kind: String, soft: u64, hard: u64| {
        out.retain(|r| r.kind != kind);
        out.push(Rlimit { kind, hard, soft });
    };
    for u in params.all("ulimit") {
        let (name, values) = u.split_once('=').ok_or_else(|| bad("ulimit", u, "expected name=soft[:hard]"))?;
        let (soft, hard) = values.split_once(':').unwrap_or((values, values));
        let num = |s: &str| -> Result<u64, SpecError> {
            match s.parse::<i64>() {
                Ok(-1) => Ok(u64::MAX),
                Ok(n) if n >= 0 => Ok(n as u64),
                _ => Err(SpecError::UlimitNumber { value: u.to_owned(), number: s.to_owned() }),
            }
        };
        put(format!("RLIMIT_{}", name.to_ascii_uppercase()), num(soft)?, num(hard)?);
    }
    for r in container.rlimit_info.iter().flat_map(|i| i.rlimits.iter()) {
        let kind = r.kind.trim_start_matches("RLMT_").to_ascii_uppercase();
        put(format!("RLIMIT_{kind}"), r.soft.unwrap_or(u64::MAX), r.hard.unwrap_or(u64::MAX));
    }
    Ok(out)
}

/// Docker's sizes: `64m`, `1g`, `512k`, or bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, SpecError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let size = |problem| SpecError::Size { value: s.to_owned(), problem };
    let n: u64 = num.parse().map_err(|_| size(SizeProblem::NotANumber))?;
    let mult = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(size(SizeProblem::Unit(unit.to_owned()))),
    };
    n.checked_mul(mult).ok_or_else(|| size(SizeProblem::TooLarge))
}

/// A relative path that stays inside its base (`a/b`), or `None`.
pub(crate) fn confined(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// A `SANDBOX_PATH` source: a path inside this task's sandbox.
fn sandbox_source(source: &serde_json::Value, sandbox: &Path) -> Result<String, VolumeProblem> {
    if source.get("type").and_then(|t| t.as_str()) != Some("SANDBOX_PATH") {
        return Err(VolumeProblem::NotHostOrSandbox);
    }
    let path = source.get("sandbox_path").and_then(|s| s.get("path")).and_then(|p| p.as_str()).unwrap_or("");
    let rel =
        confined(path).ok_or_else(|| VolumeProblem::LeavesSandbox { field: "sandbox path", path: path.to_owned() })?;
    let full = sandbox.join(rel);
    std::fs::create_dir_all(&full).map_err(|source| VolumeProblem::Create { path: full.clone(), source })?;
    Ok(full.display().to_string())
}

/// The home directory of `uid` in the image's /etc/passwd.
fn home_of(layers: &[PathBuf], uid: u32) -> Option<String> {
    let passwd = image::config::read_top(layers, "etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2] == uid.to_string())
        .map(|f| f[5].to_owned())
}

#[cfg(test)]
mod tests {
    use mesos::v1::{DockerInfo, Environment, EnvironmentVariable, Parameter, Volume};

    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ImageConfig {
            config: image::config::RunConfig {
                entrypoint: entrypoint.map(v),
                cmd: cmd.map(v),
                env: Some(vec!["PATH=/img/bin".into(), "A=image".into()]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn task(kind: ContainerType, command: CommandInfo, params: &[(&str, &str)]) -> TaskInfo {
        TaskInfo {
            command: Some(command),
            container: Some(ContainerInfo {
                kind: kind.clone(),
                docker: (kind == ContainerType::Docker).then(|| DockerInfo {
                    image: "x".into(),
                    parameters: params
                        .iter()
                        .map(|(k, v)| Parameter { key: k.to_string(), value: v.to_string() })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn args(t: &TaskInfo, img: &ImageConfig) -> Result<Vec<String>, SpecError> {
        let p = PathBuf::from("/x");
        build(&SpecInput {
            task: t,
            image: img,
            layers: &[],
            sandbox: &p,
            container_id: "0123456789abcdef",
            agent_env: &[],
            hosts: &p,
            resolv_conf: &p,
            mount_cgroups: false,
            secret_files: &[],
            devices: &[],
            init: None,
            netns: None,
        })
        .map(|s| s.process.args)
    }

    fn argv(value: Option<&str>, arguments: &[&str]) -> CommandInfo {
        CommandInfo {
            shell: false,
            value: value.map(str::to_owned),
            arguments: arguments.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn stop_signals_come_from_the_parameter_then_the_image_for_docker_tasks_only() {
        let mut img = image(None, Some(&["serve"]));
        img.config.stop_signal = Some("SIGQUIT".into());
        let docker = |params: &[(&str, &str)]| task(ContainerType::Docker, argv(None, &[]), params);
        assert_eq!(stop_signal(&docker(&[]), &img).unwrap(), Some(libc::SIGQUIT));
        assert_eq!(stop_signal(&docker(&[("stop-signal", "USR1")]), &img).unwrap(), Some(libc::SIGUSR1));
        assert_eq!(stop_signal(&task(ContainerType::Mesos, argv(None, &[]), &[]), &img).unwrap(), None);
        let bad = stop_signal(&docker(&[("stop-signal", "SIGNOPE")]), &img).unwrap_err().to_string();
        assert!(bad.contains("stop-signal parameter \"SIGNOPE\""), "{bad}");
        assert_eq!(stop_signal(&docker(&[]), &image(None, None)).unwrap(), None);
    }

    #[test]
    fn docker_tasks_run_as_docker_run_would() {
        let img = image(Some(&["/entry"]), Some(&["serve", "--port", "80"]));
        let d = ContainerType::Docker;
        assert_eq!(args(&task(d.clone(), argv(None, &[]), &[]), &img).unwrap(), ["/entry", "serve", "--port", "80"]);
        assert_eq!(args(&task(d.clone(), argv(None, &["migrate"]), &[]), &img).unwrap(), ["/entry", "migrate"]);
        assert_eq!(
            args(&task(d.clone(), argv(None, &[]), &[("entrypoint", "/other")]), &img).unwrap(),
            ["/other"],
            "--entrypoint clears Cmd"
        );
        assert_eq!(
            args(&task(d.clone(), argv(None, &["a"]), &[("entrypoint", "/other")]), &img).unwrap(),
            ["/other", "a"]
        );
        assert_eq!(
            args(&task(d.clone(), CommandInfo::shell("echo $X"), &[]), &img).unwrap(),
            ["/bin/sh", "-c", "echo $X"]
        );
        assert!(
            args(&task(d, argv(None, &[]), &[]), &image(None, None))
                .unwrap_err()
                .to_string()
                .contains("nothing to run")
        );
    }

    #[test]
    fn mesos_tasks_follow_the_unified_containerizers_rules() {
        let img = image(Some(&["/entry"]), Some(&["serve", "--port", "80"]));
        let m = ContainerType::Mesos;
        assert_eq!(args(&task(m.clone(), argv(None, &[]), &[]), &img).unwrap(), ["/entry", "serve", "--port", "80"]);
        assert_eq!(
            args(&task(m.clone(), argv(None, &["x"]), &[]), &img).unwrap(),
            ["/entry", "x"],
            "arguments replace Cmd"
        );
        assert_eq!(
            args(&task(m.clone(), argv(None, &["x"]), &[]), &image(None, Some(&["/bin/app", "d"]))).unwrap(),
            ["/bin/app", "x"]
        );
        assert_eq!(
            args(&task(m.clone(), argv(Some("/bin/ls"), &["ls", "-l"]), &[]), &img).unwrap(),
            ["/bin/ls", "-l"],
            "a value ignores the image"
        );
        assert!(
            args(&task(m, argv(None, &[]), &[]), &image(None, None)).unwrap_err().to_string().contains("No executable")
        );
    }

    #[test]
    fn environment_user_capabilities_and_mounts() {
        let mut t = task(
            ContainerType::Docker,
            CommandInfo {
                environment: Some(Environment {
                    variables: vec![EnvironmentVariable {
                        name: "A".into(),
                        value: Some("task".into()),
                        ..Default::default()
                    }],
                }),
                ..argv(None, &["run"])
            },
            &[
                ("cap-add", "NET_ADMIN"),
                ("cap-drop", "chown"),
                ("ulimit", "nofile=1024:2048"),
                ("shm-size", "128m"),
                ("tmpfs", "/run:size=1m"),
                ("workdir", "/srv"),
            ],
        );
        t.container.as_mut().unwrap().volumes = vec![Volume {
            mode: VolumeMode::Ro,
            container_path: "/data".into(),
            host_path: Some("/host/data".into()),
            ..Default::default()
        }];
        let img = image(None, None);
        let p = PathBuf::from("/sb");
        let agent_env =
            [("MESOS_SANDBOX".to_owned(), "/host/sandbox".to_owned()), ("MESOS_TASK_ID".to_owned(), "t1".to_owned())];
        let spec = build(&SpecInput {
            task: &t,
            image: &img,
            layers: &[],
            sandbox: &p,
            container_id: "0123456789abcdef",
            agent_env: &agent_env,
            hosts: &p,
            resolv_conf: &p,
            mount_cgroups: false,
            secret_files: &[],
            devices: &[],
            init: None,
            netns: None,
        })
        .unwrap();
        let env = &spec.process.env;
        assert!(env.contains(&"A=task".to_owned()) && env.contains(&"PATH=/img/bin".to_owned()), "{env:?}");
        assert!(
            env.contains(&format!("MESOS_SANDBOX={SANDBOX_IN_CONTAINER}"))
                && env.contains(&"MESOS_TASK_ID=t1".to_owned())
        );
        assert!(env.contains(&"HOME=/root".to_owned()) && env.contains(&"HOSTNAME=0123456789ab".to_owned()));
        assert_eq!(
            (spec.process.user.uid, spec.process.cwd.as_str(), spec.hostname.as_str()),
            (0, "/srv", "0123456789ab")
        );
        let caps = &spec.process.capabilities.bounding;
        assert!(caps.contains(&"CAP_NET_ADMIN".to_owned()) && !caps.contains(&"CAP_CHOWN".to_owned()));
        assert!(!caps.contains(&"CAP_MKNOD".to_owned()) && !caps.contains(&"CAP_SYS_ADMIN".to_owned()));
        assert!(spec.process.rlimits.contains(&Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 1024, hard: 2048 }));
        let mount = |dst: &str| spec.mounts.iter().find(|m| m.destination == dst).unwrap_or_else(|| panic!("{dst}"));
        assert!(mount("/dev/shm").options.contains(&"size=134217728".to_owned()));
        assert_eq!(mount("/data").options, ["rbind", "rprivate", "ro"]);
        assert_eq!(mount(SANDBOX_IN_CONTAINER).source, "/sb");
        assert!(mount("/run").options.contains(&"size=1m".to_owned()));
        assert!(spec.linux.masked_paths.contains(&"/proc/kcore".to_owned()));
        assert!(!spec.linux.namespaces.iter().any(|n| n.kind == "network"), "host network until networks come");
    }

    #[test]
    fn privileges_are_what_was_asked_for() {
        let mut t = task(ContainerType::Docker, argv(None, &["x"]), &[]);
        t.container.as_mut().unwrap().docker.as_mut().unwrap().privileged = Some(true);
        let p = PathBuf::from("/x");
        let img = image(None, None);
        let input = SpecInput {
            task: &t,
            image: &img,
            layers: &[],
            sandbox: &p,
            container_id: "c",
            agent_env: &[],
            hosts: &p,
            resolv_conf: &p,
            mount_cgroups: false,
            secret_files: &[],
            devices: &[],
            init: None,
            netns: None,
        };
        let spec = build(&input).unwrap();
        assert!(spec.process.capabilities.bounding.contains(&"CAP_SYS_ADMIN".to_owned()));
        assert!(spec.linux.masked_paths.is_empty());
        let bad = task(ContainerType::Docker, argv(None, &["x"]), &[("sysctl", "net.ipv4.ip_forward=1")]);
        let input = SpecInput { task: &bad, ..input };
        assert!(matches!(build(&input).unwrap_err(), SpecError::HostSysctl(k) if k == "net.ipv4.ip_forward"));
        let bad = task(ContainerType::Docker, argv(None, &["x"]), &[("cap-add", "FLY")]);
        let input = SpecInput { task: &bad, ..input };
        assert!(matches!(build(&input).unwrap_err(), SpecError::UnknownCapability(c) if c == "CAP_FLY"));

        // init=true: the host's tini at /sbin/docker-init, read-only, as PID 1.
        let with_init = task(ContainerType::Docker, argv(None, &["serve"]), &[("init", "true")]);
        let input = SpecInput { task: &with_init, ..input };
        assert!(
            matches!(build(&input).unwrap_err(), SpecError::NoInit),
            "no init on the host: refused, naming the package"
        );
        let tini = PathBuf::from("/usr/bin/tini-static");
        let spec = build(&SpecInput { init: Some(&tini), ..input }).unwrap();
        assert_eq!(spec.process.args, ["/sbin/docker-init", "--", "serve"]);
        let mount = spec.mounts.iter().find(|m| m.destination == "/sbin/docker-init").expect("the init's mount");
        assert!(mount.source == "/usr/bin/tini-static" && mount.options.contains(&"ro".to_owned()));
    }
}
