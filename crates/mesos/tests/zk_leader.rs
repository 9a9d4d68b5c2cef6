//! Leader detection against a real ZooKeeper server.
//!
//! The test starts its own standalone ZooKeeper (Debian's `zookeeper`
//! package) on a free loopback port, or uses the server named by
//! `M3S_TEST_ZK=host:port` (see tests/support/zookeeper.rs). Fake Mesos
//! masters are separate ZooKeeper sessions that create `json.info_`
//! ephemeral sequential nodes, so closing a session removes its node exactly
//! as a master crash would.
//!
//! The scenarios share one server (a JVM start is the slow part) and run in
//! sequence, each under its own group path. Every wait is bounded by
//! [`BOUND`]: a bound against hangs, not a performance assertion.

mod support;

use std::time::Duration;

use mesos::zk::wire::CreateMode;
use mesos::zk::{LeaderDetector, ZkClient, ZkError, ZkUrl};
use support::zookeeper::{SESSION, Session, ZkServer, free_port, master_info, unique_name};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout};

/// Upper bound on any single wait for ZooKeeper.
const BOUND: Duration = Duration::from_secs(20);
/// How long to watch a waiting detector to check it really waits.
const SETTLE: Duration = Duration::from_millis(500);

#[tokio::test]
async fn zk_leader_detection_against_real_zookeeper() {
    let mut server = ZkServer::start();
    server.wait_ready().await;
    let zk = Zk::new(&server.addr).await;

    no_leader_then_one_registers(&zk).await;
    missing_group_path_then_master(&zk).await;
    failover_to_next_master(&zk).await;
    garbage_master_info_is_an_error(&zk).await;
    credentials_and_unreachable_first_host(&zk).await;
    reconnects_after_connection_loss(&zk).await;

    zk.cleanup().await;
}

/// `detect` on an empty group waits (on a watch) until a master registers.
async fn no_leader_then_one_registers(zk: &Zk) {
    let group = zk.group("empty").await;
    let mut det = zk.detector(&group);
    let waiting = tokio::spawn(async move { det.detect().await });
    sleep(SETTLE).await;
    assert!(!waiting.is_finished(), "detect() returned with no master registered: {:?}", waiting.await);
    let master = FakeMaster::register(zk, &group, 5060).await;
    let leader = bounded_task("detect() after the first master registers", waiting).await.expect("detect() failed");
    assert_eq!(leader.authority(), "127.0.0.1:5060");
    assert_eq!(leader.node, master.node);
    master.crash().await;
}

/// A group path that does not exist yet (no master ever ran) is waited for
/// too: first its creation, then a master.
async fn missing_group_path_then_master(zk: &Zk) {
    let group = format!("{}/later", zk.root);
    let mut det = zk.detector(&group);
    let waiting = tokio::spawn(async move { det.detect().await });
    sleep(SETTLE).await;
    zk.admin.create(&group, b"", CreateMode::Persistent).await.expect("create the group");
    sleep(SETTLE).await;
    assert!(!waiting.is_finished(), "detect() returned for an empty group");
    let master = FakeMaster::register(zk, &group, 5061).await;
    let leader = bounded_task("detect() on a group created late", waiting).await.expect("detect() failed");
    assert_eq!(leader.port, 5061);
    master.crash().await;
}

