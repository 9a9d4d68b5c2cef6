//! The agent's views: `/slave(1)/state`, sandbox paths and executor names.

use super::*;

/// The agent's `/slave(1)/state` (`/state` on the agent). Frameworks with
/// tasks not yet done (terminal and acknowledged) are `frameworks`; the others
/// that ran tasks are `completed_frameworks`, as the agent forgets a framework
/// once its last executor ends. Executors' `directory` (what log tools pass
/// to `/files/browse`) is under the flag `work_dir`, in Mesos's layout (see
/// [`sandbox_directory`]); empty when the flags lack `work_dir`.
pub fn agent_state(m: &Master, flags: &Flags) -> AgentState {
    let c = m.config();
    let v = version(m);
    let work_dir = flags.get("work_dir").unwrap_or("");
    let mut frameworks = Vec::new();
    let mut completed = Vec::new();
    for f in m.frameworks() {
        if !f.tasks.is_empty() {
            frameworks.push(agent_framework(m, f, work_dir));
        } else if !f.completed_tasks.is_empty() {
            completed.push(agent_framework(m, f, work_dir));
        }
    }
    for f in m.completed_frameworks().filter(|f| !f.tasks.is_empty() || !f.completed_tasks.is_empty()) {
        completed.push(agent_framework(m, f, work_dir));
    }
    AgentState {
        version: v.version,
        git_sha: v.git_sha,
        git_branch: v.git_branch,
        git_tag: v.git_tag,
        build_date: v.build_date.unwrap_or_default(),
        build_time: v.build_time.unwrap_or_default(),
        build_user: v.build_user.unwrap_or_default(),
        start_time: m.start_time(),
        id: m.agent_id().value.clone(),
        pid: agent_pid(m),
        hostname: c.hostname.clone(),
        capabilities: AGENT_CAPABILITIES.to_vec(),
        domain: None,
        drain_config: None,
        estimated_drain_start_time_seconds: None,
        resources: legacy_resources(&c.resources),
        reserved_resources: BTreeMap::new(),
        unreserved_resources: legacy_resources(&c.resources),
        reserved_resources_full: BTreeMap::new(),
        unreserved_resources_full: wire(&c.resources, None),
        reserved_resources_allocated: BTreeMap::new(),
        unreserved_resources_allocated: legacy_resources(m.used_resources()),
        resource_providers: Vec::new(),
        attributes: legacy_attributes(&c.attributes),
        master_hostname: Some(c.hostname.clone()),
        log_dir: flags.get("log_dir").map(str::to_owned),
        external_log_file: flags.get("external_log_file").map(str::to_owned),
        flags: Some(flags.to_map()),
        frameworks,
        completed_frameworks: completed,
    }
}

/// A task's sandbox, Mesos's layout:
/// `<work_dir>/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<container>`.
pub fn sandbox_directory(
    work_dir: &str,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> String {
    format!(
        "{}/slaves/{agent_id}/frameworks/{framework_id}/executors/{executor_id}/runs/{container_id}",
        work_dir.trim_end_matches('/')
    )
}

fn agent_framework(m: &Master, f: &Framework, work_dir: &str) -> AgentFramework {
    let (role, roles) = legacy_roles(f);
    let skip = f.completed_tasks.len().saturating_sub(MAX_COMPLETED_EXECUTORS);
    AgentFramework {
        id: f.id.value.clone(),
        name: f.info.name.clone(),
        user: f.info.user.clone(),
        failover_timeout: f.info.failover_timeout,
        checkpoint: f.info.checkpoint,
        hostname: f.info.hostname.clone().unwrap_or_default(),
        principal: f.info.principal.clone(),
        roles,
        role,
        executors: f.tasks.values().map(|t| agent_executor(m, f, t, work_dir)).collect(),
        completed_executors: f.completed_tasks.iter().skip(skip).map(|t| agent_executor(m, f, t, work_dir)).collect(),
    }
}

/// The executor of a command task: the task's supervisor, holding the task's
/// resources while the task runs.
fn agent_executor(m: &Master, f: &Framework, t: &Task, work_dir: &str) -> AgentExecutor {
    let terminal = t.state.is_terminal();
    let container = t.container_id.clone().unwrap_or_default();
    // Unknown without a container or without the `work_dir` flag.
    let directory = if container.is_empty() || work_dir.is_empty() {
        String::new()
    } else {
        sandbox_directory(work_dir, &m.agent_id().value, &f.id.value, &t.id().value, &container)
    };
    let task = legacy_task(t, m.agent_id());
    let (tasks, completed_tasks) = if terminal { (Vec::new(), vec![task]) } else { (vec![task], Vec::new()) };
    AgentExecutor {
        id: t.id().value.clone(),
        name: executor_name(&t.info),
        source: t.id().value.clone(),
        container,
        directory,
        resources: legacy_resources(&if terminal { Resources::default() } else { task_resources(t) }),
        role: Some(t.role.clone()),
        labels: t.info.labels.as_ref().map(|l| l.labels.clone()),
        kind: None,
        tasks,
        queued_tasks: Vec::new(),
        completed_tasks,
    }
}

/// Mesos's name for a command executor:
/// `Command Executor (Task: <id>) (Command: sh -c '<command>')`, the command
/// cut to 12 bytes plus `...` when longer than 15.
pub fn executor_name(task: &TaskInfo) -> String {
    fn cut(s: &str) -> String {
        if s.len() <= 15 {
            return s.to_owned();
        }
        let mut end = 12;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
    let command = match &task.command {
        Some(c) if c.shell => match &c.value {
            Some(v) => format!("(Command: sh -c '{}')", cut(v)),
            None => "(Command: NO COMMAND)".to_owned(),
        },
        Some(c) => match &c.value {
            Some(v) => format!("(Command: [{}])", cut(&format!("{v}, {}", c.arguments.join(", ")))),
            None => "(Command: NO EXECUTABLE)".to_owned(),
        },
        None => "(Command: NO COMMAND)".to_owned(),
    };
    format!("Command Executor (Task: {}) {command}", task.task_id.value)
}
