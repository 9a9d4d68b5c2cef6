//! Health checks of command tasks, run and interpreted as Mesos 1.11's command
//! executor does (`src/checks/health_checker.cpp`, `src/checks/checker_process.cpp`,
//! `src/launcher/executor.cpp`, `src/common/validation.cpp`, `docs/health-checks.md`):
//!
//! - The first check runs `delay_seconds` after the checker starts (right
//!   after the task's launch); each next one `interval_seconds` after the
//!   previous one *finished*.
//! - A check that takes longer than `timeout_seconds` (0: no limit) fails;
//!   its process group is killed with SIGKILL.
//! - COMMAND: the command (shell or argv) runs in the task's sandbox with the
//!   task's environment plus the check's own variables, as the task's user,
//!   stdin `/dev/null`, stdout and stderr appended to the sandbox's `stderr`
//!   (the command executor's stderr); exit status 0 passes.
//! - HTTP: `GET <scheme>://127.0.0.1:<port><path>` (`[::1]` for the IPv6
//!   protocol), following 3xx redirects as `curl -L` does; status 200 to 399
//!   passes. `statuses` is ignored, as by Mesos's built-in executors. `http`
//!   is spoken natively; `https` (including a redirect to it) uses `curl -k`,
//!   as Mesos does for every HTTP check.
//! - TCP: passes when a connection to 127.0.0.1:`port` opens.
//! - Until the first check passes, failures within `grace_period_seconds` of
//!   the task's start are ignored.
//! - The first pass is reported `healthy: true`, and so is the first pass
//!   after failures; *every* counted failure is reported `healthy: false`.
//! - At `consecutive_failures` failures in a row the task is to be killed
//!   (the executor then reports TASK_KILLING if the framework has the
//!   capability, and TASK_KILLED with `healthy: false` and no reason), and
//!   checking stops.
//!
//! [`HealthState`] is the sans-IO core (results in, reports and the next
//! check time out); [`HealthChecker`] runs it on tokio for many containers and
//! sends a [`HealthEvent`] for each report.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mesos::v1::{CommandInfo, HealthCheck, HealthCheckType, VariableType};
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::agent::runtime::{self, RunAs};

/// Durations beyond a year are as good as forever (and keep `Instant`
/// arithmetic safe).
const FOREVER_SECS: f64 = 365.0 * 86400.0;
/// `curl -L` follows at most this many redirects by default.
const MAX_REDIRECTS: usize = 50;
/// Most bytes of an HTTP response head read before giving up on it.
const MAX_HEAD: usize = 64 * 1024;

// ------------------------------------------------------------------ validation

/// Why a health check is invalid, in Mesos's words (`validateHealthCheck`,
/// `src/common/validation.cpp`). The master reports a task with an invalid
/// health check as TASK_ERROR with "Task uses invalid health check: " and this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHealthCheck {
    #[error("HealthCheck must specify 'type'")]
    NoType,
    #[error("Expecting '{field}' to be set for {kind} health check")]
    Missing { field: &'static str, kind: &'static str },
    #[error("Command health check must contain {0}")]
    NoCommandValue(&'static str),
    #[error("Health check's `CommandInfo` is invalid: {0}")]
    Environment(InvalidVariable),
    #[error("Unsupported HTTP health check scheme: '{0}'")]
    Scheme(String),
    #[error("The path '{0}' of HTTP health check must start with '/'")]
    Path(String),
    #[error("'{0}' is not a valid health check type")]
    Type(String),
    #[error("Expecting '{0}' to be non-negative")]
    Negative(&'static str),
}

/// An environment variable that is not what its type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidVariable {
    #[error("Environment variable '{0}' of type 'SECRET' must have a secret set")]
    SecretWithoutSecret(String),
    #[error("Environment variable '{0}' of type 'SECRET' must not have a value set")]
    SecretWithValue(String),
    #[error("Environment variable '{0}' of type 'VALUE' must have a value set")]
    ValueWithoutValue(String),
    #[error("Environment variable '{0}' of type 'VALUE' must not have a secret set")]
    ValueWithSecret(String),
    #[error("Environment variable of type 'UNKNOWN' is not allowed")]
    Unknown,
}

