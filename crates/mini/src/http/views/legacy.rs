//! The legacy master endpoints: `/master/state`, `/master/frameworks`,
//! `/master/slaves`, `/master/tasks`, `/master/flags`, `/version` and
//! `/metrics/snapshot`.

use super::*;

/// `/master/state` (also `/state`).
pub fn master_state(m: &Master, flags: &Flags) -> MasterState {
    let c = m.config();
    let v = version(m);
    let pid = master_pid(m);
    MasterState {
        version: v.version,
        git_sha: v.git_sha,
        git_branch: v.git_branch,
        git_tag: v.git_tag,
        build_date: v.build_date.unwrap_or_default(),
        build_time: v.build_time.unwrap_or_default(),
        build_user: v.build_user.unwrap_or_default(),
        start_time: m.start_time(),
        // The only master is elected as it starts.
        elected_time: Some(m.start_time()),
        id: c.master_id.clone(),
        pid: pid.clone(),
        hostname: c.hostname.clone(),
        capabilities: Vec::new(),
        activated_slaves: 1.0,
        deactivated_slaves: 0.0,
        unreachable_slaves: 0.0,
        domain: None,
        leader: Some(pid.clone()),
        leader_info: Some(LeaderInfo {
            id: c.master_id.clone(),
            pid,
            port: u32::from(c.port),
            hostname: c.hostname.clone(),
            domain: None,
        }),
        cluster: flags.get("cluster").map(str::to_owned),
        log_dir: flags.get("log_dir").map(str::to_owned),
        external_log_file: flags.get("external_log_file").map(str::to_owned),
        flags: Some(flags.to_map()),
        slaves: vec![legacy_agent(m)],
        recovered_slaves: Vec::new(),
        frameworks: m.frameworks().map(|f| legacy_framework(m, f)).collect(),
        completed_frameworks: m.completed_frameworks().map(|f| legacy_framework(m, f)).collect(),
        orphan_tasks: Vec::new(),
        unregistered_frameworks: Vec::new(),
    }
}

/// `/master/frameworks` (`?framework_id=` keeps only that framework, registered
/// or completed).
pub fn frameworks(m: &Master, framework_id: Option<&str>) -> Frameworks {
    let wanted = |f: &&Framework| framework_id.is_none_or(|id| f.id.value == id);
    Frameworks {
        frameworks: m.frameworks().filter(wanted).map(|f| legacy_framework(m, f)).collect(),
        completed_frameworks: m.completed_frameworks().filter(wanted).map(|f| legacy_framework(m, f)).collect(),
        unregistered_frameworks: Vec::new(),
    }
}

/// `/master/slaves` and `/slaves`: the agent, with the full (v1) resource lists
/// these endpoints add.
pub fn slaves(m: &Master) -> Slaves {
    let mut agent = legacy_agent(m);
    agent.reserved_resources_full = Some(BTreeMap::new());
    agent.unreserved_resources_full = Some(wire(&m.config().resources, None));
    agent.used_resources_full = Some(by_role_wire(&used_by_role(m)));
    agent.offered_resources_full = Some(by_role_wire(&offered_by_role(m)));
    Slaves { slaves: vec![agent], recovered_slaves: Vec::new() }
}

/// `/master/tasks` (`/tasks`): active, unreachable and completed tasks of
/// registered and completed frameworks, sorted by the time of their first
/// status (tasks without a status first when ascending, last when descending;
/// ties keep framework order), then `offset` and `limit` applied.
pub fn tasks(m: &Master, query: &TasksQuery) -> Tasks {
    let agent_id = m.agent_id();
    let mut all: Vec<&Task> = m
        .frameworks()
        .chain(m.completed_frameworks())
        .filter(|f| query.framework_id.as_deref().is_none_or(|id| f.id.value == id))
        .flat_map(|f| f.tasks.values().chain(f.completed_tasks.iter()))
        .filter(|t| query.task_id.as_deref().is_none_or(|id| t.id().value == id))
        .collect();
    let first = |t: &Task| t.statuses.first().map(|s| s.timestamp.unwrap_or_default());
    all.sort_by(|a, b| match (first(a), first(b), query.order) {
        (None, None, _) => std::cmp::Ordering::Equal,
        (None, Some(_), Order::Asc) | (Some(_), None, Order::Des) => std::cmp::Ordering::Less,
        (None, Some(_), Order::Des) | (Some(_), None, Order::Asc) => std::cmp::Ordering::Greater,
        (Some(x), Some(y), Order::Asc) => x.total_cmp(&y),
        (Some(x), Some(y), Order::Des) => y.total_cmp(&x),
    });
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    Tasks { tasks: all.into_iter().skip(query.offset).take(limit).map(|t| legacy_task(t, agent_id)).collect() }
}

/// `/master/flags` (and the agent's `/flags`): `{"flags": {name: value}}`.
pub fn flags(flags: &Flags) -> mesos::legacy::Flags {
    mesos::legacy::Flags { flags: flags.to_map() }
}

/// `/version`: the configured Mesos version (plain dotted integers: pymesos
/// parses each part) and the build information described in the module docs.
pub fn version(m: &Master) -> Version {
    let build_time = build_time(m);
    VersionInfo {
        version: m.config().version.clone(),
        build_date: Some(format_utc(build_time)),
        build_time: Some(build_time),
        build_user: Some(String::new()),
        git_sha: None,
        git_branch: None,
        git_tag: Some(format!("m3s-{}", env!("CARGO_PKG_VERSION"))),
    }
}

