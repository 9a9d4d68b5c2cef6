//! The K3s framework at work. The framework engine (a [`Framework`] of its own,
//! with its own FrameworkInfo and store) schedules the tasks; this module keeps
//! the clusters, plans them into projects, and judges health:
//!
//! - a datastore is healthy when its etcd answers `/health`;
//! - a server or agent when a Ready Kubernetes node carries its task id
//!   ([`crate::cluster::TASK_ID_LABEL`]), read with the kubeconfig the first
//!   server wrote into its sandbox (fetched through the agent's files API).
//!
//! A node NotReady past the node timeout has its task killed (the engine starts
//! a new one) and its node object deleted after the cleanup wait.
//!
//! Cluster records (spec and token) live in the framework's store under
//! `ext/k3s/<name>`, written through the engine's action queue, so a record is
//! durable before the calls that follow it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use framework::driver::{Framework, now_ms};
use framework::engine::CommandError;
use mesos::files::{AgentFiles, SandboxFile};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::cluster::{ClusterError, ClusterSpec, CreateRequest, Datastore, Role, Settings, TASK_ID_LABEL};
use crate::kube::{Kube, Node, Version};
use crate::plan::{self, KUBECONFIG_FILE, Seen};

const RECORD_PREFIX: &str = "ext/k3s/";
/// How soon the watch looks again after a change while something is starting or
/// unhealthy; doubled after each look that changes nothing, up to [`WATCH_BUSY_MAX`].
const WATCH_BUSY_MIN: Duration = Duration::from_millis(250);
const WATCH_BUSY_MAX: Duration = Duration::from_secs(2);
/// Least time between two looks.
const WATCH_COALESCE: Duration = Duration::from_millis(100);
/// How often it looks when every node is healthy.
const WATCH_IDLE: Duration = Duration::from_secs(15);
/// Largest kubeconfig read from a sandbox.
const KUBECONFIG_MAX: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum K3sError {
    #[error("no cluster named '{0}'")]
    NotFound(String),
    #[error("a cluster named '{0}' exists already")]
    Exists(String),
    #[error(transparent)]
    Invalid(#[from] ClusterError),
    /// The framework cannot do its work here (its directory, randomness, a stored record).
    #[error("{0}")]
    Setup(String),
    #[error("cluster {cluster} has no {role} running")]
    NoRole { cluster: String, role: Role },
    #[error(transparent)]
    Engine(#[from] CommandError),
    #[error("cluster '{cluster}': {message}")]
    Unavailable { cluster: String, message: String },
}

/// What the store keeps of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClusterRecord {
    spec: ClusterSpec,
    /// The join token, generated at create: never printed, never served.
    token: String,
}

/// What the watch learned of a cluster (memory only).
#[derive(Default)]
struct Observed {
    /// The server task whose kubeconfig this is, and the kubeconfig (its server rewritten).
    kubeconfig: Option<(String, String)>,
    kube: Option<Kube>,
    nodes: Vec<Node>,
    version: Option<Version>,
    /// Why the Kubernetes API or the datastore could not be read, last time.
    kube_error: Option<String>,
    datastore_error: Option<String>,
    not_ready_since: HashMap<String, u64>,
    /// Node objects to delete at a time (replaced nodes, after the cleanup wait).
    cleanup: Vec<(u64, String)>,
}

struct Cluster {
    record: ClusterRecord,
    observed: Observed,
}

/// The K3s framework. Cheap to clone.
#[derive(Clone)]
pub struct K3s {
    inner: Arc<Inner>,
}

struct Inner {
    framework: Framework,
    settings: Settings,
    files: AgentFiles,
    /// Kubeconfigs are written here (`<name>.kubeconfig`, mode 0600).
    dir: PathBuf,
    clusters: Mutex<BTreeMap<String, Cluster>>,
    wake: Notify,
    http: reqwest::Client,
}

/// One node of a cluster as the status shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeStatus {
    pub role: Role,
    pub replica: u32,
    pub task_id: String,
    /// The Mesos task state (`TASK_RUNNING`), or `PENDING` before the launch is answered.
    pub state: String,
    pub host: String,
    pub healthy: bool,
    /// The Kubernetes node of the task: Ready or not, and its kubelet version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
    /// Why it is not healthy, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClusterStatus {
    pub name: String,
    pub datastore: Datastore,
    pub servers: u32,
    pub agents: u32,
    pub hibernated: bool,
    /// Every wanted node is healthy.
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    pub nodes: Vec<NodeStatus>,
    /// Roles waiting for the one before to be healthy, and API or datastore errors.
    pub problems: Vec<String>,
}

