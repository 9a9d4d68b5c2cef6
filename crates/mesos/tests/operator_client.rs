//! The operator and agent clients against a protocol test double that answers
//! with the bodies a real Mesos master and agent sent
//! (`../shared/reference/mesos-captures`), plus a second double that redirects
//! every request to the first, as a non-leading master does.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use mesos::legacy::{MasterState, MonitorEntry};
use mesos::operator::{AgentClient, OperatorClient};
use mesos::transport::TransportConfig;
use mesos::v1::TaskState;
use mesos::v1::operator::Event;

#[path = "support/captures.rs"]
mod captures;
use captures::captures_dir;

/// The response body of a capture file: what follows the blank line after the
/// status line and headers.
fn capture_body(name: &str) -> String {
    let text = std::fs::read_to_string(captures_dir().join(name)).unwrap();
    let response = &text[text.find("\nHTTP ").expect("a response")..];
    response.split_once("\n\n").map(|(_, body)| body.trim().to_owned()).unwrap_or_default()
}

async fn operator(body: Bytes) -> Response {
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let file = match call["type"].as_str().unwrap() {
        "GET_HEALTH" => "20-OPERATOR-GET_HEALTH.txt",
        "GET_VERSION" => "21-OPERATOR-GET_VERSION.txt",
        "GET_STATE" => "22-OPERATOR-GET_STATE.txt",
        "GET_AGENTS" => "23-OPERATOR-GET_AGENTS.txt",
        "GET_FRAMEWORKS" => "24-OPERATOR-GET_FRAMEWORKS.txt",
        "GET_TASKS" => "25-OPERATOR-GET_TASKS.txt",
        "GET_METRICS" => {
            assert!(call.get("get_metrics").is_some(), "a real master needs the get_metrics body");
            "29-OPERATOR-GET_METRICS.txt"
        }
        "SUBSCRIBE" => return subscribe_stream(),
        other => return (StatusCode::NOT_IMPLEMENTED, other.to_owned()).into_response(),
    };
    ([(header::CONTENT_TYPE, "application/json")], capture_body(file)).into_response()
}

/// SUBSCRIBED (built from the captured GET_STATE), a HEARTBEAT, a TASK_UPDATED,
/// then the stream ends.
fn subscribe_stream() -> Response {
    let state: serde_json::Value = serde_json::from_str(&capture_body("22-OPERATOR-GET_STATE.txt")).unwrap();
    let events = [
        serde_json::json!({"type": "SUBSCRIBED", "subscribed": {"get_state": state["get_state"], "heartbeat_interval_seconds": 15.0}}),
        serde_json::json!({"type": "HEARTBEAT"}),
        serde_json::json!({"type": "TASK_UPDATED", "task_updated": {
            "framework_id": {"value": "fw"}, "state": "TASK_FINISHED",
            "status": {"task_id": {"value": "t1"}, "state": "TASK_FINISHED"}}}),
    ];
    let mut body = bytes::BytesMut::new();
    for e in events {
        mesos::recordio::encode(&serde_json::to_vec(&e).unwrap(), &mut body);
    }
    Response::builder().header(header::CONTENT_TYPE, "application/json").body(Body::from(body.freeze())).unwrap()
}

#[derive(serde::Deserialize)]
struct ReadQuery {
    path: String,
    offset: i64,
    length: Option<usize>,
}

async fn files_read(Query(q): Query<ReadQuery>) -> Response {
    let content = "hello from the sandbox\n";
    if q.path != "/var/lib/m3s/sandbox/t 1/stdout" {
        return (StatusCode::NOT_FOUND, "File not found").into_response();
    }
    let start = q.offset.max(0) as usize;
    let end = q.length.map_or(content.len(), |l| (start + l).min(content.len()));
    let data = if q.offset < 0 { "" } else { &content[start..end] };
    let offset = if q.offset < 0 { content.len() } else { start };
    axum::Json(serde_json::json!({"data": data, "offset": offset})).into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr.to_string()
}

