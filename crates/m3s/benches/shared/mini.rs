//! `m3s mini` as the benchmarks start it: a fresh work directory, resources
//! far above what they use, warnings only in its log; its tasks and work
//! directory go with it. Included with `#[path]` beside `support`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesos::scheduler::SchedulerConfig;
use mesos::v1::FrameworkInfo;

use super::support;

pub struct BenchMini {
    pub child: Child,
    pub port: u16,
    /// Its work directory.
    pub dir: PathBuf,
}

impl BenchMini {
    pub fn start(dir: &Path) -> BenchMini {
        BenchMini::start_with(dir, &[])
    }

    /// With more `m3s mini` flags.
    pub fn start_with(dir: &Path, extra: &[&str]) -> BenchMini {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let port = support::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_m3s"))
            .args(["mini", "--port", &port.to_string(), "--work-dir"])
            .arg(dir)
            .args(["--resources", "cpus:64;mem:262144;disk:100000;ports:[31000-32000]", "--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "m3s mini did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        BenchMini { child, port, dir: dir.to_owned() }
    }

    /// A scheduler configuration authenticated with the credentials it generated.
    pub fn scheduler_config(&self, info: FrameworkInfo) -> SchedulerConfig {
        let mut config = SchedulerConfig::new(format!("127.0.0.1:{}", self.port), info);
        let (principal, secret) = support::generated_credential(&self.dir);
        config.transport.credentials = Some(mesos::transport::Credentials::new(principal, secret));
        config
    }
}

impl Drop for BenchMini {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        support::kill_tasks_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
