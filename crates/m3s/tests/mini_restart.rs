//! `m3s mini` restarted (SIGTERM) and crashed (kill -9) with running tasks:
//! the tasks keep running under their supervisors, the restarted cluster
//! re-adopts them, the framework resubscribes with its id, and a task that
//! ended while the cluster was down is reported with its real exit status.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event, Kill, Reconcile, ReconcileTask};
use mesos::v1::{
    CommandInfo, FrameworkCapability, FrameworkCapabilityType, FrameworkInfo, Operation, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use support::{BOUND, Mini, alive, tempdir};

struct Driver {
    s: Scheduler,
    updates: HashMap<String, Vec<TaskStatus>>,
    subscriptions: Vec<bool>,
    offers: Vec<mesos::v1::Offer>,
}

impl Driver {
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Driver) -> bool) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !done(self) {
            let event = tokio::time::timeout_at(deadline, self.s.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", self.updates.keys()))
                .expect("scheduler stopped")
                .expect("scheduler error");
            match event {
                SchedulerEvent::Subscribed { resubscribed, .. } => self.subscriptions.push(resubscribed),
                SchedulerEvent::Event(Event::Offers(o)) => self.offers.extend(o.offers),
                SchedulerEvent::Event(Event::Update(u)) => {
                    if u.status.uuid.is_some() {
                        self.s.handle().acknowledge(&u.status).unwrap();
                    }
                    self.updates.entry(u.status.task_id.value.clone()).or_default().push(u.status);
                }
                _ => {}
            }
        }
    }

    fn reached(&self, task: &str, state: TaskState) -> bool {
        self.updates.get(task).is_some_and(|v| v.iter().any(|s| s.state == state))
    }

    fn last(&self, task: &str) -> &TaskStatus {
        self.updates[task].last().unwrap()
    }
}

fn task(agent: &mesos::v1::AgentId, id: &str, cmd: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: agent.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell(cmd)),
        ..Default::default()
    }
}

async fn wait_dead(pid: u32) {
    let deadline = Instant::now() + BOUND;
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_survive_restarts_and_crashes_and_are_reported_truthfully() {
    support::init_tls();
    let dir = tempdir("mini-restart");
    let mut mini = Mini::start(&dir);
    let info = FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: "restart-e2e".into(),
        failover_timeout: 3600.0,
        checkpoint: true,
        capabilities: vec![FrameworkCapability { kind: FrameworkCapabilityType::PartitionAware }],
        ..Default::default()
    };
    let mut config = mini.scheduler_config(info);
    config.subscription.backoff.initial = Duration::from_millis(50);
    config.subscription.backoff.max = Duration::from_millis(300);
    let mut d =
        Driver { s: Scheduler::start(config).unwrap(), updates: HashMap::new(), subscriptions: vec![], offers: vec![] };
    d.until("an offer", |d| !d.offers.is_empty()).await;
    let offer = d.offers.remove(0);
    let tasks = vec![
        task(&offer.agent_id, "t-long", "sleep 300"),
        task(&offer.agent_id, "t-crash", "sleep 2; exit 7"),
        task(&offer.agent_id, "t-term", "sleep 4; exit 0"),
    ];
    let accept = Accept { offer_ids: vec![offer.id], operations: vec![Operation::launch(tasks)], filters: None };
    d.s.handle().call(CallKind::Accept(accept)).await.unwrap();
    d.until("all running", |d| ["t-long", "t-crash", "t-term"].iter().all(|t| d.reached(t, TaskState::Running))).await;
    let pid = |d: &Driver, t: &str| d.last(t).container_status.as_ref().unwrap().executor_pid.unwrap();
    let (long_pid, crash_pid, term_pid) = (pid(&d, "t-long"), pid(&d, "t-crash"), pid(&d, "t-term"));

    // Crash: kill -9. t-crash ends while no cluster is running.
    mini.kill9();
    assert!(alive(long_pid), "tasks outlive a crash of m3s");
    wait_dead(crash_pid).await;
    mini.restart();
    d.until("resubscription after the crash", |d| d.subscriptions.len() >= 2).await;
    assert_eq!(d.subscriptions, vec![false, true], "the framework resubscribed with its id");
    d.until("t-crash's real exit", |d| d.reached("t-crash", TaskState::Failed)).await;
    assert_eq!(d.last("t-crash").message.as_deref(), Some("Command exited with status 7"));
    let recon = Reconcile { tasks: vec![ReconcileTask { task_id: TaskId::new("t-long"), agent_id: None }] };
    let before = d.updates["t-long"].len();
    d.s.handle().call(CallKind::Reconcile(recon)).await.unwrap();
    // The answer is the update without a uuid: a STARTING update left unacknowledged
    // by the crash may be resent before it, as Mesos resends unacknowledged updates.
    let answer = |d: &Driver| d.updates["t-long"][before..].iter().find(|s| s.uuid.is_none()).cloned();
    d.until("t-long reconciled", |d| answer(d).is_some()).await;
    assert_eq!(answer(&d).unwrap().state, TaskState::Running);
    assert!(alive(long_pid));

    // Clean stop (SIGTERM), then start: t-term finishes while it is down.
    mini.stop();
    assert!(alive(long_pid), "tasks outlive a clean stop too");
    wait_dead(term_pid).await;
    mini.restart();
    d.until("t-term finished", |d| d.reached("t-term", TaskState::Finished)).await;
    assert!(d.subscriptions.len() >= 3);

    // The re-adopted task is still under control: KILL works.
    d.s.handle().call(CallKind::Kill(Kill { task_id: TaskId::new("t-long"), ..Default::default() })).await.unwrap();
    d.until("t-long killed", |d| d.reached("t-long", TaskState::Killed)).await;
    wait_dead(long_pid).await;
}
