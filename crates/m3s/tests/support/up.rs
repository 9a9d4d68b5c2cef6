//! `m3s up` as a child process, with its API and its CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, kill_tasks_under};

pub const TOKEN: &str = "e2e-test-token";

/// K3s resources small enough for a test machine's embedded agent.
pub const SMALL_K3S: [&str; 18] = [
    "--k3s-server-cpus",
    "0.2",
    "--k3s-server-mem",
    "128",
    "--k3s-server-disk",
    "10",
    "--k3s-agent-cpus",
    "0.2",
    "--k3s-agent-mem",
    "128",
    "--k3s-agent-disk",
    "10",
    "--k3s-ds-cpus",
    "0.2",
    "--k3s-ds-mem",
    "128",
    "--k3s-ds-disk",
    "10",
];

pub struct Up {
    pub work_dir: PathBuf,
    pub mesos_port: u16,
    pub api_port: u16,
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// `m3s serve --master URL` instead of `m3s up`.
    master: Option<String>,
    /// Its Mesos credentials file.
    credentials: Option<PathBuf>,
}

impl Up {
    /// Starts `m3s up` with extra arguments (e.g. `-f FILE`) and waits for its API.
    pub fn start(work_dir: &Path, args: &[&str]) -> Up {
        Up::start_with_env(work_dir, args, &[])
    }

    pub fn start_with_env(work_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Up {
        let mut up = Up {
            work_dir: work_dir.to_owned(),
            mesos_port: free_port(),
            api_port: free_port(),
            child: None,
            log: work_dir.join("m3s-up.log"),
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            master: None,
            credentials: None,
        };
        up.spawn_fresh();
        up
    }

    /// `m3s serve`: the framework and its API against `mini`, with its credentials.
    pub fn serve(work_dir: &Path, mini: &super::Mini) -> Up {
        let mut up = Up {
            work_dir: work_dir.to_owned(),
            mesos_port: 0,
            api_port: free_port(),
            child: None,
            log: work_dir.join("m3s-serve.log"),
            args: Vec::new(),
            envs: Vec::new(),
            master: Some(mini.url()),
            credentials: Some(mini.work_dir.join("credentials.json")),
        };
        up.spawn_fresh();
        up
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.work_dir).unwrap();
        let from = std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_m3s"));
        match &self.master {
            None => {
                // Names the containers' DNS servers do not know are never sent off this
                // machine: the forwarder is a closed port on loopback (SERVFAIL).
                command.arg("up").args(["--mesos-port", &self.mesos_port.to_string(), "--dns-forward", "127.0.0.1:9"]);
                // A test that publishes ports it picked passes its own.
                if !self.args.iter().any(|a| a == "--resources") {
                    command.args(["--resources", "cpus:8;mem:16384;disk:10000;ports:[31000-31999]"]);
                }
                &mut command
            }
            Some(master) => {
                command.args(["serve", "--master", master]).arg("--mesos-credentials").args(&self.credentials)
            }
        };
        let child = command
            .args(["--work-dir"])
            .arg(&self.work_dir)
            .args(["--framework-port", &self.api_port.to_string()])
            .args(&self.args)
            .env("M3S_API_TOKEN", TOKEN)
            .env("LOGLEVEL", "debug")
            .env_remove("AUTH_USERNAME")
            .env_remove("AUTH_PASSWORD")
            .env_remove("REDIS_SERVER")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("m3s binary");
        self.child = Some(child);
        self.wait_serving(from);
    }

    /// Waits for this process's own start message naming its API port: a port that
    /// merely accepts connections may belong to another test's server (free ports are
    /// picked, then bound later, so two tests can pick the same one).
    fn wait_serving(&mut self, from: usize) {
        let what = if self.master.is_some() { "m3s serve" } else { "m3s up" };
        let mark = format!("127.0.0.1:{} (", self.api_port);
        let deadline = Instant::now() + super::BOUND;
        loop {
            if std::fs::read_to_string(&self.log).is_ok_and(|l| l.get(from..).is_some_and(|new| new.contains(&mark))) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{what} exited with {status}:\n{}", super::tail(&self.log, 60));
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not serve on {} within {:?}:\n{}",
                self.api_port,
                super::BOUND,
                super::tail(&self.log, 60)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the first time, taking other ports when another process got to the
    /// picked ones first.
    fn spawn_fresh(&mut self) {
        for _ in 0..3 {
            std::fs::create_dir_all(&self.work_dir).unwrap();
            let before = std::fs::read_to_string(&self.log).map_or(0, |l| l.len());
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn()));
            match result {
                Ok(()) => return,
                Err(panic) => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    if !log[before.min(log.len())..].contains("cannot listen") {
                        std::panic::resume_unwind(panic);
                    }
                    self.kill9();
                    self.api_port = free_port();
                    if self.master.is_none() {
                        self.mesos_port = free_port();
                    }
                }
            }
        }
        panic!("no free ports after three tries:\n{}", self.log_tail());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then the same command again on the same ports and work dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_tail(&self) -> String {
        super::tail(&self.log, 60)
    }

    /// Runs `m3s compose ARGS` against this instance.
    pub fn compose(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_m3s"))
            .arg("compose")
            .args(["--api", &self.api(), "--api-token", TOKEN])
            .args(args)
            .output()
            .expect("m3s binary")
    }

    /// Runs `m3s compose ARGS` and insists on success; returns stdout.
    pub fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "m3s compose {args:?} failed: {}\n{}\n--- m3s up log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET on the v1 API, authenticated.
    pub fn get(&self, path: &str) -> Option<Value> {
        let (status, body) = http("GET", self.api_port, path, None);
        if status != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// Waits until `check` holds for the project view, or fails with the last view and the log.
    pub fn wait_project(&self, project: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = Value::Null;
        loop {
            if let Some(v) = self.get(&format!("/api/v1/projects/{project}")) {
                if check(&v) {
                    return v;
                }
                last = v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last view:\n{}\n--- m3s up log ---\n{}",
                serde_json::to_string_pretty(&last).unwrap(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill9();
        kill_tasks_under(&self.work_dir);
    }
}

/// The service named `name` in a project view.
pub fn service<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {view}"))
}

pub fn state(view: &Value, name: &str) -> String {
    service(view, name)["state"].as_str().unwrap_or("").to_owned()
}

/// Live task ids of a service.
pub fn live_tasks(view: &Value, name: &str) -> Vec<String> {
    service(view, name)["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            !matches!(
                t["state"].as_str(),
                Some(
                    "TASK_FINISHED"
                        | "TASK_FAILED"
                        | "TASK_KILLED"
                        | "TASK_ERROR"
                        | "TASK_LOST"
                        | "TASK_DROPPED"
                        | "TASK_GONE"
                )
            )
        })
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

/// Processes whose command line is exactly `argv`.
pub fn processes_with_argv(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted) && super::alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Live processes whose working directory is under `dir` (task sandboxes).
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) && super::alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// A blocking HTTP/1.1 request on loopback with the test token: status and body.
pub fn http(method: &str, port: u16, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\
         Content-Type: application/yaml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(rest) } else { rest.to_owned() })
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
