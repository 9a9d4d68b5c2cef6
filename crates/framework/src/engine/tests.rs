//! The engine driven by hand: offers, updates and commands in, calls out.

use std::collections::BTreeMap;

use mesos::v1::scheduler::CallKind;
use mesos::v1::{AgentId, Bytes, FrameworkId, Offer, OfferId, Resource, TaskId, TaskInfo, TaskState, TaskStatus};

use super::*;
use crate::matching::tests::service;
use crate::spec::{DependCondition, HealthSpec, ProjectSpec, RestartWhen, ServiceSpec};

struct World {
    engine: Engine,
    now: u64,
    /// Every action, in order, since the last `take`.
    actions: Vec<Action>,
    /// Every record persisted so far, as a store would hold it.
    stored: BTreeMap<String, Vec<u8>>,
    offers: u64,
}

impl World {
    fn new() -> World {
        World { engine: Engine::new("t"), now: 1_000_000, actions: Vec::new(), stored: BTreeMap::new(), offers: 0 }
    }

    fn restored(stored: BTreeMap<String, Vec<u8>>) -> World {
        let records: Vec<_> = stored.clone().into_iter().collect();
        World {
            engine: Engine::restore("u", &records).unwrap(),
            now: 2_000_000,
            actions: Vec::new(),
            stored,
            offers: 0,
        }
    }

    fn collect(&mut self) {
        for a in self.engine.take_actions() {
            if let Action::Persist(writes) = &a {
                for w in writes {
                    match &w.value {
                        Some(v) => self.stored.insert(w.key.clone(), v.clone()),
                        None => self.stored.remove(&w.key),
                    };
                }
            }
            self.actions.push(a);
        }
    }

    fn input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        self.collect();
    }

    fn subscribe(&mut self) {
        self.input(Input::Subscribed { framework_id: FrameworkId::new("fw-1") });
    }

    fn deploy(&mut self, spec: ProjectSpec) -> DeployOutcome {
        let out = self.engine.deploy(self.now, spec).unwrap();
        self.collect();
        out
    }

    fn offer(&mut self, cpus: f64) -> Vec<TaskInfo> {
        self.offers += 1;
        let offer = Offer {
            id: OfferId::new(format!("o{}", self.offers)),
            agent_id: AgentId::new("agent-1"),
            hostname: "node1".into(),
            resources: vec![
                Resource::scalar("cpus", cpus),
                Resource::scalar("mem", 100_000.0),
                Resource::scalar("disk", 100_000.0),
                Resource::ranges("ports", [(31000, 31999)]),
            ],
            ..Default::default()
        };
        self.input(Input::Offers(vec![offer]));
        self.launched()
    }

    /// Tasks launched by the actions since the last `take`.
    fn launched(&self) -> Vec<TaskInfo> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Call(CallKind::Accept(acc)) => Some(acc),
                _ => None,
            })
            .flat_map(|acc| acc.operations.iter().flat_map(|o| o.launch.iter().flat_map(|l| l.task_infos.clone())))
            .collect()
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn calls(&mut self) -> Vec<&'static str> {
        self.take()
            .into_iter()
            .filter_map(|a| match a {
                Action::Call(c) => Some(call_name(&c)),
                Action::Acknowledge(_) => Some("ACK"),
                Action::Persist(_) => None,
            })
            .collect()
    }

    fn status(&mut self, task: &str, state: TaskState, healthy: Option<bool>) {
        self.input(Input::Update(Box::new(TaskStatus {
            task_id: TaskId::new(task),
            state,
            healthy,
            agent_id: Some(AgentId::new("agent-1")),
            uuid: Some(Bytes(vec![1, 2, 3])),
            ..Default::default()
        })));
    }

    fn live(&self, service: &str) -> Vec<&TaskRecord> {
        self.engine.tasks().values().filter(|t| t.service == service && t.is_live()).collect()
    }
}

fn call_name(c: &CallKind) -> &'static str {
    match c {
        CallKind::Accept(_) => "ACCEPT",
        CallKind::Decline(_) => "DECLINE",
        CallKind::Kill(_) => "KILL",
        CallKind::Revive(_) => "REVIVE",
        CallKind::Suppress(_) => "SUPPRESS",
        CallKind::Reconcile(_) => "RECONCILE",
        _ => "OTHER",
    }
}

