//! Health checks against real processes and sockets: the checker on its own
//! (COMMAND, HTTP, TCP, timeouts, stop), the master's health updates on a
//! virtual clock, and whole clusters (`Cluster` with the `mini-supervise`
//! supervisor) whose tasks turn healthy, or unhealthy and get killed.
//! Waits are bounded (30 s); nothing asserts on timing.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos::recordio::Decoder;
use mesos::v1::scheduler::{Accept, Acknowledge, Call, CallKind, Event, Kill, Subscribe};
use mesos::v1::{
    CommandInfo, DurationInfo, Environment, EnvironmentVariable, FrameworkCapability, FrameworkCapabilityType,
    FrameworkId, FrameworkInfo, HealthCheck, HealthCheckType, HttpCheckInfo, KillPolicy, Offer, Operation, Resource,
    TaskId, TaskInfo, TaskState, TaskStatus, TaskStatusReason, TcpCheckInfo,
};
use mini::agent::health::{HealthChecker, HealthEvent, HealthTask};
use mini::cluster::{Cluster, ClusterConfig};
use mini::master::{Action, Clock, Exit, Master, MasterConfig};
use mini::resources::Resources;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ helpers

fn command_check(script: &str) -> HealthCheck {
    HealthCheck {
        kind: Some(HealthCheckType::Command),
        command: Some(CommandInfo::shell(script)),
        delay_seconds: 0.0,
        interval_seconds: 0.2,
        grace_period_seconds: 0.0,
        ..Default::default()
    }
}

fn http_check(port: u16, path: &str) -> HealthCheck {
    HealthCheck {
        kind: Some(HealthCheckType::Http),
        http: Some(HttpCheckInfo { port: port.into(), path: Some(path.into()), ..Default::default() }),
        delay_seconds: 0.0,
        interval_seconds: 0.2,
        grace_period_seconds: 0.0,
        consecutive_failures: 1,
        ..Default::default()
    }
}

fn tcp_check(port: u16) -> HealthCheck {
    HealthCheck {
        kind: Some(HealthCheckType::Tcp),
        tcp: Some(TcpCheckInfo { port: port.into(), ..Default::default() }),
        delay_seconds: 0.0,
        interval_seconds: 0.2,
        grace_period_seconds: 0.0,
        consecutive_failures: 1,
        ..Default::default()
    }
}

fn health_task(sandbox: &Path, id: &str, check: HealthCheck) -> HealthTask {
    HealthTask {
        container_id: id.to_owned(),
        check,
        sandbox: sandbox.to_owned(),
        env: Vec::new(),
        user: None,
        exec: Vec::new(),
        address: None,
        started_at: Instant::now(),
        last_healthy: None,
    }
}

async fn next_event(events: &mut UnboundedReceiver<HealthEvent>) -> HealthEvent {
    tokio::time::timeout(WAIT, events.recv()).await.expect("no health event within 30 s").expect("channel closed")
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event(id: &str, healthy: bool, kill: bool, failures: u32) -> HealthEvent {
    HealthEvent { container_id: id.to_owned(), healthy, kill, consecutive_failures: failures }
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| {
        let state = s[s.rfind(')')? + 2..].chars().next()?;
        Some(state != 'Z' && state != 'X')
    }) == Some(true)
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A tiny HTTP server: `/ok` 200, `/moved` 301 to `/ok`, `/to-missing` 302
/// to `missing` (relative), anything else 404. Serves until the test ends.
async fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                let response = match path.as_str() {
                    "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned(),
                    "/moved" => "HTTP/1.1 301 Moved\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n".to_owned(),
                    "/dir/to-missing" => {
                        "HTTP/1.1 302 Found\r\nLocation: missing\r\nContent-Length: 0\r\n\r\n".to_owned()
                    }
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
                };
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

// ------------------------------------------------------------------ the checker

#[tokio::test]
async fn passing_command_check_is_reported_healthy_once() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, mut events) = HealthChecker::new();
    checker.start(health_task(dir.path(), "c1", command_check("true")));
    assert_eq!(next_event(&mut events).await, event("c1", true, false, 0));
    assert!(checker.is_checking("c1"));
    checker.stop("c1");
    assert!(!checker.is_checking("c1"));
}

