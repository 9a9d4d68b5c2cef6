//! `m3s metrics serve` as a child process, and a small HTTP client for it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

pub const TOKEN: &str = "metrics-test-token";

pub struct MetricsServer {
    pub port: u16,
    pub work_dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
}

impl MetricsServer {
    pub fn start(work_dir: &Path, args: &[&str]) -> MetricsServer {
        let mut s = MetricsServer {
            port: free_port(),
            work_dir: work_dir.to_owned(),
            child: None,
            log: work_dir.join("m3s-metrics.log"),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.work_dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_m3s"))
            .args(["metrics", "serve", "--port", &self.port.to_string(), "--work-dir"])
            .arg(&self.work_dir)
            .args(["--collect-interval", "0"])
            .args(&self.args)
            .env("M3S_API_TOKEN", TOKEN)
            .env("LOGLEVEL", "debug")
            .env_remove("AUTH_USERNAME")
            .env_remove("AUTH_PASSWORD")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("m3s binary");
        self.child = Some(child);
        super::wait_listening(self.child.as_mut().unwrap(), self.port, &self.log, "m3s metrics serve");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        child.wait().unwrap()
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_tail(&self) -> String {
        super::tail(&self.log, 60)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        request(self.port, method, path, headers, body)
    }

    /// An authenticated GET whose JSON answer must be a success.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
        assert_eq!(status, 200, "GET {path}: {body}\n--- log ---\n{}", self.log_tail());
        serde_json::from_str(&body).unwrap()
    }

    pub fn write(&self, path: &str, body: &[u8], extra: &[(&str, &str)]) -> (u16, String) {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        self.request("POST", path, &headers, body)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let (status, _, body) = exchange(port, method, path, headers, body);
    (status, body)
}

/// One HTTP/1.1 request with `Connection: close`; the status, the response's head and its body.
pub fn exchange(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, head.to_owned(), if chunked { super::up::dechunk(rest) } else { rest.to_owned() })
}
