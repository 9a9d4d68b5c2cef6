//! The scheduler client against `FakeMaster`, a protocol test double of a Mesos
//! master's scheduler endpoint (see tests/support/fake_master.rs). Waits are
//! bounded (20 s) so a broken client fails instead of hanging; nothing here
//! asserts on speed.

mod support;

use std::time::Duration;

use mesos::error::Error;
use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
use mesos::transport::Credentials;
use mesos::v1::scheduler::{CallKind, Event, Revive};
use mesos::v1::{AgentId, Bytes, FrameworkInfo, TaskId, TaskState, TaskStatus};
use serde_json::json;
use support::fake_master::{FakeMaster, Reply, record, subscribed};

fn framework() -> FrameworkInfo {
    FrameworkInfo { user: "root".into(), name: "m3s-test".into(), failover_timeout: 3600.0, ..Default::default() }
}

fn start(master: &str) -> Scheduler {
    start_with(SchedulerConfig::new(master, framework()))
}

fn start_with(mut config: SchedulerConfig) -> Scheduler {
    // Short backoff keeps the reconnect tests quick; the logic is the same.
    config.subscription.backoff.initial = Duration::from_millis(20);
    config.subscription.backoff.max = Duration::from_millis(200);
    Scheduler::start(config).unwrap()
}

async fn next(s: &mut Scheduler) -> Result<SchedulerEvent, Error> {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("no event within 20 s")
        .expect("the scheduler stopped")
}

async fn next_ok(s: &mut Scheduler) -> SchedulerEvent {
    next(s).await.unwrap()
}

#[tokio::test]
async fn decodes_records_split_across_chunks() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    m.wait_stream().await;

    let mut bytes = record(&subscribed("fw-1", 15.0));
    bytes.extend(record(&json!({"type": "HEARTBEAT"})));
    bytes.extend(record(&json!({"type": "OFFERS", "offers": {"offers": [
        {"id": {"value": "o-1"}, "framework_id": {"value": "fw-1"}, "agent_id": {"value": "a-1"},
         "hostname": "h", "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}}]}
    ]}})));
    // Cut the stream into chunks that split the length header, the newline and the payloads.
    for piece in bytes.chunks(7) {
        m.push(piece.to_vec());
        tokio::task::yield_now().await;
    }

    let SchedulerEvent::Subscribed { framework_id, resubscribed, master, .. } = next_ok(&mut s).await else {
        panic!("expected Subscribed first")
    };
    assert_eq!(framework_id.value, "fw-1");
    assert!(!resubscribed);
    assert_eq!(master, format!("http://{}", m.authority()));
    assert_eq!(next_ok(&mut s).await, SchedulerEvent::Event(Event::Heartbeat));
    let SchedulerEvent::Event(Event::Offers(offers)) = next_ok(&mut s).await else { panic!("expected offers") };
    assert_eq!(offers.offers[0].id.value, "o-1");
    assert_eq!(offers.offers[0].resources[0].scalar.unwrap().value, 2.0);

    let sub = &m.subscribes()[0];
    assert_eq!(sub.body["type"], "SUBSCRIBE");
    assert_eq!(sub.body["subscribe"]["framework_info"]["name"], "m3s-test");
    assert!(sub.body.get("framework_id").is_none(), "a first SUBSCRIBE has no framework id");
}

#[tokio::test]
async fn follows_a_307_to_the_leader() {
    let leader = FakeMaster::start().await;
    let follower = FakeMaster::start().await;
    follower.script(Reply::Redirect(format!("//{}/master/api/v1/scheduler", leader.authority())));
    leader.script(Reply::Stream("s-1"));
    let mut s = start(&follower.authority());
    leader.wait_stream().await;
    leader.push_event(&subscribed("fw-1", 15.0));
    let SchedulerEvent::Subscribed { master, .. } = next_ok(&mut s).await else { panic!() };
    assert_eq!(master, format!("http://{}", leader.authority()));
    assert_eq!(follower.subscribes().len(), 1);

    // Calls go to the leader, with its stream id.
    s.handle().call(CallKind::Revive(Revive::default())).await.unwrap();
    let calls = leader.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].stream_id.as_deref(), Some("s-1"));
    assert_eq!(calls[0].body, json!({"type": "REVIVE", "framework_id": {"value": "fw-1"}}));
}

