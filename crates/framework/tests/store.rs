//! The state stores: redb in a temporary directory, Redis against a real
//! redis-server, and the writer across a Redis restart.

mod support {
    pub mod redis;
}

use std::path::PathBuf;

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

fn redis(server: &RedisServer, db: i64, prefix: &str, password: Option<&str>) -> StoreConfig {
    StoreConfig::Redis { url: server.addr(), password: password.map(str::to_owned), db, prefix: prefix.into() }
}

/// The same checks for every backend: batches apply in full, deletes delete, replace_all replaces.
async fn exercise(store: &Store) {
    store.write(&[put("task/a", "1"), put("task/b", "2"), put("framework_id", "fw")]).await.unwrap();
    store.write(&[del("task/a"), put("task/b", "3")]).await.unwrap();
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("framework_id", "fw"), ("task/b", "3")]));
    store.replace_all(&[("project/x".into(), b"p".to_vec())]).await.unwrap();
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("project/x", "p")]));
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

#[tokio::test]
async fn a_second_opener_of_a_redb_file_gets_a_clear_error() {
    let dir = temp("redb-twice");
    let config = StoreConfig::Redb { path: dir.join("framework.redb") };
    let _first = Store::open(&config).await.unwrap();
    let err = Store::open(&config).await.err().expect("the file is in use");
    assert!(err.to_string().contains("in use by another m3s"), "{err}");
}

#[tokio::test]
async fn redis_round_trip_with_prefixes_and_databases_kept_apart() {
    let server = RedisServer::start(None);
    let a = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    exercise(&a).await;
    let b = Store::open(&redis(&server, 1, "other", None)).await.unwrap();
    assert!(b.load().await.unwrap().is_empty(), "another prefix sees nothing");
    let c = Store::open(&redis(&server, 2, "mc", None)).await.unwrap();
    assert!(c.load().await.unwrap().is_empty(), "another database sees nothing");
    b.write(&[put("k", "v")]).await.unwrap();
    assert_eq!(text(a.load().await.unwrap()), pairs(&[("project/x", "p")]));
}

#[tokio::test]
async fn redis_passwords_are_used_and_never_shown() {
    let server = RedisServer::start(Some("s3cret-pw"));
    let wrong = Store::open(&redis(&server, 0, "mc", Some("nope"))).await.err().expect("wrong password refused");
    let message = wrong.to_string();
    assert!(!message.contains("nope") && !message.contains("s3cret-pw"), "{message}");
    let config = redis(&server, 0, "mc", Some("s3cret-pw"));
    assert!(!format!("{config:?}").contains("s3cret-pw"));
    let store = Store::open(&config).await.unwrap();
    exercise(&store).await;
    assert!(!store.describe().contains("s3cret-pw"));
}

#[tokio::test]
async fn the_writer_loses_nothing_when_redis_restarts_empty() {
    let mut server = RedisServer::start(None);
    let store = Store::open(&redis(&server, 1, "mc", None)).await.unwrap();
    let writer = StoreWriter::spawn(store.clone(), Vec::new());
    writer.write(vec![put("task/1", "a")]).await.unwrap();
    server.kill();
    assert!(writer.write(vec![put("task/2", "b"), del("task/1")]).await.is_err(), "a write while Redis is down fails");
    assert!(!writer.healthy());
    writer.write(vec![put("task/3", "c")]).await.ok();
    server.spawn(); // a new, empty server on the same port
    writer.flush().await;
    assert!(writer.healthy());
    assert_eq!(text(store.load().await.unwrap()), pairs(&[("task/2", "b"), ("task/3", "c")]));
}
