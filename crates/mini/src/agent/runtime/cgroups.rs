//! Resource limits with Linux control groups, v1 and v2.
//!
//! # Detection (at [`Runtime::new`](super::Runtime::new))
//!
//! Under the cgroup root (`/sys/fs/cgroup` unless
//! [`RuntimeConfig::cgroup_root`](super::RuntimeConfig::cgroup_root) says
//! otherwise):
//!
//! - **cgroup v2** (the unified hierarchy, as on a stock Debian 12 host): the
//!   root holds `cgroup.controllers`. v2 has the *no internal processes*
//!   rule: a cgroup other than the root can hand controllers to its children
//!   (`cgroup.subtree_control`) only while no process lives in it. So:
//!   1. **Delegated** (a systemd service with `Delegate=yes`, or any cgroup
//!      m3s has to itself): if the memory controller is available in m3s's
//!      own cgroup `B` (`B/cgroup.controllers`) and no other process lives
//!      there, m3s moves itself into the leaf `B/m3s-agent` (its supervisors
//!      are then born there too), enables `+memory +cpu` in
//!      `B/cgroup.subtree_control`, and creates `B/m3s`. A restarted m3s that
//!      finds itself in `B/m3s-agent` already (or systemd's
//!      `DelegateSubgroup=m3s-agent`) uses `B` again.
//!   2. **The root** (m3s runs as root, e.g. from a shell whose session cgroup
//!      it shares): the root cgroup is exempt from the rule, so `+memory +cpu`
//!      in `/sys/fs/cgroup/cgroup.subtree_control` and `/sys/fs/cgroup/m3s`.
//!
//!   Either way `m3s/cgroup.subtree_control` gets `+memory +cpu` and each
//!   container is the leaf `m3s/<container_id>`. The cpu controller is
//!   optional (memory alone still limits and accounts memory).
//! - **cgroup v1** (as on hybrid hosts: `memory/`, `cpu/`, `cpuacct/`, which
//!   may be one `cpu,cpuacct` hierarchy behind symlinks, and an empty
//!   cgroup2 at `unified/`): `<hierarchy>/m3s/<container_id>` in the memory
//!   hierarchy and, when present, the cpu and cpuacct ones, at the root of
//!   each hierarchy as Mesos's `--cgroups_root=mesos` (not under m3s's own
//!   cgroup, which a service manager may remove or limit).
//!
//! Creating (and removing) a probe cgroup proves the hierarchy writable. When
//! neither works the runtime reports [`CgroupsStatus::Unavailable`] with the
//! reasons, and tasks run without limits, with accounting from `/proc`.
//!
//! # Per container
//!
//! m3s creates the container's cgroups and writes the limits before its
//! supervisor starts (Mesos's values): `cpu.shares` = 1024 × cpus (at least
//! 2) on v1, `cpu.weight` = 100 × cpus (100 being the weight of one CPU's
//! worth, clamped to 1..=10000) on v2; a CFS quota (`cpu.cfs_quota_us` /
//! `cpu.max`, period 100 ms, at least 1 ms) only for a hard CPU limit; the
//! memory limit (at least 32 MB, as Mesos's minimum) as `memory.limit_in_bytes`
//! (+ `memory.memsw.limit_in_bytes` where swap accounting exists) /
//! `memory.max` (+ `memory.swap.max` = 0), the request as the soft limit
//! (v1 `memory.soft_limit_in_bytes`), and on v2 `memory.oom.group` = 1 so an
//! OOM kill takes the whole container, as Mesos destroys it.
//!
//! The supervisor then starts the task, which joins the cgroups in its child
//! process before `exec` (`pre_exec` writes `0`, "myself", to each
//! `cgroup.procs`), so every process of the task is inside from its first
//! instruction, and the supervisor itself never is: an OOM kill cannot hit
//! it. After the task ended, the supervisor reads the OOM counters (v1
//! `memory.oom_control` `oom_kill`, else `memory.failcnt` with a SIGKILL; v2
//! `memory.events` `oom_kill`) to report a memory limitation, kills anything
//! left in the cgroups and removes them. m3s removes them too when it
//! forgets a container (the supervisor may have been killed).
//!
//! # Testing
//!
//! The v1 code runs for real in the runtime's integration tests on hybrid
//! hosts (as root). The v2 code cannot run on such a host (its cgroup2 has
//! no controllers): its detection and file writes are unit-tested below
//! against temporary directories laid out like a v2 hierarchy (a plain
//! directory accepts any file, so only what m3s writes is checked, not what
//! the kernel would do with it).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Limits;

/// Mesos's minimum memory limit for a container.
pub(crate) const MIN_MEMORY_BYTES: u64 = 32 << 20;
const MIN_CPU_SHARES: u64 = 2;
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const CFS_PERIOD_US: u64 = 100_000;
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// The parent of every container cgroup, in each hierarchy.
const HIERARCHY_NAME: &str = "m3s";
/// The v2 leaf m3s moves itself into when it delegates its own cgroup.
const AGENT_LEAF: &str = "m3s-agent";
/// Values at or above this in a v1 limit file mean "unlimited".
const V1_UNLIMITED: u64 = 1 << 62;

