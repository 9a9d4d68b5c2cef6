//! The foundation's Rust scheduler client against a real `m3s mini` process:
//! offers, launches (good, failing, invalid, image), acknowledgements, sandbox
//! output, kill, reconciliation, failover with the same framework id, teardown.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event, Kill, Reconcile, ReconcileTask};
use mesos::v1::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, FrameworkCapability, FrameworkCapabilityType, FrameworkId,
    FrameworkInfo, Offer, Operation, Resource, TaskId, TaskInfo, TaskState, TaskStatus, TaskStatusReason,
};
use support::{BOUND, Mini, alive, tempdir};

fn framework(id: Option<FrameworkId>) -> FrameworkInfo {
    FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: "rust-e2e".into(),
        id,
        failover_timeout: 3600.0,
        roles: vec!["test".into()],
        capabilities: FrameworkCapability::list(&[
            FrameworkCapabilityType::MultiRole,
            FrameworkCapabilityType::TaskKillingState,
            FrameworkCapabilityType::PartitionAware,
        ]),
        ..Default::default()
    }
}

fn start(mini: &Mini, id: Option<FrameworkId>) -> Scheduler {
    Scheduler::start(mini.scheduler_config(framework(id))).unwrap()
}

/// Collects events (acknowledging updates) until `done` says stop.
struct Driver {
    s: Scheduler,
    offers: Vec<Offer>,
    /// Every update per task, in order.
    updates: HashMap<String, Vec<TaskStatus>>,
    framework_id: Option<FrameworkId>,
}

impl Driver {
    fn new(s: Scheduler) -> Self {
        Driver { s, offers: Vec::new(), updates: HashMap::new(), framework_id: None }
    }

