//! The master state machine driven by scripted calls on a virtual clock.

use std::time::{Duration, Instant};

use mesos::v1::scheduler::{
    Acknowledge, Call, CallKind, Decline, Event, Kill, Reconcile, ReconcileTask, Revive, Subscribe, Suppress,
};
use mesos::v1::{
    AgentId, CommandInfo, Filters, FrameworkCapability, FrameworkCapabilityType, FrameworkId, FrameworkInfo, OfferId,
    Operation, Resource, TaskId, TaskInfo, TaskState, TaskStatus, TaskStatusReason,
};

use super::updates::Exit;
use super::{Action, AllowedUsers, Clock, Master, MasterConfig};
use crate::resources::Resources;

struct Check {
    master: Master,
    now: Instant,
    unix: f64,
}

fn check() -> Check {
    let config = MasterConfig {
        master_id: "m1".into(),
        hostname: "localhost".into(),
        ip: "127.0.0.1".parse().unwrap(),
        port: 5050,
        resources: Resources::parse("cpus:2;mem:1024;disk:1000;ports:[31000-31009]").unwrap(),
        attributes: Vec::new(),
        version: "1.11.0".into(),
        heartbeat_interval: Duration::from_secs(15),
        seed: 1,
        allowed_users: AllowedUsers::Any,
    };
    let now = Instant::now();
    Check { master: Master::new(config, Clock { mono: now, unix: 1e9 }), now, unix: 1e9 }
}

fn info(name: &str, caps: &[FrameworkCapabilityType]) -> FrameworkInfo {
    let multi = caps.contains(&FrameworkCapabilityType::MultiRole);
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        failover_timeout: 60.0,
        roles: if multi { vec!["r".into()] } else { vec![] },
        capabilities: caps.iter().map(|c| FrameworkCapability { kind: c.clone() }).collect(),
        ..Default::default()
    }
}

const ALL: &[FrameworkCapabilityType] = &[
    FrameworkCapabilityType::MultiRole,
    FrameworkCapabilityType::TaskKillingState,
    FrameworkCapabilityType::PartitionAware,
];

impl Check {
    fn clock(&self) -> Clock {
        Clock { mono: self.now, unix: self.unix }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.unix += d.as_secs_f64();
        if self.master.poll_timeout().is_some_and(|t| t <= self.now) {
            let clock = self.clock();
            self.master.handle_timeout(clock);
        }
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.master.poll_action()).collect()
    }

    /// Events sent to `fid`, in order; other actions are dropped.
    fn events(&mut self, fid: &FrameworkId) -> Vec<Event> {
        self.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Send { framework_id, event, .. } if &framework_id == fid => Some(event),
                _ => None,
            })
            .collect()
    }

    fn subscribe(&mut self, info: FrameworkInfo) -> (FrameworkId, String) {
        let clock = self.clock();
        let id = info.id.clone();
        self.master.subscribe(clock, id, Subscribe { framework_info: info, ..Default::default() }).unwrap()
    }

    fn call(&mut self, fid: &FrameworkId, stream: &str, kind: CallKind) -> Result<(), super::CallError> {
        let clock = self.clock();
        self.master.handle_call(clock, Some(stream), Call::new(fid.clone(), kind))
    }

    fn offer(&mut self, fid: &FrameworkId) -> mesos::v1::Offer {
        let events = self.events(fid);
        events
            .into_iter()
            .find_map(|e| match e {
                Event::Offers(o) => o.offers.into_iter().next(),
                _ => None,
            })
            .expect("an offer")
    }

    fn launch(&mut self, fid: &FrameworkId, stream: &str, offer: &OfferId, tasks: Vec<TaskInfo>) {
        let accept = mesos::v1::scheduler::Accept {
            offer_ids: vec![offer.clone()],
            operations: vec![Operation::launch(tasks)],
            filters: None,
        };
        self.call(fid, stream, CallKind::Accept(accept)).unwrap();
    }

    fn container_of(&self, fid: &FrameworkId, tid: &str) -> String {
        self.master.framework(fid).unwrap().tasks[&TaskId::new(tid)].container_id.clone().unwrap()
    }

    fn ack(&mut self, fid: &FrameworkId, stream: &str, status: &TaskStatus) {
        let ack = Acknowledge {
            agent_id: status.agent_id.clone().unwrap(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap(),
        };
        self.call(fid, stream, CallKind::Acknowledge(ack)).unwrap();
    }
}

