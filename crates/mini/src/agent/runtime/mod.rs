//! The agent's task runtime for command tasks (Linux).
//!
//! Every task runs under a small per-task **supervisor** process (the m3s
//! binary's `m3s supervise --run-dir DIR`, see [`supervise`]), as Mesos runs
//! a command executor per task. Supervisors are forked by a launcher, the m3s
//! binary re-executed once (see the `launcher` module), which is much cheaper
//! than executing the binary per task; without a launcher each is executed. Supervisors live in process groups
//! of their own and ignore hangups and termination signals, so tasks outlive m3s: a restarted m3s (even after `kill -9`)
//! calls [`Runtime::recover`], re-adopts the running containers and learns the
//! real exit status of those that ended while it was down.
//!
//! Exit detection is event-driven: m3s holds a pidfd on each supervisor
//! (readable once it exits), and a supervisor writes the task's status to
//! disk before exiting. A supervisor that vanishes without a status (killed
//! with SIGKILL, say) gets its task's processes killed and is reported as
//! [`TaskExit::Lost`]: no task is left unsupervised.
//!
//! # On disk
//!
//! - The sandbox, Mesos's own layout:
//!   `<work_dir>/slaves/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/<container_id>/`
//!   with the task's `stdout` and `stderr`. It is left in place by
//!   [`Runtime::forget`] (garbage collection is the agent's business).
//! - The runtime's bookkeeping, one directory per container:
//!   `<runtime_dir>/containers/<container_id>/` (`runtime_dir` defaults to
//!   `<work_dir>/meta/runtime`, see [`RuntimeConfig::runtime_dir`]) with `launch.json`,
//!   `supervisor.json`, `task.json` and `status.json` (see the `records`
//!   module for who writes what, when).
//!
//! # Environment
//!
//! A task gets the variables of its [`LaunchSpec`] (the caller supplies
//! `MESOS_SANDBOX`, `MESOS_TASK_ID` and the like) over a few of m3s's own:
//! `PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`, `LANG`, `LANGUAGE`, `LC_*`, `TZ`,
//! `TMPDIR` and `TERM`. Mesos's command executor inherits the agent's whole
//! environment; m3s's holds its secrets, so it does not. `HOME`, `USER` and `LOGNAME` are not changed
//! by a user switch (Mesos does not either): set them in the spec if wanted.
//!
//! # Users
//!
//! A task asking for another user than m3s's runs as that user (groups from
//! the user database) when m3s runs as root; otherwise its launch fails, and
//! an unknown user always fails the launch. The sandbox is then owned by the
//! task's user.
//!
//! # Resource limits
//!
//! A task whose spec carries [`Limits`] runs in cgroups of its own (v1 or
//! v2, detected at [`Runtime::new`]; see the `cgroups` module) with Mesos's
//! cpu shares/weight, CFS quota and memory limit; a task the kernel's OOM
//! killer hits there ends as [`TaskExit::MemoryLimit`]. Where no cgroup
//! hierarchy is writable, [`Runtime::cgroups_status`] says why (for the
//! caller to warn once), tasks run without limits and their usage comes from
//! /proc.

mod cgroups;
mod launcher;
mod procfs;
mod records;
mod supervisor;
mod user;

pub use cgroups::CgroupsStatus;
pub(crate) use records::{RunAs, write_atomic};
pub use supervisor::supervise;
pub use user::current_user_name;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use cgroups::TaskCgroups;
use procfs::Liveness;
use records::{LaunchRecord, Outcome, ProcId, StatusRecord};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The agent's work directory: sandboxes live under it (and the
    /// bookkeeping too, unless `runtime_dir` is set).
    pub work_dir: PathBuf,
    /// Where the per-container bookkeeping lives: `<runtime_dir>/containers/`.
    /// Like Mesos's `--runtime_dir` (default `/var/run/mesos`), it must
    /// survive m3s restarts but need not survive reboots (no supervisor
    /// does), so a tmpfs such as `/run/m3s` fits and makes launches cheaper.
    /// After a reboot, [`Runtime::recover`] then finds nothing, and the
    /// agent reports the tasks it had as lost. `None`:
    /// `<work_dir>/meta/runtime`, where a recovery after a reboot reports
    /// each container as [`TaskExit::Lost`].
    pub runtime_dir: Option<PathBuf>,
    /// The executable started as `<supervisor_exe> supervise --run-dir DIR`
    /// for each task: the m3s binary itself in production.
    pub supervisor_exe: PathBuf,
    /// The agent's id, part of the sandbox path.
    pub agent_id: String,
    /// Where the cgroup hierarchies are mounted. `None`: `/sys/fs/cgroup`.
    /// A directory without hierarchies (tests) makes cgroups unavailable.
    pub cgroup_root: Option<PathBuf>,
}

/// A task's resources as cgroup limits, with Mesos's semantics (values
/// finite and non-negative; [`Runtime::launch`] checks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// The `cpus` resource: the task's CPU share (`cpu.shares` = 1024 × cpus
    /// on cgroup v1, `cpu.weight` = 100 × cpus on v2).
    pub cpus: f64,
    /// `TaskInfo.limits.cpus`: a hard cap, as a CFS quota. `None`: no quota
    /// (no limit given, or "Infinity").
    #[serde(default)]
    pub cpus_limit: Option<f64>,
    /// The `mem` resource in bytes (the soft limit).
    pub mem_bytes: u64,
    /// The hard memory limit in bytes (`TaskInfo.limits.mem` if given, else
    /// the `mem` resource), at least 32 MB as in Mesos. `None`: unlimited
    /// ("Infinity").
    #[serde(default)]
    pub mem_limit_bytes: Option<u64>,
}

/// Limits hold no NaN (launches with one are refused).
impl Eq for Limits {}

/// What a task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskCommand {
    /// `CommandInfo.shell = true`: run with `/bin/sh -c <script>`.
    Shell(String),
    /// `CommandInfo.shell = false`: execute `program` (searched in `PATH`
    /// when it has no slash) with `args` as its whole argv, so `args[0]` is
    /// argv\[0\], as in Mesos. Empty `args`: argv is just `[program]`.
    Argv {
        program: String,
        #[serde(default)]
        args: Vec<String>,
    },
}

/// A task to launch in a new container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub framework_id: String,
    pub executor_id: String,
    pub task_id: String,
    /// Unique per launch; names the sandbox and the bookkeeping directory.
    pub container_id: String,
    pub command: TaskCommand,
    /// Added to (and overriding) the environment inherited from m3s.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Run the task as this user (see the module docs).
    #[serde(default)]
    pub user: Option<String>,
    /// Working directory, relative to the sandbox (an absolute path is used
    /// as is). Default: the sandbox.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Cgroup limits; `None`: the task runs in m3s's cgroups, unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// For a container task, whose program is an OCI runtime: how it is set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSetup>,
}