/// What the runtime found for resource limits at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupsStatus {
    /// cgroup v1: the `m3s` cgroup of each hierarchy in use (memory always;
    /// cpu and cpuacct when those hierarchies are mounted and writable).
    V1 { memory: PathBuf, cpu: Option<PathBuf>, cpuacct: Option<PathBuf> },
    /// cgroup v2: the `m3s` cgroup containers are created in, and whether
    /// the cpu controller is enabled there (memory always is).
    V2 { path: PathBuf, cpu: bool },
    /// No writable hierarchy: tasks run without limits and their usage comes
    /// from /proc. The reason says what was tried.
    Unavailable(String),
}

impl CgroupsStatus {
    pub fn is_available(&self) -> bool {
        !matches!(self, CgroupsStatus::Unavailable(_))
    }
}

impl fmt::Display for CgroupsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupsStatus::V1 { memory, cpu, cpuacct } => {
                write!(f, "cgroup v1: memory limits in {}", memory.display())?;
                match cpu {
                    Some(cpu) => write!(f, ", cpu shares and quotas in {}", cpu.display())?,
                    None => f.write_str(", no cpu hierarchy (cpu limits not enforced)")?,
                }
                if let Some(cpuacct) = cpuacct {
                    write!(f, ", cpu accounting in {}", cpuacct.display())?;
                }
                Ok(())
            }
            CgroupsStatus::V2 { path, cpu: true } => {
                write!(f, "cgroup v2: memory and cpu limits in {}", path.display())
            }
            CgroupsStatus::V2 { path, cpu: false } => {
                write!(
                    f,
                    "cgroup v2: memory limits in {} (cpu controller unavailable: cpu limits not enforced)",
                    path.display()
                )
            }
            CgroupsStatus::Unavailable(reason) => write!(
                f,
                "cgroups unavailable, tasks run without cpu and memory limits and their usage comes from /proc: {reason}"
            ),
        }
    }
}

/// Where container cgroups are created: the `m3s` cgroup(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    V1 { memory: PathBuf, cpu: Option<PathBuf>, cpuacct: Option<PathBuf> },
    V2 { path: PathBuf, cpu: bool },
}

/// The cgroups of one container, recorded in its `launch.json` so that the
/// supervisor (and a restarted m3s) finds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskCgroups {
    /// `cpuacct` may equal `cpu` (one `cpu,cpuacct` hierarchy).
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
    V2 {
        path: PathBuf,
    },
}

/// Why cgroups cannot be used, or a container's could not be made or removed.
/// Each names the file or directory and the rule.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("writing '{value}' to {}: {source}", path.display())]
    Write { value: String, path: PathBuf, source: io::Error },
    #[error("cgroup {} exists already and could not be replaced: {source}", path.display())]
    Leftover { path: PathBuf, source: io::Error },
    #[error("the memory controller is not delegated to m3s's cgroup {}", .0.display())]
    NotDelegated(PathBuf),
    #[error("the memory controller is not available")]
    NoMemoryController,
    #[error(
        "m3s's cgroup {} also holds other processes ({others}), so it cannot hand controllers to child \
         cgroups (cgroup v2's no-internal-processes rule); run m3s in a cgroup of its own, such as a \
         systemd service with Delegate=yes",
        base.display()
    )]
    SharedCgroup { base: PathBuf, others: String },
    #[error(
        "no cgroup hierarchy with the memory controller under {}: neither cgroup v2 (no {}) nor v1 (no {})",
        root.display(), controllers.display(), marker.display()
    )]
    NoHierarchy { root: PathBuf, controllers: PathBuf, marker: PathBuf },
    #[error("cgroup v1: {0}")]
    V1(Box<CgroupError>),
    /// Every way of using cgroup v2 that was tried, and why each failed.
    #[error("cgroup v2 at {}: {}", root.display(), join(reasons))]
    V2 { root: PathBuf, reasons: Vec<CgroupError> },
    /// Cgroups of a container that could not all be removed.
    #[error("{}", join(.0))]
    Several(Vec<CgroupError>),
}

fn join(errors: &[CgroupError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { action, path, source }
}

/// Detects the hierarchy under `root` for this process (see the module docs).
pub(crate) fn detect(root: &Path) -> Result<Hierarchy, CgroupError> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    detect_at(root, &own, std::process::id())
}

/// [`detect`] with m3s's `/proc/self/cgroup` and pid given (for tests).
fn detect_at(root: &Path, proc_self_cgroup: &str, pid: u32) -> Result<Hierarchy, CgroupError> {
    let controllers = root.join("cgroup.controllers");
    if controllers.is_file() {
        let own = proc_self_cgroup.lines().find_map(|line| line.strip_prefix("0::")).unwrap_or("/");
        return detect_v2(root, own.trim(), pid)
            .map_err(|reasons| CgroupError::V2 { root: root.to_path_buf(), reasons });
    }
    let memory = root.join("memory");
    if memory.join("memory.limit_in_bytes").is_file() {
        return detect_v1(root);
    }
    Err(CgroupError::NoHierarchy {
        root: root.to_path_buf(),
        controllers,
        marker: memory.join("memory.limit_in_bytes"),
    })
}