/// A live task of a cluster, as the engine has it.
#[derive(Clone, Debug)]
struct TaskView {
    role: Role,
    replica: u32,
    task_id: String,
    agent_id: String,
    state: Option<mesos::v1::TaskState>,
    healthy: Option<bool>,
    host: String,
    ports: Vec<u16>,
    message: Option<String>,
}

impl TaskView {
    fn running(&self) -> bool {
        self.state == Some(mesos::v1::TaskState::Running)
    }
}

impl std::fmt::Debug for K3s {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K3s").field("clusters", &self.names()).finish_non_exhaustive()
    }
}

impl K3s {
    /// Loads the clusters from the framework's store and starts watching them.
    pub fn start(framework: Framework, settings: Settings, files: AgentFiles, dir: PathBuf) -> Result<K3s, K3sError> {
        std::fs::create_dir_all(&dir).map_err(|e| K3sError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        restrict(&dir, 0o700);
        let mut clusters = BTreeMap::new();
        for (key, value) in framework.extra_records() {
            let Some(name) = key.strip_prefix(RECORD_PREFIX) else { continue };
            let record: ClusterRecord =
                serde_json::from_slice(value).map_err(|e| K3sError::Setup(format!("stored cluster {key}: {e}")))?;
            clusters.insert(name.to_owned(), Cluster { record, observed: Observed::default() });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| K3sError::Setup(format!("HTTP client: {e}")))?;
        let k3s = K3s {
            inner: Arc::new(Inner {
                framework,
                settings,
                files,
                dir,
                clusters: Mutex::new(clusters),
                wake: Notify::new(),
                http,
            }),
        };
        tokio::spawn(watch(k3s.clone()));
        Ok(k3s)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.clusters.lock().expect("clusters").keys().cloned().collect()
    }

    pub fn create(&self, request: CreateRequest) -> Result<ClusterSpec, K3sError> {
        let spec = ClusterSpec::from_request(request, &self.inner.settings)?;
        let mut clusters = self.inner.clusters.lock().expect("clusters");
        if clusters.contains_key(&spec.name) || self.inner.framework.read(|e| e.projects().contains_key(&spec.name)) {
            return Err(K3sError::Exists(spec.name));
        }
        let record = ClusterRecord { spec: spec.clone(), token: new_token()? };
        self.inner.framework.deploy(plan::project(&record.spec, &record.token, &Seen::default()))?;
        self.persist(&record);
        clusters.insert(spec.name.clone(), Cluster { record, observed: Observed::default() });
        drop(clusters);
        self.inner.wake.notify_one();
        Ok(spec)
    }

    pub fn spec(&self, name: &str) -> Result<ClusterSpec, K3sError> {
        let clusters = self.inner.clusters.lock().expect("clusters");
        clusters.get(name).map(|c| c.record.spec.clone()).ok_or_else(|| K3sError::NotFound(name.into()))
    }

    /// Changes a cluster's spec through `change` (which checks it), then plans it again.
    fn change(
        &self,
        name: &str,
        change: impl FnOnce(&mut ClusterSpec) -> Result<(), ClusterError>,
    ) -> Result<(), K3sError> {
        let mut clusters = self.inner.clusters.lock().expect("clusters");
        let cluster = clusters.get_mut(name).ok_or_else(|| K3sError::NotFound(name.into()))?;
        let mut spec = cluster.record.spec.clone();
        change(&mut spec)?;
        let record = ClusterRecord { spec, token: cluster.record.token.clone() };
        let seen = seen(&self.tasks(name), &cluster.record.spec);
        self.inner.framework.deploy(plan::project(&record.spec, &record.token, &seen))?;
        self.persist(&record);
        cluster.record = record;
        drop(clusters);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Sets the count of servers or agents. Agents going away are cordoned and
    /// drained first (their pods evicted), as far as the Kubernetes API answers.
    pub async fn scale(&self, name: &str, role: Role, count: u32) -> Result<(), K3sError> {
        let mut check = self.spec(name)?;
        check.scale(role, count)?;
        if role == Role::Agent
            && let Some(kube) = self.kube(name)
        {
            for task in self.tasks(name).iter().filter(|t| t.role == Role::Agent && t.replica >= count) {
                drain(&kube, &task.task_id).await;
            }
        }
        self.change(name, |spec| spec.scale(role, count))
    }

    pub fn shutdown(&self, name: &str) -> Result<(), K3sError> {
        self.change(name, ClusterSpec::hibernate)
    }

    pub fn start_again(&self, name: &str) -> Result<(), K3sError> {
        self.change(name, ClusterSpec::restore)
    }

    pub fn set_resource(&self, name: &str, role: Role, resource: &str, value: f64) -> Result<(), K3sError> {
        self.change(name, |spec| spec.set_resource(role, resource, value))
    }

    /// Restarts every task of a role (the engine replaces them one at a time).
    pub fn restart(&self, name: &str, role: Role) -> Result<(), K3sError> {
        let spec = self.spec(name)?;
        if spec.count(role) == 0 {
            return Err(K3sError::NoRole { cluster: name.to_owned(), role });
        }
        self.inner.framework.restart(&plan::project_name(name), role.service())?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Cordons (or uncordons) every agent node of a cluster; returns the nodes changed.
    pub async fn cordon(&self, name: &str, unschedulable: bool) -> Result<Vec<String>, K3sError> {
        self.spec(name)?;
        let kube = self.kube(name).ok_or_else(|| unavailable(name, "the Kubernetes API is not reachable yet"))?;
        let mut changed = Vec::new();
        for task in self.tasks(name).iter().filter(|t| t.role == Role::Agent) {
            kube.set_unschedulable(&task.task_id, unschedulable).await.map_err(|e| unavailable(name, e))?;
            changed.push(task.task_id.clone());
        }
        self.inner.wake.notify_one();
        Ok(changed)
    }

    /// Removes a cluster: its tasks are killed, its record and kubeconfig
    /// forgotten; with `purge`, the datastore's data directory goes too
    /// (where it is on this machine).
    pub fn delete(&self, name: &str, purge: bool) -> Result<(), K3sError> {
        let mut clusters = self.inner.clusters.lock().expect("clusters");
        let cluster = clusters.remove(name).ok_or_else(|| K3sError::NotFound(name.into()))?;
        match self.inner.framework.remove(&plan::project_name(name)) {
            Ok(()) | Err(CommandError::UnknownProject(_)) | Err(CommandError::Removing(_)) => {}
            Err(e) => {
                clusters.insert(name.to_owned(), cluster);
                return Err(e.into());
            }
        }
        self.inner.framework.persist_extra(&format!("{RECORD_PREFIX}{name}"), None);
        let _ = std::fs::remove_file(self.kubeconfig_path(name));
        if purge {
            // Once the datastore has ended, so that nothing writes there any more.
            let data = PathBuf::from(&cluster.record.spec.data_dir).join(name);
            let framework = self.inner.framework.clone();
            let project = plan::project_name(name);
            tokio::spawn(async move {
                for _ in 0..600 {
                    if !framework.read(|e| e.projects().contains_key(&project)) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                if data.is_absolute()
                    && data.exists()
                    && let Err(e) = std::fs::remove_dir_all(&data)
                {
                    tracing::warn!(path = %data.display(), "cannot remove the datastore's data: {e}");
                }
            });
        }
        Ok(())
    }

    /// The kubeconfig of a cluster, its server set to where the first server runs.
    pub fn kubeconfig(&self, name: &str) -> Result<String, K3sError> {
        let clusters = self.inner.clusters.lock().expect("clusters");
        let cluster = clusters.get(name).ok_or_else(|| K3sError::NotFound(name.into()))?;
        cluster
            .observed
            .kubeconfig
            .as_ref()
            .map(|(_, text)| text.clone())
            .ok_or_else(|| unavailable(name, "no kubeconfig yet: the first server has not written it"))
    }

    pub fn version(&self, name: &str) -> Result<Option<Version>, K3sError> {
        let clusters = self.inner.clusters.lock().expect("clusters");
        let cluster = clusters.get(name).ok_or_else(|| K3sError::NotFound(name.into()))?;
        Ok(cluster.observed.version.clone())
    }

    pub fn status(&self, name: &str) -> Result<ClusterStatus, K3sError> {
        let tasks = self.tasks(name);
        let waiting: Vec<String> = Role::ALL
            .iter()
            .flat_map(|role| {
                self.inner
                    .framework
                    .read(|e| e.unmet_dependencies(&plan::project_name(name), role.service()))
                    .into_iter()
                    .map(move |(dep, _)| format!("{role}: waiting for the {dep} to be healthy"))
            })
            .collect();
        let clusters = self.inner.clusters.lock().expect("clusters");
        let cluster = clusters.get(name).ok_or_else(|| K3sError::NotFound(name.into()))?;
        let spec = &cluster.record.spec;
        let observed = &cluster.observed;
        let mut nodes = Vec::new();
        for t in &tasks {
            let node = observed.nodes.iter().find(|n| n.labels.get(TASK_ID_LABEL) == Some(&t.task_id));
            let healthy = t.running() && t.healthy == Some(true);
            let message = if healthy {
                None
            } else if !t.running() {
                t.message.clone()
            } else {
                Some(match (t.role, node) {
                    (Role::Datastore, _) => {
                        observed.datastore_error.clone().unwrap_or_else(|| "etcd has not answered /health yet".into())
                    }
                    (_, Some(n)) if !n.ready => "the node is NotReady".into(),
                    (_, Some(_)) => "the node is Ready; health is being recorded".into(),
                    (_, None) if observed.kube.is_none() => "the kubeconfig is not read yet".into(),
                    (_, None) => "no Kubernetes node carries this task's id yet".into(),
                })
            };
            nodes.push(NodeStatus {
                role: t.role,
                replica: t.replica,
                task_id: t.task_id.clone(),
                state: t.state.as_ref().map_or_else(|| "PENDING".to_owned(), |s| s.to_string()),
                host: t.host.clone(),
                healthy,
                k8s_ready: node.map(|n| n.ready),
                version: node.map(|n| n.kubelet_version.clone()).filter(|v| !v.is_empty()),
                unschedulable: node.map(|n| n.unschedulable),
                message,
            });
        }
        let wanted: u32 = Role::ALL.iter().map(|r| spec.count(*r)).sum();
        let ready = nodes.iter().filter(|n| n.healthy).count() as u32 >= wanted
            && Role::ALL
                .iter()
                .all(|r| nodes.iter().filter(|n| n.role == *r && n.healthy).count() as u32 >= spec.count(*r));
        let mut problems = waiting;
        problems.extend(observed.kube_error.iter().map(|e| format!("Kubernetes API: {e}")));
        // Replicas with no live task: why the last one ended, and when the next starts.
        let project = plan::project_name(name);
        for role in Role::ALL {
            for replica in 0..spec.count(role) {
                if tasks.iter().any(|t| t.role == role && t.replica == replica) {
                    continue;
                }
                let key = framework::engine::ReplicaKey::new(project.clone(), role.service(), replica);
                let why = self.inner.framework.read(|e| {
                    let last = e
                        .tasks()
                        .values()
                        .filter(|t| t.project == project && t.service == role.service() && t.replica == replica)
                        .max_by_key(|t| t.ended_at_ms)
                        .map(|t| {
                            let state = t.state.as_ref().map_or_else(String::new, |s| s.to_string());
                            format!("{} ended {state}: {}", t.task_id, t.message.as_deref().unwrap_or("no message"))
                        })?;
                    let replica = e.replica_state(&key);
                    let crash_looping =
                        replica.is_some_and(|r| r.quick_failures >= framework::engine::CRASH_LOOP_AFTER);
                    Some(if crash_looping { format!("{last} (crash-looping; restarted with backoff)") } else { last })
                });
                if let Some(why) = why {
                    problems.push(format!("{role} {replica}: not running: {why}"));
                }
            }
        }
        for role in Role::ALL {
            let misfits: Vec<String> = (0..spec.count(role))
                .filter_map(|replica| {
                    let key = framework::engine::ReplicaKey::new(plan::project_name(name), role.service(), replica);
                    self.inner.framework.read(|e| e.misfit(&key).map(|m| m.to_string()))
                })
                .collect();
            if let Some(m) = misfits.first() {
                problems.push(format!("{role}: no offer fits: {m}"));
            }
        }
        Ok(ClusterStatus {
            name: name.to_owned(),
            datastore: spec.datastore,
            servers: spec.servers,
            agents: spec.agents,
            hibernated: spec.hibernated.is_some(),
            ready,
            kubernetes_version: observed.version.as_ref().map(|v| v.git_version.clone()),
            api_server: observed.kube.as_ref().map(|k| k.server().to_owned()),
            nodes,
            problems,
        })
    }

    fn kube(&self, name: &str) -> Option<Kube> {
        let clusters = self.inner.clusters.lock().expect("clusters");
        clusters.get(name).and_then(|c| c.observed.kube.clone())
    }

    fn kubeconfig_path(&self, name: &str) -> PathBuf {
        self.inner.dir.join(format!("{name}.kubeconfig"))
    }

    fn persist(&self, record: &ClusterRecord) {
        let value = serde_json::to_vec(record).expect("a cluster record serialises");
        self.inner.framework.persist_extra(&format!("{RECORD_PREFIX}{}", record.spec.name), Some(value));
    }

    /// The cluster's live tasks, by role and replica.
    fn tasks(&self, name: &str) -> Vec<TaskView> {
        let project = plan::project_name(name);
        let mut tasks: Vec<TaskView> = self.inner.framework.read(|e| {
            e.tasks()
                .values()
                .filter(|t| t.project == project && t.is_live())
                .filter_map(|t| {
                    Some(TaskView {
                        role: Role::parse(&t.service)?,
                        replica: t.replica,
                        task_id: t.task_id.clone(),
                        agent_id: t.agent_id.value.clone(),
                        state: t.state.clone(),
                        healthy: t.healthy,
                        host: t.hostname.clone(),
                        ports: t.host_ports.clone(),
                        message: t.message.clone(),
                    })
                })
                .collect()
        });
        tasks.sort_by_key(|t| (t.role, t.replica));
        tasks
    }

    /// One look at one cluster: health verdicts, a new plan where the datastore
    /// or first server moved, the kubeconfig, the nodes. Returns whether all is healthy.
    async fn look(&self, name: &str) -> bool {
        let Ok(spec) = self.spec(name) else { return true };
        let tasks = self.tasks(name);
        let now = now_ms();
        let mut verdicts: Vec<(String, bool)> = Vec::new();

        // The datastore: etcd's own health endpoint.
        let mut datastore_error = None;
        for t in tasks.iter().filter(|t| t.role == Role::Datastore && t.running()) {
            let healthy = match self.etcd_health(t).await {
                Ok(()) => true,
                Err(e) => {
                    datastore_error = Some(e.to_string());
                    false
                }
            };
            verdicts.push((t.task_id.clone(), healthy));
        }
        let healthy_datastores: Vec<String> = verdicts.iter().filter(|(_, h)| *h).map(|(id, _)| id.clone()).collect();
        let seen = {
            let mut with_verdicts = tasks.clone();
            for t in &mut with_verdicts {
                if t.role == Role::Datastore {
                    t.healthy = Some(healthy_datastores.contains(&t.task_id));
                }
            }
            seen(&with_verdicts, &spec)
        };

        // The kubeconfig, from the first running server, once per server task.
        let first_server = tasks.iter().find(|t| t.role == Role::Server && t.running()).cloned();
        let mut kube_error = None;
        let current = {
            let clusters = self.inner.clusters.lock().expect("clusters");
            clusters.get(name).and_then(|c| c.observed.kubeconfig.as_ref().map(|(id, _)| id.clone()))
        };
        let mut new_kubeconfig = None;
        if let (Some(server), Some(url)) = (&first_server, &seen.server)
            && current.as_deref() != Some(server.task_id.as_str())
        {
            match self.read_kubeconfig(server, url).await {
                Ok(text) => new_kubeconfig = Some((server.task_id.clone(), text)),
                Err(e) => kube_error = Some(e.to_string()),
            }
        }
        if let Some((_, text)) = &new_kubeconfig {
            let path = self.kubeconfig_path(name);
            if let Err(e) = mesos::private_file::write(&path, text.as_bytes()) {
                tracing::warn!(path = %path.display(), "cannot keep the kubeconfig: {e}");
            }
        }
        let kube = match &new_kubeconfig {
            Some((_, text)) => match Kube::from_kubeconfig(text) {
                Ok(k) => Some(k),
                Err(e) => {
                    kube_error = Some(e.to_string());
                    None
                }
            },
            None => self.kube(name),
        };
        let kube = if first_server.is_none() { None } else { kube };

        // The nodes.
        let (mut nodes, mut version) = (Vec::new(), None);
        if let Some(k) = &kube {
            match k.nodes().await {
                Ok(n) => nodes = n,
                Err(e) => kube_error = Some(e.to_string()),
            }
            version = k.version().await.ok();
        }
        let mut replace = Vec::new();
        let mut cleanup_due = Vec::new();
        {
            let clusters = self.inner.clusters.lock().expect("clusters");
            if let Some(c) = clusters.get(name) {
                cleanup_due = c.observed.cleanup.iter().filter(|(at, _)| *at <= now).map(|(_, n)| n.clone()).collect();
            }
        }
        for t in tasks.iter().filter(|t| t.role != Role::Datastore && t.running()) {
            let ready = nodes.iter().any(|n| n.ready && n.labels.get(TASK_ID_LABEL) == Some(&t.task_id));
            verdicts.push((t.task_id.clone(), ready));
        }
        {
            let mut clusters = self.inner.clusters.lock().expect("clusters");
            let Some(c) = clusters.get_mut(name) else { return true };
            let o = &mut c.observed;
            for (id, healthy) in &verdicts {
                if *healthy {
                    o.not_ready_since.remove(id);
                } else {
                    let since = *o.not_ready_since.entry(id.clone()).or_insert(now);
                    // A node that never became Ready, or stopped being Ready, for too long.
                    if now.saturating_sub(since) > self.inner.settings.node_timeout_ms && kube.is_some() {
                        replace.push(id.clone());
                    }
                }
            }
            o.not_ready_since.retain(|id, _| tasks.iter().any(|t| &t.task_id == id));
            for id in &replace {
                o.not_ready_since.remove(id);
                o.cleanup.push((now + self.inner.settings.cleanup_wait_ms, id.clone()));
            }
            // Nodes of tasks that ended (scaled down, hibernated, replaced) and are NotReady.
            if kube.is_some() {
                for n in nodes.iter().filter(|n| !n.ready) {
                    let Some(id) = n.labels.get(TASK_ID_LABEL) else { continue };
                    if !tasks.iter().any(|t| &t.task_id == id) && !o.cleanup.iter().any(|(_, name)| *name == n.name) {
                        o.cleanup.push((now + self.inner.settings.cleanup_wait_ms, n.name.clone()));
                    }
                }
            }
            o.cleanup.retain(|(at, _)| *at > now);
            if let Some(k) = new_kubeconfig {
                o.kubeconfig = Some(k);
            }
            if first_server.is_none() {
                o.kube = None;
            } else if kube.is_some() {
                o.kube = kube.clone();
            }
            if kube.is_some() {
                o.nodes = nodes;
                if version.is_some() {
                    o.version = version;
                }
            }
            o.kube_error = kube_error;
            o.datastore_error = datastore_error;
        }

        // A new plan where the datastore or first server moved: before the health
        // verdicts, so the tasks that the verdicts let start get the new addresses.
        let record = {
            let clusters = self.inner.clusters.lock().expect("clusters");
            clusters.get(name).map(|c| c.record.clone())
        };
        if let Some(record) = record {
            let wanted = plan::project(&record.spec, &record.token, &seen);
            let current = self.inner.framework.read(|e| e.projects().get(&wanted.name).map(|p| p.spec.clone()));
            if current.as_ref().is_some_and(|c| *c != wanted)
                && let Err(e) = self.inner.framework.deploy(wanted)
            {
                tracing::warn!(cluster = name, "cannot plan the cluster again: {e}");
            }
        }
        // Only changed verdicts: an unchanged one would wake the watch for nothing.
        for (id, healthy) in &verdicts {
            if tasks.iter().any(|t| &t.task_id == id && t.healthy != Some(*healthy)) {
                let _ = self.inner.framework.set_health(id, *healthy);
            }
        }
        for id in &replace {
            tracing::warn!(cluster = name, task = %id, "node not Ready past the node timeout; replacing its task");
            let _ = self.inner.framework.kill_task(id);
        }
        if let Some(k) = &kube {
            for node in cleanup_due {
                if let Err(e) = k.delete_node(&node).await {
                    tracing::debug!(cluster = name, %node, "cannot delete a replaced node: {e}");
                }
            }
        }
        let wanted: u32 = Role::ALL.iter().map(|r| spec.count(*r)).sum();
        verdicts.iter().filter(|(_, h)| *h).count() as u32 >= wanted && verdicts.iter().all(|(_, h)| *h)
    }

    async fn etcd_health(&self, task: &TaskView) -> Result<(), ObserveError> {
        let port = task.ports.first().ok_or(ObserveError::NoDatastorePort)?;
        let url = format!("http://{}:{port}/health", task.host);
        let resp = match self.inner.http.get(&url).send().await {
            Ok(resp) => resp,
            Err(source) => return Err(ObserveError::Request { url, source }),
        };
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() && body.replace(' ', "").contains("\"health\":\"true\"") {
            Ok(())
        } else {
            Err(ObserveError::Unhealthy { url, status, body: body.trim().to_owned() })
        }
    }

    async fn read_kubeconfig(&self, server: &TaskView, url: &str) -> Result<String, ObserveError> {
        let framework_id = self
            .inner
            .framework
            .read(|e| e.framework_id().map(|f| f.value.clone()))
            .ok_or(ObserveError::NotSubscribed)?;
        let file = SandboxFile {
            agent_id: &server.agent_id,
            framework_id: &framework_id,
            task_id: &server.task_id,
            path: KUBECONFIG_FILE,
        };
        let chunk = self
            .inner
            .files
            .read_path(&file, 0, KUBECONFIG_MAX)
            .await
            .map_err(|source| ObserveError::Read { task: server.task_id.clone(), source })?;
        if chunk.data.is_empty() {
            return Err(ObserveError::EmptyKubeconfig(server.task_id.clone()));
        }
        Ok(crate::kube::rewrite_server(&chunk.data, url)?)
    }
}

/// Why a look at a cluster's datastore or kubeconfig found nothing usable.
#[derive(Debug, thiserror::Error)]
enum ObserveError {
    #[error("the datastore task has no port")]
    NoDatastorePort,
    #[error("{url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("{url}: {status} {body}")]
    Unhealthy { url: String, status: reqwest::StatusCode, body: String },
    #[error("the framework is not subscribed")]
    NotSubscribed,
    #[error("reading {KUBECONFIG_FILE} of {task}: {source}")]
    Read { task: String, source: mesos::files::LogError },
    #[error("{KUBECONFIG_FILE} of {0} is empty (k3s has not written it yet)")]
    EmptyKubeconfig(String),
    #[error(transparent)]
    Kubeconfig(#[from] crate::kube::KubeError),
}

/// Where the cluster's datastore and first server run, when they do.
fn seen(tasks: &[TaskView], spec: &ClusterSpec) -> Seen {
    let datastore = (spec.datastore == Datastore::Etcd)
        .then(|| tasks.iter().find(|t| t.role == Role::Datastore && t.running() && t.healthy == Some(true)))
        .flatten()
        .and_then(|t| Some(format!("http://{}:{}", t.host, t.ports.first()?)));
    let server = tasks
        .iter()
        .find(|t| t.role == Role::Server && t.running())
        .and_then(|t| Some(format!("https://{}:{}", t.host, t.ports.first()?)));
    Seen { datastore, server }
}

/// Cordons a node and evicts its pods; failures are logged, not fatal: a node
/// that cannot be drained is going away anyway.
async fn drain(kube: &Kube, node: &str) {
    if let Err(e) = kube.set_unschedulable(node, true).await {
        tracing::warn!(%node, "cannot cordon before scaling down: {e}");
        return;
    }
    match kube.evict_pods(node).await {
        Ok(n) => tracing::info!(%node, evicted = n, "drained before scaling down"),
        Err(e) => tracing::warn!(%node, "cannot drain before scaling down: {e}"),
    }
}

/// Watches every cluster: at once when a task changes or a command arrives;
/// while something starts or is unhealthy, soon after and then less and less
/// often; rarely when all is healthy.
async fn watch(k3s: K3s) {
    let mut changes = k3s.inner.framework.changes();
    let mut busy = WATCH_BUSY_MIN;
    loop {
        let mut all_healthy = true;
        for name in k3s.names() {
            all_healthy &= k3s.look(&name).await;
        }
        let wait = if all_healthy { WATCH_IDLE } else { busy };
        busy = (busy * 2).min(WATCH_BUSY_MAX);
        changes.mark_unchanged();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = k3s.inner.wake.notified() => busy = WATCH_BUSY_MIN,
            _ = changes.changed() => busy = WATCH_BUSY_MIN,
        }
        // A burst of updates (a launch, its RUNNING) makes one look, not one each.
        tokio::time::sleep(WATCH_COALESCE).await;
    }
}

fn unavailable(cluster: &str, message: impl ToString) -> K3sError {
    K3sError::Unavailable { cluster: cluster.to_owned(), message: message.to_string() }
}

/// 32 random bytes, hex: k3s's tokens are free text.
fn new_token() -> Result<String, K3sError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| K3sError::Setup("no randomness for the cluster token".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn restrict(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(role: Role, replica: u32, running: bool, healthy: Option<bool>, port: u16) -> TaskView {
        TaskView {
            role,
            replica,
            task_id: format!("k3s-demo-{role}.x{replica}"),
            agent_id: "a1".into(),
            state: running.then_some(mesos::v1::TaskState::Running),
            healthy,
            host: "node-1".into(),
            ports: vec![port],
            message: None,
        }
    }

    #[test]
    fn a_datastore_is_seen_only_healthy_and_a_server_once_running() {
        let mut settings = Settings::new("/d");
        settings.k3s = Some(crate::cluster::Program::Binary("/k3s".into()));
        let spec = ClusterSpec::from_request(
            CreateRequest { name: "demo".into(), datastore: Some(Datastore::Etcd), ..Default::default() },
            &settings,
        )
        .unwrap();
        let starting = [task(Role::Datastore, 0, true, None, 31000), task(Role::Server, 0, false, None, 31001)];
        assert_eq!(seen(&starting, &spec), Seen::default());
        let up = [task(Role::Datastore, 0, true, Some(true), 31000), task(Role::Server, 0, true, None, 31001)];
        assert_eq!(
            seen(&up, &spec),
            Seen { datastore: Some("http://node-1:31000".into()), server: Some("https://node-1:31001".into()) }
        );
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