/// How a container task's program (an OCI runtime's `run`) is started, and
/// what the supervisor does when it ends. The mount namespace and the rootfs
/// mount belong to the task: they vanish with it, whatever happens to m3s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSetup {
    /// Mount points detached in the task's mount namespace before it runs (a
    /// cgroup2 hierarchy mounted beside cgroup v1, which crun refuses to run under).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detach: Vec<PathBuf>,
    /// The root filesystem to mount there; `None`: the bundle's `rootfs` is a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
    /// Run by the supervisor once the task ended, before its status is recorded
    /// (the OCI runtime's `delete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_exit: Vec<String>,
    /// Runs a command inside the container when followed by its argv (`crun exec ID`):
    /// for health checks and `exec`.
    #[serde(default)]
    pub exec: Vec<String>,
    /// The signal that asks the container to stop (Docker's StopSignal or
    /// `--stop-signal`); `None`: SIGTERM. SIGKILL follows after the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<i32>,
    /// A process whose cgroups and process tree hold the task's usage, read
    /// instead of the task's own (a Docker container's init: the task's process
    /// is the executor that follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_of: Option<u32>,
}

/// An overlayfs mount. The lower directories are given relative to
/// `lower_root` (lowest first), so that many layers fit in the mount
/// options' single page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub lower_root: PathBuf,
    pub lower: Vec<String>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

impl Overlay {
    /// The mount data: `lowerdir` lists the top layer first, as overlayfs wants.
    pub fn options(&self) -> String {
        let lower: Vec<&str> = self.lower.iter().rev().map(String::as_str).collect();
        format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), self.upper.display(), self.work.display())
    }
}

/// A successful launch: the task's process exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The task's pid, which is also its process group and session id.
    pub pid: u32,
    pub supervisor_pid: u32,
    pub sandbox: PathBuf,
}

/// Reported on the runtime's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// A container's task ended (and its supervisor with it). Sent once per
    /// container, only after its [`Runtime::launch`] returned `Ok` (or for a
    /// container [`Runtime::recover`] returned as running).
    Exited { container_id: String, status: TaskExit },
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskExit {
    /// Exited with this status.
    Code(i32),
    /// Terminated by this signal.
    Signal(i32),
    /// The supervisor vanished without recording a status (the task, if it
    /// was still there, has been killed), or never started the task.
    Lost(String),
    /// The kernel's OOM killer killed (a process of) the task in its memory
    /// cgroup, whose limit was `limit_bytes`.
    MemoryLimit {
        limit_bytes: u64,
        /// The most memory the task's cgroup used, where the kernel tells.
        max_used_bytes: Option<u64>,
        /// The cgroup's `memory.stat` when the task ended.
        stats: Option<String>,
    },
}

impl TaskExit {
    /// Exited with status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, TaskExit::Code(0))
    }
}

impl fmt::Display for TaskExit {
    /// Mesos's command executor wording, for TaskStatus messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskExit::Code(code) => write!(f, "Command exited with status {code}"),
            TaskExit::Signal(signal) => {
                write!(f, "Command terminated with signal {}", crate::signals::signal_name(*signal))
            }
            TaskExit::Lost(message) => f.write_str(message),
            // Mesos's memory isolator wording.
            TaskExit::MemoryLimit { limit_bytes, max_used_bytes, stats } => {
                write!(f, "Memory limit exceeded: Requested: {}", cgroups::format_bytes(*limit_bytes))?;
                if let Some(used) = max_used_bytes {
                    write!(f, " Maximum Used: {}", cgroups::format_bytes(*used))?;
                }
                if let Some(stats) = stats {
                    write!(f, "\n\nMEMORY STATISTICS: \n{stats}")?;
                }
                Ok(())
            }
        }
    }
}

/// Where a task runs, for `compose exec`: read from the records of the
/// runtime whose work directory is `work_dir` (the default runtime dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecTarget {
    /// Running in a container: `exec` followed by a command runs it inside
    /// (`crun --root … exec ID`), as health checks do; `env` is the
    /// container's environment (from its bundle), which a command given an
    /// environment of its own must repeat.
    Container { exec: Vec<String>, env: Vec<String> },
    /// Running as a host process (no image): nothing to enter.
    HostProcess,
    /// No running task with this id on this agent.
    NotHere,
}

/// Finds the running task `task_id` among this agent's containers.
pub fn exec_target(work_dir: &Path, task_id: &str) -> ExecTarget {
    let containers = work_dir.join("meta").join("runtime").join("containers");
    let Ok(entries) = std::fs::read_dir(&containers) else { return ExecTarget::NotHere };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.join(records::STATUS).exists() {
            continue; // ended
        }
        let Ok(Some(record)) = records::read_json::<records::LaunchRecord>(&dir.join(records::LAUNCH)) else {
            continue;
        };
        if record.spec.task_id == task_id {
            return match record.spec.container {
                Some(setup) if !setup.exec.is_empty() => {
                    let bundle = work_dir.join("containers").join(entry.file_name()).join("config.json");
                    let env = std::fs::read(bundle)
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                        .and_then(|mut config| serde_json::from_value(config["process"]["env"].take()).ok())
                        .unwrap_or_default();
                    ExecTarget::Container { exec: setup.exec, env }
                }
                _ => ExecTarget::HostProcess,
            };
        }
    }
    ExecTarget::NotHere
}

/// A container found by [`Runtime::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredContainer {
    pub spec: LaunchSpec,
    /// The task's pid; `None` if the supervisor never recorded one.
    pub pid: Option<u32>,
    pub supervisor_pid: Option<u32>,
    pub sandbox: PathBuf,
    pub state: ContainerState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Re-adopted: an [`RuntimeEvent::Exited`] follows when it ends.
    Running,
    /// Ended while m3s was down (or just now): no event follows.
    Exited(TaskExit),
}

/// What went wrong, naming the container and the path involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid {field} '{value}': {reason}")]
    InvalidId { field: &'static str, value: String, reason: &'static str },
    #[error("container {container_id}: invalid launch spec: {reason}")]
    InvalidSpec { container_id: String, reason: String },
    #[error("container {container_id} already exists")]
    AlreadyExists { container_id: String },
    #[error("unknown container {container_id}")]
    UnknownContainer { container_id: String },
    #[error("unknown user '{user}' (container {container_id})")]
    UnknownUser { container_id: String, user: String },
    #[error(
        "container {container_id}: cannot run the task as user '{user}': m3s runs as uid {current_uid}, \
         and only root may switch users"
    )]
    UserNotPermitted { container_id: String, user: String, current_uid: u32 },
    #[error("container {container_id}: looking up user '{user}': {error}")]
    UserLookup { container_id: String, user: String, error: io::Error },
    #[error("container {container_id}: {action} {path}: {error}")]
    Io { container_id: String, action: &'static str, path: PathBuf, error: io::Error },
    #[error("container {container_id}: starting the supervisor {path}: {error}")]
    SupervisorSpawn { container_id: String, path: PathBuf, error: io::Error },
    #[error("container {container_id}: task launch failed: {message}")]
    Launch { container_id: String, message: String },
    #[error("{operation} must be called within a tokio runtime")]
    NoTokioRuntime { operation: &'static str },
    #[error("recovering containers from {path}: {error}")]
    Recover { path: PathBuf, error: io::Error },
    #[error("container {container_id}: setting up its cgroups: {source}")]
    Cgroup { container_id: String, source: cgroups::CgroupError },
}

/// The task runtime. Cheap to clone (shared state); when the last clone is
/// dropped it stops watching its supervisors, which (and whose tasks) keep
/// running, as after an m3s restart.
///
/// `launch`, `kill` and `recover` must be called within a tokio runtime with
/// its IO and time drivers enabled.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("work_dir", &self.inner.work_dir).finish_non_exhaustive()
    }
}

