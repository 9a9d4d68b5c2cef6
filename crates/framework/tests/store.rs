//! The state stores: redb in a temporary directory, Redis against a real
//! redis-server, and the writer across a Redis restart.

mod support {
    pub mod redis;
}

use std::path::PathBuf;
use std::time::Duration;

use framework::store::{Store, StoreConfig, StoreWriter, Write};
use support::redis::RedisServer;

fn temp(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("m3s-store-{name}-{}-{:?}", std::process::id(), std::time::Instant::now()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(k: &str, v: &str) -> Write {
    Write { key: k.into(), value: Some(v.as_bytes().to_vec()) }
}

fn del(k: &str) -> Write {
    Write { key: k.into(), value: None }
}

fn text(all: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    all.into_iter().map(|(k, v)| (k, String::from_utf8(v).unwrap())).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Starts a redis-server and waits until it answers PING (with or without auth, it answers).
async fn redis_server(password: Option<&str>) -> RedisServer {
    let server = RedisServer::start(password);
    answers_ping(&server).await;
    server
}

async fn answers_ping(server: &RedisServer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..200 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(server.addr()).await {
            let mut reply = [0u8; 64];
            if s.write_all(b"PING\r\n").await.is_ok()
                && let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut reply)).await
                && (reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"))
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on {} never answered PING", server.addr());
}

fn redis(server: &RedisServer, db: i64, prefix: &str, password: Option<&str>) -> StoreConfig {
    StoreConfig::Redis {
        url: server.addr(),
        password: password.map(mesos::secret::Secret::new),
        db,
        prefix: prefix.into(),
    }
}

/// The same checks for every backend: batches apply in full, deletes delete, replace_all replaces.
async fn exercise(store: &Store) {
    store.write(&[put("task/a", "1"), put("task/b", "2"), put("framework_id", "fw")]).await.unwrap();
    store.write(&[del("task/a"), put("task/b", "3")]).await.unwrap();
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("framework_id", "fw"), ("task/b", "3")]));
    store.replace_all(&[("project/x".into(), b"p".to_vec())]).await.unwrap();
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("project/x", "p")]));
}

/// Batches of three keys all set to the same number, written while another
/// task loads: a load sees either nothing or one whole batch.
async fn check_batches_are_atomic(store: &Store) {
    let writer = async {
        for i in 0..200 {
            let n = i.to_string();
            store.write(&[put("a", &n), put("b", &n), put("c", &n)]).await.unwrap();
        }
    };
    let reader = async {
        for _ in 0..200 {
            let all = text(store.load().await.unwrap());
            if !all.is_empty() {
                assert_eq!(all.len(), 3, "{all:?}");
                assert!(all.iter().all(|(_, v)| *v == all[0].1), "half a batch: {all:?}");
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(writer, reader);
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("a", "199"), ("b", "199"), ("c", "199")]));
}

#[tokio::test]
async fn redb_round_trip_survives_reopening() {
    let dir = temp("redb");
    let config = StoreConfig::Redb { path: dir.join("state/framework.redb") };
    {
        let store = Store::open(&config).await.unwrap();
        exercise(&store).await;
        assert!(store.describe().contains("framework.redb"));
    }
    let again = Store::open(&config).await.unwrap();
    assert_eq!(text(again.load().await.unwrap()), pairs(&[("project/x", "p")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_batches_are_atomic() {
    let dir = temp("redb-atomic");
    let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
    check_batches_are_atomic(&store).await;
}

#[tokio::test]
async fn a_second_opener_of_a_redb_file_gets_a_clear_error() {
    let dir = temp("redb-twice");
    let config = StoreConfig::Redb { path: dir.join("framework.redb") };
    let _first = Store::open(&config).await.unwrap();
    let err = Store::open(&config).await.expect_err("the file is in use");
    assert_eq!(
        err.to_string(),
        format!(
            "state file {} is in use by another m3s (one m3s per state file)",
            dir.join("framework.redb").display()
        )
    );
}

/// Set when this test binary runs itself as the second process.
const OPEN_IN_CHILD: &str = "M3S_STORE_TEST_OPEN_IN_CHILD";

/// One test, two roles: the parent opens the file and runs this same test in a
/// second process, which opens the file again and must get the clear error.
#[tokio::test]
async fn a_second_process_opening_a_redb_file_gets_a_clear_error() {
    if let Some(path) = std::env::var_os(OPEN_IN_CHILD) {
        let path = PathBuf::from(path);
        let err =
            Store::open(&StoreConfig::Redb { path: path.clone() }).await.expect_err("the file is held by the parent");
        assert_eq!(
            err.to_string(),
            format!("state file {} is in use by another m3s (one m3s per state file)", path.display())
        );
        return;
    }
    let dir = temp("redb-two-processes");
    let path = dir.join("framework.redb");
    let _first = Store::open(&StoreConfig::Redb { path: path.clone() }).await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["--exact", "a_second_process_opening_a_redb_file_gets_a_clear_error", "--test-threads=1"])
            .env(OPEN_IN_CHILD, &path)
            .output()
    });
    let out =
        tokio::time::timeout(Duration::from_secs(60), child).await.expect("the second process hangs").unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the second process: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed"), "the second process ran the check: {stdout}");
}

#[tokio::test]
async fn redb_writer_applies_batches_in_order() {
    let dir = temp("redb-writer");
    let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
    store.write(&[put("framework_id", "fw")]).await.unwrap();
    let writer = StoreWriter::spawn(store.clone(), store.load().await.unwrap());
    writer.write(vec![put("task/1", "a"), put("task/2", "b")]).await.unwrap();
    writer.write(vec![del("task/1"), put("task/2", "c")]).await.unwrap();
    writer.flush().await;
    assert!(writer.healthy());
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("framework_id", "fw"), ("task/2", "c")]));
}