    async fn until(&mut self, what: &str, mut done: impl FnMut(&Driver) -> bool) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !done(self) {
            let event = tokio::time::timeout_at(deadline, self.s.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; updates so far: {:?}", self.states()))
                .expect("scheduler stopped")
                .expect("scheduler error");
            match event {
                SchedulerEvent::Subscribed { framework_id, .. } => self.framework_id = Some(framework_id),
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

    fn states(&self) -> HashMap<String, Vec<String>> {
        self.updates.iter().map(|(k, v)| (k.clone(), v.iter().map(|s| s.state.to_string()).collect())).collect()
    }

    fn last(&self, task: &str) -> Option<&TaskStatus> {
        self.updates.get(task).and_then(|v| v.last())
    }

    fn reached(&self, task: &str, state: TaskState) -> bool {
        self.updates.get(task).is_some_and(|v| v.iter().any(|s| s.state == state))
    }
}

fn task(offer: &Offer, id: &str, cmd: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell(cmd)),
        ..Default::default()
    }
}

async fn launch(d: &mut Driver, tasks: impl FnOnce(&Offer) -> Vec<TaskInfo>) {
    d.until("an offer", |d| !d.offers.is_empty()).await;
    let offer = d.offers.remove(0);
    let accept =
        Accept { offer_ids: vec![offer.id.clone()], operations: vec![Operation::launch(tasks(&offer))], filters: None };
    d.s.handle().call(CallKind::Accept(accept)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_client_runs_tasks_on_m3s_mini() {
    support::init_tls();
    let dir = tempdir("mini-scheduler");
    let mini = Mini::start(&dir);
    let mut d = Driver::new(start(&mini, None));
    launch(&mut d, |o| {
        let mut bad = task(o, "t-bad", "true");
        bad.command = None;
        let mut image = task(o, "t-image", "true");
        image.container = Some(ContainerInfo {
            kind: ContainerType::Docker,
            docker: Some(DockerInfo { image: "127.0.0.1:1/nothing:3".into(), ..Default::default() }),
            ..Default::default()
        });
        let mut argv = task(o, "t-argv", "");
        argv.command = Some(CommandInfo {
            shell: false,
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "argv".into(), "form".into()],
            ..Default::default()
        });
        vec![
            task(o, "t-ok", "echo hello from $MESOS_TASK_ID"),
            task(o, "t-fail", "exit 3"),
            task(o, "t-long", "sleep 300"),
            bad,
            image,
            argv,
        ]
    })
    .await;
    d.until("every task to settle", |d| {
        d.reached("t-ok", TaskState::Finished)
            && d.reached("t-fail", TaskState::Failed)
            && d.reached("t-long", TaskState::Running)
            && d.reached("t-bad", TaskState::Error)
            && d.reached("t-image", TaskState::Failed)
            && d.reached("t-argv", TaskState::Finished)
    })
    .await;
    let ok: Vec<TaskState> = d.updates["t-ok"].iter().map(|s| s.state.clone()).collect();
    assert_eq!(ok, vec![TaskState::Starting, TaskState::Running, TaskState::Finished]);
    assert_eq!(d.last("t-fail").unwrap().message.as_deref(), Some("Command exited with status 3"));
    assert_eq!(d.last("t-bad").unwrap().reason, Some(TaskStatusReason::TaskInvalid));
    let image = d.last("t-image").unwrap();
    assert_eq!(image.reason, Some(TaskStatusReason::ContainerLaunchFailed));
    let message = image.message.as_deref().unwrap();
    assert!(message.contains("127.0.0.1:1/nothing:3") && message.contains("cannot be reached"), "{image:?}");

    // The task's output is in its sandbox, readable through /files/read.
    let sandbox = sandbox_of(&mini, "t-ok").await;
    let http = mini.http();
    let get = |url: String| http.get(url).send();
    let read: serde_json::Value =
        get(format!("{}/files/read?path={sandbox}/stdout&offset=0", mini.url())).await.unwrap().json().await.unwrap();
    assert_eq!(read["data"], "hello from t-ok\n");
    let escape =
        get(format!("{}/files/read?path={sandbox}/{}etc/passwd&offset=0", mini.url(), "../".repeat(30))).await.unwrap();
    assert_eq!(escape.status(), 403, "no path escapes from the sandbox");
    let anonymous = reqwest::get(format!("{}/files/read?path={sandbox}/stdout&offset=0", mini.url())).await.unwrap();
    assert_eq!(anonymous.status(), 401, "sandboxes are read with the credentials only");

    // Kill: KILLING (TASK_KILLING_STATE), then KILLED.
    d.s.handle().call(CallKind::Kill(Kill { task_id: TaskId::new("t-long"), ..Default::default() })).await.unwrap();
    d.until("t-long killed", |d| d.reached("t-long", TaskState::Killed)).await;
    assert!(d.reached("t-long", TaskState::Killing));

    // Explicit reconciliation of a finished task and an unknown one.
    let recon = Reconcile { tasks: vec![ReconcileTask { task_id: TaskId::new("t-unknown"), agent_id: None }] };
    d.s.handle().call(CallKind::Reconcile(recon)).await.unwrap();
    d.until("reconciliation answer", |d| d.updates.contains_key("t-unknown")).await;
    assert_eq!(d.last("t-unknown").unwrap().state, TaskState::TaskUnknown);
    assert_eq!(d.last("t-unknown").unwrap().reason, Some(TaskStatusReason::Reconciliation));

    // Failover: a task keeps running while the framework reconnects with its id.
    launch(&mut d, |o| vec![task(o, "t-survivor", "sleep 300")]).await;
    d.until("t-survivor running", |d| d.reached("t-survivor", TaskState::Running)).await;
    let fid = d.framework_id.clone().unwrap();
    let pid = d.last("t-survivor").unwrap().container_status.as_ref().unwrap().executor_pid.unwrap();
    drop(d);
    mini.wait_log("framework disconnected").await;
    assert!(alive(pid), "the task outlives its framework's connection");
    let mut d = Driver::new(start(&mini, Some(fid.clone())));
    d.until("resubscribed", |d| d.framework_id.is_some()).await;
    assert_eq!(d.framework_id.as_ref(), Some(&fid));
    let recon = Reconcile { tasks: vec![ReconcileTask { task_id: TaskId::new("t-survivor"), agent_id: None }] };
    d.s.handle().call(CallKind::Reconcile(recon)).await.unwrap();
    d.until("t-survivor reconciled", |d| d.reached("t-survivor", TaskState::Running)).await;

    // Teardown kills the framework's tasks.
    d.s.handle().call(CallKind::Teardown).await.unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while alive(pid) {
        assert!(std::time::Instant::now() < deadline, "teardown did not stop the task's supervisor");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sandbox directory of a task, from the agent's state.
async fn sandbox_of(mini: &Mini, task: &str) -> String {
    let state: serde_json::Value =
        reqwest::get(format!("{}/slave(1)/state", mini.url())).await.unwrap().json().await.unwrap();
    for key in ["frameworks", "completed_frameworks"] {
        for f in state[key].as_array().into_iter().flatten() {
            for ekey in ["executors", "completed_executors"] {
                for e in f[ekey].as_array().into_iter().flatten() {
                    if e["id"] == task {
                        return e["directory"].as_str().unwrap().to_owned();
                    }
                }
            }
        }
    }
    panic!("no executor for {task} in /slave(1)/state: {state}");
}