pub fn validate(check: &HealthCheck) -> Result<(), InvalidHealthCheck> {
    match &check.kind {
        None => return Err(InvalidHealthCheck::NoType),
        Some(HealthCheckType::Command) => {
            let Some(command) = &check.command else {
                return Err(InvalidHealthCheck::Missing { field: "command", kind: "COMMAND" });
            };
            if command.value.is_none() {
                let kind = if command.shell { "'shell command'" } else { "'executable path'" };
                return Err(InvalidHealthCheck::NoCommandValue(kind));
            }
            validate_environment(command).map_err(InvalidHealthCheck::Environment)?;
        }
        Some(HealthCheckType::Http) => {
            let Some(http) = &check.http else {
                return Err(InvalidHealthCheck::Missing { field: "http", kind: "HTTP" });
            };
            if let Some(scheme) = http.scheme.as_deref().filter(|s| *s != "http" && *s != "https") {
                return Err(InvalidHealthCheck::Scheme(scheme.to_owned()));
            }
            if let Some(path) = http.path.as_deref().filter(|p| !p.starts_with('/')) {
                return Err(InvalidHealthCheck::Path(path.to_owned()));
            }
        }
        Some(HealthCheckType::Tcp) => {
            if check.tcp.is_none() {
                return Err(InvalidHealthCheck::Missing { field: "tcp", kind: "TCP" });
            }
        }
        Some(other) => return Err(InvalidHealthCheck::Type(other.to_string())),
    }
    for (name, value) in [
        ("delay_seconds", check.delay_seconds),
        ("grace_period_seconds", check.grace_period_seconds),
        ("interval_seconds", check.interval_seconds),
        ("timeout_seconds", check.timeout_seconds),
    ] {
        if value < 0.0 {
            return Err(InvalidHealthCheck::Negative(name));
        }
    }
    Ok(())
}

