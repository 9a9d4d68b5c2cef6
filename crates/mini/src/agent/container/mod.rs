//! Containers on the embedded agent: what Apache Mesos's unified
//! containerizer runs with `--image_providers=docker`, and `DOCKER` tasks
//! run the same native way (no Docker daemon).
//!
//! For a task with an image this module pulls the image into the store
//! (`crate image`), writes an OCI bundle (`<work_dir>/containers/<id>/`:
//! `config.json` from [`spec::build`], `hosts`, `resolv.conf`, the overlay's
//! `upper` and `work` directories and the `rootfs` mount point) and says how
//! the task's supervisor starts it: the OCI runtime's `run`, in a mount
//! namespace of its own where the image's layers are mounted with overlayfs.
//! The supervisor stays the runtime's parent, so a container outlives m3s
//! and is re-adopted like any task; the runtime (crun by default) is only
//! ever executed, never kept running.

pub mod oci;
pub mod spec;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use image::{Reference, RegistryClient, Store};
use mesos::v1::{ContainerType, TaskInfo};

use crate::agent::network::Attachment;
use crate::agent::runtime::{ContainerSetup, Overlay};

/// How the agent runs containers.
#[derive(Clone)]
pub struct ContainerConfig {
    /// The agent's work directory: the image store is `images/`, bundles are `containers/`.
    pub work_dir: PathBuf,
    /// `--oci-runtime`: crun or runc; `None` finds crun, then runc, on PATH.
    pub oci_runtime: Option<PathBuf>,
    /// How root filesystems are made; `None`: overlay where it mounts, else copy.
    pub backend: Option<RootfsBackend>,
    pub registry: image::ClientConfig,
    /// Container networks (CNI) and their DNS.
    pub network: crate::agent::network::NetworkConfig,
}

/// How a container's root filesystem is made from its image's layers (Mesos's
/// `--image_provisioner_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsBackend {
    /// The layers mounted with overlayfs in the container's namespace, one
    /// upper directory per container: nothing is copied.
    Overlay,
    /// The layers copied into the bundle, whiteouts applied: for filesystems
    /// overlayfs cannot use as its upper directory.
    Copy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected overlay or copy")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for RootfsBackend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, UnknownBackend> {
        match s {
            "overlay" => Ok(RootfsBackend::Overlay),
            "copy" => Ok(RootfsBackend::Copy),
            other => Err(UnknownBackend(other.to_owned())),
        }
    }
}

