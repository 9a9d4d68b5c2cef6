//! The driver that joins the sans-IO master to the world: the task runtime,
//! the subscription streams, the checkpoint and the timers.
//!
//! Locking: one mutex around the [`Master`]. Every input locks it, feeds the
//! master, and dispatches the resulting actions *before unlocking*, so events
//! reach each stream in the order the master produced them. Dispatching never
//! blocks: stream sends go to unbounded channels, launches and kills are
//! spawned, checkpoint writes go to a writer thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use mesos::v1::operator::Event as OperatorEvent;
use mesos::v1::{Attribute, CommandInfo, FrameworkId, TaskId, TaskStatusReason};
use tokio::sync::{Notify, mpsc};

use crate::agent::container::{ContainerConfig, Containers};
use crate::agent::docker::{DockerConfig, DockerContainerizer};
use crate::agent::health::{HealthChecker, HealthEvent, HealthTask};
use crate::agent::network::Networks;
use crate::agent::runtime::{LaunchSpec, Runtime, RuntimeConfig, RuntimeEvent, TaskCommand, TaskExit};
use crate::checkpoint::{Checkpoint, FrameworkRecord};
use crate::master::{Action, AllowedUsers, Clock, Exit, Master, MasterConfig};
use crate::resources::Resources;

/// Settings of one embedded cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub work_dir: PathBuf,
    pub hostname: String,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub resources: Resources,
    pub attributes: Vec<Attribute>,
    pub heartbeat_interval: Duration,
    /// The program run as each task's supervisor (`<exe> supervise --run-dir DIR`).
    pub supervisor_exe: PathBuf,
    /// Users tasks may run as.
    pub allowed_users: AllowedUsers,
    /// How tasks with an image run; `None`: they fail, naming what is missing.
    pub containers: Option<ContainerConfig>,
    /// The Docker containerizer (`--containerizers=docker,mesos`): `DOCKER`
    /// tasks run by the Docker Engine. `None`: they run on `containers`.
    pub docker: Option<DockerConfig>,
}

/// The running cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    master: Mutex<Master>,
    /// Open scheduler subscription streams by stream id: RecordIO records out.
    streams: Mutex<HashMap<String, mpsc::UnboundedSender<Bytes>>>,
    /// Operator API subscribers: RecordIO records out.
    operator_streams: Mutex<Vec<mpsc::UnboundedSender<Bytes>>>,
    runtime: Runtime,
    /// Images and bundles, or why tasks with an image cannot run.
    containers: Result<Containers, NoContainers>,
    /// Container networks; `None` where containers cannot run.
    networks: Option<Arc<Networks>>,
    /// `DOCKER` tasks through the Docker Engine, when asked for.
    docker: Option<Arc<DockerContainerizer>>,
    /// Health checks of running tasks that have one.
    health: HealthChecker,
    checkpoint: Checkpoint,
    writes: std::sync::mpsc::Sender<CheckpointWrite>,
    /// Woken when the master's next deadline may have changed.
    timer: Notify,
    config: ClusterConfig,
}

enum CheckpointWrite {
    Framework(FrameworkId, Box<FrameworkRecord>),
    Task(FrameworkId, Box<crate::master::Task>),
    RemoveTask(FrameworkId, TaskId),
    /// Answered once every earlier write is done.
    Flush(std::sync::mpsc::Sender<()>),
}

pub fn clock() -> Clock {
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    Clock { mono: std::time::Instant::now(), unix }
}