fn detect_v1(root: &Path) -> Result<Hierarchy, CgroupError> {
    let memory = create_parent(&root.join("memory")).map_err(|e| CgroupError::V1(Box::new(e)))?;
    let hierarchy = |name: &str, marker: &str| -> Option<PathBuf> {
        let mount = root.join(name);
        if !mount.join(marker).is_file() {
            return None;
        }
        match create_parent(&mount) {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::warn!(%error, "cgroup v1 {name} hierarchy not usable");
                None
            }
        }
    };
    let cpu = hierarchy("cpu", "cpu.shares");
    // `cpu` and `cpuacct` are often one hierarchy (`cpu,cpuacct`) behind
    // two symlinks: one cgroup then serves both.
    let same = |a: &Path, b: &Path| fs::canonicalize(a).ok().is_some_and(|a| fs::canonicalize(b).ok() == Some(a));
    let cpuacct = match &cpu {
        Some(cpu) if same(&root.join("cpu"), &root.join("cpuacct")) => Some(cpu.clone()),
        _ => hierarchy("cpuacct", "cpuacct.usage"),
    };
    Ok(Hierarchy::V1 { memory, cpu, cpuacct })
}

/// Creates `<mount>/m3s` (if needed) and proves it writable with a probe.
fn create_parent(mount: &Path) -> Result<PathBuf, CgroupError> {
    let path = mount.join(HIERARCHY_NAME);
    mkdir(&path).map_err(io_error("creating", &path))?;
    probe(&path)?;
    Ok(path)
}

fn mkdir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Creates and removes a child cgroup of `parent`: the only sure test that
/// container cgroups can be made there.
fn probe(parent: &Path) -> Result<(), CgroupError> {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = parent.join(format!(".probe-{}-{serial}", std::process::id()));
    let _ = fs::remove_dir(&path);
    fs::create_dir(&path).map_err(io_error("creating a cgroup in", parent))?;
    remove_dir(&path).map_err(io_error("removing", &path))
}

fn detect_v2(root: &Path, own: &str, pid: u32) -> Result<Hierarchy, Vec<CgroupError>> {
    let mut reasons = Vec::new();
    let own = own.trim_start_matches('/');
    if !own.is_empty() {
        match delegated_v2(root, own, pid) {
            Ok(hierarchy) => return Ok(hierarchy),
            Err(reason) => reasons.push(reason),
        }
    }
    match root_v2(root) {
        Ok(hierarchy) => return Ok(hierarchy),
        Err(reason) => reasons.push(reason),
    }
    Err(reasons)
}

/// The delegated case: m3s's own cgroup `B` (its parent when m3s is in
/// `B/m3s-agent` already).
fn delegated_v2(root: &Path, own: &str, pid: u32) -> Result<Hierarchy, CgroupError> {
    let own_dir = root.join(own);
    let in_leaf = own_dir.file_name().is_some_and(|name| name == AGENT_LEAF);
    let base = if in_leaf { own_dir.parent().unwrap_or(root).to_path_buf() } else { own_dir };
    let controllers =
        read_words(&base.join("cgroup.controllers")).map_err(io_error("reading", &base.join("cgroup.controllers")))?;
    if !controllers.iter().any(|c| c == "memory") {
        return Err(CgroupError::NotDelegated(base));
    }
    let mut moved = None;
    if !in_leaf {
        let procs = base.join("cgroup.procs");
        let others: Vec<String> = read_words(&procs)
            .map_err(io_error("reading", &procs))?
            .into_iter()
            .filter(|p| p.parse::<u32>().ok() != Some(pid))
            .collect();
        if !others.is_empty() {
            return Err(CgroupError::SharedCgroup { base, others: others.join(" ") });
        }
        let leaf = base.join(AGENT_LEAF);
        mkdir(&leaf).map_err(io_error("creating", &leaf))?;
        write(&leaf.join("cgroup.procs"), &pid.to_string())?;
        moved = Some(leaf);
    }
    let result = enable_controllers(&base, &controllers).and_then(|base_cpu| {
        let path = base.join(HIERARCHY_NAME);
        mkdir(&path).map_err(io_error("creating", &path))?;
        let cpu = enable_controllers(&path, &controllers)? && base_cpu;
        probe(&path)?;
        Ok(Hierarchy::V2 { path, cpu })
    });
    if let (Err(_), Some(leaf)) = (&result, moved) {
        // Back to where m3s was.
        let _ = fs::write(base.join("cgroup.procs"), pid.to_string());
        let _ = fs::remove_dir(leaf);
    }
    result
}

/// The root cgroup, exempt from the no-internal-processes rule.
fn root_v2(root: &Path) -> Result<Hierarchy, CgroupError> {
    let controllers =
        read_words(&root.join("cgroup.controllers")).map_err(io_error("reading", &root.join("cgroup.controllers")))?;
    if !controllers.iter().any(|c| c == "memory") {
        return Err(CgroupError::NoMemoryController);
    }
    let root_cpu = enable_controllers(root, &controllers)?;
    let path = root.join(HIERARCHY_NAME);
    mkdir(&path).map_err(io_error("creating", &path))?;
    let cpu = enable_controllers(&path, &controllers)? && root_cpu;
    probe(&path)?;
    Ok(Hierarchy::V2 { path, cpu })
}

/// Enables memory (required) and cpu (if available) for the children of
/// `dir`; returns whether cpu is enabled.
fn enable_controllers(dir: &Path, available: &[String]) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = read_words(&file).unwrap_or_default();
    let has = |name: &str| enabled.iter().any(|c| c == name || c.strip_prefix('+') == Some(name));
    let cpu_available = available.iter().any(|c| c == "cpu");
    if has("memory") && (has("cpu") || !cpu_available) {
        return Ok(has("cpu"));
    }
    if cpu_available {
        let both = if has("memory") { "+cpu" } else { "+memory +cpu" };
        match write(&file, both) {
            Ok(()) => return Ok(true),
            Err(error) if has("memory") => {
                tracing::warn!(%error, "cgroup v2: cpu controller not enabled");
                return Ok(false);
            }
            Err(error) => tracing::warn!(%error, "cgroup v2: enabling memory and cpu; trying memory alone"),
        }
    }
    write(&file, "+memory")?;
    Ok(false)
}