fn project(services: Vec<(&str, ServiceSpec)>) -> ProjectSpec {
    ProjectSpec {
        name: "demo".into(),
        services: services
            .into_iter()
            .map(|(n, mut s)| {
                s.task_name = format!("demo_{n}");
                (n.to_owned(), s)
            })
            .collect(),
    }
}

fn replicas(n: u32) -> ServiceSpec {
    let mut s = service(0.1, &[]);
    s.replicas = n;
    s
}

#[test]
fn subscribing_reconciles_then_asks_for_offers_only_when_work_waits() {
    let mut w = World::new();
    w.subscribe();
    assert_eq!(w.calls(), ["RECONCILE", "SUPPRESS"], "nothing deployed: implicit reconciliation, offers suppressed");
    w.deploy(project(vec![("web", replicas(3))]));
    assert_eq!(w.calls(), ["REVIVE"]);
    let tasks = w.offer(4.0);
    assert_eq!(tasks.len(), 3, "three replicas packed into one offer");
    let actions = w.take();
    let persist = actions.iter().position(|a| matches!(a, Action::Persist(_))).expect("tasks persisted");
    let accept = actions.iter().position(|a| matches!(a, Action::Call(CallKind::Accept(_)))).unwrap();
    assert!(persist < accept, "task records are durable before the ACCEPT: {actions:?}");
    assert!(matches!(actions.last(), Some(Action::Call(CallKind::Suppress(_)))), "nothing pending: suppressed");
    assert_eq!(w.stored.keys().filter(|k| k.starts_with("task/")).count(), 3);
}

#[test]
fn offers_that_do_not_fit_are_declined_and_the_misfit_is_recorded() {
    let mut w = World::new();
    w.subscribe();
    let mut big = replicas(1);
    big.resources.cpus = 8.0;
    w.deploy(project(vec![("big", big)]));
    w.take();
    assert!(w.offer(2.0).is_empty());
    let actions = w.take();
    match actions.as_slice() {
        [Action::Call(CallKind::Decline(d))] => assert_eq!(d.filters.unwrap().refuse_seconds, DECLINE_BUSY_SECONDS),
        other => panic!("expected one DECLINE, got {other:?}"),
    }
    let why = w.engine.misfit(&ReplicaKey::new("demo", "big", 0)).unwrap().to_string();
    assert!(why.contains("cpus"), "{why}");
}

#[test]
fn a_dependency_on_a_healthy_service_gates_the_start() {
    let mut w = World::new();
    w.subscribe();
    let mut web = replicas(1);
    web.health = Some(HealthSpec {
        command: crate::spec::CommandSpec::Shell("true".into()),
        interval_seconds: 1.0,
        timeout_seconds: 1.0,
        retries: 3,
        start_period_seconds: 0.0,
    });
    let mut worker = replicas(1);
    worker.depends_on.insert("web".into(), DependCondition::ServiceHealthy);
    w.deploy(project(vec![("web", web), ("worker", worker)]));
    w.take();
    let first = w.offer(4.0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].name, "demo_web");
    assert!(w.calls().contains(&"SUPPRESS"), "the worker waits: no offers needed");
    let web_id = first[0].task_id.value.clone();
    w.status(&web_id, TaskState::Running, None);
    assert_eq!(w.calls(), ["ACK"], "running but not yet healthy: still waiting");
    w.status(&web_id, TaskState::Running, Some(true));
    let calls = w.calls();
    assert!(calls.contains(&"REVIVE") && calls.contains(&"ACK"), "{calls:?}");
    let second = w.offer(4.0);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].name, "demo_worker");
}

#[test]
fn a_deploy_that_changes_only_the_count_keeps_the_running_tasks() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2))]));
    w.take();
    let first = w.offer(8.0);
    assert_eq!(first.len(), 2);
    for t in &first {
        w.status(&t.task_id.value, TaskState::Running, None);
    }
    w.take();
    w.deploy(project(vec![("web", replicas(3))]));
    assert!(!w.calls().contains(&"KILL"), "scaling up replaces nothing");
    let added = w.offer(8.0);
    assert_eq!(added.len(), 1, "one more task");
    w.deploy(project(vec![("web", replicas(1))]));
    let kills = w.calls().iter().filter(|c| **c == "KILL").count();
    assert_eq!(kills, 2, "scaling down kills the two highest replicas only");
    assert!(w.engine.tasks()[&first[0].task_id.value].kill.is_none(), "replica 0 keeps running");
}