/// Why there is no OCI runtime to run containers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRuntime {
    #[error("--oci-runtime {}: no such program", .0.display())]
    Missing(PathBuf),
    #[error(
        "no OCI runtime to run containers: install Debian's crun package (apt-get install crun), or pass --oci-runtime PATH"
    )]
    NotInstalled,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    NoRuntime(#[from] NoRuntime),
    #[error("the registry client: {0}")]
    Client(#[source] image::registry::RegistryError),
    #[error("the task names no image")]
    NoImage,
    #[error(transparent)]
    Reference(#[from] image::reference::ReferenceError),
    #[error("image {0:?}: it is not in the image store and the pull policy is `never` (`m3s images pull` brings it)")]
    NotInStore(String),
    #[error("pulling {image}: {source}")]
    Pull { image: String, source: Box<image::PullError> },
    #[error("the container's configuration: {0}")]
    Spec(#[from] spec::SpecError),
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// A prepared container: the runtime's argv for the supervisor, and its setup.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub program: String,
    pub args: Vec<String>,
    pub setup: ContainerSetup,
}

pub struct Containers {
    store: Store,
    client: RegistryClient,
    /// The OCI runtime, or why there is none (reported when an image task arrives).
    runtime: Result<PathBuf, NoRuntime>,
    /// The runtime's state (`--root`).
    state_root: PathBuf,
    bundles: PathBuf,
    /// A cgroup2 hierarchy mounted beside cgroup v1 (hybrid hosts): crun refuses
    /// to run there, so each container's namespace detaches it.
    hybrid_cgroup2: Option<PathBuf>,
    backend: RootfsBackend,
    /// A static init for `init=true` (Debian's tini-static, which Docker's
    /// docker-init also is), if installed.
    init: Option<PathBuf>,
}

impl std::fmt::Debug for ContainerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerConfig")
            .field("work_dir", &self.work_dir)
            .field("oci_runtime", &self.oci_runtime)
            .field("backend", &self.backend)
            .field("insecure_registries", &self.registry.insecure_registries)
            .finish()
    }
}

impl Containers {
    pub fn new(config: ContainerConfig) -> Result<Containers, ContainerError> {
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ContainerError::Io { action, path, source }
        };
        let images = config.work_dir.join("images");
        let store = Store::open(&images).map_err(io("opening the image store", &images))?;
        let client = RegistryClient::new(config.registry).map_err(ContainerError::Client)?;
        let runtime = match config.oci_runtime {
            Some(p) if p.is_file() => Ok(p),
            Some(p) => Err(NoRuntime::Missing(p)),
            None => image::build::find_program("crun")
                .or_else(|| image::build::find_program("runc"))
                .ok_or(NoRuntime::NotInstalled),
        };
        let bundles = config.work_dir.join("containers");
        std::fs::create_dir_all(&bundles).map_err(io("creating", &bundles))?;
        let state_root = config.work_dir.join("meta/oci");
        std::fs::create_dir_all(&state_root).map_err(io("creating", &state_root))?;
        let backend = match config.backend {
            Some(backend) => backend,
            None => match overlay_mounts(&bundles) {
                Ok(()) => RootfsBackend::Overlay,
                Err(e) => {
                    tracing::warn!(
                        "overlayfs cannot mount under {} ({e}): containers' root filesystems are copies of their layers",
                        bundles.display()
                    );
                    RootfsBackend::Copy
                }
            },
        };
        let init = image::build::find_program("tini-static");
        Ok(Containers { store, client, runtime, state_root, bundles, hybrid_cgroup2: hybrid_cgroup2(), backend, init })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether a task runs in a container (it names an image).
    pub fn wants_image(task: &TaskInfo) -> bool {
        image_name(task).is_some()
    }

    /// Pulls the task's image (unless it is here and no pull was forced),
    /// writes its bundle and says how to start it.
    pub async fn prepare(
        &self,
        task: &TaskInfo,
        container_id: &str,
        sandbox: &Path,
        agent_env: &[(String, String)],
        network: Option<&Attachment>,
    ) -> Result<Prepared, ContainerError> {
        let runtime = self.runtime.clone()?;
        let name = image_name(task).ok_or(ContainerError::NoImage)?;
        let reference: Reference = name.parse()?;
        let pull = Pull::of(task);
        let image = match (self.store.get(&reference), pull) {
            (Some(image), Pull::Missing | Pull::Never) => image,
            (None, Pull::Never) => {
                return Err(ContainerError::NotInStore(reference.to_string()));
            }
            _ => {
                tracing::info!(image = %reference, container_id, "pulling");
                let pulled = self.store.pull(&self.client, &reference, &|_| {}).await;
                pulled
                    .map_err(|source| ContainerError::Pull { image: reference.to_string(), source: Box::new(source) })?
            }
        };
        let layers: Vec<PathBuf> = image.layers.iter().map(|l| self.store.layer_dir(l)).collect();

        let bundle = self.bundles.join(container_id);
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ContainerError::Io { action, path, source }
        };
        let dirs: &[&str] = match self.backend {
            RootfsBackend::Overlay => &["rootfs", "upper", "work"],
            RootfsBackend::Copy => &["rootfs"],
        };
        for dir in dirs {
            std::fs::create_dir_all(bundle.join(dir)).map_err(io("creating", &bundle.join(dir)))?;
        }
        // m3s's umask makes its files private; these are the container's: its `/`
        // (the upper directory's mode is the root's) and the files every user reads.
        let public = |path: &Path, mode: u32| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io("setting the mode of", path))
        };
        match self.backend {
            RootfsBackend::Overlay => public(&bundle.join("upper"), 0o755)?,
            RootfsBackend::Copy => {
                let (from, to) = (layers.clone(), bundle.join("rootfs"));
                let copied = tokio::task::spawn_blocking(move || image::flatten::flatten(&from, &to)).await;
                copied
                    .map_err(std::io::Error::other)
                    .and_then(|r| r)
                    .map_err(io("copying the image's layers into", &bundle.join("rootfs")))?;
                public(&bundle.join("rootfs"), 0o755)?;
            }
        }
        let hosts = bundle.join("hosts");
        let hostname = task
            .container
            .as_ref()
            .and_then(|c| c.hostname.clone())
            .unwrap_or_else(|| container_id.chars().take(12).collect());
        let names = spec::name_params(task)?;
        std::fs::write(&hosts, hosts_file(&hostname, &names, network)).map_err(io("writing", &hosts))?;
        public(&hosts, 0o644)?;
        let resolv_conf = bundle.join("resolv.conf");
        let nameserver = network.and_then(|n| n.nameserver);
        std::fs::write(&resolv_conf, resolv_conf_file(&names, nameserver, network.is_some()))
            .map_err(io("writing", &resolv_conf))?;
        public(&resolv_conf, 0o644)?;
        // A writable volume's missing directory is made, as `docker run -v` makes
        // it (named volumes start that way); a read-only one must exist (a secret, a config).
        for (i, v) in task.container.iter().flat_map(|c| c.volumes.iter()).enumerate() {
            let Some(h) = &v.host_path else { continue };
            if Path::new(h).exists() {
                continue;
            }
            if v.mode == mesos::v1::VolumeMode::Ro {
                let problem = spec::VolumeProblem::MissingReadOnly {
                    host_path: h.clone(),
                    container_path: v.container_path.clone(),
                };
                return Err(ContainerError::Spec(spec::SpecError::Volume { index: i, problem }));
            }
            std::fs::create_dir_all(h).map_err(io("creating the volume", Path::new(h)))?;
        }
        let secret_files = write_secrets(task, &bundle)?;
        let devices = host_devices(task)?;
        let spec = spec::build(&spec::SpecInput {
            task,
            image: &image.config,
            layers: &layers,
            sandbox,
            container_id,
            agent_env,
            hosts: &hosts,
            resolv_conf: &resolv_conf,
            mount_cgroups: self.hybrid_cgroup2.is_none(),
            secret_files: &secret_files,
            devices: &devices,
            init: self.init.as_deref(),
            netns: network.map(|n| n.netns.as_path()),
        })?;
        // The sandbox belongs to whoever the container runs as, as Mesos gives it to the task's user.
        let (uid, gid) = (spec.process.user.uid, spec.process.user.gid);
        rustix::fs::chown(sandbox, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| ContainerError::Io {
                action: "giving the sandbox to the container's user",
                path: sandbox.to_owned(),
                source: e.into(),
            })?;
        let config_path = bundle.join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&spec).expect("specs serialize"))
            .map_err(io("writing", &config_path))?;
        // What the container uses, so that `m3s images prune` leaves it alone.
        let in_use = bundle.join("image.json");
        std::fs::write(
            &in_use,
            serde_json::to_vec(&serde_json::json!({"reference": image.reference, "layers": image.layers}))
                .expect("json"),
        )
        .map_err(io("writing", &in_use))?;

        let program = runtime.display().to_string();
        let root = self.state_root.display().to_string();
        let crun = runtime.file_name().is_some_and(|n| n == "crun");
        let mut args = vec![program.clone(), "--root".into(), root.clone()];
        if crun {
            // m3s's own cgroups hold the container (the supervisor joins them before exec).
            args.push("--cgroup-manager=disabled".into());
        }
        args.extend(["run".into(), "--bundle".into(), bundle.display().to_string(), container_id.to_owned()]);
        let setup = ContainerSetup {
            detach: self.hybrid_cgroup2.iter().cloned().collect(),
            overlay: (self.backend == RootfsBackend::Overlay).then(|| Overlay {
                lower_root: self.store.root().join("layers"),
                lower: image.layers.iter().map(|l| format!("sha256/{}", l.hex())).collect(),
                upper: bundle.join("upper"),
                work: bundle.join("work"),
                target: bundle.join("rootfs"),
            }),
            after_exit: vec![
                program.clone(),
                "--root".into(),
                root.clone(),
                "delete".into(),
                "--force".into(),
                container_id.to_owned(),
            ],
            // As the container's process runs (crun exec would use root and `/`),
            // as docker exec and Docker's health checks do.
            exec: vec![
                program.clone(),
                "--root".into(),
                root,
                "exec".into(),
                "--user".into(),
                format!("{}:{}", spec.process.user.uid, spec.process.user.gid),
                "--cwd".into(),
                spec.process.cwd.clone(),
                container_id.to_owned(),
            ],
            stop_signal: spec::stop_signal(task, &image.config)?,
            usage_of: None,
        };
        Ok(Prepared { program, args, setup })
    }

    /// Removes a container's bundle (its upper directory goes with it).
    pub fn remove(&self, container_id: &str) {
        let bundle = self.bundles.join(container_id);
        if bundle.exists()
            && let Err(e) = std::fs::remove_dir_all(&bundle)
        {
            tracing::warn!(container_id, error = %e, "removing the container's bundle");
        }
    }

    /// Removes the bundles of containers that are not in `live`.
    pub fn remove_all_but(&self, live: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(&self.bundles) else { return };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&id) {
                self.remove(&id);
            }
        }
    }
}

