//! A real git server for tests and benchmarks: a bare repository served by
//! `git daemon` on loopback, and commits pushed to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{eventually, free_port};

pub struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Ops", "-c", "user.email=ops@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn commit(work: &Path, url: &str, message: &str, files: &[(&str, Option<&str>)]) -> String {
    for (path, text) in files {
        let full = work.join(path);
        match text {
            Some(text) => {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, text).unwrap();
            }
            None => {
                let _ = std::fs::remove_file(&full);
            }
        }
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", url, "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// A bare repository served by `git daemon` on loopback (pushes allowed), and
/// an empty working copy to commit from: (daemon, URL, working copy).
pub fn served_repository(dir: &Path) -> (Daemon, String, PathBuf) {
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(&served, &["init", "-q", "--bare", "config.git"]);
    let port = free_port();
    // git-daemon itself, not `git daemon`, whose child would outlive a kill of the wrapper.
    let exec_path = git(&served, &["--exec-path"]);
    let daemon = Daemon(
        Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--listen=127.0.0.1", &format!("--port={port}"), "--export-all"])
            .arg("--enable=receive-pack")
            .arg(format!("--base-path={}", served.display()))
            .arg(&served)
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon"),
    );
    eventually("git daemon to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    (daemon, format!("git://127.0.0.1:{port}/config.git"), work)
}

/// `tests/git-http/serve.py`: the repositories under `root` over smart HTTP on
/// loopback, behind HTTP Basic whose password must be `token`.
pub struct HttpServer(Child);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn http_server(root: &Path, token: &str) -> (HttpServer, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/git-http/serve.py");
    let port = free_port();
    let child = Command::new("python3")
        .arg(script)
        .arg(root)
        .arg(port.to_string())
        .env("GIT_HTTP_TOKEN", token)
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 tests/git-http/serve.py");
    let server = HttpServer(child);
    eventually("the git HTTP server to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    (server, port)
}

/// Debian's sshd on a loopback port, serving this machine's repositories to
/// one client key: (server, port, client key, known_hosts naming the server's
/// key). `None` (said loudly; a failure where CI requires it) without sshd or root.
pub struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn sshd(dir: &Path) -> Option<(Sshd, u16, PathBuf, PathBuf)> {
    let why = if !Path::new("/usr/sbin/sshd").exists() {
        Some("/usr/sbin/sshd is missing (apt install openssh-server)")
    } else if !rustix::process::geteuid().is_root() {
        Some("sshd needs root to serve another session")
    } else {
        None
    };
    if let Some(why) = why {
        assert!(std::env::var_os("M3S_REQUIRE_ROOT").is_none(), "{why}, and CI requires the ssh test");
        eprintln!("SKIPPED: {why}; the ssh repository test did not run");
        return None;
    }
    let ssh = dir.join("ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    for key in ["host_key", "client_key", "other_host_key"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
            .arg(ssh.join(key))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::copy(ssh.join("client_key.pub"), ssh.join("authorized_keys")).unwrap();
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n\
         UsePAM no\nPidFile {pid}\n",
        host = ssh.join("host_key").display(),
        keys = ssh.join("authorized_keys").display(),
        pid = ssh.join("sshd.pid").display(),
    );
    std::fs::write(ssh.join("sshd_config"), config).unwrap();
    // Privilege separation needs this directory, which only the packaged service creates.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(ssh.join("sshd_config"))
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd");
    let server = Sshd(child);
    eventually("sshd to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let host_key = std::fs::read_to_string(ssh.join("host_key.pub")).unwrap();
    let mut fields = host_key.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(ssh.join("known_hosts"), format!("[127.0.0.1]:{port} {kind} {key}\n")).unwrap();
    Some((server, port, ssh.join("client_key"), ssh.join("known_hosts")))
}