fn validate_environment(command: &CommandInfo) -> Result<(), InvalidVariable> {
    for v in command.environment.iter().flat_map(|e| e.variables.iter()) {
        match v.kind.as_ref().unwrap_or(&VariableType::Value) {
            VariableType::Secret if v.secret.is_none() => {
                return Err(InvalidVariable::SecretWithoutSecret(v.name.clone()));
            }
            VariableType::Secret if v.value.is_some() => return Err(InvalidVariable::SecretWithValue(v.name.clone())),
            VariableType::Value if v.value.is_none() => return Err(InvalidVariable::ValueWithoutValue(v.name.clone())),
            VariableType::Value if v.secret.is_some() => return Err(InvalidVariable::ValueWithSecret(v.name.clone())),
            VariableType::Unspecified => return Err(InvalidVariable::Unknown),
            _ => {}
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ sans-IO core

/// The timing and interpretation settings of a [`HealthCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub delay: Duration,
    pub interval: Duration,
    /// `None`: checks may take forever (`timeout_seconds` 0).
    pub timeout: Option<Duration>,
    pub consecutive_failures: u32,
    pub grace_period: Duration,
}

impl HealthPolicy {
    pub fn of(check: &HealthCheck) -> Self {
        HealthPolicy {
            delay: seconds(check.delay_seconds),
            interval: seconds(check.interval_seconds),
            timeout: Some(seconds(check.timeout_seconds)).filter(|t| !t.is_zero()),
            consecutive_failures: check.consecutive_failures,
            grace_period: seconds(check.grace_period_seconds),
        }
    }
}

fn seconds(value: f64) -> Duration {
    if value.is_nan() { Duration::ZERO } else { Duration::from_secs_f64(value.clamp(0.0, FOREVER_SECS)) }
}

/// What a check result means for the task: send an update with `healthy`,
/// and kill the task if `kill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    pub healthy: bool,
    /// Failures in a row, this one included (0 when healthy).
    pub consecutive_failures: u32,
    pub kill: bool,
}

/// One task's health as Mesos's `HealthChecker` tracks it. No IO, no clock:
/// every input carries the time.
#[derive(Debug, Clone)]
pub struct HealthState {
    policy: HealthPolicy,
    started_at: Instant,
    /// No check has passed yet: failures in the grace period are ignored,
    /// and the first pass is reported.
    initializing: bool,
    consecutive_failures: u32,
    /// `None` once the task is to be killed: checking is over.
    next_check: Option<Instant>,
}

impl HealthState {
    /// A task that started at `started_at`: the first check is due
    /// `policy.delay` later.
    pub fn new(policy: HealthPolicy, started_at: Instant) -> Self {
        HealthState {
            policy,
            started_at,
            initializing: true,
            consecutive_failures: 0,
            next_check: Some(started_at + policy.delay),
        }
    }

    /// Checking resumed (after an m3s restart) for a task whose last reported
    /// health was `last_healthy`. A task reported healthy or unhealthy is past
    /// its grace period; one reported unhealthy had at least one failure, so
    /// its next pass is reported again (its failure count restarts at one:
    /// never killed earlier than Mesos would).
    pub fn resume(policy: HealthPolicy, started_at: Instant, last_healthy: Option<bool>) -> Self {
        let mut state = HealthState::new(policy, started_at);
        if let Some(healthy) = last_healthy {
            state.initializing = false;
            state.consecutive_failures = u32::from(!healthy);
        }
        state
    }

    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// When the next check is due; `None` once the task is to be killed.
    pub fn next_check(&self) -> Option<Instant> {
        self.next_check
    }

    /// Failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// A check finished at `now`: `passed` or not. Returns the update to
    /// send, if any, and schedules the next check `interval` from `now`.
    pub fn check_done(&mut self, now: Instant, passed: bool) -> Option<HealthReport> {
        self.next_check?;
        self.next_check = Some(now + self.policy.interval);
        if passed {
            let report = (self.initializing || self.consecutive_failures > 0).then_some(HealthReport {
                healthy: true,
                consecutive_failures: 0,
                kill: false,
            });
            self.initializing = false;
            self.consecutive_failures = 0;
            return report;
        }
        if self.in_grace(now) {
            return None;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let kill = self.consecutive_failures >= self.policy.consecutive_failures;
        if kill {
            self.next_check = None;
        }
        Some(HealthReport { healthy: false, consecutive_failures: self.consecutive_failures, kill })
    }

    /// Whether a failure at `now` would be ignored (grace period).
    pub fn in_grace(&self, now: Instant) -> bool {
        let grace = self.policy.grace_period;
        self.initializing && !grace.is_zero() && now.saturating_duration_since(self.started_at) <= grace
    }
}

// ------------------------------------------------------------------ the runner

/// A task to health-check.
#[derive(Debug, Clone)]
pub struct HealthTask {
    pub container_id: String,
    pub check: HealthCheck,
    /// COMMAND checks run here.
    pub sandbox: PathBuf,
    /// The environment the task got (on top of m3s's own); COMMAND checks get
    /// it too, under their own variables.
    pub env: Vec<(String, String)>,
    /// The task's user, if it is not m3s's: COMMAND checks run as it.
    pub user: Option<String>,
    /// For a container: the command that runs its argv inside it (`crun exec ID`).
    /// COMMAND checks run that way, in the container's namespaces and as its user.
    pub exec: Vec<String>,
    /// The container's address on its own network (HTTP and TCP checks go
    /// there, as Mesos runs them in its network namespace); `None`: loopback.
    pub address: Option<std::net::Ipv4Addr>,
    /// When the task started: the delay and the grace period count from here.
    pub started_at: Instant,
    /// Health last reported for the task, when checking resumes after an m3s
    /// restart (see [`HealthState::resume`]); `None` for a new task.
    pub last_healthy: Option<bool>,
}

/// A health update to send for a task's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub container_id: String,
    pub healthy: bool,
    /// Kill the task: `consecutive_failures` checks failed in a row. No more
    /// events follow for this container.
    pub kill: bool,
    /// Failures in a row (0 when healthy).
    pub consecutive_failures: u32,
}

/// Runs the health checks of any number of containers on tokio, one task
/// each, and reports on the channel returned by [`HealthChecker::new`].
/// Dropping it stops every check (and kills check processes still running).
pub struct HealthChecker {
    events: mpsc::UnboundedSender<HealthEvent>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    generation: AtomicU64,
}

struct Running {
    generation: u64,
    abort: AbortHandle,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker").field("checking", &lock(&self.running).len()).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HealthChecker {
    pub fn new() -> (HealthChecker, mpsc::UnboundedReceiver<HealthEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let checker =
            HealthChecker { events, running: Arc::new(Mutex::new(HashMap::new())), generation: AtomicU64::new(0) };
        (checker, receiver)
    }

    /// Starts checking `task.container_id` (replacing its current checker, if
    /// any). An invalid check is logged and not run, as Mesos's executor does.
    /// Must be called within a tokio runtime.
    pub fn start(&self, task: HealthTask) {
        if let Err(error) = validate(&task.check) {
            tracing::error!(container_id = %task.container_id, %error, "not health checking the task: invalid health check");
            return;
        }
        let container_id = task.container_id.clone();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let events = self.events.clone();
        let running = Arc::clone(&self.running);
        // Spawned under the lock, so that a loop ending at once finds its entry.
        let mut map = lock(&self.running);
        let handle = tokio::spawn(async move {
            let id = task.container_id.clone();
            run(task, events).await;
            let mut map = lock(&running);
            if map.get(&id).is_some_and(|r| r.generation == generation) {
                map.remove(&id);
            }
        });
        if let Some(old) = map.insert(container_id, Running { generation, abort: handle.abort_handle() }) {
            old.abort.abort();
        }
    }

    /// Stops checking the container (its task ended or is being killed); a
    /// check process still running is killed.
    pub fn stop(&self, container_id: &str) {
        if let Some(r) = lock(&self.running).remove(container_id) {
            r.abort.abort();
        }
    }

    /// Whether the container is being checked.
    pub fn is_checking(&self, container_id: &str) -> bool {
        lock(&self.running).contains_key(container_id)
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        for (_, r) in lock(&self.running).drain() {
            r.abort.abort();
        }
    }
}

async fn run(task: HealthTask, events: mpsc::UnboundedSender<HealthEvent>) {
    let policy = HealthPolicy::of(&task.check);
    let mut state = HealthState::resume(policy, task.started_at, task.last_healthy);
    let probe = Probe::of(&task);
    let name = format!("{} health check", task.check.kind.as_ref().map_or("UNKNOWN", |k| k.as_str()));
    while let Some(at) = state.next_check() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        let result = match policy.timeout {
            Some(timeout) => match tokio::time::timeout(timeout, probe.run()).await {
                Ok(result) => result,
                // Dropping the check killed its process group.
                Err(_) => Err(ProbeFailure::TimedOut(timeout)),
            },
            None => probe.run().await,
        };
        let now = Instant::now();
        if let Err(error) = &result {
            if state.in_grace(now) {
                tracing::info!(container_id = %task.container_id, %error, "ignoring failure of {name}: still in grace period");
            } else {
                tracing::warn!(container_id = %task.container_id, %error, "{name} failed");
            }
        }
        let Some(report) = state.check_done(now, result.is_ok()) else { continue };
        let event = HealthEvent {
            container_id: task.container_id.clone(),
            healthy: report.healthy,
            kill: report.kill,
            consecutive_failures: report.consecutive_failures,
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Mesos's `Duration` printing for whole and fractional seconds: `1secs`,
/// `1.5secs`, `500ms`.
fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{}ms", d.as_millis()) } else { format!("{}secs", d.as_secs_f64()) }
}

/// Why one check failed: what the warning in the log says.
#[derive(Debug, thiserror::Error)]
enum ProbeFailure {
    #[error("timed out after {}", format_duration(*.0))]
    TimedOut(Duration),
    #[error("the task's user: {0}")]
    User(#[source] Arc<runtime::RuntimeError>),
    #[error("invalid port {0}")]
    InvalidPort(u32),
    #[error("cannot execute '{program}': {source}")]
    CannotExecute { program: String, source: std::io::Error },
    #[error("waiting for {what}: {source}")]
    Wait { what: &'static str, source: std::io::Error },
    #[error("Command exited with status {0}")]
    Exited(i32),
    #[error("Command terminated with signal {0}")]
    Signalled(i32),
    #[error("Command ended abnormally")]
    Abnormal,
    #[error("Unexpected HTTP response code: {0}")]
    HttpCode(u16),
    #[error("TCP connection failed: {0}")]
    TcpConnect(#[source] std::io::Error),
    #[error("cannot follow the redirect to '{0}'")]
    BadRedirect(String),
    #[error("Maximum ({MAX_REDIRECTS}) redirects followed")]
    TooManyRedirects,
    #[error("{step} {url}: {source}")]
    Http { step: &'static str, url: Url, source: std::io::Error },
    #[error("Unexpected response from {url}: '{first_line}'")]
    UnexpectedResponse { url: Url, first_line: String },
    #[error("curl {status}: {stderr}")]
    Curl { status: std::process::ExitStatus, stderr: String },
    #[error("Unexpected output from curl: {0}")]
    CurlOutput(String),
}

/// How one check is performed.
enum Probe {
    Command {
        command: CommandInfo,
        sandbox: PathBuf,
        env: Vec<(String, String)>,
        run_as: Result<Option<RunAs>, Arc<runtime::RuntimeError>>,
        exec: Vec<String>,
    },
    Http {
        /// Err: the check's port, not a valid one.
        url: Result<Url, u32>,
    },
    Tcp {
        host: String,
        port: u32,
    },
}

impl Probe {
    fn of(task: &HealthTask) -> Probe {
        let check = &task.check;
        match check.kind {
            Some(HealthCheckType::Http) => {
                let http = check.http.clone().unwrap_or_default();
                let ipv6 = http.protocol.as_deref() == Some("IPv6");
                let url = u16::try_from(http.port).ok().filter(|p| *p != 0).ok_or(http.port).map(|port| Url {
                    scheme: http.scheme.clone().unwrap_or_else(|| "http".into()),
                    host: match (ipv6, task.address) {
                        (true, _) => "[::1]".into(),
                        (false, Some(ip)) => ip.to_string(),
                        (false, None) => "127.0.0.1".into(),
                    },
                    port,
                    path: http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
                });
                Probe::Http { url }
            }
            Some(HealthCheckType::Tcp) => {
                let tcp = check.tcp.clone().unwrap_or_default();
                let host = match (tcp.protocol.as_deref() == Some("IPv6"), task.address) {
                    (true, _) => "::1".to_owned(),
                    (false, Some(ip)) => ip.to_string(),
                    (false, None) => "127.0.0.1".to_owned(),
                };
                Probe::Tcp { host, port: tcp.port }
            }
            _ => Probe::Command {
                command: check.command.clone().unwrap_or_default(),
                sandbox: task.sandbox.clone(),
                env: task.env.clone(),
                run_as: task
                    .user
                    .as_deref()
                    .map_or(Ok(None), |user| runtime::task_credentials(&task.container_id, user).map_err(Arc::new)),
                exec: task.exec.clone(),
            },
        }
    }

    /// Performs the check: `Ok` if it passed, else why not.
    async fn run(&self) -> Result<(), ProbeFailure> {
        match self {
            Probe::Command { command, sandbox, env, run_as, exec } => {
                let run_as = run_as.as_ref().map_err(|e| ProbeFailure::User(e.clone()))?;
                if exec.is_empty() {
                    run_command(command, sandbox, env, run_as.as_ref()).await
                } else {
                    run_command(&in_container(exec, command), sandbox, &[], None).await
                }
            }
            Probe::Http { url } => {
                let code = http_status(url.clone().map_err(ProbeFailure::InvalidPort)?).await?;
                if (200..400).contains(&code) { Ok(()) } else { Err(ProbeFailure::HttpCode(code)) }
            }
            Probe::Tcp { host, port: p } => {
                let p = u16::try_from(*p).ok().filter(|p| *p != 0).ok_or(ProbeFailure::InvalidPort(*p))?;
                TcpStream::connect((host.as_str(), p)).await.map(drop).map_err(ProbeFailure::TcpConnect)
            }
        }
    }
}

// ------------------------------------------------------------------ COMMAND

/// A check's command run inside a container: `exec` (`crun exec ID`), the
/// check's own variables as `--env`, then its argv (a shell command under
/// `/bin/sh -c`, as Mesos runs it).
fn in_container(exec: &[String], command: &CommandInfo) -> CommandInfo {
    let mut argv: Vec<String> = exec.to_vec();
    for v in command.environment.iter().flat_map(|e| e.variables.iter()) {
        if v.kind != Some(VariableType::Secret)
            && let Some(value) = &v.value
        {
            argv.push(format!("--env={}={value}", v.name));
        }
    }
    let value = command.value.clone().unwrap_or_default();
    if command.shell {
        argv.extend(["/bin/sh".to_owned(), "-c".to_owned(), value]);
    } else if command.arguments.is_empty() {
        argv.push(value);
    } else {
        argv.extend(command.arguments.iter().cloned());
    }
    CommandInfo { shell: false, value: argv.first().cloned(), arguments: argv, environment: None, ..Default::default() }
}

async fn run_command(
    command: &CommandInfo,
    sandbox: &std::path::Path,
    env: &[(String, String)],
    run_as: Option<&RunAs>,
) -> Result<(), ProbeFailure> {
    let value = command.value.clone().unwrap_or_default();
    let mut cmd = if command.shell {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(&value);
        cmd
    } else {
        let mut cmd = tokio::process::Command::new(&value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            cmd.arg0(argv0).args(rest);
        }
        cmd
    };
    let own = command
        .environment
        .iter()
        .flat_map(|e| e.variables.iter())
        .filter(|v| v.kind != Some(VariableType::Secret))
        .filter_map(|v| Some((v.name.as_str(), v.value.as_deref()?)));
    cmd.env_clear()
        .envs(runtime::inherited_env())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(own)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(sandbox_stderr(sandbox))
        .stderr(sandbox_stderr(sandbox))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(run_as) = run_as.cloned() {
        // SAFETY: runs in the forked child before exec and only makes
        // async-signal-safe system calls (setgroups, setgid, setuid) on data
        // prepared beforehand; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || runtime::switch_user(&run_as));
        }
    }
    let mut child = cmd.spawn().map_err(|source| ProbeFailure::CannotExecute { program: value, source })?;
    // Killed with its process group if the check is dropped (timed out, or
    // the checker stopped) before it ended.
    let mut group = GroupKiller(child.id());
    let status = child.wait().await;
    group.0 = None;
    let status = status.map_err(|source| ProbeFailure::Wait { what: "the command", source })?;
    match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(ProbeFailure::Exited(code)),
        (None, Some(signal)) => Err(ProbeFailure::Signalled(signal)),
        (None, None) => Err(ProbeFailure::Abnormal),
    }
}

/// The sandbox's `stderr`, appended to (the command executor's stderr).
fn sandbox_stderr(sandbox: &std::path::Path) -> Stdio {
    OpenOptions::new().append(true).open(sandbox.join("stderr")).map(Stdio::from).unwrap_or_else(|_| Stdio::null())
}

/// SIGKILLs a process group when dropped, unless disarmed (`.0 = None`)
/// once its leader has been waited for: the leader's pid, not yet reaped,
/// cannot name another group.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()).and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
    }
}

// ------------------------------------------------------------------ HTTP

#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: String,
    /// As in the URL: IPv6 literals in brackets.
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}{}", self.scheme, self.host, self.port, self.path)
    }
}