/// The values of SECRET volumes (Mesos's `volume/secret` form) as files in
/// the bundle, readable by the container's user, mounted read-only.
pub(crate) fn write_secrets(task: &TaskInfo, bundle: &Path) -> Result<Vec<(usize, PathBuf)>, ContainerError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    for (i, v) in task.container.iter().flat_map(|c| c.volumes.iter()).enumerate() {
        let Some(source) = v.source.as_ref().filter(|s| s.get("type").and_then(|t| t.as_str()) == Some("SECRET"))
        else {
            continue;
        };
        let bytes = crate::agent::secret_value(source.get("secret").unwrap_or(&serde_json::Value::Null))
            .map_err(|e| spec::SpecError::Volume { index: i, problem: e.into() })?;
        let dir = bundle.join("secrets");
        std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            action: "creating",
            path: dir.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        let path = dir.join(i.to_string());
        std::fs::write(&path, bytes).map_err(|source| ContainerError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444));
        out.push((i, path));
    }
    Ok(out)
}

/// `device` parameters (`/dev/fuse[:/dev/fuse[:rwm]]`): the host device's kind and numbers.
fn host_devices(task: &TaskInfo) -> Result<Vec<oci::Device>, ContainerError> {
    use rustix::fs::FileType;
    let mut out = Vec::new();
    for p in task
        .container
        .iter()
        .flat_map(|c| c.docker.iter())
        .flat_map(|d| d.parameters.iter())
        .filter(|p| p.key == "device")
    {
        let mut parts = p.value.split(':');
        let host = parts.next().unwrap_or("");
        let inside = parts.next().filter(|s| s.starts_with('/')).unwrap_or(host);
        let bad = |problem| spec::SpecError::Device { value: p.value.clone(), problem };
        let st = rustix::fs::stat(host).map_err(|e| bad(e.into()))?;
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice => "c",
            FileType::BlockDevice => "b",
            _ => return Err(bad(spec::DeviceProblem::NotADevice).into()),
        };
        out.push(oci::Device {
            path: inside.to_owned(),
            kind: kind.into(),
            major: i64::from(rustix::fs::major(st.st_rdev)),
            minor: i64::from(rustix::fs::minor(st.st_rdev)),
            file_mode: Some(st.st_mode & 0o777),
            uid: 0,
            gid: 0,
        });
    }
    Ok(out)
}