#[tokio::test]
async fn retries_503_then_subscribes() {
    let m = FakeMaster::start().await;
    m.script(Reply::Status(503, "No leader elected"));
    m.script(Reply::Status(503, "Master is recovering"));
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    assert_eq!(m.wait_stream().await, 3);
    m.push_event(&subscribed("fw-1", 15.0));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { .. }));
}

#[tokio::test]
async fn rotates_to_the_next_master_when_one_is_down() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&format!("{dead},{}", m.authority()));
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { .. }));
}

#[tokio::test]
async fn a_401_is_a_typed_error_with_the_masters_status_and_message() {
    let m = FakeMaster::start().await;
    m.script(Reply::Status(401, "Unauthorized"));
    let mut config = SchedulerConfig::new(m.authority(), framework());
    config.transport.credentials = Some(Credentials::new("principal", "wrong"));
    let mut s = start_with(config);
    let err = next(&mut s).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("Unauthorized"), "{err}");
    let auth = m.subscribes()[0].authorization.clone().unwrap();
    assert_eq!(auth, "Basic cHJpbmNpcGFsOndyb25n", "Basic base64(principal:wrong)");
    assert!(!format!("{:?}", Credentials::new("p", "wrong")).contains("wrong"), "secrets are not printed");
    assert!(tokio::time::timeout(Duration::from_secs(5), s.next()).await.unwrap().is_none(), "fatal: driver stops");
}

#[tokio::test]
async fn calls_carry_the_stream_id_and_refusals_are_typed() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    let call = CallKind::Revive(Revive { roles: vec!["r".into()] });
    assert!(matches!(s.handle().call(call.clone()).await, Err(Error::NotSubscribed)));

    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    s.handle().call(call.clone()).await.unwrap();
    assert_eq!(m.calls()[0].stream_id.as_deref(), Some("s-1"));

    m.rotate_stream_id("s-other");
    let err = s.handle().call(call).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("didn't match the stream ID"), "{err}");
}

#[tokio::test]
async fn resubscribes_with_the_framework_id_after_missed_heartbeats() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    m.script(Reply::Stream("s-2"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    // 50 ms heartbeats: the watchdog gives up after 5 silent intervals.
    m.push_event(&subscribed("fw-1", 0.05));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { resubscribed: false, .. }));

    let SchedulerEvent::Disconnected { reason } = next_ok(&mut s).await else { panic!("expected Disconnected") };
    assert!(reason.contains("5 heartbeat intervals"), "{reason}");
    while m.subscribes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    m.push_event(&subscribed("fw-1", 15.0));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { resubscribed: true, .. }));
    let resub = &m.subscribes()[1].body;
    assert_eq!(resub["framework_id"]["value"], "fw-1");
    assert_eq!(resub["subscribe"]["framework_info"]["id"]["value"], "fw-1");
    assert_eq!(resub["subscribe"]["framework_info"]["failover_timeout"], 3600.0);

    s.handle().call(CallKind::Revive(Revive::default())).await.unwrap();
    assert_eq!(m.calls().last().unwrap().stream_id.as_deref(), Some("s-2"), "the new stream id");
}

/// Pushes `bad` on a fresh subscription and checks the client drops the stream
/// with a reason containing `expect`, then subscribes again.
async fn drops_stream_on(bad: &[u8], expect: &str) {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    m.script(Reply::Stream("s-2"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    m.push(bad.to_vec());
    let SchedulerEvent::Disconnected { reason } = next_ok(&mut s).await else { panic!("expected Disconnected") };
    assert!(reason.contains(expect), "{reason:?} should contain {expect:?}");
    while m.subscribes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    m.push_event(&subscribed("fw-1", 15.0));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { resubscribed: true, .. }));
}