impl Hierarchy {
    pub(crate) fn status(&self) -> CgroupsStatus {
        match self.clone() {
            Hierarchy::V1 { memory, cpu, cpuacct } => CgroupsStatus::V1 { memory, cpu, cpuacct },
            Hierarchy::V2 { path, cpu } => CgroupsStatus::V2 { path, cpu },
        }
    }

    /// Creates the container's cgroups with its limits. On error, whatever
    /// was created is removed again.
    pub(crate) fn create(&self, container_id: &str, limits: &Limits) -> Result<TaskCgroups, CgroupError> {
        let cgroups = match self {
            Hierarchy::V1 { memory, cpu, cpuacct } => {
                let child = |parent: &Option<PathBuf>| parent.as_ref().map(|p| p.join(container_id));
                TaskCgroups::V1 { memory: memory.join(container_id), cpu: child(cpu), cpuacct: child(cpuacct) }
            }
            Hierarchy::V2 { path, .. } => TaskCgroups::V2 { path: path.join(container_id) },
        };
        let cpu = !matches!(self, Hierarchy::V2 { cpu: false, .. });
        let result = cgroups.dirs().into_iter().try_for_each(fresh_dir).and_then(|()| cgroups.apply(limits, cpu));
        match result {
            Ok(()) => Ok(cgroups),
            Err(error) => {
                let _ = cgroups.remove();
                Err(error)
            }
        }
    }
}

impl Hierarchy {
    /// Removes container cgroups that hold no process and were made more than
    /// `older_than` ago: those of supervisors killed with SIGKILL (by hand, or
    /// with m3s). The `m3s` cgroup is shared by every m3s on the machine, so
    /// only old ones go (one just made is about to receive its task), and a
    /// cgroup with a process is never touched (rmdir refuses it anyway).
    /// Returns how many were removed.
    pub(crate) fn sweep_empty(&self, older_than: std::time::Duration) -> usize {
        let parents: Vec<&Path> = match self {
            Hierarchy::V1 { memory, cpu, cpuacct } => {
                let mut p = vec![memory.as_path()];
                p.extend(cpu.iter().map(PathBuf::as_path));
                p.extend(cpuacct.iter().map(PathBuf::as_path).filter(|c| Some(*c) != cpu.as_deref()));
                p
            }
            Hierarchy::V2 { path, .. } => vec![path.as_path()],
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for parent in parents {
            let Ok(entries) = fs::read_dir(parent) else { continue };
            for dir in entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()) {
                let old = fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= older_than));
                let empty = fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
                if old && empty && fs::remove_dir(&dir).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Creates a container's cgroup; a leftover of an earlier attempt (empty,
/// or it could not be removed) is replaced.
fn fresh_dir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => remove_dir(path)
            .and_then(|()| fs::create_dir(path))
            .map_err(|source| CgroupError::Leftover { path: path.to_path_buf(), source }),
        Err(e) => Err(io_error("creating cgroup", path)(e)),
    }
}

/// The memory limit m3s applies: at least Mesos's 32 MB minimum.
pub(crate) fn memory_limit(limits: &Limits) -> Option<u64> {
    limits.mem_limit_bytes.map(|bytes| bytes.max(MIN_MEMORY_BYTES))
}

fn cpu_shares(cpus: f64) -> u64 {
    ((cpus * CPU_SHARES_PER_CPU) as u64).max(MIN_CPU_SHARES)
}

/// v2 weights: 100 (the default of every cgroup) per CPU, so that tasks
/// share CPU in proportion to their cpus as with v1's shares.
fn cpu_weight(cpus: f64) -> u64 {
    ((cpus * 100.0).round() as u64).clamp(1, 10_000)
}

fn cfs_quota_us(cpus: f64) -> u64 {
    ((cpus * CFS_PERIOD_US as f64) as u64).max(MIN_CFS_QUOTA_US)
}

/// The cgroups process `pid` is in, read from `/proc/<pid>/cgroup`, under the
/// hierarchies mounted at `root`: v1's memory, cpu and cpuacct controllers
/// where they are mounted (hybrid hosts included), else the unified hierarchy.
/// For usage only: m3s never writes these.
pub(crate) fn of_process(root: &Path, pid: u32) -> Option<TaskCgroups> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let (mut memory, mut cpu, mut cpuacct, mut unified) = (None, None, None, None);
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            unified = Some(root.join(rel));
        }
        for c in controllers.split(',') {
            let dir = || root.join(c).join(rel);
            match c {
                "memory" => memory = Some(dir()),
                "cpu" => cpu = Some(dir()),
                "cpuacct" => cpuacct = Some(dir()),
                _ => {}
            }
        }
    }
    match memory {
        Some(memory) => Some(TaskCgroups::V1 { memory, cpu, cpuacct }),
        None => unified.filter(|p| p.join("memory.current").exists()).map(|path| TaskCgroups::V2 { path }),
    }
}