/// The image a task names, whichever containerizer it asks for.
fn image_name(task: &TaskInfo) -> Option<String> {
    let c = task.container.as_ref()?;
    match c.kind {
        ContainerType::Docker => c.docker.as_ref().map(|d| d.image.clone()),
        _ => c.mesos.as_ref()?.image.as_ref()?.docker.as_ref().map(|d| d.name.clone()),
    }
    .filter(|n| !n.is_empty())
}

/// When to pull: Docker's `pull` parameter (compose's `pull_policy`), else
/// `force_pull_image` for DOCKER or `cached: false` for MESOS images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

impl Pull {
    pub(crate) fn of(task: &TaskInfo) -> Pull {
        let Some(c) = task.container.as_ref() else { return Pull::Missing };
        let param = c.docker.iter().flat_map(|d| d.parameters.iter()).rev().find(|p| p.key == "pull");
        match param.map(|p| p.value.as_str()) {
            Some("always") => return Pull::Always,
            Some("never") => return Pull::Never,
            Some(_) => return Pull::Missing,
            None => {}
        }
        let forced = match c.kind {
            ContainerType::Docker => c.docker.as_ref().and_then(|d| d.force_pull_image).unwrap_or(false),
            _ => c.mesos.as_ref().and_then(|m| m.image.as_ref()).is_some_and(|i| !i.cached),
        };
        if forced { Pull::Always } else { Pull::Missing }
    }
}