#[tokio::test]
async fn bad_input_drops_the_stream_and_reconnects() {
    drops_stream_on(b"99999999999\n", "exceeds the maximum").await;
    drops_stream_on(b"12a\n{}", "is not a decimal number").await;
    drops_stream_on(b"5\n{\"ty}", "invalid JSON").await;
    drops_stream_on(b"19\n{\"type\":\"OFFERS\"}  ", "missing field `offers`").await;
    drops_stream_on(b"0\n", "zero-length").await;
}

#[tokio::test]
async fn a_stream_closed_mid_record_is_reported_and_reconnects() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    m.script(Reply::Stream("s-2"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    m.push(b"40\n{\"type\":\"HEART".to_vec());
    m.close_stream();
    let SchedulerEvent::Disconnected { reason } = next_ok(&mut s).await else { panic!() };
    assert!(reason.contains("ended inside a record"), "{reason}");
    m.wait_stream().await;
    while m.subscribes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    m.push_event(&subscribed("fw-1", 15.0));
    assert!(matches!(next_ok(&mut s).await, SchedulerEvent::Subscribed { resubscribed: true, .. }));
}

#[tokio::test]
async fn unknown_event_types_pass_through_without_breaking_the_stream() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    m.push_event(&json!({"type": "FROM_THE_FUTURE", "from_the_future": {"x": 1}}));
    m.push_event(&json!({"type": "HEARTBEAT"}));
    assert_eq!(next_ok(&mut s).await, SchedulerEvent::Event(Event::Unknown { type_name: "FROM_THE_FUTURE".into() }));
    assert_eq!(next_ok(&mut s).await, SchedulerEvent::Event(Event::Heartbeat));
}

#[tokio::test]
async fn error_event_ends_the_subscription() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    m.push_event(&json!({"type": "ERROR", "error": {"message": "Framework has been removed"}}));
    let err = next(&mut s).await.unwrap_err();
    assert!(matches!(&err, Error::FrameworkRemoved(m) if m == "Framework has been removed"), "{err}");
}

#[tokio::test]
async fn acknowledges_updates_with_their_uuid_and_agent() {
    let m = FakeMaster::start().await;
    m.script(Reply::Stream("s-1"));
    let mut s = start(&m.authority());
    m.wait_stream().await;
    m.push_event(&subscribed("fw-1", 15.0));
    next_ok(&mut s).await;
    let uuid = [7u8; 16];
    let status = TaskStatus {
        task_id: TaskId::new("t-1"),
        state: TaskState::Running,
        agent_id: Some(AgentId::new("a-1")),
        uuid: Some(Bytes(uuid.to_vec())),
        ..Default::default()
    };
    m.push_event(&json!({"type": "UPDATE", "update": {"status": serde_json::to_value(&status).unwrap()}}));
    let SchedulerEvent::Event(Event::Update(update)) = next_ok(&mut s).await else { panic!() };
    assert_eq!(update.status, status);
    s.handle().acknowledge(&update.status).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while m.calls().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no ACKNOWLEDGE within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ack = &m.calls()[0];
    assert_eq!(ack.stream_id.as_deref(), Some("s-1"));
    assert_eq!(
        ack.body,
        json!({"type": "ACKNOWLEDGE", "framework_id": {"value": "fw-1"},
               "acknowledge": {"agent_id": {"value": "a-1"}, "task_id": {"value": "t-1"}, "uuid": "BwcHBwcHBwcHBwcHBwcHBw=="}})
    );
    // Reconciliation answers carry no uuid: nothing to acknowledge.
    let mut no_uuid = status.clone();
    no_uuid.uuid = None;
    assert!(s.handle().acknowledge(&no_uuid).is_err());
}
