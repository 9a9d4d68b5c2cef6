//! Fetcher and cgroup limits through the whole cluster: a scheduler (the
//! foundation's Rust client) launches tasks on an in-process `Cluster`
//! served over HTTP, and gets Mesos's statuses: TASK_FINISHED for a task
//! that runs what the fetcher put in its sandbox, TASK_FAILED with
//! REASON_CONTAINER_LAUNCH_FAILED for a failed fetch, and TASK_FAILED with
//! REASON_CONTAINER_LIMITATION_MEMORY for a task over its memory (where
//! cgroups are writable).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::Duration;

use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{
    CommandInfo, CommandUri, FrameworkInfo, Offer, Operation, Resource, Scalar, TaskId, TaskInfo, TaskState,
    TaskStatus, TaskStatusReason,
};
use mini::cluster::{Cluster, ClusterConfig};
use mini::resources::Resources;

const BOUND: Duration = Duration::from_secs(60);

struct Driver {
    scheduler: Scheduler,
    offers: Vec<Offer>,
    updates: HashMap<String, Vec<TaskStatus>>,
}

impl Driver {
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Driver) -> bool) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !done(self) {
            let event = tokio::time::timeout_at(deadline, self.scheduler.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", self.updates))
                .expect("scheduler stopped")
                .expect("scheduler error");
            match event {
                SchedulerEvent::Event(Event::Offers(offers)) => self.offers.extend(offers.offers),
                SchedulerEvent::Event(Event::Update(update)) => {
                    if update.status.uuid.is_some() {
                        self.scheduler.handle().acknowledge(&update.status).unwrap();
                    }
                    self.updates.entry(update.status.task_id.value.clone()).or_default().push(update.status);
                }
                _ => {}
            }
        }
    }

    fn terminal(&self, task: &str) -> Option<&TaskStatus> {
        self.updates.get(task)?.iter().find(|s| s.state.is_terminal())
    }
}

fn task(offer: &Offer, id: &str, command: CommandInfo, mem: f64) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", mem)],
        command: Some(command),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_artifacts_failed_fetches_and_memory_limits_through_the_scheduler_api() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ClusterConfig {
        work_dir: dir.path().join("work"),
        hostname: "localhost".into(),
        ip: std::net::Ipv4Addr::LOCALHOST,
        port,
        resources: Resources::parse("cpus:4;mem:4096;disk:1000;ports:[31000-31010]").unwrap(),
        attributes: Vec::new(),
        heartbeat_interval: Duration::from_secs(15),
        supervisor_exe: env!("CARGO_BIN_EXE_mini-supervise").into(),
        allowed_users: mini::master::AllowedUsers::Any,
        containers: None,
        docker: None,
    };
    let cluster = Cluster::start(config).await.unwrap();
    let cgroups = cluster.runtime().cgroups_status().is_available();
    let app = mini::http::app(cluster.clone(), Default::default());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });

    let script = dir.path().join("hello.sh");
    fs::write(&script, "#!/bin/sh\necho fetched and ran\n").unwrap();
    let framework = FrameworkInfo { user: "root".into(), name: "runtime-cluster".into(), ..Default::default() };
    let scheduler = Scheduler::start(SchedulerConfig::new(format!("127.0.0.1:{port}"), framework)).unwrap();
    let mut d = Driver { scheduler, offers: Vec::new(), updates: HashMap::new() };
    d.until("an offer", |d| !d.offers.is_empty()).await;
    let offer = d.offers.remove(0);

    let fetching = CommandInfo {
        uris: vec![CommandUri {
            value: format!("file://{}", script.display()),
            executable: Some(true),
            output_file: Some("bin/hello".into()),
            ..Default::default()
        }],
        ..CommandInfo::shell("./bin/hello")
    };
    let failing_fetch = CommandInfo {
        uris: vec![CommandUri { value: "http://127.0.0.1:1/nothing.tgz".into(), ..Default::default() }],
        ..CommandInfo::shell("true")
    };
    let mut tasks = vec![
        task(&offer, "t-fetch", fetching, 32.0),
        task(&offer, "t-fetch-fails", failing_fetch, 32.0),
        task(&offer, "t-oom", CommandInfo::shell("head -c 200m /dev/zero | tail"), 32.0),
        task(&offer, "t-limits", CommandInfo::shell("sleep 30"), 32.0),
    ];
    // Mesos's resource limits above the request. ("Infinity" cannot be
    // sent here: the client's JSON turns an infinite scalar into null.)
    tasks[3].limits =
        BTreeMap::from([("mem".to_owned(), Scalar { value: 256.0 }), ("cpus".to_owned(), Scalar { value: 1.5 })]);
    let accept =
        Accept { offer_ids: vec![offer.id.clone()], operations: vec![Operation::launch(tasks)], filters: None };
    d.scheduler.handle().call(CallKind::Accept(accept)).await.unwrap();
    d.until("every task to end", |d| ["t-fetch", "t-fetch-fails", "t-oom"].iter().all(|t| d.terminal(t).is_some()))
        .await;

    let fetched = d.terminal("t-fetch").unwrap();
    assert_eq!(fetched.state, TaskState::Finished, "{fetched:?}");

    let failed = d.terminal("t-fetch-fails").unwrap();
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.reason, Some(TaskStatusReason::ContainerLaunchFailed));
    let message = failed.message.as_deref().unwrap();
    assert!(message.starts_with("Failed to fetch 'http://127.0.0.1:1/nothing.tgz': "), "{message}");

    let oom = d.terminal("t-oom").unwrap();
    if cgroups {
        assert_eq!(oom.state, TaskState::Failed);
        assert_eq!(oom.reason, Some(TaskStatusReason::ContainerLimitationMemory), "{oom:?}");
        let message = oom.message.as_deref().unwrap();
        assert!(message.starts_with("Memory limit exceeded: Requested: 32MB"), "{message}");
    } else {
        eprintln!("cgroups unavailable here, the memory limitation was not checked: {oom:?}");
    }
    // The limits reach the runtime (and its usage reports).
    d.until("t-limits running", |d| {
        d.updates.get("t-limits").is_some_and(|u| u.iter().any(|s| s.state == TaskState::Running))
    })
    .await;
    let container = cluster
        .read(|m| m.frameworks().find_map(|f| f.tasks.get(&TaskId::new("t-limits"))?.container_id.clone()))
        .expect("the container of t-limits");
    let usage = cluster.runtime().usage(&container).expect("usage of t-limits");
    assert_eq!(usage.mem_limit_bytes, Some(256 << 20));
    assert_eq!(usage.mem_soft_limit_bytes, Some(32 << 20));
    assert_eq!(usage.cpus_limit, Some(1.5));
    assert_eq!(usage.cpus_soft_limit, Some(0.1));
    cluster.runtime().kill(&container, Duration::ZERO).unwrap();
    d.until("t-limits killed", |d| d.terminal("t-limits").is_some()).await;
    server.abort();
}