impl Url {
    /// An absolute `http(s)://host[:port][/path]` URL.
    fn parse(text: &str) -> Option<Url> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => (&authority[..i], authority[i + 1..].parse().ok()?),
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return None;
        }
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        Some(Url { scheme, host: host.to_owned(), port, path })
    }

    /// A `Location` header's target, relative to this URL.
    fn join(&self, location: &str) -> Option<Url> {
        let location = location.trim();
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let base = self.path.split(['?', '#']).next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{location}", if dir.is_empty() { "/" } else { dir })
        };
        Some(Url { path, ..self.clone() })
    }

    fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The status code of `GET url`, following redirects as `curl -L` does.
async fn http_status(mut url: Url) -> Result<u16, ProbeFailure> {
    for _ in 0..=MAX_REDIRECTS {
        if url.scheme == "https" {
            return curl_status(&url).await;
        }
        let (code, location) = http_get(&url).await?;
        match location {
            Some(location) if (300..400).contains(&code) && code != 304 => {
                url = url.join(&location).ok_or(ProbeFailure::BadRedirect(location))?;
            }
            _ => return Ok(code),
        }
    }
    Err(ProbeFailure::TooManyRedirects)
}

/// One plain HTTP/1.1 GET: the status code and the `Location` header.
async fn http_get(url: &Url) -> Result<(u16, Option<String>), ProbeFailure> {
    let failed = |step: &'static str| move |source| ProbeFailure::Http { step, url: url.clone(), source };
    let mut stream = TcpStream::connect((url.connect_host(), url.port)).await.map_err(failed("connecting to"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: m3s-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.host, url.port
    );
    stream.write_all(request.as_bytes()).await.map_err(failed("sending the request to"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(failed("reading the response from"))?;
        if n == 0 {
            break;
        }
        let searched = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if head[searched..].windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
            break;
        }
    }
    parse_head(&head).ok_or_else(|| {
        let first_line = String::from_utf8_lossy(&head[..head.len().min(80)]).lines().next().unwrap_or("").to_owned();
        ProbeFailure::UnexpectedResponse { url: url.clone(), first_line }
    })
}

/// The status code and `Location` of an HTTP response head.
fn parse_head(head: &[u8]) -> Option<(u16, Option<String>)> {
    let text = String::from_utf8_lossy(head);
    let text = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = text.lines();
    let mut status = lines.next()?.split_whitespace();
    if !status.next()?.starts_with("HTTP/") {
        return None;
    }
    let code: u16 = status.next()?.parse().ok().filter(|c| (100..1000).contains(c))?;
    let location = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.trim().to_owned());
    Some((code, location))
}