fn task(id: &str, cmd: &str, cpus: f64, mem: f64) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: AgentId::new("m1-S0"),
        resources: vec![Resource::scalar("cpus", cpus), Resource::scalar("mem", mem)],
        command: Some(CommandInfo::shell(cmd)),
        ..Default::default()
    }
}

fn updates(events: &[Event]) -> Vec<TaskStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Update(u) => Some(u.status.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn subscribe_sends_subscribed_heartbeat_and_an_offer_of_everything() {
    let mut c = check();
    let (fid, _) = c.subscribe(info("fw", ALL));
    assert_eq!(fid.value, "m1-0000");
    let events = c.events(&fid);
    let Event::Subscribed(s) = &events[0] else { panic!("{events:?}") };
    assert_eq!(s.heartbeat_interval_seconds, Some(15.0));
    assert_eq!(s.master_info.as_ref().unwrap().ip, 16777343, "127.0.0.1 in network order");
    assert_eq!(events[1], Event::Heartbeat);
    let Event::Offers(o) = &events[2] else { panic!("{events:?}") };
    let offer = &o.offers[0];
    assert_eq!(offer.id.value, "m1-O0");
    assert_eq!(offer.allocation_info.as_ref().unwrap().role.as_deref(), Some("r"));
    let total = Resources::from_wire(&offer.resources).unwrap();
    assert_eq!((total.scalar("cpus"), total.scalar("mem")), (2.0, 1024.0));
}

#[test]
fn roles_without_multi_role_are_refused_like_mesos() {
    let mut c = check();
    let mut bad = info("bad", &[]);
    bad.roles = vec!["a".into()];
    let err = c.master.subscribe(c.clock(), None, Subscribe { framework_info: bad, ..Default::default() }).unwrap_err();
    assert_eq!(err.0, "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable");
}

#[test]
fn launch_flows_through_starting_running_finished_one_update_at_a_time() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "true", 0.5, 64.0)]);
    let actions = c.actions();
    assert!(actions.iter().any(|a| matches!(a, Action::Launch { task_id, .. } if task_id.value == "t1")));
    // The unused rest was declined with the default 5 s filter: no new offer yet.
    assert!(!actions.iter().any(|a| matches!(a, Action::Send { event: Event::Offers(_), .. })));

    let container = c.container_of(&fid, "t1");
    c.master.task_started(c.clock(), &container, Some(42));
    let first = updates(&c.events(&fid));
    assert_eq!(first.len(), 1, "RUNNING waits for STARTING's acknowledgement");
    assert_eq!(first[0].state, TaskState::Starting);
    assert_eq!(first[0].uuid.as_ref().unwrap().0.len(), 16);
    c.ack(&fid, &stream, &first[0]);
    let second = updates(&c.events(&fid));
    assert_eq!(second[0].state, TaskState::Running);
    c.ack(&fid, &stream, &second[0]);

    c.master.task_exited(c.clock(), &container, Exit::Code(0));
    let events = c.events(&fid);
    let done = updates(&events);
    assert_eq!(done[0].state, TaskState::Finished);
    assert_eq!(done[0].message.as_deref(), Some("Command exited with status 0"));
    c.ack(&fid, &stream, &done[0]);
    assert!(c.master.framework(&fid).unwrap().tasks.is_empty(), "acknowledged terminal task is completed");
    assert_eq!(c.master.framework(&fid).unwrap().completed_tasks.len(), 1);
    assert!(c.master.used_resources().is_empty());
}

