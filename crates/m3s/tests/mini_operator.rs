//! The operator API, legacy endpoints, agent endpoints and framework
//! authentication of a real `m3s mini`, read with the foundation's
//! operator and agent clients.

mod support;

use mesos::legacy::{MasterState, MonitorEntry, Slaves, Tasks};
use mesos::operator::{AgentClient, OperatorClient};
use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
use mesos::transport::Credentials;
use mesos::v1::operator::Event as OperatorEvent;
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{CommandInfo, FrameworkInfo, Operation, Resource, TaskId, TaskInfo, TaskState};
use support::{BOUND, Mini, tempdir};

fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: name.into(),
        ..Default::default()
    }
}

/// Subscribes, launches `sleep 300` as `task_id`, and waits for TASK_RUNNING.
async fn run_sleeper(s: &mut Scheduler, task_id: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut launched = false;
    loop {
        let event = tokio::time::timeout_at(deadline, s.next()).await.expect("events in time").unwrap().unwrap();
        match event {
            SchedulerEvent::Event(Event::Offers(o)) if !launched => {
                let offer = &o.offers[0];
                let task = TaskInfo {
                    name: task_id.into(),
                    task_id: TaskId::new(task_id),
                    agent_id: offer.agent_id.clone(),
                    resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
                    command: Some(CommandInfo::shell("sleep 300")),
                    ..Default::default()
                };
                let accept = Accept {
                    offer_ids: vec![offer.id.clone()],
                    operations: vec![Operation::launch(vec![task])],
                    filters: None,
                };
                s.handle().call(CallKind::Accept(accept)).await.unwrap();
                launched = true;
            }
            SchedulerEvent::Event(Event::Update(u)) => {
                s.handle().acknowledge(&u.status).unwrap();
                if u.status.state == TaskState::Running {
                    return;
                }
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_legacy_and_agent_endpoints_describe_the_cluster() {
    support::init_tls();
    let dir = tempdir("mini-operator");
    let mini = Mini::start(&dir);
    let operator = OperatorClient::new(&mini.authority(), false, mini.transport()).unwrap();
    let mut events = operator.subscribe().await.unwrap();
    let Some(Ok(OperatorEvent::Subscribed(first))) = events.next().await else { panic!("SUBSCRIBED first") };
    assert!(first.get_state.is_some());

    let mut s = Scheduler::start(mini.scheduler_config(framework("operator-e2e"))).unwrap();
    run_sleeper(&mut s, "watched").await;

    // The operator stream saw the framework and the task arrive and run.
    let (mut framework_added, mut task_added, mut running) = (false, false, false);
    while !(framework_added && task_added && running) {
        let event =
            tokio::time::timeout(BOUND, events.next()).await.expect("operator events in time").unwrap().unwrap();
        match event {
            OperatorEvent::FrameworkAdded(f) => framework_added |= f.framework.framework_info.name == "operator-e2e",
            OperatorEvent::TaskAdded(t) => task_added |= t.task.task_id.value == "watched",
            OperatorEvent::TaskUpdated(u) => {
                running |= u.status.task_id.value == "watched" && u.state == TaskState::Running
            }
            _ => {}
        }
    }

    // v1 operator calls.
    assert!(operator.get_health().await.unwrap().healthy);
    assert_eq!(operator.get_version().await.unwrap().version_info.version, "1.11.0");
    let agents = operator.get_agents().await.unwrap();
    assert_eq!(agents.agents.len(), 1);
    let tasks = operator.get_tasks().await.unwrap();
    assert!(tasks.tasks.iter().any(|t| t.task_id.value == "watched" && t.state == TaskState::Running));
    let frameworks = operator.get_frameworks().await.unwrap();
    assert!(frameworks.frameworks.iter().any(|f| f.framework_info.name == "operator-e2e" && f.connected));
    let metrics = operator.get_metrics(None).await.unwrap();
    assert!(metrics.metrics.iter().any(|m| m.name == "master/tasks_running" && m.value == Some(1.0)), "{metrics:?}");

    // Legacy endpoints.
    let state: MasterState = operator.get_json("/master/state").await.unwrap();
    assert_eq!(state.slaves.len(), 1);
    assert_eq!(state.slaves[0].pid, format!("slave(1)@127.0.0.1:{}", mini.port));
    let slaves: Slaves = operator.get_json("/slaves").await.unwrap();
    assert!(slaves.slaves[0].active);
    let listed: Tasks = operator.get_json("/tasks?order=asc&limit=-1").await.unwrap();
    assert!(listed.tasks.iter().any(|t| t.id == "watched"));
    let version: serde_json::Value = operator.get_json("/version").await.unwrap();
    assert_eq!(version["version"], "1.11.0");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/master/redirect", mini.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 307);
    assert_eq!(redirect.headers()["location"], format!("//localhost:{}", mini.port));

    // The agent: usage of the running task, and its sandbox.
    let agent = AgentClient::new(mini.url(), mini.transport()).unwrap();
    let stats: Vec<MonitorEntry> = agent.monitor_statistics().await.unwrap();
    let watched = stats.iter().find(|e| e.executor_id == "watched").expect("the running task in /monitor/statistics");
    // The cgroup's usage (the task's RSS can read 0 for a process that shares all its pages).
    assert!(watched.statistics.mem_total_bytes.unwrap_or(0) > 0, "{watched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frameworks_must_authenticate_when_credentials_are_configured() {
    support::init_tls();
    let dir = tempdir("mini-auth");
    let credentials = dir.join("credentials.json");
    std::fs::write(&credentials, r#"{"credentials":[{"principal":"fw","secret":"s3cret"}]}"#).unwrap();
    let mini = Mini::start_with(&dir, &["--credentials", credentials.to_str().unwrap()]);

    let anonymous = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", mini.url()))
        .header("Content-Type", "application/json")
        .body(r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Basic realm=\"mesos-master-scheduler\"");

    let mut wrong = SchedulerConfig::new(mini.authority(), framework("wrong"));
    wrong.transport.credentials = Some(Credentials::new("fw", "guess"));
    let mut s = Scheduler::start(wrong).unwrap();
    let err = tokio::time::timeout(BOUND, s.next()).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.status(), Some(401));

    let mut right = SchedulerConfig::new(mini.authority(), framework("right"));
    right.transport.credentials = Some(Credentials::new("fw", "s3cret"));
    let mut s = Scheduler::start(right).unwrap();
    let event = tokio::time::timeout(BOUND, s.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(event, SchedulerEvent::Subscribed { .. }), "{event:?}");
    // The secret never shows in the log: once the disconnection that follows
    // is logged, everything about the subscription is in the log too.
    drop(s);
    mini.wait_log("framework disconnected").await;
    assert!(!std::fs::read_to_string(dir.join("m3s-mini.log")).unwrap().contains("s3cret"));
}