/// HTTPS as Mesos does every HTTP check: `curl -k`, its output the code.
async fn curl_status(url: &Url) -> Result<u16, ProbeFailure> {
    let child = tokio::process::Command::new("curl")
        .args(["-s", "-S", "-L", "-k", "-w", "%{http_code}", "-o", "/dev/null", "-g"])
        .arg(url.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProbeFailure::CannotExecute { program: "curl".to_owned(), source })?;
    let mut group = GroupKiller(child.id());
    let output = child.wait_with_output().await;
    group.0 = None;
    let output = output.map_err(|source| ProbeFailure::Wait { what: "curl", source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ProbeFailure::Curl { status: output.status, stderr: stderr.trim().to_owned() });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.trim().parse().map_err(|_| ProbeFailure::CurlOutput(stdout.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos::v1::{Environment, EnvironmentVariable, HttpCheckInfo, TcpCheckInfo};

    fn policy(delay: u64, interval: u64, failures: u32, grace: u64) -> HealthPolicy {
        HealthPolicy {
            delay: Duration::from_secs(delay),
            interval: Duration::from_secs(interval),
            timeout: Some(Duration::from_secs(20)),
            consecutive_failures: failures,
            grace_period: Duration::from_secs(grace),
        }
    }

    const S: Duration = Duration::from_secs(1);

    fn report(healthy: bool, failures: u32, kill: bool) -> Option<HealthReport> {
        Some(HealthReport { healthy, consecutive_failures: failures, kill })
    }

    #[test]
    fn defaults_are_mesos_defaults_and_zero_timeout_means_none() {
        let p = HealthPolicy::of(&HealthCheck::default());
        assert_eq!(p, policy(15, 10, 3, 10));
        let check = HealthCheck { timeout_seconds: 0.0, delay_seconds: 0.5, ..Default::default() };
        let p = HealthPolicy::of(&check);
        assert_eq!((p.timeout, p.delay), (None, Duration::from_millis(500)));
        let huge = HealthCheck { interval_seconds: f64::INFINITY, delay_seconds: f64::NAN, ..Default::default() };
        let p = HealthPolicy::of(&huge);
        assert_eq!((p.interval, p.delay), (Duration::from_secs_f64(FOREVER_SECS), Duration::ZERO));
    }

    #[test]
    fn first_check_after_the_delay_then_interval_after_each_result() {
        let t0 = Instant::now();
        let mut s = HealthState::new(policy(5, 2, 3, 0), t0);
        assert_eq!(s.next_check(), Some(t0 + 5 * S));
        s.check_done(t0 + 6 * S, true);
        assert_eq!(s.next_check(), Some(t0 + 8 * S));
    }

    #[test]
    fn first_pass_is_reported_then_only_a_pass_after_failures() {
        let t0 = Instant::now();
        let mut s = HealthState::new(policy(0, 1, 3, 0), t0);
        assert_eq!(s.check_done(t0, true), report(true, 0, false));
        assert_eq!(s.check_done(t0 + S, true), None);
        assert_eq!(s.check_done(t0 + 2 * S, false), report(false, 1, false));
        assert_eq!(s.check_done(t0 + 3 * S, false), report(false, 2, false), "every failure is reported");
        assert_eq!(s.check_done(t0 + 4 * S, true), report(true, 0, false));
        assert_eq!(s.check_done(t0 + 5 * S, true), None);
        assert_eq!(s.check_done(t0 + 6 * S, false), report(false, 1, false), "the count restarted");
    }

    #[test]
    fn consecutive_failures_kill_and_end_checking() {
        let t0 = Instant::now();
        let mut s = HealthState::new(policy(0, 1, 2, 0), t0);
        assert_eq!(s.check_done(t0, false), report(false, 1, false));
        assert_eq!(s.check_done(t0 + S, false), report(false, 2, true));
        assert_eq!(s.next_check(), None);
        assert_eq!(s.check_done(t0 + 2 * S, false), None, "nothing after the kill");
    }

    #[test]
    fn zero_consecutive_failures_kills_at_the_first_failure_like_mesos() {
        let t0 = Instant::now();
        let mut s = HealthState::new(policy(0, 1, 0, 0), t0);
        assert_eq!(s.check_done(t0, false), report(false, 1, true));
    }

    #[test]
    fn failures_in_the_grace_period_are_ignored_until_the_first_pass() {
        let t0 = Instant::now();
        let mut s = HealthState::new(policy(0, 1, 1, 10), t0);
        assert!(s.in_grace(t0 + 10 * S));
        assert_eq!(s.check_done(t0 + S, false), None);
        assert_eq!(s.check_done(t0 + 10 * S, false), None, "the grace period's end is still in it");
        assert_eq!(s.check_done(t0 + 11 * S, false), report(false, 1, true));

        let mut s = HealthState::new(policy(0, 1, 2, 10), t0);
        assert_eq!(s.check_done(t0 + S, true), report(true, 0, false));
        assert!(!s.in_grace(t0 + 2 * S));
        assert_eq!(s.check_done(t0 + 2 * S, false), report(false, 1, false), "after a pass, no grace");
    }

    #[test]
    fn resumed_state_keeps_the_reported_health() {
        let t0 = Instant::now();
        let mut s = HealthState::resume(policy(0, 1, 3, 10), t0, Some(true));
        assert_eq!(s.check_done(t0, true), None, "already reported healthy");
        assert_eq!(s.check_done(t0 + S, false), report(false, 1, false), "no grace any more");

        let mut s = HealthState::resume(policy(0, 1, 3, 10), t0, Some(false));
        assert_eq!(s.check_done(t0, true), report(true, 0, false), "turns healthy again");

        let mut s = HealthState::resume(policy(0, 1, 3, 10), t0, None);
        assert_eq!(s.check_done(t0, false), None, "a new task: in grace");
    }

    #[test]
    fn validation_has_mesos_messages() {
        let command = |c: Option<CommandInfo>| HealthCheck {
            kind: Some(HealthCheckType::Command),
            command: c,
            ..Default::default()
        };
        assert_eq!(validate(&command(Some(CommandInfo::shell("true")))), Ok(()));
        assert_eq!(validate(&HealthCheck::default()).unwrap_err().to_string(), "HealthCheck must specify 'type'");
        assert_eq!(
            validate(&command(None)).unwrap_err().to_string(),
            "Expecting 'command' to be set for COMMAND health check"
        );
        assert_eq!(
            validate(&command(Some(CommandInfo::default()))).unwrap_err().to_string(),
            "Command health check must contain 'shell command'"
        );
        assert_eq!(
            validate(&command(Some(CommandInfo { shell: false, ..Default::default() }))).unwrap_err().to_string(),
            "Command health check must contain 'executable path'"
        );
        let no_value = CommandInfo {
            environment: Some(Environment {
                variables: vec![EnvironmentVariable { name: "A".into(), ..Default::default() }],
            }),
            ..CommandInfo::shell("true")
        };
        assert_eq!(
            validate(&command(Some(no_value))).unwrap_err().to_string(),
            "Health check's `CommandInfo` is invalid: Environment variable 'A' of type 'VALUE' must have a value set"
        );
        let http =
            |h: HttpCheckInfo| HealthCheck { kind: Some(HealthCheckType::Http), http: Some(h), ..Default::default() };
        assert_eq!(
            validate(&HealthCheck { kind: Some(HealthCheckType::Http), ..Default::default() }).unwrap_err().to_string(),
            "Expecting 'http' to be set for HTTP health check"
        );
        assert_eq!(
            validate(&http(HttpCheckInfo { scheme: Some("ftp".into()), port: 80, ..Default::default() }))
                .unwrap_err()
                .to_string(),
            "Unsupported HTTP health check scheme: 'ftp'"
        );
        assert_eq!(
            validate(&http(HttpCheckInfo { path: Some("x".into()), port: 80, ..Default::default() }))
                .unwrap_err()
                .to_string(),
            "The path 'x' of HTTP health check must start with '/'"
        );
        assert_eq!(
            validate(&HealthCheck { kind: Some(HealthCheckType::Tcp), ..Default::default() }).unwrap_err().to_string(),
            "Expecting 'tcp' to be set for TCP health check"
        );
        assert_eq!(
            validate(&HealthCheck { kind: Some(HealthCheckType::Unspecified), ..Default::default() })
                .unwrap_err()
                .to_string(),
            "'UNKNOWN' is not a valid health check type"
        );
        let negative = HealthCheck {
            kind: Some(HealthCheckType::Tcp),
            tcp: Some(TcpCheckInfo { port: 1, ..Default::default() }),
            interval_seconds: -1.0,
            ..Default::default()
        };
        assert_eq!(validate(&negative).unwrap_err().to_string(), "Expecting 'interval_seconds' to be non-negative");
    }

    #[test]
    fn urls_parse_and_redirects_resolve() {
        let base = Url::parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(base.path, "/a/b?x=1");
        assert_eq!(base.join("/c").unwrap().to_string(), "http://127.0.0.1:8080/c");
        assert_eq!(base.join("c").unwrap().to_string(), "http://127.0.0.1:8080/a/c");
        assert_eq!(base.join("https://example.com/z").unwrap().to_string(), "https://example.com:443/z");
        assert_eq!(base.join("//h:81").unwrap().to_string(), "http://h:81/");
        let v6 = Url::parse("http://[::1]:9/").unwrap();
        assert_eq!((v6.connect_host(), v6.port), ("::1", 9));
        assert_eq!(Url::parse("http://[::1]/").unwrap().port, 80);
        assert_eq!(Url::parse("ftp://h/"), None);
    }

    #[test]
    fn response_heads_give_the_code_and_location() {
        assert_eq!(parse_head(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody"), Some((200, None)));
        assert_eq!(parse_head(b"HTTP/1.1 302 Found\r\nlocation: /next\r\n\r\n"), Some((302, Some("/next".to_owned()))));
        assert_eq!(parse_head(b"HTTP/1.1 404\r\n"), Some((404, None)));
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_head(b""), None);
    }

    #[test]
    fn durations_print_as_mesos_prints_them() {
        assert_eq!(format_duration(Duration::from_secs(1)), "1secs");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5secs");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
    }
}
