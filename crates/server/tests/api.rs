//! The API over real HTTP against a real embedded cluster: `mini`'s master and
//! agent on one local port, the compose framework subscribed to it with a redb
//! store, and `server::router` on another port, driven with reqwest.
//!
//! No libtest harness (see Cargo.toml): `main` runs the tests in order on one
//! cluster, and the same executable is the tasks' supervisor when started as
//! `<exe> supervise --run-dir DIR`. Every wait is a poll with a generous bound,
//! never a timed assertion. Whatever happens, every process started under the
//! test's work directory is killed at the end.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use mesos::scheduler::SchedulerConfig;
use mesos::transport::TransportConfig;
use mesos::v1::FrameworkInfo;
use mini::cluster::{Cluster, ClusterConfig};
use mini::resources::Resources;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::{AgentFiles, ApiState, Auth, router};

/// A bound on every wait, so a broken build fails instead of hanging.
const BOUND: Duration = Duration::from_secs(90);

type TestFn = fn(Ctx) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const TESTS: &[(&str, TestFn)] = &[
    ("requests_need_basic_or_bearer_credentials_except_public_endpoints", |c| Box::pin(auth(c))),
    ("v0_put_deploys_yaml_and_tasks_are_listed_with_environment_blanked", |c| Box::pin(v0_deploy(c))),
    ("v0_bad_yaml_and_unknown_task_are_406_and_update_verb_is_accepted", |c| Box::pin(v0_errors_and_update(c))),
    ("v0_service_delete_and_restart_then_framework_calls", |c| Box::pin(v0_service_calls(c))),
    ("v1_load_errors_are_422_naming_line_and_key_path", |c| Box::pin(v1_errors(c))),
    ("v1_project_runs_scales_restarts_kills_logs_and_goes_down", |c| Box::pin(v1_lifecycle(c))),
];

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "supervise") {
        let [_, flag, run_dir] = args.as_slice() else {
            eprintln!("usage: api supervise --run-dir DIR");
            return ExitCode::from(2);
        };
        assert_eq!(flag, "--run-dir");
        return ExitCode::from(mini::agent::runtime::supervise(Path::new(run_dir)).clamp(0, 255) as u8);
    }
    let args: Vec<String> = args.iter().filter_map(|a| a.to_str().map(str::to_owned)).collect();
    if args.iter().any(|a| a == "--list") {
        // nextest also asks for the ignored tests (`--list --ignored`): there are none.
        if !args.iter().any(|a| a == "--ignored") {
            for (name, _) in TESTS {
                println!("{name}: test");
            }
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&(&str, TestFn)> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("m3s-server-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let failed = runtime.block_on(async {
        let ctx = setup(&dir).await;
        let mut failed = Vec::new();
        for (name, test) in selected {
            // A panic ends only its own task: the rest still run and cleanup still happens.
            let ok = tokio::spawn(test(ctx.clone())).await.is_ok();
            println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
            if !ok {
                failed.push(*name);
            }
        }
        failed
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    kill_tasks_under(&dir);
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        println!("\ntest result: ok.");
        ExitCode::SUCCESS
    } else {
        println!("\ntest result: FAILED. {failed:?} (work dir kept: {})", dir.display());
        ExitCode::FAILURE
    }
}

#[derive(Clone)]
struct Ctx {
    api: String,
    http: reqwest::Client,
    dir: PathBuf,
}

async fn setup(dir: &Path) -> Ctx {
    let mesos_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mesos_port = mesos_listener.local_addr().unwrap().port();
    let cluster = Cluster::start(ClusterConfig {
        work_dir: dir.join("mini"),
        hostname: "127.0.0.1".into(),
        ip: std::net::Ipv4Addr::LOCALHOST,
        port: mesos_port,
        resources: Resources::parse("cpus:8;mem:8192;disk:10000;ports:[31000-31099]").unwrap(),
        attributes: Vec::new(),
        heartbeat_interval: Duration::from_secs(15),
        supervisor_exe: std::env::current_exe().unwrap(),
        allowed_users: mini::master::AllowedUsers::Any,
        containers: None,
        docker: None,
    })
    .await
    .unwrap();
    // Agents name sandboxes under their `work_dir` flag, as Mesos's do.
    let flags = vec![("work_dir".to_owned(), dir.join("mini").display().to_string())];
    let mesos_app = mini::http::app(cluster, mini::http::HttpConfig { flags, ..Default::default() });
    tokio::spawn(async move { axum::serve(mesos_listener, mesos_app).await.unwrap() });

    let master = format!("127.0.0.1:{mesos_port}");
    let store = Store::open(&StoreConfig::Redb { path: dir.join("framework.redb") }).await.unwrap();
    let info = FrameworkInfo { name: "m3s-server-test".into(), ..Default::default() };
    let framework = Framework::start(SchedulerConfig::new(master.clone(), info), store, "t".into(), Default::default())
        .await
        .unwrap();
    let files = AgentFiles::new(&master, false, TransportConfig::default()).unwrap();
    let state = ApiState::new(framework, Auth::basic_or_token("admin", "s3cret", "t0ken"), Default::default())
        .with_files(files);
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", api_listener.local_addr().unwrap());
    let app = router(state);
    tokio::spawn(async move { axum::serve(api_listener, app).await.unwrap() });
    Ctx { api, http: reqwest::Client::new(), dir: dir.to_owned() }
}

impl Ctx {
    /// A request with the bearer token.
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.api)).bearer_auth("t0ken")
    }

    async fn send(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let response = self.req(method.clone(), path).body(body.to_owned()).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, "").await
    }

    /// GETs `path` until `done` holds for its JSON body, and returns that body.
    async fn until(&self, what: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let (status, body) = self.get(path).await;
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last {status}: {body:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn live_tasks(&self, project: &str, service: &str) -> Vec<Value> {
        let (status, tasks) = self.get(&format!("/api/v1/tasks?project={project}&service={service}")).await;
        assert_eq!(status, StatusCode::OK, "{tasks}");
        tasks.as_array().unwrap().iter().filter(|t| is_live(t)).cloned().collect()
    }
}

fn is_live(task: &Value) -> bool {
    matches!(task["state"].as_str(), Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"))
}

fn service<'a>(project: &'a Value, name: &str) -> &'a Value {
    project["services"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or(&Value::Null)
}

// ------------------------------------------------------------------ tests

async fn auth(c: Ctx) {
    let url = format!("{}/api/v1/projects", c.api);
    let none = c.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Basic realm=\"m3s\"");
    let body: Value = none.json_text().await;
    assert!(body["error"].is_string(), "{body}");

    let wrong_basic = c.http.get(&url).basic_auth("admin", Some("wrong")).send().await.unwrap();
    assert_eq!(wrong_basic.status(), StatusCode::UNAUTHORIZED);
    let wrong_user = c.http.get(&url).basic_auth("root", Some("s3cret")).send().await.unwrap();
    assert_eq!(wrong_user.status(), StatusCode::UNAUTHORIZED);
    let wrong_token = c.http.get(&url).bearer_auth("t0ke").send().await.unwrap();
    assert_eq!(wrong_token.status(), StatusCode::UNAUTHORIZED);
    let v0 = c.http.get(format!("{}/api/compose/v0/tasks", c.api)).send().await.unwrap();
    assert_eq!(v0.status(), StatusCode::UNAUTHORIZED);

    let basic = c.http.get(&url).basic_auth("admin", Some("s3cret")).send().await.unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    // Written by hand too, with a lowercase scheme (RFC 9110: schemes are case-insensitive).
    let encoded = base64::engine::general_purpose::STANDARD.encode("admin:s3cret");
    let lower = c.http.get(&url).header("authorization", format!("basic {encoded}")).send().await.unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    let bearer = c.http.get(&url).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    for open in ["/api/v1/health", "/api/v1/openapi.json", "/api/compose/versions"] {
        let r = c.http.get(format!("{}{open}", c.api)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{open}");
    }
    let versions = c.http.get(format!("{}/api/compose/versions", c.api)).send().await.unwrap();
    assert_eq!(versions.headers()["api-service"], "v0");
    assert_eq!(versions.text().await.unwrap(), "/api/compose/v0");
    c.until("the framework to subscribe", "/api/v1/health", |h| h["subscribed"] == true).await;
}

const V0_YAML: &str = "\
services:
  web:
    command: [\"sleep\", \"1000\"]
    environment:
      DB_PASSWORD: hunter2
  worker:
    command: [\"sleep\", \"1000\"]
";

async fn v0_deploy(c: Ctx) {
    let response = c.req(Method::PUT, "/api/compose/v0/v0demo").body(V0_YAML).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["api-service"], "v0");
    let parsed: Value = response.json_text().await;
    assert!(parsed["services"]["web"].is_object() && parsed["services"]["worker"].is_object(), "{parsed:#}");

    let tasks = c
        .until("both v0 services running", "/api/compose/v0/tasks", |tasks| {
            let running = |s: &str| {
                tasks
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["project"] == "v0demo" && t["service"] == s && t["state"] == "TASK_RUNNING")
            };
            running("web") && running("worker")
        })
        .await;
    let text = tasks.to_string();
    assert!(!text.contains("hunter2"), "a secret is listed: {text}");
    let web = tasks.as_array().unwrap().iter().find(|t| t["service"] == "web").unwrap();
    assert_eq!(web["environment"], json!({ "DB_PASSWORD": "" }));
}

async fn v0_errors_and_update(c: Ctx) {
    let bad = c.req(Method::PUT, "/api/compose/v0/v0demo").body("services: [web\n").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(bad.headers()["api-service"], "v0");

    let (status, body) = c.send(Method::DELETE, "/api/compose/v0/tasks/no-such-task", "").await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");

    let update = Method::from_bytes(b"UPDATE").unwrap();
    let (status, body) = c.send(update.clone(), "/api/compose/v0/v0demo", V0_YAML).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["services"]["web"].is_object(), "{body:#}");
    let (status, _) = c.send(update, "/api/compose/v0/v0demo", "services: [web\n").await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    let (status, _) = c.send(Method::PATCH, "/api/compose/v0/v0demo", V0_YAML).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn v0_service_calls(c: Ctx) {
    // Each test runs in a process of its own (nextest): deploy what this one needs.
    let (status, body) = c.send(Method::PUT, "/api/compose/v0/v0demo", V0_YAML).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.until("the worker to run", "/api/v1/tasks?project=v0demo&service=worker", |tasks| {
        tasks.as_array().unwrap().iter().any(|t| t["state"] == "TASK_RUNNING")
    })
    .await;
    let before: Vec<String> =
        c.live_tasks("v0demo", "worker").await.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(before.len(), 1, "{before:?}");
    let (status, body) = c.send(Method::PUT, "/api/compose/v0/v0demo/worker/restart", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.until("a new worker task", "/api/v1/tasks?project=v0demo&service=worker", |tasks| {
        tasks.as_array().unwrap().iter().any(|t| t["state"] == "TASK_RUNNING" && t["id"] != before[0].as_str())
    })
    .await;

    let (status, body) = c.send(Method::DELETE, "/api/compose/v0/v0demo/web", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.until("web's task to end", "/api/v1/tasks?project=v0demo&service=web", |tasks| {
        !tasks.as_array().unwrap().iter().any(is_live)
    })
    .await;
    let (status, _) = c.send(Method::DELETE, "/api/compose/v0/v0demo/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);

    let (status, _) = c.send(Method::PUT, "/api/compose/v0/framework/suppress", "").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = c.send(Method::DELETE, "/api/v1/projects/v0demo", "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    c.until("v0demo to go", "/api/v1/projects", |ps| !ps.as_array().unwrap().iter().any(|p| p["name"] == "v0demo"))
        .await;
}

async fn v1_errors(c: Ctx) {
    let yaml = "services:\n  web:\n    command: sleep 1000\n    restart: sometimes\n";
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/broken", yaml).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let d = &body["diagnostics"][0];
    assert_eq!(d["line"], 4, "{body:#}");
    let path = d["path"].as_str().unwrap();
    assert!(path.contains("web") && path.contains("restart"), "{body:#}");

    let (status, body) = c.send(Method::PUT, "/api/v1/projects/broken", "services: [web\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["diagnostics"][0]["line"].is_number(), "{body:#}");
    // A warning is an error when asked to be strict, and reported otherwise.
    let warned = "services:\n  web:\n    command: [\"sleep\", \"1000\"]\n    hostname: web\n";
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/broken?strict=true", warned).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["diagnostics"][0]["path"].as_str().unwrap().contains("hostname"), "{body:#}");
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/broken?strict=yes-please", warned).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/broken", warned).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["warnings"][0]["path"].as_str().unwrap().contains("hostname"), "{body:#}");
    let (status, _) = c.send(Method::DELETE, "/api/v1/projects/broken", "").await;
    assert_eq!(status, StatusCode::ACCEPTED);

    for path in ["/api/v1/projects/nothing", "/api/v1/projects/nothing/services/web"] {
        let (status, body) = c.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, _) = c.send(Method::DELETE, "/api/v1/projects/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c.send(Method::DELETE, "/api/v1/tasks/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c.send(Method::PUT, "/api/v1/projects/nothing/services/web/scale", "{\"replicas\":1}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn v1_lifecycle(c: Ctx) {
    let marker = format!("marker-{}-{}", std::process::id(), c.dir.display().to_string().len());
    let yaml = format!(
        "services:\n  app:\n    command: [\"sh\", \"-c\", \"echo {marker}; echo {marker}-err >&2; sleep 1000; true\"]\n"
    );
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/life", &yaml).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["project"], "life");
    assert_eq!(body["created"], json!(["app"]), "{body}");
    let (status, again) = c.send(Method::PUT, "/api/v1/projects/life", &yaml).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["unchanged"], json!(["app"]), "{again}");

    let view = c
        .until("app running", "/api/v1/projects/life", |p| {
            let s = service(p, "app");
            s["state"] == "running" && s["running"] == 1
        })
        .await;
    let app = service(&view, "app");
    assert_eq!(app["replicas"], 1);
    let task = app["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "TASK_RUNNING").unwrap();
    let task_id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["replica"], 0);
    let (status, listed) = c.get("/api/v1/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.as_array().unwrap().iter().any(|p| p["name"] == "life"), "{listed}");
    let (status, one) = c.get("/api/v1/projects/life/services/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "app");

    // Logs: the task's stdout and stderr, through the master and the agent's files API.
    let logs = c
        .until("the marker in stdout", &format!("/api/v1/tasks/{task_id}/logs"), |l| {
            l["data"].as_str().is_some_and(|d| d.contains(&marker))
        })
        .await;
    let next = logs["offset"].as_u64().unwrap();
    assert!(next > 0, "{logs}");
    let (status, from_start) = c.get(&format!("/api/v1/tasks/{task_id}/logs?stream=stdout&offset=0&length=6")).await;
    assert_eq!(status, StatusCode::OK, "{from_start}");
    assert_eq!(from_start["data"], "marker");
    assert_eq!(from_start["offset"], 6);
    let (_, at_end) = c.get(&format!("/api/v1/tasks/{task_id}/logs?offset={next}")).await;
    assert_eq!(at_end["data"], "");
    assert_eq!(at_end["eof"], true);
    c.until("the marker in stderr", &format!("/api/v1/tasks/{task_id}/logs?stream=stderr"), |l| {
        l["data"].as_str().is_some_and(|d| d.contains(&format!("{marker}-err")))
    })
    .await;
    let (status, bad) = c.get(&format!("/api/v1/tasks/{task_id}/logs?stream=stdin")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let service_logs =
        c.req(Method::GET, "/api/v1/projects/life/services/app/logs").send().await.unwrap().text().await.unwrap();
    assert!(service_logs.contains(&format!("app-0 | {marker}")), "{service_logs}");

    // Scale up, then to zero.
    let (status, body) = c.send(Method::PUT, "/api/v1/projects/life/services/app/scale", "{\"replicas\": 2}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.until("two replicas", "/api/v1/projects/life", |p| service(p, "app")["running"] == 2).await;
    let (status, _) = c.send(Method::PUT, "/api/v1/projects/life/services/app/scale", "{\"replicas\": \"x\"}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c.send(Method::PUT, "/api/v1/projects/life/services/app/scale", "{\"replicas\": 0}").await;
    assert_eq!(status, StatusCode::OK);
    c.until("no replicas", "/api/v1/projects/life", |p| {
        let s = service(p, "app");
        s["running"] == 0 && s["replicas"] == 0 && !s["tasks"].as_array().unwrap().iter().any(is_live)
    })
    .await;
    let (status, _) = c.send(Method::PUT, "/api/v1/projects/life/services/app/scale", "{\"replicas\": 1}").await;
    assert_eq!(status, StatusCode::OK);
    let view = c.until("one replica again", "/api/v1/projects/life", |p| service(p, "app")["running"] == 1).await;
    let running = |v: &Value| -> String {
        service(v, "app")["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "TASK_RUNNING").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = running(&view);

    // Restart: a new task replaces the running one.
    let (status, body) = c.send(Method::POST, "/api/v1/projects/life/services/app/restart", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view = c
        .until("a restarted task", "/api/v1/projects/life", |p| {
            let s = service(p, "app");
            s["running"] == 1
                && s["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["state"] == "TASK_RUNNING" && t["id"] != before.as_str())
        })
        .await;
    let restarted = running(&view);

    // Killing a task: the engine starts a replacement.
    let (status, body) = c.send(Method::DELETE, &format!("/api/v1/tasks/{restarted}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.until("the killed task to be replaced", "/api/v1/tasks?project=life", |tasks| {
        let tasks = tasks.as_array().unwrap();
        tasks.iter().any(|t| t["id"] == restarted.as_str() && !is_live(t))
            && tasks.iter().any(|t| t["state"] == "TASK_RUNNING" && t["id"] != restarted.as_str())
    })
    .await;
    assert!(processes_with(&marker) > 0, "the running task's shell mentions the marker");

    // Down: no live task, and no process left with the marker.
    let (status, body) = c.send(Method::DELETE, "/api/v1/projects/life", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    c.until("no live tasks of life", "/api/v1/tasks?project=life", |tasks| {
        !tasks.as_array().unwrap().iter().any(is_live)
    })
    .await;
    c.until("life to be gone", "/api/v1/projects", |ps| !ps.as_array().unwrap().iter().any(|p| p["name"] == "life"))
        .await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while processes_with(&marker) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "a process with {marker} is still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ helpers

trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Live (not zombie) processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')))
                .unwrap_or(true);
            !zombie && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .count()
}

/// SIGKILLs every supervisor and task process whose command line or working
/// directory mentions `dir` (tasks outlive their cluster by design).
fn kill_tasks_under(dir: &Path) {
    let needle = dir.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid as u32 == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cwd =
            std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.starts_with(&needle) {
            let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    }
}
