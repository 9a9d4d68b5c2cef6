//! Runs the real `m3s` binary for end-to-end tests.

#![allow(dead_code)]

pub mod git;
pub mod metrics;
pub mod up;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A bound on every wait, so a broken build fails instead of hanging.
pub const BOUND: Duration = Duration::from_secs(30);

/// reqwest is built without a default TLS provider (m3s installs ring at start).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `m3s mini` running as a child process on a free port, with its own work dir.
pub struct Mini {
    pub port: u16,
    pub work_dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    extra: Vec<String>,
}

impl Mini {
    pub fn start(work_dir: &Path) -> Mini {
        Mini::start_with(work_dir, &[])
    }

    pub fn start_with(work_dir: &Path, extra: &[&str]) -> Mini {
        let mut mini = Mini {
            port: free_port(),
            work_dir: work_dir.to_owned(),
            child: None,
            log: work_dir.join("m3s-mini.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        mini.spawn();
        mini
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.work_dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_m3s"))
            .args(["mini", "--port", &self.port.to_string(), "--work-dir"])
            .arg(&self.work_dir)
            .args(["--resources", "cpus:4;mem:4096;disk:10000;ports:[31000-31099]"])
            .args(&self.extra)
            .env("LOGLEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("m3s binary");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        wait_listening(self.child.as_mut().unwrap(), self.port, &self.log, "m3s mini");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The principal and secret `m3s mini` generated into its work directory.
    pub fn credential(&self) -> (String, String) {
        generated_credential(&self.work_dir)
    }

    /// Transport settings with the generated credentials.
    pub fn transport(&self) -> mesos::transport::TransportConfig {
        let (principal, secret) = self.credential();
        mesos::transport::TransportConfig {
            credentials: Some(mesos::transport::Credentials::new(principal, secret)),
            ..Default::default()
        }
    }

    /// A scheduler configuration for this master, authenticated as its generated principal.
    pub fn scheduler_config(&self, mut info: mesos::v1::FrameworkInfo) -> mesos::scheduler::SchedulerConfig {
        info.principal = Some(self.credential().0);
        let mut config = mesos::scheduler::SchedulerConfig::new(self.authority(), info);
        config.transport = self.transport();
        config
    }

    /// An HTTP client that sends the generated credentials with every request.
    pub fn http(&self) -> reqwest::Client {
        use base64::Engine as _;
        let (principal, secret) = self.credential();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {basic}").parse().unwrap());
        reqwest::Client::builder().default_headers(headers).build().unwrap()
    }

    /// kill -9, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait, as a clean stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + BOUND;
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "m3s mini did not stop on SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts again on the same port and work dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }

    /// Waits (within BOUND) until the log has a line containing `needle`:
    /// lines are written in order, so what was logged before is there too.
    pub async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + BOUND;
        while !std::fs::read_to_string(&self.log).unwrap_or_default().contains(needle) {
            assert!(Instant::now() < deadline, "no log line with {needle:?}:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Mini {
    fn drop(&mut self) {
        self.kill9();
        // Tasks outlive m3s by design: end this test's ones so none are left behind.
        kill_tasks_under(&self.work_dir);
    }
}

/// SIGKILLs every supervisor and task process whose command line or working
/// directory mentions `dir`, and removes the containers an OCI runtime runs
/// for them (their processes live in namespaces of their own).
pub fn kill_tasks_under(dir: &Path) {
    for root in [dir.join("mini/meta/oci"), dir.join("meta/oci")] {
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = Command::new("crun")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    release_networks(dir);
    let needle = dir.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd =
            std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.starts_with(&needle) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    }
}

/// Takes the deleted containers off their networks (bridges, namespaces,
/// iptables rules), as a restart of m3s would.
fn release_networks(dir: &Path) {
    for work in [dir, &dir.join("..")] {
        if work.join("mini/networks").is_dir() {
            let _ = Command::new(env!("CARGO_BIN_EXE_m3s"))
                .args(["networks", "--work-dir"])
                .arg(work)
                .arg("prune")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Waits until `port` on loopback accepts connections; fails with the log's
/// tail if `child` exits first or the port stays closed past [`BOUND`].
pub fn wait_listening(child: &mut Child, port: u16, log: &Path, what: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited with {status}:\n{}", tail(log, 60));
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port} within {BOUND:?}:\n{}", tail(log, 60));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `n` lines of a log file (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// A test's own directory under the temp dir, removed when the test passes
/// (kept when it fails, for a look at its logs).
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes `text` to `dir/name` (creating its directory); the path, as text.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

pub fn tempdir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!(
        "m3s-test-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

/// The principal and secret an `m3s mini` with this work directory generated.
pub fn generated_credential(mini_work_dir: &Path) -> (String, String) {
    let path = mini_work_dir.join("credentials.json");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("credentials.json")).expect("credentials.json is JSON");
    let first = &file["credentials"][0];
    (first["principal"].as_str().unwrap().to_owned(), first["secret"].as_str().unwrap().to_owned())
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until `check` holds, polling every 200 ms, for at most 90 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A plain HTTP/1.0 GET on loopback: the whole answer, head included; `None` if it fails.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
