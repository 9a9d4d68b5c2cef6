//! JSON views of the engine's state, as pure functions of `&Engine`.

use framework::engine::{CRASH_LOOP_AFTER, Done, Engine, ReplicaKey, TaskRecord, is_ready};
use framework::spec::{DependCondition, ServiceSpec};
use mesos::v1::TaskState;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ProjectSummary {
    pub name: String,
    pub services: usize,
    pub running: usize,
    pub removing: bool,
}

#[derive(Debug, Serialize)]
pub struct ProjectView {
    pub name: String,
    pub removing: bool,
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub name: String,
    /// Desired replicas.
    pub replicas: u32,
    pub running: usize,
    pub healthy: usize,
    /// pending, starting, running, healthy, unhealthy, restarting, crash_looping,
    /// completed, failed, stopping or stopped.
    pub state: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `host:port` of each running task's ports.
    pub endpoints: Vec<String>,
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Serialize)]
pub struct TaskView {
    pub id: String,
    pub project: String,
    pub service: String,
    pub replica: u32,
    pub generation: u64,
    /// The Mesos state, or TASK_STAGING before the first update.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    pub agent_id: String,
    pub host: String,
    pub ports: Vec<u16>,
    pub launched_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_since_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub fn task(t: &TaskRecord) -> TaskView {
    TaskView {
        id: t.task_id.clone(),
        project: t.project.clone(),
        service: t.service.clone(),
        replica: t.replica,
        generation: t.generation,
        state: t.state.as_ref().map_or("TASK_STAGING", TaskState::as_str).to_owned(),
        healthy: t.healthy,
        agent_id: t.agent_id.value.clone(),
        host: t.hostname.clone(),
        ports: t.host_ports.clone(),
        launched_at_ms: t.launched_at_ms,
        running_since_ms: t.running_since_ms,
        ended_at_ms: t.ended_at_ms,
        message: t.message.clone(),
    }
}

pub fn projects(e: &Engine) -> Vec<ProjectSummary> {
    e.projects()
        .iter()
        .map(|(name, p)| ProjectSummary {
            name: name.clone(),
            services: p.spec.services.len(),
            running: e.tasks().values().filter(|t| &t.project == name && t.is_running()).count(),
            removing: p.removing,
        })
        .collect()
}

pub fn project(e: &Engine, name: &str, now_ms: u64) -> Option<ProjectView> {
    let p = e.projects().get(name)?;
    let services = p.spec.services.keys().filter_map(|s| service(e, name, s, now_ms)).collect();
    Some(ProjectView { name: name.to_owned(), removing: p.removing, services })
}

/// Per replica, what it is doing; the service's state is the most pressing of them.
pub fn service(e: &Engine, project: &str, name: &str, now_ms: u64) -> Option<ServiceView> {
    let p = e.projects().get(project)?;
    let spec = p.spec.services.get(name)?;
    let generation = p.generations.get(name).copied().unwrap_or(1);
    let replicas = p.replicas(name);
    let tasks: Vec<&TaskRecord> = e.tasks().values().filter(|t| t.project == project && t.service == name).collect();
    let mut states = Vec::new();
    let mut message = String::new();
    for r in 0..replicas {
        let key = ReplicaKey::new(project, name, r);
        let live = tasks.iter().find(|t| t.replica == r && t.is_live());
        let replica = e.replica_state(&key);
        let (state, why) = match (live, replica.and_then(|s| s.done.as_ref())) {
            (_, Some(Done::Completed)) => ("completed", String::new()),
            (_, Some(Done::Failed(m))) => ("failed", m.clone()),
            (Some(t), None) => (live_state(t, spec, generation), t.message.clone().unwrap_or_default()),
            (None, None) => waiting(e, project, name, &key, &tasks, now_ms),
        };
        if message.is_empty() && !why.is_empty() && state != "running" && state != "healthy" {
            message = why;
        }
        states.push(state);
    }
    let state = if p.removing {
        "stopping"
    } else if replicas == 0 {
        if tasks.iter().any(|t| t.is_live()) { "stopping" } else { "stopped" }
    } else {
        overall(&states, spec)
    };
    let running: Vec<&&TaskRecord> = tasks.iter().filter(|t| t.is_running()).collect();
    let endpoints =
        running.iter().flat_map(|t| t.host_ports.iter().map(move |port| format!("{}:{port}", t.hostname))).collect();
    Some(ServiceView {
        name: name.to_owned(),
        replicas,
        running: running.len(),
        healthy: running.iter().filter(|t| t.healthy == Some(true)).count(),
        state,
        message,
        endpoints,
        tasks: tasks.iter().map(|t| task(t)).collect(),
    })
}

fn live_state(t: &TaskRecord, spec: &ServiceSpec, generation: u64) -> &'static str {
    match t.state {
        None | Some(TaskState::Staging) | Some(TaskState::Starting) => "starting",
        Some(TaskState::Killing) => "stopping",
        Some(TaskState::Running) if t.kill.is_some() => "stopping",
        Some(TaskState::Running) if t.generation < generation => "running",
        Some(TaskState::Running) if spec.health.is_none() => "running",
        Some(TaskState::Running) if is_ready(t, spec) => "healthy",
        Some(TaskState::Running) if t.healthy == Some(false) => "unhealthy",
        Some(TaskState::Running) => "starting",
        Some(TaskState::Unreachable) => "unreachable",
        _ => "starting",
    }
}

/// A replica without a live task: blocked by a dependency, by resources, or backing off.
fn waiting(
    e: &Engine,
    project: &str,
    name: &str,
    key: &ReplicaKey,
    tasks: &[&TaskRecord],
    now_ms: u64,
) -> (&'static str, String) {
    let unmet = e.unmet_dependencies(project, name);
    if !unmet.is_empty() {
        let list: Vec<String> = unmet
            .iter()
            .map(|(d, c)| {
                let what = match c {
                    DependCondition::ServiceStarted => "started",
                    DependCondition::ServiceHealthy => "healthy",
                    DependCondition::ServiceCompletedSuccessfully => "completed successfully",
                };
                format!("{d} {what}")
            })
            .collect();
        return ("pending", format!("waiting for {}", list.join(", ")));
    }
    let last = tasks.iter().filter(|t| t.replica == key.replica).max_by_key(|t| t.launched_at_ms);
    if let Some(r) = e.replica_state(key).filter(|r| r.next_start_ms > now_ms) {
        let secs = (r.next_start_ms - now_ms).div_ceil(1000);
        let last_message = last.and_then(|t| t.message.clone()).unwrap_or_default();
        if r.quick_failures >= CRASH_LOOP_AFTER {
            return (
                "crash_looping",
                format!(
                    "failed {} times in a row soon after start, next try in {secs}s: {last_message}",
                    r.quick_failures
                ),
            );
        }
        if last.is_some_and(|t| t.state == Some(TaskState::Finished)) && r.quick_failures == 0 {
            return ("completed", format!("runs again in {secs}s"));
        }
        return ("restarting", format!("next try in {secs}s: {last_message}"));
    }
    ("pending", e.misfit(key).map(|m| format!("waiting for an offer: {m}")).unwrap_or_default())
}

fn overall(states: &[&'static str], spec: &ServiceSpec) -> &'static str {
    for s in ["failed", "crash_looping", "restarting", "pending", "starting", "stopping", "unreachable", "unhealthy"] {
        if states.contains(&s) {
            return s;
        }
    }
    if states.iter().all(|s| *s == "completed") {
        return "completed";
    }
    if spec.health.is_some() && states.iter().all(|s| matches!(*s, "healthy" | "completed")) {
        return "healthy";
    }
    "running"
}