struct Inner {
    work_dir: PathBuf,
    runtime_dir: PathBuf,
    supervisor_exe: PathBuf,
    /// Forks supervisors (started at the first launch).
    launcher: launcher::Launcher,
    agent_id: String,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    containers: Mutex<HashMap<String, Container>>,
    /// Kills that arrived before their container was launched (its image was
    /// still being pulled): delivered as soon as its task exists. Locked after
    /// `containers`, never before.
    early_kills: Mutex<HashMap<String, (Duration, Instant)>>,
    /// Where container cgroups go; `None` when unavailable.
    cgroups: Option<cgroups::Hierarchy>,
    cgroups_status: CgroupsStatus,
    /// Where the cgroup hierarchies are mounted (for [`ContainerSetup::usage_of`]).
    cgroup_root: PathBuf,
}

struct Container {
    task: Option<ProcId>,
    exit: Option<TaskExit>,
    cgroups: Option<TaskCgroups>,
    limits: Option<Limits>,
    /// Flips to true when the container has exited (cancels a kill's escalation).
    exited: watch::Sender<bool>,
    watcher: Option<AbortHandle>,
    /// Deadline and task of a pending SIGKILL escalation.
    killer: Option<(Instant, AbortHandle)>,
    /// What a kill with a grace period sends first.
    stop_signal: Signal,
    /// See [`ContainerSetup::usage_of`].
    usage_of: Option<u32>,
    /// A kill's grace period, asked for before the task process existed.
    pending_kill: Option<Duration>,
}

impl Container {
    fn new(task: Option<ProcId>, exit: Option<TaskExit>, record: &LaunchRecord) -> Self {
        let exited = watch::Sender::new(exit.is_some());
        let (cgroups, limits) = (record.cgroups.clone(), record.spec.limits);
        let stop_signal = record
            .spec
            .container
            .as_ref()
            .and_then(|c| c.stop_signal)
            .and_then(Signal::from_named_raw)
            .unwrap_or(Signal::TERM);
        let usage_of = record.spec.container.as_ref().and_then(|c| c.usage_of);
        Container {
            task,
            exit,
            cgroups,
            limits,
            exited,
            watcher: None,
            killer: None,
            stop_signal,
            usage_of,
            pending_kill: None,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let containers = self.containers.get_mut().unwrap_or_else(PoisonError::into_inner);
        for container in containers.values_mut() {
            if let Some(watcher) = container.watcher.take() {
                watcher.abort();
            }
            if let Some((_, killer)) = container.killer.take() {
                killer.abort();
            }
        }
    }
}

/// A supervisor just started by this process.
struct Spawned {
    supervisor: ProcId,
    pidfd: OwnedFd,
    /// Read end of the supervisor's stdout, which carries its launch report.
    report: OwnedFd,
    sandbox: PathBuf,
    run_dir: PathBuf,
    record: LaunchRecord,
}

/// Empty container cgroups older than this are leftovers (a task's cgroup
/// receives its process within a second of being made).
const LEFTOVER_CGROUP_AGE: Duration = Duration::from_secs(600);

type ReadySender = oneshot::Sender<Result<u32, String>>;

impl Runtime {
    pub fn new(config: RuntimeConfig) -> (Runtime, mpsc::UnboundedReceiver<RuntimeEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let work_dir = std::path::absolute(&config.work_dir).unwrap_or(config.work_dir);
        let runtime_dir = match config.runtime_dir {
            Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
            None => work_dir.join("meta").join("runtime"),
        };
        let cgroup_root = config.cgroup_root.unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
        let (cgroups, cgroups_status) = match cgroups::detect(&cgroup_root) {
            Ok(hierarchy) => {
                let status = hierarchy.status();
                let swept = hierarchy.sweep_empty(LEFTOVER_CGROUP_AGE);
                if swept > 0 {
                    tracing::info!(count = swept, "removed empty container cgroups left by killed supervisors");
                }
                (Some(hierarchy), status)
            }
            Err(reason) => (None, CgroupsStatus::Unavailable(reason.to_string())),
        };
        let inner = Inner {
            launcher: launcher::Launcher::new(config.supervisor_exe.clone(), &runtime_dir),
            work_dir,
            runtime_dir,
            supervisor_exe: config.supervisor_exe,
            agent_id: config.agent_id,
            events,
            containers: Mutex::new(HashMap::new()),
            early_kills: Mutex::new(HashMap::new()),
            cgroups,
            cgroups_status,
            cgroup_root,
        };
        (Runtime { inner: Arc::new(inner) }, receiver)
    }

    /// Whether tasks get cgroup limits, and if not why: for the caller to
    /// log once at start (a warning when unavailable).
    pub fn cgroups_status(&self) -> &CgroupsStatus {
        &self.inner.cgroups_status
    }

    /// Creates the sandbox of `spec`'s container (owned by the task's user
    /// when it switches), as [`Runtime::launch`] will, so that it can be
    /// filled (by the fetcher) before the launch.
    pub async fn prepare_sandbox(&self, spec: &LaunchSpec) -> Result<PathBuf, RuntimeError> {
        validate_spec(&self.inner.agent_id, spec)?;
        let (inner, spec) = (self.inner.clone(), spec.clone());
        let container_id = spec.container_id.clone();
        tokio::task::spawn_blocking(move || {
            let run_as = match &spec.user {
                Some(user) => resolve_user(&spec.container_id, user)?,
                None => None,
            };
            inner.prepare_sandbox(&spec, run_as.as_ref())
        })
        .await
        .map_err(|e| RuntimeError::Launch { container_id, message: format!("internal error: {e}") })?
    }

    /// The sandbox of a container (Mesos's layout).
    pub fn sandbox_path(&self, framework_id: &str, executor_id: &str, container_id: &str) -> PathBuf {
        self.inner.sandbox_path(framework_id, executor_id, container_id)
    }

