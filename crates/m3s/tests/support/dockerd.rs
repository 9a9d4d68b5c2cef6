//! A private Docker daemon for one test: Debian's `dockerd` with its own data
//! and exec roots, socket, default bridge and address pool, and no iptables,
//! IP forwarding or masquerading, so it changes nothing on the machine that
//! outlives it (published ports go through docker-proxy on loopback).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dockerd {
    pub socket: PathBuf,
    /// Short: Unix socket paths under it must stay below 108 bytes.
    root: PathBuf,
    bridge: String,
    subnet_index: u8,
    child: Option<Child>,
    extra: Vec<String>,
}

/// Whether this machine can run the test's dockerd: root and Debian's
/// `dockerd`. When not, the caller skips, saying why, unless CI asked for
/// everything to run (`M3S_REQUIRE_ROOT`, set by scripts/test as root).
pub fn unavailable() -> Option<String> {
    let why = if !rustix::process::geteuid().is_root() {
        "the Docker containerizer tests start a dockerd, which needs root"
    } else if !Path::new("/usr/sbin/dockerd").exists() {
        "no /usr/sbin/dockerd (Debian's docker.io package; scripts/test installs it)"
    } else {
        return None;
    };
    assert!(std::env::var_os("M3S_REQUIRE_ROOT").is_none(), "M3S_REQUIRE_ROOT is set but {why}");
    eprintln!("SKIPPED: {why}");
    Some(why.to_owned())
}

impl Dockerd {
    /// Starts a daemon; `extra` are more dockerd flags (`--live-restore`).
    pub fn start(extra: &[&str]) -> Dockerd {
        let (bridge, subnet_index) = make_bridge();
        let root = PathBuf::from(format!("/tmp/m3s-dk-{}-{subnet_index}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut d = Dockerd {
            socket: root.join("docker.sock"),
            root,
            bridge,
            subnet_index,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.root.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("exec"))
            .arg("--pidfile")
            .arg(self.root.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--bridge", &self.bridge])
            .args(["--default-address-pool", &format!("base=10.214.{}.0/24,size=27", self.subnet_index)])
            .args(["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"])
            .args(["--storage-driver", "overlay2", "--shutdown-timeout", "2", "--log-level", "warn"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        self.child = Some(child);
        let engine = self.engine();
        let deadline = Instant::now() + Duration::from_secs(60);
        while engine.ping().is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited with {status}:\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "dockerd did not answer within 60 s:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn engine(&self) -> docker::Engine {
        docker::Engine::new(&self.socket)
    }

    pub fn socket_arg(&self) -> String {
        self.socket.display().to_string()
    }

    pub fn log_tail(&self) -> String {
        crate::support::tail(&self.root.join("dockerd.log"), 40)
    }

    /// Imports busybox-static as `reference` (Cmd `sh`), as `docker import` would.
    pub fn import_busybox(&self, reference: &str) {
        let layer = crate::images::busybox_layer(crate::images::Compression::None);
        self.engine().import(reference, &layer.blob).expect("docker import");
    }

    /// Stops the daemon (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
                rustix::process::Signal::TERM,
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the daemon again with the same settings.
    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let engine = self.engine();
            for c in engine.list_all().unwrap_or_default() {
                let _ = engine.remove(&c.id);
            }
            // Their bridges would outlive the daemon.
            for n in engine.list_networks(None).unwrap_or_default() {
                if !matches!(n.as_str(), "bridge" | "host" | "none") {
                    let _ = engine.remove_network(&n);
                }
            }
        }
        self.stop();
        // The daemon's mounts (overlays of containers it could not clean up, its own binds).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root.display().to_string();
        let mut targets: Vec<&str> =
            mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).filter(|t| t.starts_with(&root)).collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = rustix::mount::unmount(t, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A bridge of our own for the daemon's default network: `m3s-dkN` on 10.213.N.1/24,
/// N chosen free of existing links and routes.
fn make_bridge() -> (String, u8) {
    let routes = String::from_utf8(Command::new("ip").args(["-4", "route"]).output().unwrap().stdout).unwrap();
    let start = (std::process::id() % 200) as u8;
    for i in 0..200u8 {
        let n = (start as u16 + i as u16) % 200 + 20;
        let name = format!("m3s-dk{n}");
        let net = format!("10.213.{n}.");
        if routes.contains(&net) || Path::new("/sys/class/net").join(&name).exists() {
            continue;
        }
        let created = Command::new("ip").args(["link", "add", &name, "type", "bridge"]).status().unwrap().success();
        if !created {
            continue;
        }
        let ok = Command::new("ip").args(["addr", "add", &format!("10.213.{n}.1/24"), "dev", &name]).status().unwrap();
        assert!(ok.success());
        assert!(Command::new("ip").args(["link", "set", &name, "up"]).status().unwrap().success());
        return (name, n as u8);
    }
    panic!("no free 10.213.N.0/24 for a test bridge");
}
