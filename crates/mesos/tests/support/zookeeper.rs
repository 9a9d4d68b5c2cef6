//! A real ZooKeeper for tests: Debian's `zookeeper` package started as a
//! child java process on a free loopback port (or the server named by
//! `M3S_TEST_ZK=host:port`), and fake Mesos master registrations: each is a
//! ZooKeeper session of its own holding a `json.info_` EPHEMERAL_SEQUENTIAL
//! node, so closing the session removes the node exactly as a master crash
//! would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesos::zk::ZkClient;
use mesos::zk::wire::CreateMode;
use tokio::time::sleep;

/// Session timeout asked by every test client.
pub const SESSION: Duration = Duration::from_secs(10);

/// Debian's server jar. Its manifest `Class-Path` lists its dependencies
/// (zookeeper-jute, netty, slf4j-api, jetty, ...) by absolute path under
/// /usr/share/java, which is why Debian's own
/// /etc/zookeeper/conf/environment puts nothing else on the class path.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// An SLF4J binding, so the server logs to our log file instead of
/// warning that it has none.
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// A name unique to this process and moment, e.g. for a test's root znode.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The `MasterInfo` JSON a Mesos 1.11 master at `127.0.0.1:<port>` writes
/// into its `json.info_` node.
pub fn master_info(port: u16) -> serde_json::Value {
    serde_json::json!({
        "id": format!("master-{port}"),
        "ip": 16777343,
        "port": port,
        "pid": format!("master@127.0.0.1:{port}"),
        "hostname": "localhost",
        "version": "1.11.0",
        "address": {"hostname": "localhost", "ip": "127.0.0.1", "port": port},
    })
}

/// A ZooKeeper session of its own, e.g. a fake master's.
pub struct Session {
    pub client: ZkClient,
}

impl Session {
    pub async fn connect(addr: &str) -> Self {
        Session { client: ZkClient::connect(addr, SESSION).await.expect("fake master session") }
    }

    /// Registers a master in `group` as Mesos does: an EPHEMERAL_SEQUENTIAL
    /// `json.info_` node holding `info`. Returns the node's full path.
    pub async fn register(&self, group: &str, info: &serde_json::Value) -> String {
        self.client
            .create(&format!("{group}/json.info_"), info.to_string().as_bytes(), CreateMode::EphemeralSequential)
            .await
            .expect("register fake master")
    }

    /// Ends the session, which removes its ephemeral nodes as a master crash
    /// would (without waiting for the session timeout).
    pub async fn close(self) {
        self.client.close().await.expect("close fake master session");
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The ZooKeeper under test: our own child process, or `M3S_TEST_ZK`.
/// Dropping it kills the process and removes its directory.
pub struct ZkServer {
    /// `host:port` of the server.
    pub addr: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl ZkServer {
    /// Starts the server (or takes `M3S_TEST_ZK`); see [`Self::wait_ready`].
    pub fn start() -> Self {
        if let Ok(addr) = std::env::var("M3S_TEST_ZK") {
            if !addr.trim().is_empty() {
                return ZkServer { addr: addr.trim().to_owned(), child: None, dir: None };
            }
        }
        let java = java_binary();
        let missing = match (&java, Path::new(ZOOKEEPER_JAR).is_file()) {
            (None, false) => Some("neither java nor ZooKeeper is installed"),
            (None, true) => Some("java is not installed"),
            (Some(_), false) => Some("ZooKeeper is not installed (no /usr/share/java/zookeeper.jar)"),
            (Some(_), true) => None,
        };
        if let Some(missing) = missing {
            panic!(
                "this test needs a real ZooKeeper server, but {missing}. \
                 Run ./scripts/test, which installs Debian's `zookeeper` package and a JRE, \
                 or set M3S_TEST_ZK=host:port to use a running server."
            );
        }
        let java = java.unwrap();

        let dir = std::env::temp_dir().join(unique_name("m3s-zk"));
        std::fs::create_dir_all(dir.join("data")).expect("create ZooKeeper temp dir");
        let port = free_port();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\n\
                 dataDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n\
                 minSessionTimeout=1000\n\
                 maxSessionTimeout=30000\n\
                 maxClientCnxns=0\n",
                dir.join("data").display()
            ),
        )
        .expect("write zoo.cfg");

        let mut classpath = vec![ZOOKEEPER_JAR];
        if Path::new(SLF4J_SIMPLE_JAR).is_file() {
            classpath.push(SLF4J_SIMPLE_JAR);
        }
        let log = std::fs::File::create(dir.join("zookeeper.log")).expect("create log file");
        let child = Command::new(&java)
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-Xshare:auto"])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(classpath.join(":"))
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ZooKeeper with {}: {e}", java.display()));
        ZkServer { addr: format!("127.0.0.1:{port}"), child: Some(child), dir: Some(dir) }
    }

    /// Waits until the server accepts a session, failing with its log if the
    /// process exits or takes too long.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ZkClient::connect(&self.addr, Duration::from_secs(5)).await {
                Ok(client) => {
                    let _ = client.close().await;
                    return;
                }
                Err(e) => {
                    if let Some(child) = &mut self.child {
                        if let Ok(Some(status)) = child.try_wait() {
                            panic!("ZooKeeper exited ({status}) before accepting sessions; log:\n{}", self.log_tail());
                        }
                    }
                    if Instant::now() > deadline {
                        panic!(
                            "ZooKeeper at {} not ready after 60 s (last error: {e}); log:\n{}",
                            self.addr,
                            self.log_tail()
                        );
                    }
                }
            }
            sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last 40 lines of our server's log (empty for `M3S_TEST_ZK`).
    pub fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let Ok(file) = std::fs::File::open(dir.join("zookeeper.log")) else {
            return "(no log)".into();
        };
        let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            if std::thread::panicking() {
                eprintln!("ZooKeeper log tail:\n{}", self.log_tail());
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `$JAVA_HOME/bin/java`, else `java` if it runs.
pub fn java_binary() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = Path::new(&home).join("bin/java");
        if java.is_file() {
            return Some(java);
        }
    }
    let runs = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs.then(|| PathBuf::from("java"))
}