    /// Creates the sandbox, writes the launch spec, starts the supervisor and
    /// waits until the task process exists. A task that could not be started
    /// (unknown program, bad working directory, user switch refused, ...)
    /// fails here with [`RuntimeError::Launch`]; its bookkeeping is removed
    /// and no event follows.
    ///
    /// Cancellation-safe in the sense that a launch dropped midway still
    /// completes in the background and its container is tracked (an Exited
    /// event follows).
    pub async fn launch(&self, spec: LaunchSpec) -> Result<Launched, RuntimeError> {
        validate_spec(&self.inner.agent_id, &spec)?;
        let container_id = spec.container_id.clone();
        if self.inner.lock().contains_key(&container_id) {
            return Err(RuntimeError::AlreadyExists { container_id });
        }
        let internal = |e: tokio::task::JoinError| RuntimeError::Launch {
            container_id: container_id.clone(),
            message: format!("internal error: {e}"),
        };
        let run_as = match spec.user.clone() {
            None => None,
            Some(user) => {
                let id = container_id.clone();
                tokio::task::spawn_blocking(move || resolve_user(&id, &user)).await.map_err(internal)??
            }
        };
        let inner = self.inner.clone();
        let spawned =
            tokio::task::spawn_blocking(move || inner.spawn_supervisor(spec, run_as)).await.map_err(internal)??;
        let Spawned { supervisor, pidfd, report, sandbox, run_dir, record } = spawned;

        let report = match pipe::Receiver::from_owned_fd(report) {
            Ok(report) => report,
            Err(error) => return Err(abandon(&container_id, supervisor, pidfd, &run_dir, "watching", error).await),
        };
        let pidfd = match register_pidfd(pidfd) {
            Ok(pidfd) => pidfd,
            Err((pidfd, error)) => {
                return Err(abandon(&container_id, supervisor, pidfd, &run_dir, "watching", error).await);
            }
        };

        let (ready_tx, ready_rx) = oneshot::channel();
        {
            let mut containers = self.inner.lock();
            let mut container = Container::new(None, None, &record);
            container.pending_kill = self.inner.take_early_kill(&container_id);
            let watcher = tokio::spawn(watch_supervisor(
                Arc::downgrade(&self.inner),
                container_id.clone(),
                run_dir,
                supervisor,
                None,
                pidfd,
                Some((report, ready_tx)),
            ));
            container.watcher = Some(watcher.abort_handle());
            containers.insert(container_id.clone(), container);
        }
        match ready_rx.await {
            Ok(Ok(pid)) => {
                // A kill that came while the task was being started is delivered now.
                let pending = self.inner.lock().get_mut(&container_id).and_then(|c| c.pending_kill.take());
                if let Some(grace) = pending
                    && let Err(e) = self.kill(&container_id, grace)
                {
                    tracing::warn!(%container_id, error = %e, "a kill asked for during the launch failed");
                }
                Ok(Launched { pid, supervisor_pid: supervisor.pid, sandbox })
            }
            Ok(Err(message)) => Err(RuntimeError::Launch { container_id, message }),
            Err(_) => Err(RuntimeError::Launch { container_id, message: "the runtime stopped".to_owned() }),
        }
    }

    /// Sends SIGTERM (a container's stop signal) to the task's process group
    /// (and the rest of its session), then SIGKILL after `grace` unless it has exited by then; a
    /// zero grace sends SIGKILL at once. Killing an exited container is `Ok`.
    /// A second kill while one is pending only shortens the grace period. A kill
    /// for a container still being launched (or not launched yet) is kept and
    /// delivered as soon as its task process exists.
    ///
    /// The escalation is done by this runtime: if m3s stops during the grace
    /// period, the task only got SIGTERM (kill it again after recovery).
    pub fn kill(&self, container_id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + grace;
        let handle = if grace.is_zero() {
            None
        } else {
            let handle = tokio::runtime::Handle::try_current();
            Some(handle.map_err(|_| RuntimeError::NoTokioRuntime { operation: "Runtime::kill" })?)
        };
        let (task, exited, first, stop_signal) = {
            let mut containers = self.inner.lock();
            let Some(container) = containers.get_mut(container_id) else {
                // Not launched yet (its image is being pulled): the launch delivers it.
                self.inner.remember_early_kill(container_id, grace);
                return Ok(());
            };
            if container.exit.is_some() {
                return Ok(());
            }
            if container.task.is_none() {
                container.task = self.inner.recorded_task(container_id);
            }
            let Some(task) = container.task else {
                // Launching: the task process is delivered this kill as soon as it exists.
                container.pending_kill = Some(container.pending_kill.map_or(grace, |g| g.min(grace)));
                return Ok(());
            };
            if let Some((pending, _)) = &container.killer {
                if *pending <= deadline {
                    return Ok(());
                }
            }
            let first = container.killer.is_none();
            if let Some((_, killer)) = container.killer.take() {
                killer.abort();
            }
            if let Some(handle) = handle {
                let exited = container.exited.subscribe();
                let killer = handle.spawn(escalate(task, deadline, exited));
                container.killer = Some((deadline, killer.abort_handle()));
            }
            (task, container.exited.subscribe(), first, container.stop_signal)
        };
        if *exited.borrow() || procfs::liveness(task) == Liveness::Gone {
            // Ended already: the supervisor reports it.
            return Ok(());
        }
        if grace.is_zero() {
            procfs::signal_task(task.pid, Signal::KILL);
        } else if first {
            procfs::signal_task(task.pid, stop_signal);
        }
        Ok(())
    }

    /// Scans the runtime directory for containers of a previous run: running
    /// ones are re-adopted (watched again, an Exited event follows when they
    /// end); ended ones are returned with their recorded status (no event).
    /// A container whose supervisor vanished without a status is `Lost`, and
    /// its task, if still alive, is killed. Call once at start, before
    /// launching; containers already known are skipped.
    pub async fn recover(&self) -> Result<Vec<RecoveredContainer>, RuntimeError> {
        let dir = self.inner.containers_dir();
        let known: HashSet<String> = self.inner.lock().keys().cloned().collect();
        let scan_dir = dir.clone();
        let found = tokio::task::spawn_blocking(move || scan(&scan_dir, &known))
            .await
            .map_err(|e| RuntimeError::Recover { path: dir.clone(), error: io::Error::other(e) })??;

        let mut recovered = Vec::with_capacity(found.len());
        for Found { record, run_dir, supervisor, task, state } in found {
            let container_id = record.spec.container_id.clone();
            let state = match state {
                Scanned::Running(pidfd) => {
                    let pidfd = register_pidfd(pidfd).map_err(|(_, error)| RuntimeError::Io {
                        container_id: container_id.clone(),
                        action: "watching the supervisor of",
                        path: run_dir.clone(),
                        error,
                    })?;
                    let mut containers = self.inner.lock();
                    let mut container = Container::new(task, None, &record);
                    let watcher = tokio::spawn(watch_supervisor(
                        Arc::downgrade(&self.inner),
                        container_id.clone(),
                        run_dir,
                        supervisor.unwrap_or(ProcId { pid: 0, start_time: 0 }),
                        task,
                        pidfd,
                        None,
                    ));
                    container.watcher = Some(watcher.abort_handle());
                    containers.insert(container_id, container);
                    ContainerState::Running
                }
                Scanned::Exited(exit) => {
                    self.inner.lock().insert(container_id, Container::new(task, Some(exit.clone()), &record));
                    ContainerState::Exited(exit)
                }
            };
            let mut spec = record.spec;
            if let (ContainerState::Running, Some(task)) = (&state, task) {
                // launch.json keeps the names only; the running task has the values
                // (health checks need them).
                let environ = procfs::environ(task.pid);
                for (name, value) in &mut spec.env {
                    if let Some(v) = environ.get(name.as_str()) {
                        value.clone_from(v);
                    }
                }
            }
            recovered.push(RecoveredContainer {
                pid: task.map(|t| t.pid),
                supervisor_pid: supervisor.map(|s| s.pid),
                sandbox: record.sandbox,
                spec,
                state,
            });
        }
        Ok(recovered)
    }