#[test]
fn an_externally_judged_health_gates_the_start_and_persists() {
    let mut w = World::new();
    w.subscribe();
    let mut server = replicas(1);
    server.external_health = true;
    let mut agent = replicas(1);
    agent.depends_on.insert("server".into(), DependCondition::ServiceHealthy);
    w.deploy(project(vec![("server", server), ("agent", agent)]));
    w.take();
    let first = w.offer(4.0);
    assert_eq!(first.len(), 1);
    let id = first[0].task_id.value.clone();
    w.status(&id, TaskState::Running, None);
    w.take();
    assert!(w.offer(4.0).is_empty(), "running is not enough: the framework has not judged it healthy");
    assert_eq!(w.engine.set_health(w.now, "no-such-task", true), Err(CommandError::UnknownTask("no-such-task".into())));
    w.engine.set_health(w.now, &id, true).unwrap();
    w.collect();
    assert!(w.calls().contains(&"REVIVE"));
    let stored: TaskRecord = serde_json::from_slice(&w.stored[&format!("task/{id}")]).unwrap();
    assert_eq!(stored.healthy, Some(true), "the judgement is persisted with the task");
    let second = w.offer(4.0);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].name, "demo_agent");
}

#[test]
fn a_crashing_task_restarts_with_growing_backoff_and_is_marked_crash_looping() {
    let mut w = World::new();
    w.subscribe();
    let mut s = replicas(1);
    s.restart =
        crate::spec::RestartSpec { when: RestartWhen::OnFailure, delay_ms: 1000, max_attempts: None, window_ms: None };
    w.deploy(project(vec![("crash", s)]));
    let mut delays = Vec::new();
    for _ in 0..4 {
        w.take();
        let t = w.offer(1.0);
        assert_eq!(t.len(), 1);
        let id = t[0].task_id.value.clone();
        w.status(&id, TaskState::Running, None);
        w.now += 100;
        w.status(&id, TaskState::Failed, None);
        let wake = w.engine.next_wakeup().expect("a restart is scheduled");
        delays.push(wake - w.now);
        w.take();
        assert!(w.offer(1.0).is_empty(), "no restart before the backoff ends");
        w.now = wake;
        w.input(Input::Tick);
        assert!(w.calls().contains(&"REVIVE"));
    }
    assert_eq!(delays, [1000, 2000, 4000, 8000]);
    let r = w.engine.replica_state(&ReplicaKey::new("demo", "crash", 0)).unwrap();
    assert!(r.quick_failures >= CRASH_LOOP_AFTER);
}

#[test]
fn restart_policies_decide_what_an_ended_task_means() {
    let mut w = World::new();
    w.subscribe();
    let policy = |when, max| {
        let mut s = replicas(1);
        s.restart = crate::spec::RestartSpec { when, delay_ms: 0, max_attempts: max, window_ms: None };
        s
    };
    w.deploy(project(vec![
        ("job", policy(RestartWhen::OnFailure, None)),
        ("once", policy(RestartWhen::Never, None)),
        ("limited", policy(RestartWhen::Always, Some(1))),
    ]));
    let tasks = w.offer(4.0);
    let id = |name: &str| tasks.iter().find(|t| t.name == format!("demo_{name}")).unwrap().task_id.value.clone();
    w.status(&id("job"), TaskState::Finished, None);
    w.status(&id("once"), TaskState::Failed, None);
    w.status(&id("limited"), TaskState::Finished, None);
    let key = |s: &str| ReplicaKey::new("demo", s, 0);
    assert_eq!(w.engine.replica_state(&key("job")).unwrap().done, Some(Done::Completed));
    assert!(matches!(w.engine.replica_state(&key("once")).unwrap().done, Some(Done::Failed(_))));
    assert_eq!(w.engine.replica_state(&key("limited")).unwrap().done, None, "one attempt allowed");
    w.take();
    let again = w.offer(4.0);
    assert_eq!(again.len(), 1);
    w.status(&again[0].task_id.value.clone(), TaskState::Finished, None);
    let done = w.engine.replica_state(&key("limited")).unwrap().done.clone();
    assert!(matches!(done, Some(Done::Failed(ref m)) if m.contains("gave up")), "{done:?}");
}