#[tokio::test]
async fn redis_round_trip() {
    let server = redis_server(None).await;
    let store = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    exercise(&store).await;
    assert_eq!(store.describe(), format!("redis {} db 1 prefix mc", server.addr()));
    let again = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    assert_eq!(text(again.load().await.unwrap()), pairs(&[("project/x", "p")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_batches_are_atomic() {
    let server = redis_server(None).await;
    let store = Store::open(&redis(&server, 0, "mc", None)).await.unwrap();
    check_batches_are_atomic(&store).await;
}

#[tokio::test]
async fn redis_prefixes_do_not_see_each_other() {
    let server = redis_server(None).await;
    let a = Store::open(&redis(&server, 0, "mc", None)).await.unwrap();
    let b = Store::open(&redis(&server, 0, "mc2", None)).await.unwrap();
    let glob = Store::open(&redis(&server, 0, "m*", None)).await.unwrap();
    a.write(&[put("k", "a")]).await.unwrap();
    b.write(&[put("k", "b"), put("only-b", "b")]).await.unwrap();
    assert_eq!(text(a.load().await.unwrap()), pairs(&[("k", "a")]));
    assert!(glob.load().await.unwrap().is_empty(), "a prefix with glob characters is taken literally");
    a.replace_all(&[("x".into(), b"1".to_vec())]).await.unwrap();
    assert_eq!(text(b.load().await.unwrap()), pairs(&[("k", "b"), ("only-b", "b")]));
}

#[tokio::test]
async fn redis_databases_are_kept_apart() {
    let server = redis_server(None).await;
    let one = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    let two = Store::open(&redis(&server, 2, "mc", None)).await.unwrap();
    one.write(&[put("k", "1")]).await.unwrap();
    assert!(two.load().await.unwrap().is_empty(), "another database sees nothing");
    two.write(&[put("k", "2")]).await.unwrap();
    assert_eq!(text(one.load().await.unwrap()), pairs(&[("k", "1")]));
    assert_eq!(text(two.load().await.unwrap()), pairs(&[("k", "2")]));
}

#[tokio::test]
async fn redis_auth_failures_are_clear_and_never_show_the_password() {
    let server = redis_server(Some("s3cret-pw")).await;
    for password in [Some("nope-pw"), None] {
        let config = redis(&server, 0, "mc", password);
        let message = Store::open(&config).await.expect_err("refused").to_string();
        assert!(message.starts_with(&format!("redis {}: connect: ", server.addr())), "{message}");
        assert!(
            message.contains("WRONGPASS") || message.contains("NOAUTH") || message.contains("uthentication"),
            "{message}"
        );
        assert!(!message.contains("nope-pw") && !message.contains("s3cret-pw"), "{message}");
    }
    let config = redis(&server, 0, "mc", Some("s3cret-pw"));
    assert!(!format!("{config:?}").contains("s3cret-pw"));
    let store = Store::open(&config).await.unwrap();
    exercise(&store).await;
    assert!(!store.describe().contains("s3cret-pw") && !format!("{store:?}").contains("s3cret-pw"));
    // A password in the URL is hidden too.
    let in_url = StoreConfig::Redis {
        url: format!("redis://:s3cret-pw@{}", server.addr()),
        password: None,
        db: 0,
        prefix: "mc".into(),
    };
    assert!(!format!("{in_url:?}").contains("s3cret-pw"));
    let store = Store::open(&in_url).await.unwrap();
    assert!(!store.describe().contains("s3cret-pw"));
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("project/x", "p")]));
    drop(server);
    let e = store.load().await.expect_err("the server is gone");
    assert!(!e.to_string().contains("s3cret-pw") && !format!("{e:?}").contains("s3cret-pw"), "{e:?}");
}

#[tokio::test]
async fn the_writer_loses_nothing_when_redis_restarts_empty() {
    let mut server = redis_server(None).await;
    let store = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    let writer = StoreWriter::spawn(store.clone(), Vec::new());
    writer.write(vec![put("task/1", "a"), put("framework_id", "fw")]).await.unwrap();
    server.kill();
    assert!(writer.write(vec![put("task/2", "b"), del("task/1")]).await.is_err(), "a write while Redis is down fails");
    assert!(!writer.healthy());
    assert!(writer.write(vec![put("task/3", "c")]).await.is_err(), "and so does the next, at once");
    server.spawn(); // a new, empty server on the same port
    answers_ping(&server).await;
    tokio::time::timeout(Duration::from_secs(120), writer.flush()).await.expect("the writer catches up");
    assert!(writer.healthy());
    let expected = pairs(&[("framework_id", "fw"), ("task/2", "b"), ("task/3", "c")]);
    assert_eq!(text(store.load().await.unwrap()), expected);
    writer.write(vec![put("task/4", "d")]).await.unwrap();
    assert_eq!(store.load().await.unwrap().len(), 4);
}
