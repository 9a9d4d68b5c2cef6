//! The answers of the operator API's GET_* calls (master and agent).

use super::*;

/// GET_HEALTH.
pub fn get_health() -> response::GetHealth {
    response::GetHealth { healthy: true }
}

/// GET_VERSION.
pub fn get_version(m: &Master) -> response::GetVersion {
    response::GetVersion { version_info: version(m) }
}

/// GET_FLAGS, by name.
pub fn get_flags(flags: &Flags) -> response::GetFlags {
    response::GetFlags {
        flags: flags.to_map().into_iter().map(|(name, value)| Flag { name, value: Some(value) }).collect(),
    }
}

/// GET_METRICS: the snapshot as a list, by name.
pub fn get_metrics(snapshot: &MetricsSnapshot) -> response::GetMetrics {
    response::GetMetrics {
        metrics: snapshot.0.iter().map(|(name, value)| Metric { name: name.clone(), value: Some(*value) }).collect(),
    }
}

/// GET_STATE: GET_TASKS, GET_EXECUTORS, GET_FRAMEWORKS and GET_AGENTS in one.
pub fn get_state(m: &Master) -> response::GetState {
    response::GetState {
        get_tasks: Some(get_tasks(m)),
        get_executors: Some(get_executors(m)),
        get_frameworks: Some(get_frameworks(m)),
        get_agents: Some(get_agents(m)),
    }
}

/// GET_AGENTS: the one agent.
pub fn get_agents(m: &Master) -> response::GetAgents {
    let c = m.config();
    let mut info_resources = wire(&c.resources, None);
    // `AgentInfo.resources` are as the agent declared them: no role.
    for r in &mut info_resources {
        r.role = None;
    }
    let agent = response::Agent {
        agent_info: AgentInfo {
            hostname: c.hostname.clone(),
            port: u32::from(c.port),
            resources: info_resources,
            attributes: c.attributes.clone(),
            id: Some(m.agent_id().clone()),
            domain: None,
        },
        active: true,
        deactivated: Some(false),
        version: c.version.clone(),
        pid: Some(agent_pid(m)),
        registered_time: Some(time_info(m.start_time())),
        reregistered_time: None,
        total_resources: wire(&c.resources, None),
        allocated_resources: by_role_wire(&used_by_role(m)),
        offered_resources: by_role_wire(&offered_by_role(m)),
        capabilities: AGENT_CAPABILITIES.iter().map(|kind| AgentCapability { kind: kind.clone() }).collect(),
        resource_providers: Vec::new(),
        drain_info: None,
        estimated_drain_start_time: None,
    };
    response::GetAgents { agents: vec![agent], recovered_agents: Vec::new() }
}

/// GET_FRAMEWORKS: registered and completed frameworks.
pub fn get_frameworks(m: &Master) -> response::GetFrameworks {
    response::GetFrameworks {
        frameworks: m.frameworks().map(|f| framework_view(m, f)).collect(),
        completed_frameworks: m.completed_frameworks().map(|f| framework_view(m, f)).collect(),
        recovered_frameworks: Vec::new(),
    }
}

/// GET_EXECUTORS: always empty, as on Mesos for command tasks (the master
/// knows only custom executors, which m3s does not run).
pub fn get_executors(_m: &Master) -> response::GetExecutors {
    response::GetExecutors::default()
}

/// GET_TASKS: tasks of registered and completed frameworks; a task is
/// completed once its terminal update is acknowledged.
pub fn get_tasks(m: &Master) -> response::GetTasks {
    let all: Vec<&Framework> = m.frameworks().chain(m.completed_frameworks()).collect();
    let agent_id = m.agent_id();
    response::GetTasks {
        tasks: all.iter().flat_map(|f| f.tasks.values()).map(|t| task_view(t, agent_id)).collect(),
        completed_tasks: all.iter().flat_map(|f| f.completed_tasks.iter()).map(|t| task_view(t, agent_id)).collect(),
        ..Default::default()
    }
}

/// GET_ROLES: the roles of registered frameworks, each with its frameworks
/// and its allocated plus offered cpus, mem, disk and gpus (weight 1: m3s has
/// no weights).
pub fn get_roles(m: &Master) -> response::GetRoles {
    let mut roles: BTreeMap<String, (Vec<FrameworkId>, Resources)> = BTreeMap::new();
    for f in m.frameworks() {
        for role in f.roles() {
            roles.entry(role).or_default().0.push(f.id.clone());
        }
    }
    for (role, r) in used_by_role(m).into_iter().chain(offered_by_role(m)) {
        roles.entry(role).or_default().1.add(&r);
    }
    response::GetRoles {
        roles: roles
            .into_iter()
            .map(|(name, (frameworks, r))| Role {
                name,
                weight: 1.0,
                frameworks,
                resources: ["cpus", "disk", "gpus", "mem"]
                    .into_iter()
                    .filter(|n| r.scalar(n) > 0.0)
                    .map(|n| Resource::scalar(n, r.scalar(n)))
                    .collect(),
            })
            .collect(),
    }
}

/// GET_MASTER.
pub fn get_master(m: &Master) -> response::GetMaster {
    response::GetMaster {
        master_info: Some(m.master_info()),
        start_time: Some(m.start_time()),
        elected_time: Some(m.start_time()),
    }
}