#[test]
fn stop_is_scale_zero_and_start_returns_to_the_files_count() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2))]));
    for t in w.offer(4.0) {
        w.status(&t.task_id.value, TaskState::Running, None);
    }
    w.take();
    w.engine.scale(w.now, "demo", "web", 0).unwrap();
    w.collect();
    let kills: Vec<String> = w
        .take()
        .into_iter()
        .filter_map(|a| match a {
            Action::Call(CallKind::Kill(k)) => Some(k.task_id.value),
            _ => None,
        })
        .collect();
    assert_eq!(kills.len(), 2, "stop kills every replica");
    for id in &kills {
        w.status(id, TaskState::Killed, None);
    }
    w.take();
    assert_eq!(w.offer(4.0).len(), 0, "nothing starts while stopped");
    w.engine.unscale(w.now, "demo", "web").unwrap();
    assert!(w.engine.projects()["demo"].scale.is_empty(), "the override is gone");
    assert_eq!(w.offer(4.0).len(), 2, "start brings back the file's 2 replicas");
    w.engine.unscale(w.now, "demo", "web").unwrap();
    assert!(matches!(w.engine.unscale(w.now, "demo", "nope"), Err(CommandError::UnknownService { .. })));
}

#[test]
fn scaling_down_kills_the_highest_replicas_and_scaling_up_launches_more() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(3))]));
    for t in w.offer(4.0) {
        w.status(&t.task_id.value, TaskState::Running, None);
    }
    w.take();
    w.engine.scale(w.now, "demo", "web", 1).unwrap();
    w.collect();
    let kills: Vec<_> = w
        .take()
        .into_iter()
        .filter_map(|a| match a {
            Action::Call(CallKind::Kill(k)) => Some(k.task_id.value),
            _ => None,
        })
        .collect();
    assert_eq!(kills.len(), 2);
    let replicas_killed: Vec<u32> = kills.iter().map(|id| w.engine.tasks()[id].replica).collect();
    assert_eq!(replicas_killed, [1, 2]);
    w.engine.scale(w.now, "demo", "web", 4).unwrap();
    w.collect();
    for id in &kills {
        w.status(id, TaskState::Killed, None);
    }
    w.take();
    assert_eq!(w.offer(4.0).len(), 3, "replicas 1..3 start; the killed tasks were no failure");
    assert!(matches!(w.engine.scale(w.now, "demo", "nope", 1), Err(CommandError::UnknownService { .. })));
}

#[test]
fn replica_counts_above_the_limits_are_refused_before_anything_changes() {
    let mut w = World::new();
    w.engine = std::mem::replace(&mut w.engine, Engine::new("x"))
        .with_limits(Limits { max_replicas: 5, max_total_replicas: 8 });
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2))]));
    w.take();
    let err = w.engine.scale(w.now, "demo", "web", 1_000_000_000).unwrap_err();
    assert!(
        matches!(&err, CommandError::Limit(m) if m.contains("limit of 5") && m.contains("--max-replicas")),
        "{err}"
    );
    assert_eq!(w.engine.projects()["demo"].replicas("web"), 2, "nothing changed");
    assert!(w.engine.take_actions().is_empty(), "no action for a refused command");
    // The total counts every service of every project, the changed one at its new count.
    w.engine.scale(w.now, "demo", "web", 5).unwrap();
    let mut other = project(vec![("a", replicas(3)), ("b", replicas(1))]);
    other.name = "other".into();
    let err = w.engine.deploy(w.now, other.clone()).unwrap_err();
    assert!(
        matches!(&err, CommandError::Limit(m) if m.contains("9 replicas") && m.contains("--max-total-replicas")),
        "{err}"
    );
    other.services.remove("b");
    w.engine.deploy(w.now, other).unwrap();
    let err = w.engine.deploy(w.now, project(vec![("web", replicas(6))])).unwrap_err();
    assert!(matches!(&err, CommandError::Limit(m) if m.contains("services.web.deploy.replicas")), "{err}");
    // Redeploying a project replaces its own count rather than adding to it.
    w.engine.deploy(w.now, project(vec![("web", replicas(5))])).unwrap();
}