#[tokio::test]
async fn command_checks_run_in_the_sandbox_with_the_task_environment() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("marker"), "").unwrap();
    fs::write(dir.path().join("stderr"), "").unwrap();
    let mut check =
        command_check(r#"test "$FROM_TASK" = task && test "$OWN" = own && test -f marker && echo check-ran"#);
    check.command.as_mut().unwrap().environment = Some(Environment {
        variables: vec![EnvironmentVariable { name: "OWN".into(), value: Some("own".into()), ..Default::default() }],
    });
    let mut task = health_task(dir.path(), "c1", check);
    task.env = vec![("FROM_TASK".into(), "task".into()), ("OWN".into(), "overridden".into())];
    let (checker, mut events) = HealthChecker::new();
    checker.start(task);
    assert_eq!(next_event(&mut events).await, event("c1", true, false, 0));
    checker.stop("c1");
    // The command executor's stdout and stderr are the sandbox's stderr.
    assert!(fs::read_to_string(dir.path().join("stderr")).unwrap().contains("check-ran"));

    // The argv form: `arguments` is the whole argv.
    let argv = HealthCheck {
        command: Some(CommandInfo {
            shell: false,
            value: Some("/bin/sh".into()),
            arguments: vec!["sh".into(), "-c".into(), "test -f marker".into()],
            ..Default::default()
        }),
        ..command_check("")
    };
    checker.start(health_task(dir.path(), "c2", argv));
    assert_eq!(next_event(&mut events).await, event("c2", true, false, 0));
}

#[tokio::test]
async fn failing_command_check_reports_each_failure_then_asks_for_the_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, mut events) = HealthChecker::new();
    let check = HealthCheck { consecutive_failures: 2, ..command_check("exit 1") };
    checker.start(health_task(dir.path(), "c1", check));
    assert_eq!(next_event(&mut events).await, event("c1", false, false, 1));
    assert_eq!(next_event(&mut events).await, event("c1", false, true, 2));
    // Checking ends with the kill.
    wait_until("the checker ended", || !checker.is_checking("c1")).await;
}

#[tokio::test]
async fn failures_in_the_grace_period_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, mut events) = HealthChecker::new();
    let check = HealthCheck {
        grace_period_seconds: 600.0,
        consecutive_failures: 1,
        ..command_check("echo >> runs; test -f ready")
    };
    checker.start(health_task(dir.path(), "c1", check));
    // Let a few checks fail (ignored: the first report is the pass).
    let runs = || fs::read_to_string(dir.path().join("runs")).map_or(0, |s| s.lines().count());
    wait_until("failed checks ran", || runs() >= 3).await;
    fs::write(dir.path().join("ready"), "").unwrap();
    assert_eq!(next_event(&mut events).await, event("c1", true, false, 0));
}

#[tokio::test]
async fn a_check_over_its_timeout_fails_and_its_process_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, mut events) = HealthChecker::new();
    let check = HealthCheck {
        timeout_seconds: 1.0,
        consecutive_failures: 1,
        ..command_check("echo $$ > check.pid; sleep 300 & echo $! > child.pid; wait")
    };
    checker.start(health_task(dir.path(), "c1", check));
    assert_eq!(next_event(&mut events).await, event("c1", false, true, 1));
    let shell = read_pid(&dir.path().join("check.pid")).expect("the check ran");
    let child = read_pid(&dir.path().join("child.pid")).expect("the check started its child");
    wait_until("the check's processes are gone", || !alive(shell) && !alive(child)).await;
}

#[tokio::test]
async fn stopping_kills_a_running_check() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, _events) = HealthChecker::new();
    let check = HealthCheck { timeout_seconds: 0.0, ..command_check("echo $$ > check.pid; sleep 300; true") };
    checker.start(health_task(dir.path(), "c1", check));
    let pid_file = dir.path().join("check.pid");
    wait_until("the check runs", || read_pid(&pid_file).is_some()).await;
    let pid = read_pid(&pid_file).unwrap();
    assert!(alive(pid));
    checker.stop("c1");
    wait_until("the check is gone", || !alive(pid)).await;
}