impl TaskCgroups {
    /// Each distinct cgroup directory of the container.
    pub(crate) fn dirs(&self) -> Vec<&Path> {
        match self {
            TaskCgroups::V1 { memory, cpu, cpuacct } => {
                let mut dirs = vec![memory.as_path()];
                for dir in [cpu, cpuacct].into_iter().flatten() {
                    if !dirs.contains(&dir.as_path()) {
                        dirs.push(dir);
                    }
                }
                dirs
            }
            TaskCgroups::V2 { path } => vec![path.as_path()],
        }
    }

    /// The `cgroup.procs` files the task writes itself into.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    fn memory_dir(&self) -> &Path {
        match self {
            TaskCgroups::V1 { memory, .. } => memory,
            TaskCgroups::V2 { path } => path,
        }
    }

    /// Writes the limits; `cpu`: the v2 cpu controller is enabled.
    fn apply(&self, limits: &Limits, cpu_enabled: bool) -> Result<(), CgroupError> {
        let hard = memory_limit(limits);
        match self {
            TaskCgroups::V1 { memory, cpu, .. } => {
                let soft = limits.mem_bytes.max(MIN_MEMORY_BYTES);
                write_if_present(&memory.join("memory.soft_limit_in_bytes"), &soft.to_string())?;
                if let Some(hard) = hard {
                    write(&memory.join("memory.limit_in_bytes"), &hard.to_string())?;
                    // No swapping instead of the OOM kill (Mesos's
                    // --cgroups_limit_swap), where swap is accounted.
                    write_if_present(&memory.join("memory.memsw.limit_in_bytes"), &hard.to_string())?;
                }
                if let Some(cpu) = cpu {
                    write(&cpu.join("cpu.shares"), &cpu_shares(limits.cpus).to_string())?;
                    if let Some(limit) = limits.cpus_limit {
                        write_if_present(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                        write(&cpu.join("cpu.cfs_quota_us"), &cfs_quota_us(limit).to_string())?;
                    }
                }
            }
            TaskCgroups::V2 { path } => {
                if let Some(hard) = hard {
                    write(&path.join("memory.max"), &hard.to_string())?;
                    write_if_present(&path.join("memory.swap.max"), "0")?;
                }
                // One OOM kill takes the whole container (Mesos destroys it).
                write_if_present(&path.join("memory.oom.group"), "1")?;
                if cpu_enabled {
                    write(&path.join("cpu.weight"), &cpu_weight(limits.cpus).to_string())?;
                    if let Some(limit) = limits.cpus_limit {
                        write(&path.join("cpu.max"), &format!("{} {CFS_PERIOD_US}", cfs_quota_us(limit)))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the kernel OOM killer killed a process of the container.
    /// `signaled_kill`: the task ended by SIGKILL (for kernels before 4.13,
    /// whose v1 `memory.oom_control` has no `oom_kill` count).
    pub(crate) fn oom_killed(&self, signaled_kill: bool) -> bool {
        match self {
            TaskCgroups::V1 { memory, .. } => {
                let control = fs::read_to_string(memory.join("memory.oom_control")).unwrap_or_default();
                match keyed(&control, "oom_kill") {
                    Some(kills) => kills > 0,
                    None => {
                        signaled_kill && read_u64(&memory.join("memory.failcnt")).is_some_and(|failures| failures > 0)
                    }
                }
            }
            TaskCgroups::V2 { path } => {
                let events = fs::read_to_string(path.join("memory.events")).unwrap_or_default();
                keyed(&events, "oom_kill").is_some_and(|kills| kills > 0)
            }
        }
    }

    /// The hard memory limit in force, `None` if unlimited or unknown.
    pub(crate) fn memory_limit(&self) -> Option<u64> {
        match self {
            TaskCgroups::V1 { memory, .. } => {
                read_u64(&memory.join("memory.limit_in_bytes")).filter(|limit| *limit < V1_UNLIMITED)
            }
            TaskCgroups::V2 { path } => read_u64(&path.join("memory.max")),
        }
    }

    /// The most memory the container used (v2 needs Linux 5.19 for it).
    pub(crate) fn max_usage(&self) -> Option<u64> {
        match self {
            TaskCgroups::V1 { memory, .. } => read_u64(&memory.join("memory.max_usage_in_bytes")),
            TaskCgroups::V2 { path } => read_u64(&path.join("memory.peak")),
        }
    }

    /// `memory.stat`, for the limitation message (as Mesos gives it).
    pub(crate) fn memory_stat(&self) -> Option<String> {
        fs::read_to_string(self.memory_dir().join("memory.stat")).ok().map(|s| s.trim_end().to_owned())
    }

    /// The pids in the container's cgroups.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs()
            .into_iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| text.split_ascii_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process in the container's cgroups (`cgroup.kill` on
    /// v2 where the kernel has it, 5.14+), until none is left or a second
    /// has passed.
    pub(crate) fn kill_all(&self) {
        for attempt in 0..100 {
            if !self.kill_once() {
                return;
            }
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// One round of [`TaskCgroups::kill_all`]; false if no process was left.
    fn kill_once(&self) -> bool {
        let me = std::process::id();
        let pids: Vec<u32> = self.pids().into_iter().filter(|&p| p > 1 && p != me).collect();
        if pids.is_empty() {
            return false;
        }
        let kill_file = match self {
            TaskCgroups::V2 { path } => Some(path.join("cgroup.kill")).filter(|f| f.exists()),
            TaskCgroups::V1 { .. } => None,
        };
        if kill_file.is_none_or(|file| fs::write(file, "1").is_err()) {
            for pid in pids {
                if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        true
    }

    /// Removes the container's cgroups (killing what is left in them),
    /// trying for half a second; missing ones are fine.
    pub(crate) fn remove(&self) -> Result<(), CgroupError> {
        let mut errors = Vec::new();
        for dir in self.dirs() {
            let mut result = remove_dir(dir);
            for attempt in 0..50 {
                match &result {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        // Exiting processes linger for a moment.
                        if attempt % 10 == 0 {
                            self.kill_once();
                        }
                        std::thread::sleep(Duration::from_millis(10));
                        result = remove_dir(dir);
                    }
                    _ => break,
                }
            }
            if let Err(e) = result {
                errors.push(io_error("removing cgroup", dir)(e));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(CgroupError::Several(errors)) }
    }

    /// Adds the container's cgroup counters to `stats`.
    pub(crate) fn fill_usage(&self, stats: &mut mesos::v1::ResourceStatistics) {
        match self {
            TaskCgroups::V1 { memory, cpu, cpuacct } => {
                if let Some(total) = read_u64(&memory.join("memory.usage_in_bytes")) {
                    stats.mem_total_bytes = Some(total);
                }
                if let Ok(text) = fs::read_to_string(memory.join("memory.stat")) {
                    let get = |key: &str| keyed(&text, key);
                    let sum = |a: &str, b: &str| Some(get(a)? + get(b)?);
                    stats.mem_rss_bytes = get("total_rss").or(stats.mem_rss_bytes);
                    stats.mem_cache_bytes = get("total_cache");
                    stats.mem_mapped_file_bytes = get("total_mapped_file");
                    stats.mem_swap_bytes = get("total_swap");
                    stats.mem_unevictable_bytes = get("total_unevictable");
                    stats.mem_anon_bytes = sum("total_active_anon", "total_inactive_anon");
                    stats.mem_file_bytes = sum("total_active_file", "total_inactive_file");
                }
                if let Some(cpuacct) = cpuacct {
                    if let Ok(text) = fs::read_to_string(cpuacct.join("cpuacct.stat")) {
                        let ticks = clock_ticks();
                        if let Some(user) = keyed(&text, "user") {
                            stats.cpus_user_time_secs = Some(user as f64 / ticks);
                        }
                        if let Some(system) = keyed(&text, "system") {
                            stats.cpus_system_time_secs = Some(system as f64 / ticks);
                        }
                    }
                }
                if let Some(cpu) = cpu {
                    if let Ok(text) = fs::read_to_string(cpu.join("cpu.stat")) {
                        stats.cpus_nr_periods = keyed(&text, "nr_periods").and_then(|n| u32::try_from(n).ok());
                        stats.cpus_nr_throttled = keyed(&text, "nr_throttled").and_then(|n| u32::try_from(n).ok());
                        stats.cpus_throttled_time_secs = keyed(&text, "throttled_time").map(|ns| ns as f64 / 1e9);
                    }
                }
            }
            TaskCgroups::V2 { path } => {
                if let Some(total) = read_u64(&path.join("memory.current")) {
                    stats.mem_total_bytes = Some(total);
                }
                if let Ok(text) = fs::read_to_string(path.join("memory.stat")) {
                    let get = |key: &str| keyed(&text, key);
                    stats.mem_anon_bytes = get("anon");
                    stats.mem_rss_bytes = get("anon").or(stats.mem_rss_bytes);
                    stats.mem_file_bytes = get("file");
                    stats.mem_cache_bytes = get("file");
                    stats.mem_mapped_file_bytes = get("file_mapped");
                    stats.mem_unevictable_bytes = get("unevictable");
                }
                if let Some(swap) = read_u64(&path.join("memory.swap.current")) {
                    stats.mem_swap_bytes = Some(swap);
                }
                if let Ok(text) = fs::read_to_string(path.join("cpu.stat")) {
                    let get = |key: &str| keyed(&text, key);
                    if let Some(user) = get("user_usec") {
                        stats.cpus_user_time_secs = Some(user as f64 / 1e6);
                    }
                    if let Some(system) = get("system_usec") {
                        stats.cpus_system_time_secs = Some(system as f64 / 1e6);
                    }
                    stats.cpus_nr_periods = get("nr_periods").and_then(|n| u32::try_from(n).ok());
                    stats.cpus_nr_throttled = get("nr_throttled").and_then(|n| u32::try_from(n).ok());
                    stats.cpus_throttled_time_secs = get("throttled_usec").map(|us| us as f64 / 1e6);
                }
            }
        }
    }
}

/// `rmdir`. A real cgroup directory is removed with its control files
/// (EBUSY while processes or child cgroups remain); a test layout (plain
/// directories, whose files make `rmdir` fail with ENOTEMPTY, which
/// cgroupfs never does) is removed with its files.
fn remove_dir(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => fs::remove_dir_all(path),
        other => other,
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        value: value.to_owned(),
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a control file that not every kernel (or configuration) has.
fn write_if_present(path: &Path, value: &str) -> Result<(), CgroupError> {
    if path.exists() { write(path, value) } else { Ok(()) }
}

fn read_words(path: &Path) -> io::Result<Vec<String>> {
    Ok(fs::read_to_string(path)?.split_ascii_whitespace().map(str::to_owned).collect())
}

/// A number file; `max` (v2's "unlimited") and anything else unparsable is `None`.
fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` lines).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        if name == key { value.trim().parse().ok() } else { None }
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Mesos's `Bytes` formatting: the largest unit that loses nothing.
pub(crate) fn format_bytes(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = KB * 1024;
    const GB: u64 = MB * 1024;
    const TB: u64 = GB * 1024;
    if bytes == 0 {
        "0B".to_owned()
    } else if bytes % KB != 0 {
        format!("{bytes}B")
    } else if bytes % MB != 0 {
        format!("{}KB", bytes / KB)
    } else if bytes % GB != 0 {
        format!("{}MB", bytes / MB)
    } else if bytes % TB != 0 {
        format!("{}GB", bytes / GB)
    } else {
        format!("{}TB", bytes / TB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cpus: f64, cpus_limit: Option<f64>, mem_mb: u64, mem_limit_mb: Option<u64>) -> Limits {
        Limits { cpus, cpus_limit, mem_bytes: mem_mb << 20, mem_limit_bytes: mem_limit_mb.map(|mb| mb << 20) }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// A temporary directory laid out like a pure cgroup v2 mount: the root
    /// with all controllers, and m3s's own cgroup `own` holding `procs`.
    fn fake_v2(own: &str, own_controllers: &str, procs: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n").unwrap();
        fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.path().join("cgroup.procs"), "1\n").unwrap();
        if own != "/" {
            let dir = root.path().join(own.trim_start_matches('/'));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.controllers"), own_controllers).unwrap();
            fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
            fs::write(dir.join("cgroup.procs"), procs).unwrap();
        }
        root
    }

    #[test]
    fn v2_delegated_cgroup_moves_m3s_into_a_leaf_and_enables_controllers() {
        let root = fake_v2("/system.slice/m3s.service", "cpu memory pids\n", "4242\n");
        let base = root.path().join("system.slice/m3s.service");
        let hierarchy = detect_at(root.path(), "0::/system.slice/m3s.service\n", 4242).unwrap();
        assert_eq!(hierarchy, Hierarchy::V2 { path: base.join("m3s"), cpu: true });
        // m3s moved itself out of the way of the no-internal-processes rule.
        assert_eq!(read(&base.join("m3s-agent/cgroup.procs")), "4242");
        assert_eq!(read(&base.join("cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(read(&base.join("m3s/cgroup.subtree_control")), "+memory +cpu");
        // The probe is gone.
        let names: Vec<_> = fs::read_dir(base.join("m3s")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cgroup.subtree_control")]);

        // Restarted inside the leaf: the same hierarchy, nothing moved.
        fs::write(base.join("cgroup.subtree_control"), "memory cpu\n").unwrap();
        fs::write(base.join("m3s/cgroup.subtree_control"), "memory cpu\n").unwrap();
        let again = detect_at(root.path(), "0::/system.slice/m3s.service/m3s-agent\n", 5000).unwrap();
        assert_eq!(again, hierarchy);
        assert_eq!(read(&base.join("m3s-agent/cgroup.procs")), "4242");
    }

    #[test]
    fn v2_shared_cgroup_falls_back_to_the_root() {
        // A login session: m3s shares its cgroup with the shell.
        let root = fake_v2("/user.slice/session-1.scope", "cpu memory pids\n", "100\n4242\n");
        let hierarchy = detect_at(root.path(), "0::/user.slice/session-1.scope\n", 4242).unwrap();
        assert_eq!(hierarchy, Hierarchy::V2 { path: root.path().join("m3s"), cpu: true });
        assert!(!root.path().join("user.slice/session-1.scope/m3s-agent").exists());
        assert_eq!(read(&root.path().join("cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(read(&root.path().join("m3s/cgroup.subtree_control")), "+memory +cpu");

        // m3s in the root cgroup itself (a container's init, say).
        let root = fake_v2("/", "", "");
        let hierarchy = detect_at(root.path(), "0::/\n", 1).unwrap();
        assert_eq!(hierarchy, Hierarchy::V2 { path: root.path().join("m3s"), cpu: true });
    }

    #[test]
    fn v2_without_the_memory_controller_is_unavailable_with_reasons() {
        let root = fake_v2("/user.slice/session-1.scope", "cpu pids\n", "4242\n");
        fs::write(root.path().join("cgroup.controllers"), "cpu pids\n").unwrap();
        let error = detect_at(root.path(), "0::/user.slice/session-1.scope\n", 4242).unwrap_err();
        let CgroupError::V2 { reasons, .. } = &error else { panic!("not a v2 error: {error}") };
        assert!(matches!(reasons[..], [CgroupError::NotDelegated(_), CgroupError::NoMemoryController]), "{error}");
        let reason = error.to_string();
        assert!(reason.starts_with("cgroup v2 at "), "{reason}");
        assert!(reason.contains("memory controller is not delegated"), "{reason}");
        assert!(reason.contains("memory controller is not available"), "{reason}");
    }

    #[test]
    fn v2_container_cgroups_get_mesos_limits() {
        let root = fake_v2("/", "", "");
        let hierarchy = detect_at(root.path(), "0::/\n", 1).unwrap();
        let cgroups = hierarchy.create("c1", &limits(0.5, Some(1.5), 64, Some(128))).unwrap();
        let dir = root.path().join("m3s/c1");
        assert_eq!(cgroups, TaskCgroups::V2 { path: dir.clone() });
        assert_eq!(read(&dir.join("memory.max")), (128u64 << 20).to_string());
        assert_eq!(read(&dir.join("cpu.weight")), "50");
        assert_eq!(read(&dir.join("cpu.max")), "150000 100000");
        assert_eq!(cgroups.procs_files(), vec![dir.join("cgroup.procs")]);

        // No hard cpu limit, unlimited memory, tiny requests.
        let cgroups = hierarchy.create("c2", &limits(0.001, None, 0, None)).unwrap();
        let dir = root.path().join("m3s/c2");
        assert!(!dir.join("memory.max").exists());
        assert!(!dir.join("cpu.max").exists());
        assert_eq!(read(&dir.join("cpu.weight")), "1");

        // Below Mesos's 32 MB minimum.
        let cgroups3 = hierarchy.create("c3", &limits(1.0, None, 8, Some(8))).unwrap();
        assert_eq!(read(&root.path().join("m3s/c3/memory.max")), (32u64 << 20).to_string());
        assert_eq!(read(&root.path().join("m3s/c3/cpu.weight")), "100");

        // Exit-time OOM detection and the limit in force.
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n").unwrap();
        assert!(!cgroups.oom_killed(true));
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n").unwrap();
        assert!(cgroups.oom_killed(false));
        fs::write(dir.join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroups.memory_limit(), None);
        assert_eq!(cgroups3.memory_limit(), Some(32 << 20));

        // Usage from the v2 counters.
        fs::write(dir.join("memory.current"), "1000\n").unwrap();
        fs::write(dir.join("memory.stat"), "anon 600\nfile 300\nfile_mapped 10\n").unwrap();
        fs::write(dir.join("cpu.stat"), "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n").unwrap();
        let mut stats = mesos::v1::ResourceStatistics::default();
        cgroups.fill_usage(&mut stats);
        assert_eq!(stats.mem_total_bytes, Some(1000));
        assert_eq!(stats.mem_rss_bytes, Some(600));
        assert_eq!(stats.mem_file_bytes, Some(300));
        assert_eq!(stats.cpus_user_time_secs, Some(2.0));
        assert_eq!(stats.cpus_system_time_secs, Some(1.0));

        // Removed with its (fake) control files; removing twice is fine.
        cgroups.remove().unwrap();
        assert!(!dir.exists());
        cgroups.remove().unwrap();
    }

    #[test]
    fn v1_layout_in_a_temporary_directory() {
        let root = tempfile::tempdir().unwrap();
        for (name, marker) in [("memory", "memory.limit_in_bytes"), ("cpu,cpuacct", "cpu.shares")] {
            fs::create_dir(root.path().join(name)).unwrap();
            fs::write(root.path().join(name).join(marker), "").unwrap();
        }
        fs::write(root.path().join("cpu,cpuacct/cpuacct.usage"), "").unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpuacct")).unwrap();
        let hierarchy = detect_at(root.path(), "", 1).unwrap();
        let cpu = root.path().join("cpu/m3s");
        let expected = Hierarchy::V1 {
            memory: root.path().join("memory/m3s"),
            cpu: Some(cpu.clone()),
            cpuacct: Some(cpu.clone()),
        };
        assert_eq!(hierarchy, expected);
        let cgroups = hierarchy.create("c1", &limits(0.25, Some(2.0), 64, Some(96))).unwrap();
        assert_eq!(cgroups.dirs().len(), 2, "cpu and cpuacct are one cgroup");
        let memory = root.path().join("memory/m3s/c1");
        assert_eq!(read(&memory.join("memory.limit_in_bytes")), (96u64 << 20).to_string());
        assert_eq!(read(&cpu.join("c1/cpu.shares")), "256");
        assert_eq!(read(&cpu.join("c1/cpu.cfs_quota_us")), "200000");
        fs::write(memory.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert!(cgroups.oom_killed(false));
        // Older kernels: no oom_kill count, a SIGKILL after hitting the limit.
        fs::write(memory.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n").unwrap();
        fs::write(memory.join("memory.failcnt"), "3\n").unwrap();
        assert!(cgroups.oom_killed(true));
        assert!(!cgroups.oom_killed(false));
        fs::write(memory.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroups.memory_limit(), None);
        cgroups.remove().unwrap();
        assert!(!memory.exists() && !cpu.join("c1").exists());
    }

    #[test]
    fn nothing_to_use_says_why() {
        let root = tempfile::tempdir().unwrap();
        let error = detect_at(root.path(), "0::/\n", 1).unwrap_err();
        assert!(matches!(error, CgroupError::NoHierarchy { .. }), "{error}");
        assert!(error.to_string().contains("no cgroup hierarchy with the memory controller"), "{error}");
    }

    #[test]
    fn mesos_values() {
        assert_eq!(cpu_shares(1.0), 1024);
        assert_eq!(cpu_shares(0.0), 2);
        assert_eq!(cpu_weight(2.5), 250);
        assert_eq!(cpu_weight(1000.0), 10_000);
        assert_eq!(cfs_quota_us(0.001), 1_000);
        assert_eq!(format_bytes(64 << 20), "64MB");
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1536), "1536B");
        assert_eq!(format_bytes(3 << 10), "3KB");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes(2 << 30), "2GB");
        assert_eq!(keyed("oom 1\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(keyed("oom_kill_disable 0\n", "oom_kill"), None);
    }
}