/// `/metrics/snapshot`: the master's `master/*` metrics, the agent's `slave/*`
/// (one process serves both) and the host's `system/*`.
///
/// Task counters (`tasks_finished`, `tasks_failed`, ...), status updates and
/// launch errors come from the master's monotonic [`crate::master::Counters`].
pub fn metrics_snapshot(m: &Master, system: &SystemStats, now_unix: f64) -> MetricsSnapshot {
    let mut out = BTreeMap::new();
    let mut put = |key: String, value: f64| {
        out.insert(key, value);
    };
    let total = &m.config().resources;
    let used = m.used_resources();
    let uptime = (now_unix - m.start_time()).max(0.0);

    let live: Vec<&Task> = m.frameworks().flat_map(|f| f.tasks.values()).collect();
    let counters = m.counters();
    let count = |tasks: &[&Task], state: &TaskState| tasks.iter().filter(|t| &t.state == state).count() as f64;
    let terminal = |state: &TaskState| counters.terminal(state) as f64;
    let status_updates = counters.status_updates as f64;
    let launch_errors = counters.launch_errors as f64;
    let completed_tasks =
        m.frameworks().chain(m.completed_frameworks()).map(|f| f.completed_tasks.len()).sum::<usize>();

    for prefix in ["master", "slave"] {
        for name in ["cpus", "mem", "disk", "gpus"] {
            let (t, u) = (total.scalar(name), used.scalar(name));
            put(format!("{prefix}/{name}_total"), t);
            put(format!("{prefix}/{name}_used"), u);
            put(format!("{prefix}/{name}_percent"), if t > 0.0 { u / t } else { 0.0 });
            // No revocable resources in m3s.
            for kind in ["total", "used", "percent"] {
                put(format!("{prefix}/{name}_revocable_{kind}"), 0.0);
            }
        }
    }

    let frameworks: Vec<&Framework> = m.frameworks().collect();
    let connected = frameworks.iter().filter(|f| f.connected()).count() as f64;
    let registered = frameworks.len() as f64;
    put("master/elected".into(), 1.0);
    put("master/uptime_secs".into(), uptime);
    put("master/slaves_active".into(), 1.0);
    put("master/slaves_connected".into(), 1.0);
    put("master/slaves_disconnected".into(), 0.0);
    put("master/slaves_inactive".into(), 0.0);
    put("master/slaves_unreachable".into(), 0.0);
    // A framework is active exactly while it is connected.
    put("master/frameworks_active".into(), connected);
    put("master/frameworks_connected".into(), connected);
    put("master/frameworks_disconnected".into(), registered - connected);
    put("master/frameworks_inactive".into(), registered - connected);
    put("master/outstanding_offers".into(), frameworks.iter().map(|f| m.offers_of(&f.id).len() as f64).sum());
    for state in
        [TaskState::Staging, TaskState::Starting, TaskState::Running, TaskState::Killing, TaskState::Unreachable]
    {
        put(format!("master/tasks_{}", metric_state(&state)), count(&live, &state));
    }
    for state in [
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Lost,
        TaskState::Error,
        TaskState::Dropped,
        TaskState::Gone,
        TaskState::GoneByOperator,
    ] {
        put(format!("master/tasks_{}", metric_state(&state)), terminal(&state));
    }
    put("master/valid_status_updates".into(), status_updates);
    put("master/invalid_status_updates".into(), 0.0);
    put("master/dropped_messages".into(), 0.0);

    let agent_frameworks = frameworks.iter().filter(|f| !f.tasks.is_empty()).count() as f64;
    let live_terminal = live.iter().filter(|t| t.state.is_terminal()).count() as f64;
    put("slave/registered".into(), 1.0);
    put("slave/uptime_secs".into(), uptime);
    put("slave/frameworks_active".into(), agent_frameworks);
    for state in [TaskState::Staging, TaskState::Starting, TaskState::Running, TaskState::Killing] {
        put(format!("slave/tasks_{}", metric_state(&state)), count(&live, &state));
    }
    for state in [TaskState::Finished, TaskState::Failed, TaskState::Killed, TaskState::Lost, TaskState::Gone] {
        put(format!("slave/tasks_{}", metric_state(&state)), terminal(&state));
    }
    // One executor per task: running until its task is terminal, terminating
    // until the terminal update is acknowledged, then terminated.
    put("slave/executors_registering".into(), 0.0);
    put("slave/executors_running".into(), live.len() as f64 - live_terminal);
    put("slave/executors_terminating".into(), live_terminal);
    put("slave/executors_terminated".into(), completed_tasks as f64);
    put("slave/executors_preempted".into(), 0.0);
    put("slave/valid_status_updates".into(), status_updates);
    put("slave/invalid_status_updates".into(), 0.0);
    put("slave/container_launch_errors".into(), launch_errors);
    put("slave/recovery_errors".into(), 0.0);

    put("system/cpus_total".into(), system.cpus_total);
    put("system/load_1min".into(), system.load_1min);
    put("system/load_5min".into(), system.load_5min);
    put("system/load_15min".into(), system.load_15min);
    put("system/mem_free_bytes".into(), system.mem_free_bytes);
    put("system/mem_total_bytes".into(), system.mem_total_bytes);
    MetricsSnapshot(out)
}