#[tokio::test]
async fn http_checks_pass_on_2xx_and_3xx_and_follow_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_server().await;
    let (checker, mut events) = HealthChecker::new();
    checker.start(health_task(dir.path(), "ok", http_check(port, "/ok")));
    assert_eq!(next_event(&mut events).await, event("ok", true, false, 0));
    checker.stop("ok");
    checker.start(health_task(dir.path(), "moved", http_check(port, "/moved")));
    assert_eq!(next_event(&mut events).await, event("moved", true, false, 0));
    checker.stop("moved");
    checker.start(health_task(dir.path(), "missing", http_check(port, "/missing")));
    assert_eq!(next_event(&mut events).await, event("missing", false, true, 1));
    // Followed (relative Location) to a 404: unhealthy, where the 302 alone would pass.
    checker.start(health_task(dir.path(), "redirected", http_check(port, "/dir/to-missing")));
    assert_eq!(next_event(&mut events).await, event("redirected", false, true, 1));
    // Nothing listening.
    checker.start(health_task(dir.path(), "closed", http_check(closed_port(), "/ok")));
    assert_eq!(next_event(&mut events).await, event("closed", false, true, 1));
}

#[tokio::test]
async fn tcp_checks_pass_when_a_connection_opens() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (checker, mut events) = HealthChecker::new();
    checker.start(health_task(dir.path(), "open", tcp_check(port)));
    assert_eq!(next_event(&mut events).await, event("open", true, false, 0));
    checker.stop("open");
    checker.start(health_task(dir.path(), "closed", tcp_check(closed_port())));
    assert_eq!(next_event(&mut events).await, event("closed", false, true, 1));
}

#[tokio::test]
async fn invalid_checks_are_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let (checker, _events) = HealthChecker::new();
    let check = HealthCheck { kind: Some(HealthCheckType::Http), ..Default::default() };
    checker.start(health_task(dir.path(), "c1", check));
    assert!(!checker.is_checking("c1"));
}

// ------------------------------------------------------------------ the master

fn framework_info() -> FrameworkInfo {
    FrameworkInfo {
        user: String::new(),
        name: "health".into(),
        failover_timeout: 3600.0,
        roles: vec!["test".into()],
        capabilities: [FrameworkCapabilityType::MultiRole, FrameworkCapabilityType::TaskKillingState]
            .into_iter()
            .map(|kind| FrameworkCapability { kind })
            .collect(),
        ..Default::default()
    }
}

fn task_info(id: &str, agent: &mesos::v1::AgentId, cmd: &str, check: HealthCheck) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: agent.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell(cmd)),
        health_check: Some(check),
        ..Default::default()
    }
}

fn accept(fid: &FrameworkId, offer_id: &str, tasks: Vec<TaskInfo>) -> Call {
    Call::new(
        fid.clone(),
        CallKind::Accept(Accept {
            offer_ids: vec![mesos::v1::OfferId::new(offer_id)],
            operations: vec![Operation::launch(tasks)],
            filters: None,
        }),
    )
}

fn now() -> Clock {
    Clock { mono: Instant::now(), unix: 1e9 }
}

