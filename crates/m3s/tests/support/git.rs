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