#[test]
fn a_changed_service_is_replaced_one_replica_at_a_time_and_an_unchanged_one_keeps_its_tasks() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2)), ("db", replicas(1))]));
    for t in w.offer(4.0) {
        w.status(&t.task_id.value, TaskState::Running, None);
    }
    let db_before: Vec<String> = w.live("db").iter().map(|t| t.task_id.clone()).collect();
    w.take();
    let mut changed = replicas(2);
    changed.run.env.insert("VERSION".into(), "2".into());
    let out = w.deploy(project(vec![("web", changed), ("db", replicas(1))]));
    assert_eq!(out.updated, ["web"]);
    assert_eq!(out.unchanged, ["db"]);
    let calls = w.calls();
    assert_eq!(calls.iter().filter(|c| **c == "KILL").count(), 1, "one old replica at a time: {calls:?}");
    let old0 = w.live("web").into_iter().find(|t| t.kill.is_some()).unwrap().task_id.clone();
    w.status(&old0, TaskState::Killed, None);
    let new0 = w.offer(4.0);
    assert_eq!(new0.len(), 1);
    assert!(
        new0[0].command.as_ref().unwrap().environment.as_ref().unwrap().variables.iter().any(|v| v.name == "VERSION")
    );
    assert!(!w.calls().contains(&"KILL"), "the next old replica waits until the new one runs");
    w.status(&new0[0].task_id.value, TaskState::Running, None);
    assert!(w.calls().contains(&"KILL"), "new replica running: the second old one is replaced");
    let db_after: Vec<String> = w.live("db").iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(db_before, db_after);
}

#[test]
fn down_kills_everything_and_forgets_the_project_once_the_tasks_ended() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2))]));
    let ids: Vec<String> = w.offer(4.0).into_iter().map(|t| t.task_id.value).collect();
    w.take();
    w.engine.remove(w.now, "demo").unwrap();
    w.collect();
    assert_eq!(w.calls().iter().filter(|c| **c == "KILL").count(), 2);
    assert!(w.engine.projects().contains_key("demo"));
    for id in &ids {
        w.status(id, TaskState::Killed, None);
    }
    assert!(w.engine.projects().is_empty());
    assert!(w.engine.tasks().is_empty());
    assert!(w.stored.keys().all(|k| k == KEY_FRAMEWORK_ID), "nothing left in the store: {:?}", w.stored.keys());
}

#[test]
fn a_completed_job_is_not_run_again_after_a_restart_and_a_failed_service_starts_again() {
    let mut w = World::new();
    w.subscribe();
    let mut once = replicas(1);
    once.restart =
        crate::spec::RestartSpec { when: RestartWhen::Never, delay_ms: 0, max_attempts: None, window_ms: None };
    w.deploy(project(vec![("job", once), ("web", replicas(1))]));
    let tasks = w.offer(4.0);
    let id = |name: &str| tasks.iter().find(|t| t.name == format!("demo_{name}")).unwrap().task_id.value.clone();
    w.status(&id("job"), TaskState::Finished, None);
    w.status(&id("web"), TaskState::Failed, None);
    let mut w = World::restored(w.stored);
    let key = |s: &str| ReplicaKey::new("demo", s, 0);
    assert_eq!(w.engine.replica_state(&key("job")).unwrap().done, Some(Done::Completed));
    w.subscribe();
    w.take();
    let again = w.offer(4.0);
    assert_eq!(again.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["demo_web"], "only the failed service");
}