/// `/sys/fs/cgroup/unified` when cgroup v1 and a cgroup2 hierarchy are both mounted.
/// Whether overlayfs mounts with its upper directory under `dir`: tried in a
/// thread with a mount namespace of its own, so nothing shows outside it.
fn overlay_mounts(dir: &Path) -> Result<(), OverlayProbeError> {
    let probe = dir.join(format!(".overlay-probe-{}", std::process::id()));
    let paths: Vec<PathBuf> = ["lower", "upper", "work", "merged"].iter().map(|d| probe.join(d)).collect();
    for p in &paths {
        std::fs::create_dir_all(p).map_err(|source| OverlayProbeError::Create { path: p.clone(), source })?;
    }
    let options =
        format!("lowerdir={},upperdir={},workdir={}", paths[0].display(), paths[1].display(), paths[2].display());
    let target = paths[3].clone();
    let options = std::ffi::CString::new(options).map_err(|_| OverlayProbeError::NulByte)?;
    let result = std::thread::spawn(move || -> Result<(), OverlayProbeError> {
        // This thread's own namespace (unshare applies to the calling thread),
        // private so the mount propagates nowhere; the thread ends with it.
        // SAFETY: NEWNS also unshares this thread's filesystem attributes (cwd,
        // root, umask), which nothing in this short-lived thread relies on.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
            .map_err(|e| OverlayProbeError::Mount { step: "unshare", source: e })?;
        rustix::mount::mount_change(
            c"/",
            rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
        )
        .map_err(|e| OverlayProbeError::Mount { step: "making mounts private", source: e })?;
        rustix::mount::mount("overlay", &target, "overlay", rustix::mount::MountFlags::empty(), options.as_c_str())
            .map_err(|e| OverlayProbeError::Mount { step: "mounting overlayfs", source: e })?;
        let _ = rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH);
        Ok(())
    })
    .join()
    .unwrap_or(Err(OverlayProbeError::Panicked));
    let _ = std::fs::remove_dir_all(&probe);
    result
}

/// Why overlayfs could not be mounted in the probe.
#[derive(Debug, thiserror::Error)]
enum OverlayProbeError {
    #[error("creating {}: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("a path with a NUL byte")]
    NulByte,
    #[error("{step}: {source}")]
    Mount { step: &'static str, source: rustix::io::Errno },
    #[error("the probe panicked")]
    Panicked,
}

fn hybrid_cgroup2() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v1 = false;
    let mut v2 = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(point), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else { continue };
        match *fstype {
            "cgroup" => v1 = true,
            "cgroup2" if *point != "/sys/fs/cgroup" => v2 = Some(PathBuf::from(point)),
            _ => {}
        }
    }
    if v1 { v2 } else { None }
}

/// A container's /etc/hosts: on a network of its own, localhost and its
/// address under its hostname, as Docker writes it; on the host's network,
/// the host's file and the hostname on loopback. `add-host` lines last.
fn hosts_file(hostname: &str, names: &spec::NameParams, network: Option<&Attachment>) -> String {
    let mut out = match network {
        Some(n) => {
            let mut own = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_owned();
            if let Some(ip) = n.address() {
                own.push_str(&format!("{ip}\t{hostname}\n"));
            }
            own
        }
        None => {
            let host = std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".into());
            format!("{host}\n127.0.0.1\t{hostname}\n")
        }
    };
    for (name, ip) in &names.hosts {
        // Docker's `host-gateway`: the host as the container reaches it.
        let ip = match (ip.as_str(), network.and_then(Attachment::gateway)) {
            ("host-gateway", Some(gateway)) => gateway.to_string(),
            ("host-gateway", None) => "127.0.0.1".to_owned(),
            (ip, _) => ip.to_owned(),
        };
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// A container's resolv.conf: the `dns` servers asked for, else m3s's DNS
/// server on its network, else the host's resolvers (off the host's
/// network, only those a container can reach: not loopback ones).
fn resolv_conf_file(names: &spec::NameParams, nameserver: Option<std::net::Ipv4Addr>, own_network: bool) -> String {
    let host = host_resolv_conf();
    let mut out = String::new();
    if !names.dns.is_empty() {
        out.extend(names.dns.iter().map(|s| format!("nameserver {s}\n")));
    } else if let Some(ns) = nameserver {
        out.push_str(&format!("nameserver {ns}\n"));
    } else {
        let servers = crate::dns::nameservers(&host);
        out.extend(
            servers
                .iter()
                .filter(|s| !(own_network && s.ip().is_loopback()))
                .map(|s| format!("nameserver {}\n", s.ip())),
        );
    }
    let host_search = host.lines().find_map(|l| l.strip_prefix("search ")).map(str::to_owned);
    match (names.dns_search.is_empty(), host_search) {
        (false, _) => out.push_str(&format!("search {}\n", names.dns_search.join(" "))),
        (true, Some(search)) if nameserver.is_none() => out.push_str(&format!("search {search}\n")),
        _ => {}
    }
    if !names.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", names.dns_options.join(" ")));
    }
    out
}

/// The host's resolvers; systemd-resolved's stub (127.0.0.53) is replaced by
/// the servers behind it, which a container can reach.
fn host_resolv_conf() -> String {
    let stub = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if stub.contains("127.0.0.53")
        && let Ok(real) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
    {
        return real;
    }
    stub
}