#[test]
fn unacknowledged_updates_are_resent_with_backoff() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "sleep 9", 0.5, 64.0)]);
    let container = c.container_of(&fid, "t1");
    c.master.task_started(c.clock(), &container, None);
    let starting = updates(&c.events(&fid))[0].clone();
    c.advance(Duration::from_secs(10));
    assert_eq!(updates(&c.events(&fid)), vec![starting.clone()], "resent after 10 s");
    c.advance(Duration::from_secs(10));
    assert!(updates(&c.events(&fid)).is_empty(), "next resend after 20 s");
    c.advance(Duration::from_secs(10));
    assert_eq!(updates(&c.events(&fid)).len(), 1);
}

#[test]
fn invalid_tasks_get_task_error_without_uuid() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    let mut no_command = task("bad-1", "x", 0.1, 32.0);
    no_command.command = None;
    let too_big = task("big-1", "true", 4.0, 32.0);
    c.launch(&fid, &stream, &offer.id, vec![no_command, too_big]);
    let errors = updates(&c.events(&fid));
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].state, TaskState::Error);
    assert_eq!(errors[0].reason, Some(TaskStatusReason::TaskInvalid));
    assert_eq!(
        errors[0].message.as_deref(),
        Some("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
    );
    assert!(errors[0].uuid.is_none());
    assert!(errors[1].message.as_deref().unwrap().contains("cpus:4 (available cpus:2)"), "{:?}", errors[1].message);
}

#[test]
fn accepting_a_stale_offer_drops_its_tasks() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    c.offer(&fid);
    c.launch(&fid, &stream, &OfferId::new("m1-O99"), vec![task("t1", "true", 0.1, 32.0)]);
    let u = updates(&c.events(&fid));
    assert_eq!(u[0].state, TaskState::Dropped);
    assert_eq!(u[0].reason, Some(TaskStatusReason::InvalidOffers));
}

#[test]
fn decline_filters_until_refuse_seconds_and_revive_clears_them() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    let decline = Decline { offer_ids: vec![offer.id], filters: Some(Filters { refuse_seconds: 30.0 }) };
    c.call(&fid, &stream, CallKind::Decline(decline)).unwrap();
    assert!(c.events(&fid).is_empty());
    c.advance(Duration::from_secs(29));
    assert!(c.events(&fid).is_empty());
    c.advance(Duration::from_secs(1));
    let offer = c.offer(&fid);
    c.call(&fid, &stream, CallKind::Decline(Decline { offer_ids: vec![offer.id], filters: None })).unwrap();
    c.call(&fid, &stream, CallKind::Revive(Revive::default())).unwrap();
    c.offer(&fid);
}

#[test]
fn suppressed_frameworks_get_no_offers_and_another_framework_does() {
    let mut c = check();
    let (a, sa) = c.subscribe(info("a", ALL));
    let offer = c.offer(&a);
    c.call(&a, &sa, CallKind::Suppress(Suppress::default())).unwrap();
    c.call(&a, &sa, CallKind::Decline(Decline { offer_ids: vec![offer.id], filters: None })).unwrap();
    let (b, _) = c.subscribe(info("b", ALL));
    let events = c.actions();
    let to_a = events
        .iter()
        .filter(|x| matches!(x, Action::Send { framework_id, event: Event::Offers(_), .. } if *framework_id == a));
    let to_b = events
        .iter()
        .filter(|x| matches!(x, Action::Send { framework_id, event: Event::Offers(_), .. } if *framework_id == b));
    assert_eq!((to_a.count(), to_b.count()), (0, 1));
}

