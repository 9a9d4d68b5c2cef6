//! The scheduler client with `--master zk://...` follows a leader change
//! through a REAL ZooKeeper (see tests/support/zookeeper.rs): two
//! `FakeMaster`s register in ZooKeeper as Mesos masters do; the leader then
//! fails as a dead leader does (its ZooKeeper session ends, so its znode goes
//! and the other master leads, and its stream closes), and the client must
//! find the new leader through ZooKeeper, not by being redirected.
//!
//! Every wait is bounded (20 s): a bound against hangs, not a performance
//! assertion.

mod support;

use std::time::Duration;

use mesos::error::Error;
use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
use mesos::v1::FrameworkInfo;
use mesos::v1::scheduler::{CallKind, Revive};
use mesos::zk::ZkClient;
use mesos::zk::wire::CreateMode;
use support::fake_master::{FakeMaster, Reply, subscribed};
use support::zookeeper::{SESSION, Session, ZkServer, master_info, unique_name};

/// Upper bound on any single wait.
const BOUND: Duration = Duration::from_secs(20);

fn framework() -> FrameworkInfo {
    FrameworkInfo { user: "root".into(), name: "m3s-test".into(), failover_timeout: 3600.0, ..Default::default() }
}

async fn next(s: &mut Scheduler) -> Result<SchedulerEvent, Error> {
    tokio::time::timeout(BOUND, s.next()).await.expect("no event within 20 s").expect("the scheduler stopped")
}

#[tokio::test]
async fn follows_a_leader_change_through_zookeeper() {
    let mut server = ZkServer::start();
    server.wait_ready().await;
    let admin = ZkClient::connect(&server.addr, SESSION).await.expect("admin session");
    let group = format!("/{}", unique_name("m3s-scheduler-zk"));
    admin.create(&group, b"", CreateMode::Persistent).await.expect("create the group");

    // A registers first (lowest sequence: the leader), B second.
    let a = FakeMaster::start().await;
    let b = FakeMaster::start().await;
    let a_zk = Session::connect(&server.addr).await;
    a_zk.register(&group, &master_info(a.addr.port())).await;
    let b_zk = Session::connect(&server.addr).await;
    b_zk.register(&group, &master_info(b.addr.port())).await;
    a.script(Reply::Stream("s-1"));
    b.script(Reply::Stream("s-2"));

    let mut config = SchedulerConfig::new(format!("zk://{}{group}", server.addr), framework());
    config.subscription.backoff.initial = Duration::from_millis(20);
    config.subscription.backoff.max = Duration::from_millis(200);
    let mut s = Scheduler::start(config).unwrap();

    a.wait_stream().await;
    a.push_event(&subscribed("fw-1", 15.0));
    let SchedulerEvent::Subscribed { framework_id, master, resubscribed, .. } = next(&mut s).await.unwrap() else {
        panic!("expected Subscribed first")
    };
    assert_eq!(master, format!("http://{}", a.authority()), "ZooKeeper names A");
    assert_eq!(framework_id.value, "fw-1");
    assert!(!resubscribed);
    assert!(b.subscribes().is_empty(), "B is not the leader");

    // A dies as a leader does: its ZooKeeper session ends (its znode goes,
    // so B leads) and its stream closes. Should the client come back to A,
    // A says it is not the leader; it never redirects.
    a.script(Reply::Status(503, "Not the leader"));
    a_zk.close().await;
    a.close_stream();

    let SchedulerEvent::Disconnected { reason } = next(&mut s).await.unwrap() else {
        panic!("expected Disconnected after A's stream closed")
    };
    assert!(reason.contains(&a.authority()), "{reason}");

    b.wait_stream().await;
    b.push_event(&subscribed("fw-1", 15.0));
    let SchedulerEvent::Subscribed { framework_id, master, resubscribed, .. } = next(&mut s).await.unwrap() else {
        panic!("expected Subscribed to B")
    };
    assert_eq!(master, format!("http://{}", b.authority()), "ZooKeeper names B");
    assert_eq!(framework_id.value, "fw-1");
    assert!(resubscribed);

    // A failover of the same framework.
    let resub = &b.subscribes()[0].body;
    assert_eq!(resub["framework_id"]["value"], "fw-1");
    assert_eq!(resub["subscribe"]["framework_info"]["id"]["value"], "fw-1");
    assert!(a.subscribes().len() <= 2, "A was asked again {} times after it failed", a.subscribes().len() - 1);

    // Calls now go to B, with B's stream id.
    s.handle().call(CallKind::Revive(Revive::default())).await.unwrap();
    assert!(a.calls().is_empty());
    let calls = b.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].stream_id.as_deref(), Some("s-2"));

    drop(s);
    b_zk.close().await;
    let _ = admin.delete(&group, None).await;
    let _ = admin.close().await;
}