#[test]
fn after_a_restart_known_tasks_are_reconciled_unknown_ones_killed_and_no_replica_is_launched_twice() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(2))]));
    let ids: Vec<String> = w.offer(4.0).into_iter().map(|t| t.task_id.value).collect();
    w.status(&ids[0], TaskState::Running, None);
    // The framework dies here: ids[1] was launched but no update was seen.
    let mut w = World::restored(w.stored);
    assert_eq!(w.engine.framework_id().unwrap().value, "fw-1");
    w.subscribe();
    let actions = w.take();
    let reconcile: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Call(CallKind::Reconcile(r)) => Some(r.tasks.len()),
            _ => None,
        })
        .collect();
    assert_eq!(reconcile, [2, 0], "explicit for both known tasks, then implicit");
    assert!(w.offer(4.0).is_empty(), "both replicas hold a live task: nothing to launch");
    w.take();
    // The master never got the second launch, and knows a task we do not.
    w.input(Input::Update(Box::new(TaskStatus {
        task_id: TaskId::new(&ids[1]),
        state: TaskState::Gone,
        ..Default::default()
    })));
    w.status("demo_web.zzz", TaskState::Running, None);
    let calls = w.calls();
    assert!(calls.contains(&"KILL") && calls.contains(&"REVIVE"), "{calls:?}");
    let relaunched = w.offer(4.0);
    assert_eq!(relaunched.len(), 1);
    assert_eq!(w.live("web").len(), 2);
}

#[test]
fn acknowledgements_follow_the_persisted_update() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(1))]));
    let id = w.offer(1.0)[0].task_id.value.clone();
    w.take();
    w.status(&id, TaskState::Running, None);
    let actions = w.take();
    assert!(matches!(actions.first(), Some(Action::Persist(_))), "{actions:?}");
    assert!(matches!(actions.last(), Some(Action::Acknowledge(_))), "{actions:?}");
}

#[test]
fn a_framework_removed_by_the_master_starts_over_with_a_new_id() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(1))]));
    let id = w.offer(1.0)[0].task_id.value.clone();
    w.status(&id, TaskState::Running, None);
    w.input(Input::Error { message: "framework has been removed".into() });
    assert!(w.engine.framework_id().is_none());
    assert!(!w.stored.contains_key(KEY_FRAMEWORK_ID));
    assert!(w.live("web").is_empty());
    w.input(Input::Subscribed { framework_id: FrameworkId::new("fw-2") });
    w.take();
    assert_eq!(w.offer(1.0).len(), 1, "the replica is launched again under the new framework");
}

#[test]
fn invalid_projects_are_refused_with_the_reason() {
    let mut w = World::new();
    let mut a = replicas(1);
    a.depends_on.insert("b".into(), DependCondition::ServiceStarted);
    let mut b = replicas(1);
    b.depends_on.insert("a".into(), DependCondition::ServiceStarted);
    let err = w.engine.deploy(0, project(vec![("a", a), ("b", b)])).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let mut bad = project(vec![("a", replicas(1))]);
    bad.name = "Bad Name".into();
    assert!(w.engine.deploy(0, bad).unwrap_err().to_string().contains("project name"));
}

#[test]
fn unique_placement_keeps_replicas_on_different_agents() {
    let mut w = World::new();
    w.subscribe();
    let mut s = replicas(2);
    s.max_per_node = Some(1);
    w.deploy(project(vec![("u", s)]));
    assert_eq!(w.offer(4.0).len(), 1, "one agent: one replica");
    let why = w.engine.misfit(&ReplicaKey::new("demo", "u", 1)).unwrap().to_string();
    assert!(why.contains("at most one replica per node (unique)"), "{why}");
}

#[test]
fn a_per_node_limit_above_one_is_named_with_its_number() {
    let mut w = World::new();
    w.subscribe();
    let mut s = replicas(4);
    s.max_per_node = Some(3);
    w.deploy(project(vec![("p", s)]));
    assert_eq!(w.offer(4.0).len(), 3, "one agent: three replicas");
    let why = w.engine.misfit(&ReplicaKey::new("demo", "p", 3)).unwrap().to_string();
    assert_eq!(why, "at most 3 replicas per node, and this node has 3");
}

#[test]
fn a_launch_that_never_reached_the_master_is_replaced() {
    let mut w = World::new();
    w.subscribe();
    w.deploy(project(vec![("web", replicas(1))]));
    let id = w.offer(1.0)[0].task_id.value.clone();
    w.take();
    w.input(Input::LaunchFailed { task_ids: vec![id.clone()], message: "connection refused".into() });
    assert_eq!(w.engine.tasks()[&id].state, Some(TaskState::Dropped));
    assert!(w.calls().contains(&"REVIVE"));
    assert_eq!(w.offer(1.0).len(), 1);
}