/// The lowest `json.info_` node leads; protobuf `info_` nodes are ignored;
/// a new non-leading master does not wake `next_change`; the leader's
/// session ending hands leadership to the next master.
async fn failover_to_next_master(zk: &Zk) {
    let group = zk.group("failover").await;
    // An older master's protobuf node, with a lower sequence than all the
    // JSON ones: it must not be taken for the leader.
    let legacy = Session::connect(&zk.addr).await;
    legacy
        .client
        .create(&format!("{group}/info_"), b"\x08\x01\x12\x0amaster-pb", CreateMode::EphemeralSequential)
        .await
        .expect("create info_ node");
    let a = FakeMaster::register(zk, &group, 5050).await;
    let b = FakeMaster::register(zk, &group, 5051).await;

    let mut det = zk.detector(&group);
    let leader = bounded("detect()", det.detect()).await.expect("detect() failed");
    assert_eq!(leader.node, a.node, "the lowest json.info_ node leads");
    assert_eq!(leader.authority(), "127.0.0.1:5050");
    assert_eq!(leader.info["version"], "1.11.0");

    let change = tokio::spawn(async move {
        let next = det.next_change().await;
        (det, next)
    });
    sleep(SETTLE).await;
    let c = FakeMaster::register(zk, &group, 5052).await;
    sleep(SETTLE).await;
    assert!(!change.is_finished(), "next_change() returned although the leader stayed {}", a.node);

    a.crash().await;
    let (mut det, next) = bounded_task("next_change() after the leader's session closed", change).await;
    let next = next.expect("next_change() failed");
    assert_eq!(next.node, b.node);
    assert_eq!(next.authority(), "127.0.0.1:5051");

    // And once more, to the third master.
    b.crash().await;
    let next = bounded("second next_change()", det.next_change()).await.expect("next_change() failed");
    assert_eq!(next.port, 5052);
    c.crash().await;
    legacy.client.close().await.expect("close legacy session");
}

/// Garbage JSON in the leading node is an error naming the node, as in
/// Mesos's detector; the detector then waits for the next leader.
async fn garbage_master_info_is_an_error(zk: &Zk) {
    let group = zk.group("garbage").await;
    let bad = Session::connect(&zk.addr).await;
    let bad_path = bad
        .client
        .create(&format!("{group}/json.info_"), b"this is not json", CreateMode::EphemeralSequential)
        .await
        .expect("create garbage node");
    let good = FakeMaster::register(zk, &group, 5070).await;

    let mut det = zk.detector(&group);
    match bounded("detect() with garbage", det.detect()).await {
        Err(ZkError::BadMasterInfo { path, reason }) => {
            assert_eq!(path, bad_path);
            assert!(matches!(reason, mesos::zk::MasterInfoProblem::Json(_)), "{reason}");
        }
        other => panic!("expected BadMasterInfo for {bad_path}, got {other:?}"),
    }
    let change = tokio::spawn(async move { det.next_change().await });
    sleep(SETTLE).await;
    assert!(!change.is_finished(), "next_change() did not wait after the garbage leader was reported");
    bad.client.close().await.expect("close garbage session");
    let next = bounded_task("next_change() after the garbage node went", change).await.expect("next_change() failed");
    assert_eq!(next.node, good.node);
    good.crash().await;
}

/// Digest credentials are sent (`addauth`), and a dead first server is
/// skipped for the next one.
async fn credentials_and_unreachable_first_host(zk: &Zk) {
    let group = zk.group("auth").await;
    let master = FakeMaster::register(zk, &group, 5080).await;
    let dead = free_port();
    let url = format!("zk://alice:s3cret@127.0.0.1:{dead},{}{group}", zk.addr);
    let url = ZkUrl::parse(&url).expect("parse URL");
    assert!(!format!("{url:?} {url}").contains("s3cret"));
    let mut det = LeaderDetector::new(url, SESSION);
    let leader = bounded("detect() with credentials", det.detect()).await.expect("detect() failed");
    assert_eq!(leader.port, 5080);
    master.crash().await;

    // With no server reachable at all, the error says so.
    let url = ZkUrl::parse(&format!("zk://127.0.0.1:{dead}{group}")).unwrap();
    let mut det = LeaderDetector::new(url, SESSION);
    match bounded("detect() with no server", det.detect()).await {
        Err(e @ ZkError::NoServerReachable { .. }) => {
            assert!(e.to_string().contains(&format!("127.0.0.1:{dead}")), "{e}");
        }
        other => panic!("expected NoServerReachable, got {other:?}"),
    }
}