#[test]
fn kill_sends_killing_then_killed() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "sleep 100", 0.5, 64.0)]);
    let container = c.container_of(&fid, "t1");
    c.master.task_started(c.clock(), &container, None);
    for _ in 0..2 {
        let u = updates(&c.events(&fid));
        c.ack(&fid, &stream, &u[0]);
    }
    c.call(&fid, &stream, CallKind::Kill(Kill { task_id: TaskId::new("t1"), ..Default::default() })).unwrap();
    let actions = c.actions();
    assert!(actions.iter().any(|a| matches!(a, Action::Kill { grace, .. } if *grace == Duration::from_secs(3))));
    let killing = actions
        .iter()
        .find_map(|a| match a {
            Action::Send { event: Event::Update(u), .. } => Some(u.status.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(killing.state, TaskState::Killing);
    c.ack(&fid, &stream, &killing);
    c.master.task_exited(c.clock(), &container, Exit::Signal(15));
    let u = updates(&c.events(&fid));
    assert_eq!(u[0].state, TaskState::Killed);
    assert_eq!(u[0].message.as_deref(), Some("Command terminated with signal Terminated"));
}

#[test]
fn reconciliation_answers_like_mesos() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "sleep 100", 0.5, 64.0)]);
    c.actions();
    let recon = Reconcile {
        tasks: vec![
            ReconcileTask { task_id: TaskId::new("t1"), agent_id: None },
            ReconcileTask { task_id: TaskId::new("nope"), agent_id: Some(AgentId::new("m1-S0")) },
            ReconcileTask { task_id: TaskId::new("nope2"), agent_id: None },
        ],
    };
    c.call(&fid, &stream, CallKind::Reconcile(recon)).unwrap();
    let u = updates(&c.events(&fid));
    let states: Vec<_> = u.iter().map(|s| (s.task_id.value.as_str(), s.state.clone())).collect();
    assert_eq!(states, vec![("t1", TaskState::Staging), ("nope", TaskState::Gone), ("nope2", TaskState::TaskUnknown)]);
    assert!(u.iter().all(|s| s.reason == Some(TaskStatusReason::Reconciliation) && s.uuid.is_none()));
    c.call(&fid, &stream, CallKind::Reconcile(Reconcile::default())).unwrap();
    assert_eq!(updates(&c.events(&fid)).len(), 1, "implicit: every known task");

    // Without PARTITION_AWARE, the partition states read TASK_LOST.
    let (old, old_stream) = c.subscribe(info("old", &[]));
    c.actions();
    let recon = Reconcile { tasks: vec![ReconcileTask { task_id: TaskId::new("x"), agent_id: None }] };
    c.call(&old, &old_stream, CallKind::Reconcile(recon)).unwrap();
    assert_eq!(updates(&c.events(&old))[0].state, TaskState::Lost);
}

#[test]
fn failover_keeps_tasks_within_the_timeout_and_removes_the_framework_after_it() {
    let mut c = check();
    let mut fi = info("fw", ALL);
    let (fid, stream) = c.subscribe(fi.clone());
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "sleep 100", 0.5, 64.0)]);
    let container = c.container_of(&fid, "t1");
    c.master.task_started(c.clock(), &container, None);
    let starting = updates(&c.events(&fid))[0].clone();

    c.master.stream_closed(c.clock(), &stream);
    c.advance(Duration::from_secs(30));
    fi.id = Some(fid.clone());
    let (again, stream2) = c.subscribe(fi.clone());
    assert_eq!(again, fid);
    assert_ne!(stream2, stream);
    let redelivered = updates(&c.events(&fid));
    assert_eq!(redelivered[0].uuid, starting.uuid, "the unacknowledged update is delivered again");
    assert_eq!(
        c.call(&fid, &stream, CallKind::Revive(Revive::default())).unwrap_err().status,
        400,
        "the old stream id is void"
    );

    c.master.stream_closed(c.clock(), &stream2);
    c.advance(Duration::from_secs(61));
    let actions = c.actions();
    assert!(actions.iter().any(|a| matches!(a, Action::Kill { container_id, .. } if *container_id == container)));
    assert!(c.master.framework(&fid).is_none());
    let refusal =
        c.master.subscribe(c.clock(), Some(fid.clone()), Subscribe { framework_info: fi, ..Default::default() });
    assert_eq!(refusal.unwrap_err().0, "Framework has been removed");
}