async fn leader() -> String {
    serve(
        Router::new()
            .route("/api/v1", post(operator))
            .route("/master/state", get(|| async { capture_body("13-GET_master_state.txt") }))
            .route("/monitor/statistics", get(|| async { capture_body("10-AGENT_GET_monitor_statistics.txt") }))
            .route("/files/read", get(files_read)),
    )
    .await
}

/// Answers everything with 307 to `leader`, keeping the path.
async fn follower(leader: String) -> String {
    async fn redirect(State(leader): State<String>, uri: Uri) -> Response {
        (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, format!("//{leader}{}", uri.path()))]).into_response()
    }
    serve(Router::new().route("/{*path}", any(redirect)).with_state(leader)).await
}

#[tokio::test]
async fn get_calls_decode_what_a_real_master_sent() {
    let leader = leader().await;
    let client = OperatorClient::new(&leader, false, TransportConfig::default()).unwrap();
    assert!(client.get_health().await.unwrap().healthy);
    assert_eq!(client.get_version().await.unwrap().version_info.version, "1.12.0");
    let state = client.get_state().await.unwrap();
    assert!(
        state.get_tasks.unwrap().tasks.iter().any(|t| t.task_id.value == "sleeper-1" && t.state == TaskState::Running)
    );
    let agents = client.get_agents().await.unwrap();
    assert_eq!(agents.agents.len(), 1);
    assert_eq!(agents.agents[0].agent_info.hostname, "localhost");
    let frameworks = client.get_frameworks().await.unwrap();
    assert_eq!(frameworks.frameworks[0].framework_info.name, "capture");
    assert!(!client.get_tasks().await.unwrap().tasks.is_empty());
    let metrics = client.get_metrics(Some(Duration::from_secs(5))).await.unwrap();
    assert!(metrics.metrics.iter().any(|m| m.name == "master/elected"));
}

#[tokio::test]
async fn follows_redirects_to_the_leader_for_calls_and_legacy_reads() {
    let leader = leader().await;
    let follower = follower(leader.clone()).await;
    let client = OperatorClient::new(&follower, false, TransportConfig::default()).unwrap();
    assert!(client.get_health().await.unwrap().healthy);
    let state: MasterState = client.get_json("/master/state").await.unwrap();
    assert_eq!(state.hostname, "localhost");
    assert!(!state.frameworks.is_empty());
}

#[tokio::test]
async fn operator_event_stream_yields_typed_events_then_ends() {
    let leader = leader().await;
    let client = OperatorClient::new(&leader, false, TransportConfig::default()).unwrap();
    let mut stream = client.subscribe().await.unwrap();
    let Some(Ok(Event::Subscribed(s))) = stream.next().await else { panic!("SUBSCRIBED first") };
    assert_eq!(s.heartbeat_interval_seconds, Some(15.0));
    assert!(s.get_state.unwrap().get_tasks.unwrap().tasks.iter().any(|t| t.task_id.value == "sleeper-1"));
    assert!(matches!(stream.next().await, Some(Ok(Event::Heartbeat))));
    let Some(Ok(Event::TaskUpdated(u))) = stream.next().await else { panic!("TASK_UPDATED") };
    assert_eq!(u.state, TaskState::Finished);
    assert!(stream.next().await.is_none(), "the master closed the stream on a record boundary");
}

#[tokio::test]
async fn agent_statistics_and_sandbox_reads() {
    let agent = AgentClient::new(format!("http://{}", leader().await), TransportConfig::default()).unwrap();
    let stats: Vec<MonitorEntry> = agent.monitor_statistics().await.unwrap();
    let failer = stats.iter().find(|e| e.executor_id == "failer-1").expect("failer-1 in the capture");
    assert!(failer.statistics.cpus_user_time_secs.is_some());

    let chunk = agent.read_file("/var/lib/m3s/sandbox/t 1/stdout", 0, Some(5)).await.unwrap();
    assert_eq!((chunk.data.as_str(), chunk.offset), ("hello", 0));
    let size = agent.read_file("/var/lib/m3s/sandbox/t 1/stdout", -1, None).await.unwrap();
    assert_eq!(size.offset, 23);
    let err = agent.read_file("/etc/passwd", 0, None).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
}