#[test]
fn master_reports_health_and_an_unhealthy_kill_as_mesos_does() {
    let config = MasterConfig {
        master_id: "m1".into(),
        hostname: "localhost".into(),
        ip: "127.0.0.1".parse().unwrap(),
        port: 5050,
        resources: Resources::parse("cpus:2;mem:1024").unwrap(),
        attributes: Vec::new(),
        version: "1.11.0".into(),
        heartbeat_interval: Duration::from_secs(15),
        seed: 1,
        allowed_users: mini::master::AllowedUsers::Any,
    };
    let mut m = Master::new(config, now());
    let (fid, stream) =
        m.subscribe(now(), None, Subscribe { framework_info: framework_info(), ..Default::default() }).unwrap();
    let offer = m.offers_of(&fid).pop().expect("an offer");
    let mut info = task_info("t1", m.agent_id(), "sleep 60", command_check("exit 1"));
    info.kill_policy = Some(KillPolicy { grace_period: Some(DurationInfo { nanoseconds: 7_000_000_000 }) });
    m.handle_call(now(), Some(&stream), accept(&fid, &offer, vec![info])).unwrap();
    let container = m.framework(&fid).unwrap().tasks[&TaskId::new("t1")].container_id.clone().unwrap();
    m.task_started(now(), &container, Some(4242));
    while m.poll_action().is_some() {}

    m.task_health(now(), &container, true);
    m.task_health(now(), &container, false);
    m.task_unhealthy_kill(now(), &container);
    let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
    assert!(
        actions.contains(&Action::Kill { container_id: container.clone(), grace: Duration::from_secs(7) }),
        "killed with the task's kill policy: {actions:?}"
    );
    m.task_exited(now(), &container, Exit::Signal(15));

    let statuses = &m.framework(&fid).unwrap().tasks[&TaskId::new("t1")].statuses;
    let states: Vec<(TaskState, Option<bool>, Option<TaskStatusReason>)> =
        statuses.iter().map(|s| (s.state.clone(), s.healthy, s.reason.clone())).collect();
    assert_eq!(
        states,
        [
            (TaskState::Starting, None, None),
            // Health updates replace the RUNNING status they repeat.
            (TaskState::Running, Some(false), Some(TaskStatusReason::TaskHealthCheckStatusUpdated)),
            (TaskState::Killing, None, None),
            (TaskState::Killed, Some(false), None),
        ]
    );
    assert_eq!(statuses[3].message.as_deref(), Some("Command terminated with signal Terminated"));
}

// ------------------------------------------------------------------ whole clusters

/// Kills, when dropped, the process groups of the tasks a test started (a
/// failing test must not leave its `sleep`s and servers behind).
#[derive(Default)]
struct TaskGuard(Mutex<Vec<u32>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().drain(..) {
            if alive(pid) {
                let _ = kill_process_group(Pid::from_raw(pid as i32).unwrap(), Signal::KILL);
            }
        }
    }
}

/// A cluster with one subscribed framework that acknowledges every update.
struct Mini {
    cluster: Cluster,
    fid: FrameworkId,
    stream_id: String,
    rx: UnboundedReceiver<Bytes>,
    decoder: Decoder,
    offers: Vec<Offer>,
    /// Every update received, in order.
    updates: Vec<TaskStatus>,
    guard: TaskGuard,
    _dir: Option<tempfile::TempDir>,
}

impl Mini {
    async fn start(resources: &str) -> Mini {
        let dir = tempfile::tempdir().unwrap();
        let mut mini = Mini::start_in(dir.path(), resources, None).await;
        mini._dir = Some(dir);
        mini
    }

    /// A cluster on `work_dir` (restarted if it held one), the framework
    /// subscribing with `framework_id` if given.
    async fn start_in(work_dir: &Path, resources: &str, framework_id: Option<FrameworkId>) -> Mini {
        let config = ClusterConfig {
            work_dir: work_dir.to_owned(),
            hostname: "localhost".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 5050,
            resources: Resources::parse(resources).unwrap(),
            attributes: Vec::new(),
            heartbeat_interval: Duration::from_secs(15),
            supervisor_exe: env!("CARGO_BIN_EXE_mini-supervise").into(),
            allowed_users: mini::master::AllowedUsers::Any,
            containers: None,
            docker: None,
        };
        let cluster = Cluster::start(config).await.unwrap();
        let info = FrameworkInfo { id: framework_id.clone(), ..framework_info() };
        let subscribe = Subscribe { framework_info: info, ..Default::default() };
        let (fid, stream_id, rx) = cluster.with_master(|m, now| {
            let (fid, stream_id) = m.subscribe(now, framework_id, subscribe).unwrap();
            let rx = cluster.open_stream(&stream_id);
            (fid, stream_id, rx)
        });
        Mini {
            cluster,
            fid,
            stream_id,
            rx,
            decoder: Decoder::default(),
            offers: Vec::new(),
            updates: Vec::new(),
            guard: TaskGuard::default(),
            _dir: None,
        }
    }

    fn call(&self, kind: CallKind) {
        let call = Call::new(self.fid.clone(), kind);
        self.cluster.with_master(|m, now| m.handle_call(now, Some(&self.stream_id), call)).unwrap();
    }