    /// Resource usage of a running container's task: processes and threads
    /// (of its process group and session) from /proc; memory and CPU times
    /// from its cgroups when it has some, else from /proc too; and the
    /// limits of its spec (`cpus_limit` is the hard limit, else the
    /// request; `mem_limit_bytes` the memory limit in force). `None` for
    /// unknown or ended containers.
    pub fn usage(&self, container_id: &str) -> Option<mesos::v1::ResourceStatistics> {
        let (task, cgroups, limits, usage_of) = {
            let mut containers = self.inner.lock();
            let container = containers.get_mut(container_id)?;
            if container.exit.is_some() {
                return None;
            }
            if container.task.is_none() {
                container.task = self.inner.recorded_task(container_id);
            }
            (container.task?, container.cgroups.clone(), container.limits, container.usage_of)
        };
        if procfs::liveness(task) == Liveness::Gone {
            return None;
        }
        let (pid, cgroups) = match usage_of {
            Some(pid) => (pid, cgroups::of_process(&self.inner.cgroup_root, pid)),
            None => (task.pid, cgroups),
        };
        let mut stats = procfs::usage(pid)?;
        if let Some(cgroups) = cgroups {
            cgroups.fill_usage(&mut stats);
        }
        if let Some(limits) = limits {
            stats.cpus_soft_limit = Some(limits.cpus);
            stats.cpus_limit = Some(limits.cpus_limit.unwrap_or(limits.cpus));
            stats.mem_soft_limit_bytes = Some(limits.mem_bytes);
            // Unlimited: the machine's memory, as Mesos reports it.
            stats.mem_limit_bytes = cgroups::memory_limit(&limits).or_else(total_memory);
        }
        Some(stats)
    }