/// A connection lost while waiting for a change is replaced by one to the
/// next server, and the change is still seen.
async fn reconnects_after_connection_loss(zk: &Zk) {
    let group = zk.group("reconnect").await;
    let a = FakeMaster::register(zk, &group, 5090).await;
    let b = FakeMaster::register(zk, &group, 5091).await;
    let proxy = Proxy::start(&zk.addr).await;
    let url = ZkUrl::parse(&format!("zk://{},{}{group}", proxy.addr, zk.addr)).unwrap();
    let mut det = LeaderDetector::new(url, SESSION);
    let leader = bounded("detect() through the proxy", det.detect()).await.expect("detect() failed");
    assert_eq!(leader.node, a.node);
    assert!(proxy.connections() >= 1, "detector did not use the proxy");

    let change = tokio::spawn(async move { det.next_change().await });
    sleep(SETTLE).await;
    proxy.cut();
    sleep(SETTLE).await;
    assert!(!change.is_finished(), "next_change() returned after a connection loss alone: {:?}", change.await);
    a.crash().await;
    let next = bounded_task("next_change() after reconnecting", change).await.expect("next_change() failed");
    assert_eq!(next.node, b.node);
    b.crash().await;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Awaits `fut` for at most [`BOUND`].
async fn bounded<T>(what: &str, fut: impl IntoFuture<Output = T>) -> T {
    timeout(BOUND, fut.into_future()).await.unwrap_or_else(|_| panic!("{what}: nothing within {BOUND:?}"))
}

/// `bounded` for a spawned task; its panic is re-raised here.
async fn bounded_task<T>(what: &str, task: JoinHandle<T>) -> T {
    match bounded(what, task).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("{what}: task failed: {e}"),
    }
}

/// The shared server, an admin session, and a unique root for this run.
struct Zk {
    addr: String,
    admin: ZkClient,
    root: String,
}

impl Zk {
    async fn new(addr: &str) -> Self {
        let admin = ZkClient::connect(addr, SESSION).await.expect("admin session");
        let root = format!("/{}", unique_name("m3s-test"));
        admin.create(&root, b"", CreateMode::Persistent).await.expect("create test root");
        Zk { addr: addr.to_owned(), admin, root }
    }

    /// Creates an empty group `<root>/<name>`.
    async fn group(&self, name: &str) -> String {
        let path = format!("{}/{name}", self.root);
        self.admin.create(&path, b"", CreateMode::Persistent).await.expect("create group");
        path
    }

    fn detector(&self, group: &str) -> LeaderDetector {
        let url = ZkUrl::parse(&format!("zk://{}{group}", self.addr)).expect("parse URL");
        LeaderDetector::new(url, SESSION)
    }

    /// Removes this run's nodes (matters only on a shared `M3S_TEST_ZK`).
    async fn cleanup(self) {
        let mut groups = self.admin.get_children(&self.root, false).await.unwrap_or_default();
        groups.sort();
        for group in groups {
            let _ = self.admin.delete(&format!("{}/{group}", self.root), None).await;
        }
        let _ = self.admin.delete(&self.root, None).await;
        let _ = self.admin.close().await;
    }
}

/// A Mesos master as ZooKeeper sees it: a session and its `json.info_` node.
struct FakeMaster {
    session: Session,
    /// Node name, e.g. `json.info_0000000003`.
    node: String,
}

impl FakeMaster {
    async fn register(zk: &Zk, group: &str, port: u16) -> Self {
        let session = Session::connect(&zk.addr).await;
        let path = session.register(group, &master_info(port)).await;
        let node = path.rsplit('/').next().unwrap().to_owned();
        FakeMaster { session, node }
    }

    /// Ends the session, which removes the node as a master crash would
    /// (without waiting for the session timeout).
    async fn crash(self) {
        self.session.close().await;
    }
}

/// A TCP proxy in front of ZooKeeper whose connections can be cut.
struct Proxy {
    addr: String,
    task: JoinHandle<()>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_owned();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection task and so closes every proxied socket.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, task, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes the listener and every proxied connection.
    fn cut(&self) {
        self.task.abort();
    }
}