impl Cluster {
    /// Recovers the checkpoint and the task runtime from `work_dir`, then
    /// starts the timers. Must run inside a tokio runtime.
    pub async fn start(config: ClusterConfig) -> std::io::Result<Cluster> {
        std::fs::create_dir_all(&config.work_dir)?;
        let master_id = master_id(&config.work_dir)?;
        let agent_id = format!("{master_id}-S0");
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
            ^ u64::from(std::process::id());
        let master_config = MasterConfig {
            master_id,
            hostname: config.hostname.clone(),
            ip: config.ip,
            port: config.port,
            resources: config.resources.clone(),
            attributes: config.attributes.clone(),
            version: crate::MESOS_VERSION.to_owned(),
            heartbeat_interval: config.heartbeat_interval,
            seed,
            allowed_users: config.allowed_users.clone(),
        };
        let now = clock();
        let mut master = Master::new(master_config, now);
        let checkpoint = Checkpoint::new(&config.work_dir);
        for (record, tasks) in checkpoint.recover().frameworks {
            master.restore(now, record.info, record.registered_time, record.removed, tasks);
        }
        let (runtime, events) = Runtime::new(RuntimeConfig {
            work_dir: config.work_dir.clone(),
            runtime_dir: None,
            supervisor_exe: config.supervisor_exe.clone(),
            agent_id,
            cgroup_root: None,
        });
        match runtime.cgroups_status() {
            status @ crate::agent::runtime::CgroupsStatus::Unavailable(_) => tracing::warn!("{status}"),
            status => tracing::info!("{status}"),
        }
        let containers = match config.containers.clone() {
            Some(c) => Containers::new(c).map_err(NoContainers::Failed),
            None => Err(NoContainers::NotConfigured),
        };
        if let Err(why) = &containers {
            tracing::warn!("tasks with an image will fail: {why}");
        }
        let networks = match (&containers, &config.containers) {
            (Ok(_), Some(c)) => Some(Arc::new(Networks::new(c.network.clone())?)),
            _ => None,
        };
        let docker = match config.docker.clone() {
            Some(c) => {
                let (work_dir, exe) = (config.work_dir.clone(), config.supervisor_exe.clone());
                let made = tokio::task::spawn_blocking(move || DockerContainerizer::new(c, &work_dir, &exe)).await;
                Some(Arc::new(made.map_err(std::io::Error::other)?.map_err(std::io::Error::other)?))
            }
            None => None,
        };
        let (health, health_events) = HealthChecker::new();
        let (writes, write_rx) = std::sync::mpsc::channel();
        let writer_checkpoint = checkpoint.clone();
        std::thread::Builder::new()
            .name("m3s-checkpoint".into())
            .spawn(move || write_checkpoints(writer_checkpoint, write_rx))?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                master: Mutex::new(master),
                streams: Mutex::new(HashMap::new()),
                operator_streams: Mutex::new(Vec::new()),
                runtime,
                containers,
                networks,
                docker,
                health,
                checkpoint,
                writes,
                timer: Notify::new(),
                config,
            }),
        };
        cluster.recover_containers().await;
        tokio::spawn(cluster.clone().run_timers());
        tokio::spawn(cluster.clone().run_runtime_events(events));
        tokio::spawn(cluster.clone().run_health_events(health_events));
        Ok(cluster)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// Matches the runtime's containers with the checkpointed tasks: running
    /// ones are re-adopted, ended ones reported with their real exit status,
    /// and tasks whose container vanished reported lost.
    async fn recover_containers(&self) {
        let recovered = match self.inner.runtime.recover().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not recover task containers");
                Vec::new()
            }
        };
        let mut seen = std::collections::HashSet::new();
        let mut running_containers = std::collections::HashSet::new();
        self.with_master(|m, now| {
            for c in &recovered {
                let id = &c.spec.container_id;
                seen.insert(id.clone());
                if m.task_by_container(id).is_none() {
                    // Launched but never checkpointed (a crash in between) or
                    // from a removed framework: no one wants it.
                    tracing::warn!(container_id = %id, "killing a container no task claims");
                    if matches!(c.state, crate::agent::runtime::ContainerState::Running) {
                        let _ = self.inner.runtime.kill(id, Duration::from_secs(3));
                    }
                    continue;
                }
                match &c.state {
                    crate::agent::runtime::ContainerState::Running => {
                        tracing::info!(container_id = %id, pid = ?c.pid, "re-adopted a running task");
                        // Its process runs: RUNNING, even if the checkpoint lagged behind.
                        m.task_started(now, id, c.pid);
                        self.resume_health_check(m, now, c);
                    }
                    crate::agent::runtime::ContainerState::Exited(exit) => {
                        m.task_exited(now, id, to_exit(exit));
                    }
                }
            }
            running_containers = recovered
                .iter()
                .filter(|c| matches!(c.state, crate::agent::runtime::ContainerState::Running))
                .map(|c| c.spec.container_id.clone())
                .collect();
            if let Ok(containers) = &self.inner.containers {
                // Bundles of containers that are gone (m3s was down when they ended).
                containers.remove_all_but(&running_containers);
            }
            for id in m.live_containers() {
                if !seen.contains(&id) {
                    m.task_launch_failed(
                        now,
                        &id,
                        "The task's container was not found after the agent restarted".into(),
                        TaskStatusReason::AgentRestarted,
                    );
                }
            }
        });
        if let Some(docker) = self.inner.docker.clone() {
            let running = running_containers.clone();
            let _ = tokio::task::spawn_blocking(move || docker.recover(&running)).await;
        }
        if let Some(networks) = &self.inner.networks {
            networks.recover(&running_containers).await;
        }
    }

    /// Runs `f` on the master under the lock and dispatches what it produced.
    pub fn with_master<R>(&self, f: impl FnOnce(&mut Master, Clock) -> R) -> R {
        let mut master = self.lock();
        let out = f(&mut master, clock());
        self.dispatch(&mut master);
        out
    }

    /// Read-only access for the endpoints.
    pub fn read<R>(&self, f: impl FnOnce(&Master) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Master> {
        self.inner.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscription stream (before the master's SUBSCRIBED event
    /// is dispatched to it) and returns its receiver.
    pub fn open_stream(&self, stream_id: &str) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(stream_id.to_owned(), tx);
        rx
    }

    /// Subscribes an operator API client; returns its receiver.
    pub fn open_operator_stream(&self, first: Bytes) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(first);
        self.inner.operator_streams.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// The HTTP client behind a subscription went away.
    pub fn stream_gone(&self, stream_id: &str) {
        let removed = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(stream_id).is_some();
        if removed {
            self.with_master(|m, now| m.stream_closed(now, stream_id));
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    fn dispatch(&self, master: &mut Master) {
        let mut timer_changed = false;
        while let Some(action) = master.poll_action() {
            match action {
                Action::Send { stream_id, event, .. } => {
                    let record = record(&event);
                    let streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(tx) = streams.get(&stream_id) {
                        let _ = tx.send(record);
                    }
                    timer_changed = true;
                }
                Action::CloseStream { stream_id } => {
                    self.inner.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream_id);
                }
                Action::Launch { framework_id, task_id } => {
                    if let Some(spec) = self.launch_spec(master, &framework_id, &task_id) {
                        let cluster = self.clone();
                        tokio::spawn(async move { cluster.launch(spec).await });
                    }
                }
                Action::Kill { container_id, grace } => {
                    // Mesos's executor stops health checking a task it kills.
                    self.inner.health.stop(&container_id);
                    if let Err(e) = self.inner.runtime.kill(&container_id, grace) {
                        tracing::warn!(%container_id, error = %e, "kill failed");
                    }
                }
                Action::CheckpointFramework(id) => {
                    let record = master
                        .framework(&id)
                        .map(|f| FrameworkRecord {
                            info: f.info.clone(),
                            registered_time: f.registered_time,
                            removed: false,
                        })
                        .or_else(|| {
                            master.completed_frameworks().find(|f| f.id == id).map(|f| FrameworkRecord {
                                info: f.info.clone(),
                                registered_time: f.registered_time,
                                removed: true,
                            })
                        });
                    if let Some(record) = record {
                        let _ = self.inner.writes.send(CheckpointWrite::Framework(id, Box::new(record)));
                    }
                    timer_changed = true;
                }
                Action::CheckpointTask { framework_id, task_id } => {
                    let task = master.framework(&framework_id).and_then(|f| f.tasks.get(&task_id)).cloned();
                    let write = match task {
                        Some(task) => CheckpointWrite::Task(framework_id, Box::new(task)),
                        None => {
                            // Completed (terminal update acknowledged): the runtime's
                            // record of the container is no longer needed either. Kept
                            // until now so a restart in between still knows the exit.
                            let container = master
                                .framework(&framework_id)
                                .and_then(|f| f.completed_tasks.iter().rev().find(|t| t.id() == &task_id))
                                .and_then(|t| t.container_id.clone());
                            if let Some(container) = container {
                                self.inner.runtime.forget(&container);
                                if let Ok(containers) = &self.inner.containers {
                                    containers.remove(&container);
                                }
                                self.remove_docker_container(&container);
                                self.detach_network(&container);
                            }
                            CheckpointWrite::RemoveTask(framework_id, task_id)
                        }
                    };
                    let _ = self.inner.writes.send(write);
                    timer_changed = true;
                }
                Action::Operator(event) => self.broadcast(&event),
            }
        }
        if timer_changed {
            self.inner.timer.notify_one();
        }
    }

    fn broadcast(&self, event: &OperatorEvent) {
        let mut subs = self.inner.operator_streams.lock().unwrap_or_else(|e| e.into_inner());
        if subs.is_empty() {
            return;
        }
        let record = record(event);
        subs.retain(|tx| tx.send(record.clone()).is_ok());
    }

    fn launch_spec(&self, master: &Master, fid: &FrameworkId, tid: &TaskId) -> Option<LaunchSpec> {
        let framework = master.framework(fid)?;
        let task = framework.tasks.get(tid)?;
        // A container task may leave the command to its image.
        let no_command = CommandInfo { shell: false, ..Default::default() };
        let command = task.info.command.as_ref().unwrap_or(&no_command);
        let container_id = task.container_id.clone()?;
        let sandbox = self.sandbox(master, fid, tid, &container_id);
        let mut env = crate::agent::command_env(command);
        let endpoint = format!("{}:{}", self.inner.config.ip, self.inner.config.port);
        env.extend([
            ("MESOS_SANDBOX".to_owned(), sandbox.display().to_string()),
            ("MESOS_DIRECTORY".to_owned(), sandbox.display().to_string()),
            ("MESOS_TASK_ID".to_owned(), tid.value.clone()),
            ("MESOS_FRAMEWORK_ID".to_owned(), fid.value.clone()),
            ("MESOS_EXECUTOR_ID".to_owned(), tid.value.clone()),
            ("MESOS_AGENT_ENDPOINT".to_owned(), endpoint),
            ("MESOS_CONTAINER_ID".to_owned(), container_id.clone()),
            ("HOST".to_owned(), self.inner.config.hostname.clone()),
        ]);
        let ports: Vec<u64> = Resources::from_wire(&task.info.resources)
            .map(|r| r.ranges("ports").ranges().iter().flat_map(|&(b, e)| b..=e).collect())
            .unwrap_or_default();
        for (i, p) in ports.iter().enumerate() {
            env.push((format!("PORT{i}"), p.to_string()));
        }
        if let Some(p) = ports.first() {
            env.push(("PORT".to_owned(), p.to_string()));
        }
        if !ports.is_empty() {
            env.push(("PORTS".to_owned(), ports.iter().map(u64::to_string).collect::<Vec<_>>().join(",")));
        }
        let cmd = if command.shell {
            TaskCommand::Shell(command.value.clone().unwrap_or_default())
        } else {
            TaskCommand::Argv { program: command.value.clone().unwrap_or_default(), args: command.arguments.clone() }
        };
        let user = command.user.clone().or_else(|| Some(framework.info.user.clone())).filter(|u| !u.is_empty());
        Some(LaunchSpec {
            framework_id: fid.value.clone(),
            executor_id: tid.value.clone(),
            task_id: tid.value.clone(),
            container_id,
            command: cmd,
            env,
            user,
            working_dir: None,
            limits: Some(task_limits(&task.info)),
            container: None,
        })
    }

    fn sandbox(&self, master: &Master, fid: &FrameworkId, tid: &TaskId, container_id: &str) -> PathBuf {
        self.inner
            .config
            .work_dir
            .join("slaves")
            .join(&master.agent_id().value)
            .join("frameworks")
            .join(&fid.value)
            .join("executors")
            .join(&tid.value)
            .join("runs")
            .join(container_id)
    }

    async fn launch(&self, mut spec: LaunchSpec) {
        let container_id = spec.container_id.clone();
        let failed = |message: String| {
            self.with_master(|m, now| {
                m.task_launch_failed(now, &container_id, message, TaskStatusReason::ContainerLaunchFailed)
            })
        };
        let info = self.read(|m| m.task_by_container(&container_id).map(|(_, t)| t.info.clone()));
        let docker_task = info.clone().filter(|t| self.inner.docker.is_some() && DockerContainerizer::handles(t));
        let info = info.filter(|t| docker_task.is_none() && Containers::wants_image(t));
        if info.is_some() || docker_task.is_some() {
            // What runs is the OCI runtime (or the Docker executor), once the
            // container is ready (below); the task's own command is the
            // container's, which may be the image's.
            spec.command = TaskCommand::Argv { program: "container-runtime".into(), args: Vec::new() };
            spec.user = None;
        }
        // The Mesos fetcher: CommandInfo.uris into the sandbox first.
        let uris = self.read(|m| {
            m.task_by_container(&container_id).and_then(|(_, t)| t.info.command.as_ref()).map(|c| c.uris.clone())
        });
        if let Some(uris) = uris.filter(|uris| !uris.is_empty()) {
            let fetched = match self.inner.runtime.prepare_sandbox(&spec).await {
                Ok(sandbox) => crate::agent::fetcher::Fetcher::new(&self.inner.config.work_dir)
                    .fetch(&uris, &sandbox, spec.user.as_deref())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(message) = fetched {
                self.with_master(|m, now| {
                    m.task_launch_failed(now, &container_id, message, TaskStatusReason::ContainerLaunchFailed)
                });
                return;
            }
            // A KILL (or teardown) while fetching found no container to kill: honour it now.
            if self.read(|m| m.task_by_container(&container_id).is_none_or(|(_, t)| t.killing)) {
                self.with_master(|m, now| m.task_exited(now, &container_id, Exit::Signal(libc::SIGKILL)));
                return;
            }
        }
        let mut address = None;
        if let (Some(task), Some(docker)) = (docker_task, self.inner.docker.clone()) {
            let sandbox = match self.inner.runtime.prepare_sandbox(&spec).await {
                Ok(s) => s,
                Err(e) => return failed(e.to_string()),
            };
            let (fid, cid, env, limits) =
                (spec.framework_id.clone(), container_id.clone(), spec.env.clone(), spec.limits);
            let docker_for_start = docker.clone();
            let started =
                tokio::task::spawn_blocking(move || docker_for_start.start(&task, &fid, &cid, &sandbox, &env, limits))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            let started = match started {
                Ok(s) => s,
                Err(message) => return failed(format!("Failed to launch container: {message}")),
            };
            address = started.address;
            // What runs as the task is the executor that follows the container.
            spec.command = TaskCommand::Argv { program: started.program, args: started.args };
            spec.env = Vec::new();
            spec.user = None;
            // The executor runs under the task's limits too (it needs a few MB); its
            // usage reports the container's cgroups (ContainerSetup::usage_of).
            spec.container = Some(started.setup);
            if self.read(|m| m.task_by_container(&container_id).is_none_or(|(_, t)| t.killing)) {
                self.remove_docker_container(&container_id);
                self.with_master(|m, now| m.task_exited(now, &container_id, Exit::Signal(libc::SIGKILL)));
                return;
            }
        } else if let Some(info) = info {
            let containers = match &self.inner.containers {
                Ok(c) => c,
                Err(why) => return failed(format!("Container images cannot run here: {why}")),
            };
            let sandbox = match self.inner.runtime.prepare_sandbox(&spec).await {
                Ok(s) => s,
                Err(e) => return failed(e.to_string()),
            };
            let network = match &self.inner.networks {
                Some(networks) => match networks.attach(&info, &container_id).await {
                    Ok(n) => n,
                    Err(e) => {
                        containers.remove(&container_id);
                        return failed(e.to_string());
                    }
                },
                None => None,
            };
            address = network.as_ref().and_then(|n| n.address());
            match containers.prepare(&info, &container_id, &sandbox, &spec.env, network.as_ref()).await {
                Ok(prepared) => {
                    // The OCI runtime runs as m3s (root); the container's process as its spec says.
                    spec.command = TaskCommand::Argv { program: prepared.program, args: prepared.args };
                    spec.env = Vec::new();
                    spec.user = None;
                    spec.container = Some(prepared.setup);
                }
                Err(e) => {
                    containers.remove(&container_id);
                    self.detach_network(&container_id);
                    return failed(e.to_string());
                }
            }
            if self.read(|m| m.task_by_container(&container_id).is_none_or(|(_, t)| t.killing)) {
                containers.remove(&container_id);
                self.detach_network(&container_id);
                self.with_master(|m, now| m.task_exited(now, &container_id, Exit::Signal(libc::SIGKILL)));
                return;
            }
        }
        // A health check runs with the task's environment and user (inside its container, if any).
        let health = self
            .read(|m| m.task_by_container(&container_id).and_then(|(_, t)| t.info.health_check.clone()))
            .map(|check| {
                let exec = spec.container.as_ref().map(|c| c.exec.clone()).unwrap_or_default();
                (check, spec.env.clone(), spec.user.clone(), exec)
            });
        match self.inner.runtime.launch(spec).await {
            Ok(launched) => {
                self.with_master(|m, now| m.task_started(now, &container_id, Some(launched.pid)));
                if let Some((check, env, user, exec)) = health {
                    self.inner.health.start(HealthTask {
                        container_id: container_id.clone(),
                        check,
                        sandbox: launched.sandbox,
                        env,
                        user,
                        exec,
                        address,
                        started_at: std::time::Instant::now(),
                        last_healthy: None,
                    });
                    // The task may have ended (or a kill begun) before the checker started.
                    let live = |m: &Master| {
                        m.task_by_container(&container_id).is_some_and(|(_, t)| !t.state.is_terminal() && !t.killing)
                    };
                    if !self.read(live) {
                        self.inner.health.stop(&container_id);
                    }
                }
            }
            Err(e) => {
                self.remove_docker_container(&container_id);
                self.with_master(|m, now| {
                    m.task_launch_failed(now, &container_id, e.to_string(), TaskStatusReason::ContainerLaunchFailed)
                })
            }
        }
    }

    /// Removes a Docker container and its files, in the background (a blocking API call).
    fn remove_docker_container(&self, container_id: &str) {
        if let Some(docker) = self.inner.docker.clone() {
            let container_id = container_id.to_owned();
            tokio::task::spawn_blocking(move || docker.remove(&container_id));
        }
    }

    /// Takes a container off its networks, in the background (CNI DEL runs plugins).
    fn detach_network(&self, container_id: &str) {
        if let Some(networks) = self.inner.networks.clone() {
            let container_id = container_id.to_owned();
            tokio::spawn(async move { networks.detach(&container_id).await });
        }
    }

    async fn run_runtime_events(self, mut events: mpsc::UnboundedReceiver<RuntimeEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                RuntimeEvent::Exited { container_id, status } => {
                    self.inner.health.stop(&container_id);
                    // Its names stop resolving and its address and ports are freed at once.
                    self.detach_network(&container_id);
                    self.with_master(|m, now| m.task_exited(now, &container_id, to_exit(&status)));
                }
            }
        }
    }

    /// Restarts the health check of a re-adopted task, counting its delay and
    /// grace period from its start and keeping the health last reported.
    fn resume_health_check(&self, m: &Master, now: Clock, c: &crate::agent::runtime::RecoveredContainer) {
        let Some((_, task)) = m.task_by_container(&c.spec.container_id) else { return };
        let Some(check) = task.info.health_check.clone() else { return };
        if task.killing {
            return;
        }
        let started =
            task.statuses.iter().find(|s| s.state == mesos::v1::TaskState::Starting).and_then(|s| s.timestamp);
        let age = started.map(|t| Duration::from_secs_f64((now.unix - t).clamp(0.0, 365.0 * 86400.0)));
        self.inner.health.start(HealthTask {
            container_id: c.spec.container_id.clone(),
            check,
            sandbox: c.sandbox.clone(),
            env: c.spec.env.clone(),
            user: c.spec.user.clone(),
            exec: c.spec.container.as_ref().map(|s| s.exec.clone()).unwrap_or_default(),
            address: self
                .inner
                .networks
                .as_ref()
                .and_then(|n| n.address_of(&c.spec.container_id))
                .or_else(|| self.inner.docker.as_ref().and_then(|d| d.address_of(&c.spec.container_id))),
            started_at: age.and_then(|a| now.mono.checked_sub(a)).unwrap_or(now.mono),
            last_healthy: task.latest().and_then(|s| s.healthy),
        });
    }

    /// Health check results become `healthy` updates; too many failures in a
    /// row kill the task. Results for a task that ended or is being killed
    /// are dropped (and its checking stopped), as Mesos's executor does.
    async fn run_health_events(self, mut events: mpsc::UnboundedReceiver<HealthEvent>) {
        while let Some(event) = events.recv().await {
            let id = &event.container_id;
            let live = self.with_master(|m, now| {
                let live = m.task_by_container(id).is_some_and(|(_, t)| !t.state.is_terminal() && !t.killing);
                if live {
                    m.task_health(now, id, event.healthy);
                    if event.kill {
                        m.task_unhealthy_kill(now, id);
                    }
                }
                live
            });
            if !live {
                self.inner.health.stop(id);
            }
        }
    }

    async fn run_timers(self) {
        loop {
            let deadline = self.read(|m| m.poll_timeout());
            let notified = self.inner.timer.notified();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(d)) => {
                            self.with_master(|m, now| m.handle_timeout(now));
                        }
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Waits until every checkpoint write queued so far is on disk (before a
    /// clean exit).
    pub fn flush_checkpoint(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.inner.writes.send(CheckpointWrite::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        }
    }

    /// The checkpoint, for tools and tests.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.inner.checkpoint
    }
}

fn to_exit(exit: &TaskExit) -> Exit {
    match exit {
        TaskExit::Code(c) => Exit::Code(*c),
        TaskExit::Signal(s) => Exit::Signal(*s),
        TaskExit::Lost(why) => Exit::Lost(why.clone()),
        TaskExit::MemoryLimit { .. } => Exit::MemoryLimit(exit.to_string()),
    }
}

/// A task's cgroup limits, Mesos's way: the cpus and mem resources are the
/// requests (shares, soft limit), `TaskInfo.limits` the hard limits
/// ("Infinity": none); without a mem limit the mem resource is the limit.
fn task_limits(info: &mesos::v1::TaskInfo) -> crate::agent::runtime::Limits {
    const MB: f64 = 1024.0 * 1024.0;
    let resources = Resources::from_wire(&info.resources).unwrap_or_default();
    let mem_bytes = (resources.scalar("mem").max(0.0) * MB) as u64;
    let limit = |name: &str| info.limits.get(name).map(|s| s.value);
    crate::agent::runtime::Limits {
        cpus: resources.scalar("cpus").max(0.0),
        cpus_limit: limit("cpus").filter(|c| c.is_finite() && *c > 0.0),
        mem_bytes,
        mem_limit_bytes: match limit("mem") {
            Some(mem) if mem.is_finite() => Some(((mem.max(0.0) * MB) as u64).max(1)),
            Some(_) => None,
            None => Some(mem_bytes.max(1)),
        },
    }
}

/// One RecordIO record holding `value` as JSON.
pub fn record<T: serde::Serialize>(value: &T) -> Bytes {
    let json = serde_json::to_vec(value).expect("events always serialize");
    let mut out = BytesMut::with_capacity(json.len() + 8);
    mesos::recordio::encode(&json, &mut out);
    out.freeze()
}

/// The master id is kept in the work directory so that framework, agent and
/// offer ids stay the same across restarts.
fn master_id(work_dir: &std::path::Path) -> std::io::Result<String> {
    let path = work_dir.join("master").join("id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    crate::checkpoint::write_atomic(&path, id.as_bytes())?;
    Ok(id)
}

fn write_checkpoints(checkpoint: Checkpoint, rx: std::sync::mpsc::Receiver<CheckpointWrite>) {
    for write in rx {
        let result = match &write {
            CheckpointWrite::Framework(id, record) => checkpoint.write_framework(id, record),
            CheckpointWrite::Task(id, task) => checkpoint.write_task(id, task),
            CheckpointWrite::RemoveTask(id, task_id) => checkpoint.remove_task(id, task_id),
            CheckpointWrite::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "checkpoint write failed");
        }
    }
}

/// Why an agent runs no containers: tasks with an image fail with it.
#[derive(Debug, thiserror::Error)]
enum NoContainers {
    #[error("this agent runs no containers (no image runtime configured)")]
    NotConfigured,
    #[error(transparent)]
    Failed(crate::agent::container::ContainerError),
}