    /// Reads events, acknowledging updates, until `done`.
    async fn until(&mut self, what: &str, done: impl Fn(&Mini) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            if let Some(record) = self.decoder.next_record().unwrap() {
                match serde_json::from_slice::<Event>(&record).unwrap() {
                    Event::Offers(o) => self.offers.extend(o.offers),
                    Event::Update(u) => {
                        if let (Some(agent_id), Some(uuid)) = (u.status.agent_id.clone(), u.status.uuid.clone()) {
                            let task_id = u.status.task_id.clone();
                            self.call(CallKind::Acknowledge(Acknowledge { agent_id, task_id, uuid }));
                        }
                        self.updates.push(u.status);
                    }
                    _ => {}
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; updates: {:#?}", self.states()))
                .expect("stream closed");
            self.decoder.feed(&chunk);
        }
    }

    fn states(&self) -> Vec<(String, TaskState, Option<bool>)> {
        self.updates.iter().map(|s| (s.task_id.value.clone(), s.state.clone(), s.healthy)).collect()
    }

    fn updates_of(&self, task: &str) -> Vec<&TaskStatus> {
        self.updates.iter().filter(|s| s.task_id.value == task).collect()
    }

    async fn launch(&mut self, task: TaskInfo) {
        self.until("an offer", |m| !m.offers.is_empty()).await;
        let offer = self.offers.remove(0);
        let id = task.task_id.value.clone();
        self.call(CallKind::Accept(Accept {
            offer_ids: vec![offer.id],
            operations: vec![Operation::launch(vec![task])],
            filters: None,
        }));
        self.until("the task running", |m| m.updates_of(&id).iter().any(|s| s.state == TaskState::Running)).await;
        let pid = self.cluster.read(|m| m.framework(&self.fid).unwrap().tasks[&TaskId::new(&id)].executor_pid);
        self.guard.0.lock().unwrap().extend(pid);
    }

    fn agent(&self) -> mesos::v1::AgentId {
        self.cluster.read(|m| m.agent_id().clone())
    }

    async fn kill(&mut self, task: &str) {
        self.call(CallKind::Kill(Kill { task_id: TaskId::new(task), agent_id: None, kill_policy: None }));
        self.until("the task killed", |m| m.updates_of(task).iter().any(|s| s.state == TaskState::Killed)).await;
    }
}

fn is_health_update(s: &TaskStatus, healthy: bool) -> bool {
    s.state == TaskState::Running
        && s.healthy == Some(healthy)
        && s.reason == Some(TaskStatusReason::TaskHealthCheckStatusUpdated)
}

#[tokio::test]
async fn cluster_reports_a_healthy_command_task() {
    let mut mini = Mini::start("cpus:2;mem:1024").await;
    let task = task_info("healthy", &mini.agent(), "sleep 60", command_check("true"));
    mini.launch(task).await;
    mini.until("a healthy update", |m| m.updates_of("healthy").iter().any(|s| is_health_update(s, true))).await;
    let latest =
        mini.cluster.read(|m| m.framework(&mini.fid).unwrap().tasks[&TaskId::new("healthy")].latest().cloned());
    assert_eq!(latest.unwrap().healthy, Some(true));
    mini.kill("healthy").await;
    let healthy_updates = mini.updates_of("healthy").iter().filter(|s| is_health_update(s, true)).count();
    assert_eq!(healthy_updates, 1, "only the first pass is reported: {:#?}", mini.states());
}

#[tokio::test]
async fn cluster_kills_a_task_after_consecutive_failures() {
    let mut mini = Mini::start("cpus:2;mem:1024").await;
    let check = HealthCheck { consecutive_failures: 2, ..command_check("exit 1") };
    let task = task_info("sick", &mini.agent(), "sleep 60", check);
    mini.launch(task).await;
    mini.until("the task killed", |m| m.updates_of("sick").iter().any(|s| s.state.is_terminal())).await;
    let updates = mini.updates_of("sick");
    let unhealthy = updates.iter().filter(|s| is_health_update(s, false)).count();
    assert_eq!(unhealthy, 2, "every failure is reported: {:#?}", mini.states());
    assert!(!updates.iter().any(|s| s.healthy == Some(true)));
    let states: Vec<&TaskState> = updates.iter().map(|s| &s.state).collect();
    let killing = states.iter().position(|s| **s == TaskState::Killing).expect("TASK_KILLING");
    let last = updates.last().unwrap();
    assert_eq!(killing, updates.len() - 2, "{:#?}", mini.states());
    assert_eq!(last.state, TaskState::Killed);
    assert_eq!(last.healthy, Some(false));
    assert_eq!(last.reason, None);
}

#[tokio::test]
async fn cluster_checks_a_task_serving_http_on_its_port() {
    let port = closed_port();
    let mut mini = Mini::start(&format!("cpus:2;mem:1024;ports:[{port}-{port}]")).await;
    let check = HealthCheck { grace_period_seconds: 60.0, consecutive_failures: 3, ..http_check(port, "/") };
    let mut task = task_info("web", &mini.agent(), "exec python3 -m http.server $PORT0 --bind 127.0.0.1", check);
    task.resources.push(Resource::ranges("ports", [(u64::from(port), u64::from(port))]));
    mini.launch(task).await;
    mini.until("a healthy update", |m| m.updates_of("web").iter().any(|s| is_health_update(s, true))).await;
    mini.kill("web").await;
}

#[tokio::test]
async fn cluster_reports_a_tcp_check_on_a_closed_port_unhealthy() {
    let mut mini = Mini::start("cpus:2;mem:1024").await;
    let task = task_info("deaf", &mini.agent(), "sleep 60", tcp_check(closed_port()));
    mini.launch(task).await;
    mini.until("the task killed", |m| m.updates_of("deaf").iter().any(|s| s.state.is_terminal())).await;
    let updates = mini.updates_of("deaf");
    assert!(updates.iter().any(|s| is_health_update(s, false)), "{:#?}", mini.states());
    assert_eq!(updates.last().unwrap().state, TaskState::Killed);
}

#[test]
fn cluster_resumes_the_health_checks_of_tasks_it_readopts() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let resources = "cpus:2;mem:1024";
    let check = HealthCheck { consecutive_failures: 1, ..command_check("test ! -f sick") };
    let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();

    // An m3s whose task turns healthy, then goes away (its runtime dropped,
    // the task and its supervisor left running).
    let first = runtime();
    let (fid, sandbox, pids) = first.block_on(async {
        let mut mini = Mini::start_in(work, resources, None).await;
        let task = task_info("readopted", &mini.agent(), "sleep 60", check);
        mini.launch(task).await;
        mini.until("a healthy update", |m| m.updates_of("readopted").iter().any(|s| is_health_update(s, true))).await;
        let container = mini
            .cluster
            .read(|m| m.framework(&mini.fid).unwrap().tasks[&TaskId::new("readopted")].container_id.clone().unwrap());
        let sandbox = mini.cluster.runtime().sandbox_path(&mini.fid.value, "readopted", &container);
        mini.cluster.flush_checkpoint();
        let pids = std::mem::take(&mut *mini.guard.0.lock().unwrap());
        (mini.fid.clone(), sandbox, pids)
    });
    drop(first);

    // The restarted m3s checks it again: a failure is reported and kills it.
    runtime().block_on(async {
        let mut mini = Mini::start_in(work, resources, Some(fid)).await;
        mini.guard.0.lock().unwrap().extend(pids);
        let running = mini.cluster.read(|m| {
            let task = &m.framework(&mini.fid).unwrap().tasks[&TaskId::new("readopted")];
            (task.state.clone(), task.latest().and_then(|s| s.healthy))
        });
        assert_eq!(running, (TaskState::Running, Some(true)));
        fs::write(sandbox.join("sick"), "").unwrap();
        mini.until("the task killed", |m| m.updates_of("readopted").iter().any(|s| s.state.is_terminal())).await;
        let updates = mini.updates_of("readopted");
        assert!(updates.iter().any(|s| is_health_update(s, false)), "{:#?}", mini.states());
        assert!(
            !updates.iter().any(|s| is_health_update(s, true)),
            "healthy was reported already: {:#?}",
            mini.states()
        );
        let last = updates.last().unwrap();
        assert_eq!((&last.state, last.healthy), (&TaskState::Killed, Some(false)));
    });
}