    /// Removes an ended container's bookkeeping (not its sandbox). Running
    /// containers are left alone.
    pub fn forget(&self, container_id: &str) {
        if validate_id("container_id", container_id).is_err() {
            return;
        }
        let run_dir = self.inner.containers_dir().join(container_id);
        let cgroups = {
            let mut containers = self.inner.lock();
            match containers.get(container_id) {
                Some(container) if container.exit.is_none() => {
                    tracing::warn!(container_id, "not forgetting a running container");
                    return;
                }
                Some(_) => containers.remove(container_id).and_then(|container| container.cgroups),
                // Not adopted (recover not called?): only if it has ended.
                None if !run_dir.join(records::STATUS).exists() => return,
                None => recorded_cgroups(&run_dir),
            }
        };
        // The supervisor removed them unless it was killed. Off this thread
        // (the caller may hold locks) when there is a tokio runtime.
        if let Some(cgroups) = cgroups {
            let id = container_id.to_owned();
            let remove = move || {
                if let Err(error) = cgroups.remove() {
                    tracing::warn!(container_id = id, %error, "removing the container's cgroups");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
        match fs::remove_dir_all(&run_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(container_id, path = %run_dir.display(), %error, "removing container bookkeeping")
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a kill for a container that never launches is remembered.
    const EARLY_KILL_KEPT: Duration = Duration::from_secs(600);

    fn remember_early_kill(&self, container_id: &str, grace: Duration) {
        let mut early = self.early_kills.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        early.retain(|_, (_, at)| now.duration_since(*at) < Self::EARLY_KILL_KEPT);
        let entry = early.entry(container_id.to_owned()).or_insert((grace, now));
        entry.0 = entry.0.min(grace);
    }

    fn take_early_kill(&self, container_id: &str) -> Option<Duration> {
        self.early_kills.lock().unwrap_or_else(PoisonError::into_inner).remove(container_id).map(|(grace, _)| grace)
    }

    fn sandbox_path(&self, framework_id: &str, executor_id: &str, container_id: &str) -> PathBuf {
        let mut path = self.work_dir.join("slaves");
        for part in [self.agent_id.as_str(), "frameworks", framework_id, "executors", executor_id, "runs", container_id]
        {
            path.push(part);
        }
        path
    }

    fn containers_dir(&self) -> PathBuf {
        self.runtime_dir.join("containers")
    }

    fn recorded_task(&self, container_id: &str) -> Option<ProcId> {
        records::read_json(&self.containers_dir().join(container_id).join(records::TASK)).ok().flatten()
    }

    /// Blocking: claims the container's bookkeeping directory, prepares the
    /// sandbox, starts the supervisor.
    fn spawn_supervisor(&self, spec: LaunchSpec, run_as: Option<RunAs>) -> Result<Spawned, RuntimeError> {
        let container_id = spec.container_id.clone();
        let containers_dir = self.containers_dir();
        fs::create_dir_all(&containers_dir).map_err(|error| RuntimeError::Io {
            container_id: container_id.clone(),
            action: "creating",
            path: containers_dir.clone(),
            error,
        })?;
        // Creating it is what claims the container id (before its sandbox
        // is touched).
        let run_dir = containers_dir.join(&container_id);
        match fs::create_dir(&run_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists { container_id });
            }
            Err(error) => return Err(RuntimeError::Io { container_id, action: "creating", path: run_dir, error }),
        }
        let result = self.prepare_sandbox(&spec, run_as.as_ref()).and_then(|sandbox| {
            let cgroups = self.create_cgroups(&spec)?;
            let result = self.start_supervisor(spec, sandbox, run_dir.clone(), run_as, cgroups.clone());
            if let (Err(_), Some(cgroups)) = (&result, cgroups) {
                let _ = cgroups.remove();
            }
            result
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&run_dir);
        }
        result
    }

    /// The container's cgroups with its limits, when it has limits and
    /// cgroups are available.
    fn create_cgroups(&self, spec: &LaunchSpec) -> Result<Option<TaskCgroups>, RuntimeError> {
        let (Some(hierarchy), Some(limits)) = (&self.cgroups, &spec.limits) else { return Ok(None) };
        hierarchy
            .create(&spec.container_id, limits)
            .map(Some)
            .map_err(|source| RuntimeError::Cgroup { container_id: spec.container_id.clone(), source })
    }

    /// Creates the sandbox with its `stdout` and `stderr`, owned by the
    /// task's user if it is switched to.
    fn prepare_sandbox(&self, spec: &LaunchSpec, run_as: Option<&RunAs>) -> Result<PathBuf, RuntimeError> {
        let io_error = |action: &'static str, path: &Path| {
            let (container_id, path) = (spec.container_id.clone(), path.to_path_buf());
            move |error| RuntimeError::Io { container_id, action, path, error }
        };
        let sandbox = self.sandbox_path(&spec.framework_id, &spec.executor_id, &spec.container_id);
        fs::create_dir_all(&sandbox).map_err(io_error("creating the sandbox", &sandbox))?;
        if run_as.is_some() {
            // Another user must reach the sandbox through directories m3s made
            // private (umask 077): traversable, not listable.
            let slaves = self.work_dir.join("slaves");
            for dir in sandbox.ancestors().skip(1).take_while(|d| d.starts_with(&slaves)) {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
                    .map_err(io_error("making traversable", dir))?;
            }
        }
        for path in [sandbox.join("stdout"), sandbox.join("stderr"), sandbox.clone()] {
            if path != sandbox {
                OpenOptions::new().create(true).append(true).open(&path).map_err(io_error("creating", &path))?;
            }
            if let Some(run_as) = run_as {
                let (uid, gid) = (rustix::fs::Uid::from_raw(run_as.uid), rustix::fs::Gid::from_raw(run_as.gid));
                rustix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| io_error("changing the owner of", &path)(e.into()))?;
            }
        }
        Ok(sandbox)
    }

    fn start_supervisor(
        &self,
        spec: LaunchSpec,
        sandbox: PathBuf,
        run_dir: PathBuf,
        run_as: Option<RunAs>,
        cgroups: Option<TaskCgroups>,
    ) -> Result<Spawned, RuntimeError> {
        let container_id = spec.container_id.clone();
        let io_error = |action: &'static str, path: &Path| {
            let (container_id, path) = (container_id.clone(), path.to_path_buf());
            move |error| RuntimeError::Io { container_id, action, path, error }
        };
        let launch_path = run_dir.join(records::LAUNCH);
        let record = LaunchRecord { spec, sandbox: sandbox.clone(), run_as, cgroups };
        records::write_json(&launch_path, &record, false).map_err(io_error("writing", &launch_path))?;
        // The supervisor's diagnostics go to the sandbox's stderr, as a Mesos
        // executor's do.
        let stderr_path = sandbox.join("stderr");
        let stderr = OpenOptions::new().append(true).open(&stderr_path).map_err(io_error("opening", &stderr_path))?;

        // Forked by the launcher when it works (cheap), else executed here.
        let (reader, writer) = supervisor::cloexec_pipe().map_err(io_error("creating the report pipe of", &run_dir))?;
        match self.launcher.launch(&run_dir, stderr.as_fd(), writer.as_fd()) {
            Ok((supervisor, pidfd)) => {
                return Ok(Spawned { supervisor, pidfd, report: reader, sandbox, run_dir, record });
            }
            Err(launcher::Failure::Unavailable(error)) => {
                tracing::debug!(%container_id, %error, "supervisor launcher unavailable; executing the supervisor");
            }
            Err(failure) => {
                return Err(RuntimeError::SupervisorSpawn {
                    container_id,
                    path: self.supervisor_exe.clone(),
                    error: io::Error::other(failure.to_string()),
                });
            }
        }
        drop((reader, writer));

        let mut command = Command::new(&self.supervisor_exe);
        // A process group of its own keeps the supervisor out of reach of
        // signals sent to m3s's group or by its terminal (and, without a
        // pre_exec hook, std spawns it with posix_spawn: no fork of m3s).
        command
            .arg("supervise")
            .arg("--run-dir")
            .arg(&run_dir)
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().map_err(|error| RuntimeError::SupervisorSpawn {
            container_id: container_id.clone(),
            path: self.supervisor_exe.clone(),
            error,
        })?;
        let pid = child.id();
        // Our unreaped child: its pid cannot be reused, so this is race-free.
        let supervisor = procfs::proc_id(pid).unwrap_or(ProcId { pid, start_time: 0 });
        let report = child.stdout.take().map(OwnedFd::from);
        match (open_pidfd(pid), report) {
            (Ok(pidfd), Some(report)) => Ok(Spawned { supervisor, pidfd, report, sandbox, run_dir, record }),
            (pidfd, _) => {
                let _ = child.kill();
                let _ = child.wait();
                final_status(&run_dir, Some(supervisor), None);
                let error = pidfd.err().unwrap_or_else(|| io::Error::other("no pipe to the supervisor"));
                Err(RuntimeError::Io {
                    container_id,
                    action: "watching the supervisor (pidfd_open needs Linux 5.3 or later) of",
                    path: run_dir,
                    error,
                })
            }
        }
    }
}

/// The cgroups recorded in a container's `launch.json`.
fn recorded_cgroups(run_dir: &Path) -> Option<TaskCgroups> {
    records::read_json::<LaunchRecord>(&run_dir.join(records::LAUNCH)).ok().flatten()?.cgroups
}

/// The machine's memory (reported as the limit of a task with unlimited memory).
fn total_memory() -> Option<u64> {
    let info = rustix::system::sysinfo();
    Some((info.totalram as u64).saturating_mul(u64::from(info.mem_unit))).filter(|bytes| *bytes > 0)
}

/// For the fetcher: the credentials `user`'s task runs with (`None`: m3s's
/// own), as [`Runtime::launch`] resolves them.
pub(crate) fn task_credentials(container_id: &str, user: &str) -> Result<Option<RunAs>, RuntimeError> {
    resolve_user(container_id, user)
}

/// For the fetcher: switches a forked child to `run_as` (in `pre_exec`:
/// async-signal-safe system calls only).
pub(crate) fn switch_user(run_as: &RunAs) -> io::Result<()> {
    user::switch_to(run_as)
}

fn open_pidfd(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or_else(|| io::Error::other("invalid pid"))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// Registers a pidfd with tokio's reactor: readable once the process exits.
fn register_pidfd(pidfd: OwnedFd) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: an OwnedFd is an open descriptor that stays open (and keeps
    // referring to the same pidfd) until the AsyncFd drops it.
    unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }.map_err(|e| e.into_parts())
}

/// Reaps the process behind `pidfd` if it is our child (a supervisor this
/// process started); ECHILD (adopted after a restart) is fine.
fn reap(pidfd: impl AsFd) {
    let _ = rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED | WaitIdOptions::NOHANG);
}

/// Gives up on a supervisor that cannot be watched: kills it (and its task,
/// if it got that far) and removes its bookkeeping.
async fn abandon(
    container_id: &str,
    supervisor: ProcId,
    pidfd: OwnedFd,
    run_dir: &Path,
    action: &'static str,
    error: io::Error,
) -> RuntimeError {
    let dir = run_dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
        let _ = rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED);
        final_status(&dir, Some(supervisor), None);
        let _ = fs::remove_dir_all(&dir);
    })
    .await;
    RuntimeError::Io { container_id: container_id.to_owned(), action, path: run_dir.to_path_buf(), error }
}