#[test]
fn calls_are_validated_in_mesos_order_with_its_messages() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let clock = c.clock();
    let revive = || CallKind::Revive(Revive::default());
    let err = c.master.handle_call(clock, Some(&stream), Call::new(FrameworkId::new("nope"), revive())).unwrap_err();
    assert_eq!((err.status, err.message.as_str()), (400, "Framework cannot be found"));
    let err = c.master.handle_call(clock, None, Call::new(fid.clone(), revive())).unwrap_err();
    assert_eq!(err.message, "All non-subscribe calls should include the 'Mesos-Stream-Id' header");
    let err = c.master.handle_call(clock, Some("x"), Call::new(fid.clone(), revive())).unwrap_err();
    assert!(err.message.starts_with("The stream ID 'x' included in this request didn't match"));
    let bad_uuid = Acknowledge { agent_id: AgentId::new("m1-S0"), task_id: TaskId::new("t"), uuid: vec![0; 3].into() };
    let err = c.call(&fid, &stream, CallKind::Acknowledge(bad_uuid)).unwrap_err();
    assert_eq!(err.message, "Failed to validate scheduler::Call: Not a valid UUID");
    c.master.stream_closed(clock, &stream);
    let err = c.master.handle_call(clock, Some(&stream), Call::new(fid, revive())).unwrap_err();
    assert_eq!(err.status, 403);
}

#[test]
fn teardown_kills_tasks_and_frees_resources() {
    let mut c = check();
    let (fid, stream) = c.subscribe(info("fw", ALL));
    let offer = c.offer(&fid);
    c.launch(&fid, &stream, &offer.id, vec![task("t1", "sleep 100", 0.5, 64.0)]);
    c.actions();
    c.call(&fid, &stream, CallKind::Teardown).unwrap();
    let actions = c.actions();
    assert!(actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    assert!(actions.iter().any(|a| matches!(a, Action::CloseStream { stream_id } if *stream_id == stream)));
    assert!(c.master.used_resources().is_empty());
    assert_eq!(c.master.completed_frameworks().count(), 1);
}

#[test]
fn a_framework_id_is_bound_to_its_principal() {
    let mut c = check();
    let mut owner = info("fw", ALL);
    owner.principal = Some("m3s".into());
    let (fid, _) = c.subscribe(owner.clone());
    for thief in [Some("other".to_owned()), None] {
        let mut hijack = owner.clone();
        hijack.id = Some(fid.clone());
        hijack.principal = thief.clone();
        let refusal = c
            .master
            .subscribe(c.clock(), Some(fid.clone()), Subscribe { framework_info: hijack, ..Default::default() })
            .unwrap_err();
        assert!(refusal.0.starts_with("Changing framework's principal is not allowed"), "{thief:?}: {}", refusal.0);
    }
    owner.id = Some(fid.clone());
    assert_eq!(c.subscribe(owner).0, fid, "the owner fails over as before");
}

#[test]
fn tasks_for_users_the_operator_did_not_allow_are_refused_as_unauthorized() {
    let mut c = check();
    let mut config = c.master.config().clone();
    config.allowed_users = AllowedUsers::Only(["alice".to_owned()].into());
    c.master = Master::new(config, c.clock());
    let (fid, stream) = c.subscribe(info("fw", ALL)); // FrameworkInfo.user is root
    let offer = c.offer(&fid);
    let mut as_alice = task("alice", "true", 0.1, 10.0);
    as_alice.command.as_mut().unwrap().user = Some("alice".into());
    c.launch(&fid, &stream, &offer.id, vec![task("root", "id", 0.1, 10.0), as_alice]);
    let sent = updates(&c.events(&fid));
    let root = sent.iter().find(|s| s.task_id.value == "root").expect("an update for the root task");
    assert_eq!(root.state, TaskState::Error);
    assert_eq!(root.reason, Some(TaskStatusReason::TaskUnauthorized));
    assert!(root.message.as_deref().unwrap().contains("Not authorized to launch as user 'root'"), "{root:?}");
    assert!(c.master.framework(&fid).unwrap().tasks.contains_key(&TaskId::new("alice")), "alice's task launched");
}