/// Follows one supervisor: for a fresh launch, first its launch report
/// (answered on `launch`), then its exit, which is turned into an Exited
/// event with the status it recorded.
async fn watch_supervisor(
    inner: Weak<Inner>,
    container_id: String,
    run_dir: PathBuf,
    supervisor: ProcId,
    mut task: Option<ProcId>,
    pidfd: AsyncFd<OwnedFd>,
    launch: Option<(pipe::Receiver, ReadySender)>,
) {
    let mut ready = None;
    if let Some((mut report, ready_tx)) = launch {
        let mut buf = Vec::new();
        let _ = report.read_to_end(&mut buf).await;
        drop(report);
        match parse_report(&buf) {
            Some(Ok(pid)) => {
                let recorded = records::read_json::<ProcId>(&run_dir.join(records::TASK)).ok().flatten();
                let process = recorded.filter(|t| t.pid == pid).or_else(|| procfs::proc_id(pid));
                task = Some(process.unwrap_or(ProcId { pid, start_time: 0 }));
                if let Some(inner) = inner.upgrade() {
                    if let Some(container) = inner.lock().get_mut(&container_id) {
                        container.task = task;
                    }
                }
                let _ = ready_tx.send(Ok(pid));
            }
            failure => ready = Some((failure, ready_tx)),
        }
    }

    if pidfd.readable().await.is_err() {
        return;
    }
    reap(pidfd.get_ref());
    drop(pidfd);
    let dir = run_dir.clone();
    let exit = tokio::task::spawn_blocking(move || final_status(&dir, Some(supervisor), task))
        .await
        .unwrap_or_else(|e| TaskExit::Lost(format!("internal error: {e}")));

    if let Some((failure, ready_tx)) = ready {
        // The launch failed: no event, no bookkeeping left behind.
        let message = match failure {
            Some(Err(message)) => message,
            _ => {
                format!("the supervisor exited without reporting ({exit}); see the sandbox's stderr")
            }
        };
        let cgroups = inner.upgrade().and_then(|inner| inner.lock().remove(&container_id)).and_then(|c| c.cgroups);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(cgroups) = cgroups {
                let _ = cgroups.remove();
            }
            fs::remove_dir_all(run_dir)
        })
        .await;
        let _ = ready_tx.send(Err(message));
        return;
    }

    let Some(inner) = inner.upgrade() else { return };
    if let Some(container) = inner.lock().get_mut(&container_id) {
        container.exit = Some(exit.clone());
        container.watcher = None;
        if let Some((_, killer)) = container.killer.take() {
            killer.abort();
        }
        container.exited.send_replace(true);
    }
    let _ = inner.events.send(RuntimeEvent::Exited { container_id, status: exit });
}

/// SIGKILL at `deadline` unless the container has exited by then.
async fn escalate(task: ProcId, deadline: Instant, mut exited: watch::Receiver<bool>) {
    let ended = tokio::time::timeout_at(deadline, exited.wait_for(|exited| *exited)).await.is_ok();
    if !ended && !*exited.borrow() && procfs::liveness(task) != Liveness::Gone {
        procfs::signal_task(task.pid, Signal::KILL);
    }
}

/// The supervisor's launch report: `ready <pid>` or `error <message>`.
fn parse_report(buf: &[u8]) -> Option<Result<u32, String>> {
    let text = String::from_utf8_lossy(buf);
    let line = text.lines().next()?;
    if let Some(pid) = line.strip_prefix("ready ") {
        return pid.trim().parse().ok().map(Ok);
    }
    line.strip_prefix("error ").map(|message| Err(message.to_owned()))
}

/// The outcome of a container whose supervisor is gone: its recorded status,
/// or else `Lost`, after killing the task if it is still there (the pid
/// check guards against reuse). A `Lost` verdict is recorded too.
fn final_status(run_dir: &Path, supervisor: Option<ProcId>, task: Option<ProcId>) -> TaskExit {
    let status_path = run_dir.join(records::STATUS);
    match records::read_json::<StatusRecord>(&status_path) {
        Ok(Some(record)) => return record.outcome.into_exit(),
        Ok(None) => {}
        Err(error) => tracing::warn!(path = %status_path.display(), %error, "unreadable task status"),
    }
    let task = task
        .filter(|t| t.start_time != 0)
        .or_else(|| records::read_json::<ProcId>(&run_dir.join(records::TASK)).ok().flatten());
    let who = match supervisor {
        Some(s) if s.pid != 0 => format!("the task's supervisor (pid {})", s.pid),
        _ => "the task's supervisor".to_owned(),
    };
    // A container's processes are not the runtime's children: its runtime
    // removes them (`crun delete --force`), as the supervisor would have.
    if let Some(Some(record)) = records::read_json::<LaunchRecord>(&run_dir.join(records::LAUNCH)).ok()
        && let Some(container) = &record.spec.container
        && let Some((program, args)) = container.after_exit.split_first()
    {
        let _ =
            Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    // Whatever the task left in its cgroups goes too (processes that left
    // its session, say).
    let cgroups = recorded_cgroups(run_dir);
    let in_cgroups = cgroups.as_ref().is_some_and(|cgroups| !cgroups.pids().is_empty());
    let message = match task {
        Some(task) if procfs::liveness(task) != Liveness::Gone => {
            procfs::signal_task(task.pid, Signal::KILL);
            format!("{who} exited without recording the task's status; the task (pid {}) was killed", task.pid)
        }
        _ if in_cgroups => {
            format!("{who} exited without recording the task's status; the task's processes were killed")
        }
        Some(task) => format!("{who} exited without recording the task's status (task pid {})", task.pid),
        None => format!("{who} exited before starting the task"),
    };
    if let Some(cgroups) = &cgroups {
        cgroups.kill_all();
        let _ = cgroups.remove();
    }
    let record = StatusRecord { outcome: Outcome::Lost(message.clone()), finished_at: records::now_secs() };
    if let Err(error) = records::write_json(&status_path, &record, true) {
        tracing::warn!(path = %status_path.display(), %error, "recording a lost task");
    }
    TaskExit::Lost(message)
}

struct Found {
    record: LaunchRecord,
    run_dir: PathBuf,
    supervisor: Option<ProcId>,
    task: Option<ProcId>,
    state: Scanned,
}

enum Scanned {
    /// The supervisor is alive; its pidfd.
    Running(OwnedFd),
    Exited(TaskExit),
}

/// Blocking part of [`Runtime::recover`].
fn scan(dir: &Path, known: &HashSet<String>) -> Result<Vec<Found>, RuntimeError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(RuntimeError::Recover { path: dir.to_path_buf(), error }),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !known.contains(name))
        .collect();
    names.sort();

    let mut found = Vec::with_capacity(names.len());
    for container_id in names {
        let run_dir = dir.join(&container_id);
        let launch_path = run_dir.join(records::LAUNCH);
        let record: LaunchRecord = match records::read_json(&launch_path) {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::warn!(path = %run_dir.display(), "container bookkeeping without launch.json, skipped");
                continue;
            }
            Err(error) => {
                tracing::warn!(path = %launch_path.display(), %error, "unreadable launch record, skipped");
                continue;
            }
        };
        if record.spec.container_id != container_id {
            tracing::warn!(path = %launch_path.display(), "launch record of another container, skipped");
            continue;
        }
        let read = |name: &str| -> Option<ProcId> {
            let path = run_dir.join(name);
            records::read_json(&path).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "unreadable record");
                None
            })
        };
        let (supervisor, task) = (read(records::SUPERVISOR), read(records::TASK));

        let mut watch = None;
        if let Some(supervisor) = supervisor {
            if procfs::liveness(supervisor) != Liveness::Gone {
                if let Ok(pidfd) = open_pidfd(supervisor.pid) {
                    // Checked again now that the pidfd pins the process.
                    match procfs::liveness(supervisor) {
                        Liveness::Alive => watch = Some(pidfd),
                        // Our own child that exited while nobody watched.
                        Liveness::Zombie => reap(&pidfd),
                        Liveness::Gone => {}
                    }
                }
            }
        }
        let state = match watch {
            Some(pidfd) => Scanned::Running(pidfd),
            None => Scanned::Exited(final_status(&run_dir, supervisor, task)),
        };
        found.push(Found { record, run_dir, supervisor, task, state });
    }
    Ok(found)
}

/// What a task inherits from m3s's own environment: what programs need to run,
/// nothing else. m3s's environment holds its secrets (`M3S_API_TOKEN`,
/// `AUTH_PASSWORD`, `REDIS_PASSWORD`, TLS keys), so unlike a Mesos agent,
/// which passes its whole environment on, m3s passes only these.
pub(crate) fn inherited_env() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    const NAMES: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"];
    std::env::vars_os().filter(|(name, _)| name.to_str().is_some_and(|n| NAMES.contains(&n) || n.starts_with("LC_")))
}

fn resolve_user(container_id: &str, name: &str) -> Result<Option<RunAs>, RuntimeError> {
    let (uid, gid) = user::lookup(name)
        .map_err(|error| RuntimeError::UserLookup {
            container_id: container_id.to_owned(),
            user: name.to_owned(),
            error,
        })?
        .ok_or_else(|| RuntimeError::UnknownUser { container_id: container_id.to_owned(), user: name.to_owned() })?;
    let euid = rustix::process::geteuid().as_raw();
    if uid == euid {
        return Ok(None);
    }
    if euid != 0 {
        return Err(RuntimeError::UserNotPermitted {
            container_id: container_id.to_owned(),
            user: name.to_owned(),
            current_uid: euid,
        });
    }
    Ok(Some(RunAs { user: name.to_owned(), uid, gid, groups: user::group_list(name, gid) }))
}

/// Ids become path components: Mesos's rules (non-empty, no `/`, not `.`
/// or `..`), plus no control characters and at most 255 bytes.
fn validate_id(field: &'static str, value: &str) -> Result<(), RuntimeError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.len() > 255 {
        "must not be longer than 255 bytes"
    } else if value == "." || value == ".." {
        "must not be '.' or '..'"
    } else if value.contains('/') {
        "must not contain '/'"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(RuntimeError::InvalidId { field, value: value.to_owned(), reason })
}

fn validate_spec(agent_id: &str, spec: &LaunchSpec) -> Result<(), RuntimeError> {
    validate_id("agent_id", agent_id)?;
    validate_id("framework_id", &spec.framework_id)?;
    validate_id("executor_id", &spec.executor_id)?;
    validate_id("task_id", &spec.task_id)?;
    validate_id("container_id", &spec.container_id)?;
    let invalid = |reason: String| Err(RuntimeError::InvalidSpec { container_id: spec.container_id.clone(), reason });
    let strings: Vec<(&str, &str)> = match &spec.command {
        TaskCommand::Shell(script) => vec![("the shell command", script)],
        TaskCommand::Argv { program, args } => {
            if program.is_empty() {
                return invalid("the command's program is empty".to_owned());
            }
            std::iter::once(("the program", program.as_str()))
                .chain(args.iter().map(|a| ("an argument", a.as_str())))
                .collect()
        }
    };
    for (what, value) in strings {
        if value.contains('\0') {
            return invalid(format!("{what} contains a NUL byte"));
        }
    }
    for (name, value) in &spec.env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return invalid(format!("invalid environment variable name '{}'", name.escape_debug()));
        }
        if value.contains('\0') {
            return invalid(format!("environment variable {name} contains a NUL byte"));
        }
    }
    if spec.user.as_deref().is_some_and(|user| user.is_empty() || user.contains('\0')) {
        return invalid("invalid user name".to_owned());
    }
    if spec.working_dir.as_deref().is_some_and(|dir| dir.contains('\0')) {
        return invalid("the working directory contains a NUL byte".to_owned());
    }
    if let Some(limits) = &spec.limits {
        if !(limits.cpus.is_finite() && limits.cpus >= 0.0) {
            return invalid(format!("invalid cpus {}", limits.cpus));
        }
        if limits.cpus_limit.is_some_and(|cpus| !(cpus.is_finite() && cpus > 0.0)) {
            return invalid(format!("invalid cpu limit {:?}", limits.cpus_limit));
        }
        if limits.mem_limit_bytes == Some(0) {
            return invalid("invalid memory limit 0".to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_would_escape_the_sandbox_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a\nb"] {
            assert!(validate_id("task_id", bad).is_err(), "{bad:?}");
        }
        for good in ["task-1", "a.b", "..x", "ünïcode"] {
            validate_id("task_id", good).unwrap();
        }
    }

    #[test]
    fn reports_are_parsed() {
        assert_eq!(parse_report(b"ready 42\n"), Some(Ok(42)));
        assert_eq!(parse_report(b"error cannot execute 'x'\n"), Some(Err("cannot execute 'x'".to_owned())));
        assert_eq!(parse_report(b""), None);
        assert_eq!(parse_report(b"ready x\n"), None);
    }

    #[test]
    fn exits_are_worded_as_mesos_does() {
        assert_eq!(TaskExit::Code(3).to_string(), "Command exited with status 3");
        assert_eq!(TaskExit::Signal(15).to_string(), "Command terminated with signal Terminated");
        assert_eq!(TaskExit::Signal(64).to_string(), "Command terminated with signal 64");
    }

    #[test]
    fn launch_spec_json_shape() {
        let spec = LaunchSpec {
            framework_id: "f".into(),
            executor_id: "e".into(),
            task_id: "t".into(),
            container_id: "c".into(),
            command: TaskCommand::Argv { program: "sleep".into(), args: vec!["sleep".into(), "1".into()] },
            env: vec![("A".into(), "b".into())],
            user: None,
            working_dir: None,
            limits: None,
            container: None,
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("limits").is_none());
        assert_eq!(json["command"]["argv"]["program"], "sleep");
        assert_eq!(json["env"][0][1], "b");
        assert_eq!(serde_json::from_value::<LaunchSpec>(json).unwrap(), spec);
    }
}
