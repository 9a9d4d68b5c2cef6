//! The master's operator API, `POST /api/v1` (and any `/api/v1/...` path,
//! which libprocess routes to it by longest prefix: pymesos posts to
//! `/api/v1/operator`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesos::v1::operator::event::Subscribed;
use mesos::v1::operator::{Call, Event, Response as OperatorResponse};

use super::views;
use super::{AppState, HttpError, accepts_json, authenticate, parse_json, require_json, require_post};
use crate::cluster::record;

pub(crate) async fn operator(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(state, method, headers, body) {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

fn handle(state: AppState, method: Method, headers: HeaderMap, body: Bytes) -> Result<Response, HttpError> {
    require_post(&method)?;
    require_json(&headers)?;
    let value = parse_json(&body)?;
    if value.get("type").and_then(|t| t.as_str()).is_none() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "Failed to validate master::Call: Expecting 'type' to be present",
        ));
    }
    let call: Call = serde_json::from_value(value)
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to validate master::Call: {e}")))?;
    if !accepts_json(&headers) {
        return Err(HttpError::new(StatusCode::NOT_ACCEPTABLE, "Expecting 'Accept' to allow application/json"));
    }
    let flags = views::Flags(state.config.flags.clone());
    let cluster = &state.cluster;
    let response = match call {
        Call::GetHealth => OperatorResponse::GetHealth(views::get_health()),
        Call::GetFlags => OperatorResponse::GetFlags(views::get_flags(&flags)),
        Call::GetVersion => cluster.read(|m| OperatorResponse::GetVersion(views::get_version(m))),
        Call::GetMetrics(_) => {
            let system = super::legacy::system_stats();
            let now = crate::cluster::clock().unix;
            cluster
                .read(|m| OperatorResponse::GetMetrics(views::get_metrics(&views::metrics_snapshot(m, &system, now))))
        }
        Call::GetState => cluster.read(|m| OperatorResponse::GetState(views::get_state(m))),
        Call::GetAgents => cluster.read(|m| OperatorResponse::GetAgents(views::get_agents(m))),
        Call::GetFrameworks => cluster.read(|m| OperatorResponse::GetFrameworks(views::get_frameworks(m))),
        Call::GetExecutors => cluster.read(|m| OperatorResponse::GetExecutors(views::get_executors(m))),
        Call::GetTasks => cluster.read(|m| OperatorResponse::GetTasks(views::get_tasks(m))),
        Call::GetRoles => cluster.read(|m| OperatorResponse::GetRoles(views::get_roles(m))),
        Call::GetMaster => cluster.read(|m| OperatorResponse::GetMaster(views::get_master(m))),
        Call::Subscribe => return Ok(subscribe(&state)),
        Call::Teardown(teardown) => {
            authenticate(&state, &headers, "mesos-master-readwrite")?;
            let found = cluster.with_master(|m, now| m.teardown(now, &teardown.framework_id));
            return if found {
                Ok(StatusCode::OK.into_response())
            } else {
                Err(HttpError::new(StatusCode::BAD_REQUEST, "No framework found with specified ID"))
            };
        }
        other => {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("m3s mini does not implement the operator call {}", other.type_name()),
            ));
        }
    };
    Ok(super::json(&response, None))
}

/// Operator SUBSCRIBE: SUBSCRIBED with the whole state, then events.
fn subscribe(state: &AppState) -> Response {
    let cluster = &state.cluster;
    // Snapshot and registration under one lock, so no event falls in between.
    let rx = cluster.with_master(|m, _| {
        let first = Event::Subscribed(Subscribed {
            get_state: Some(views::get_state(m)),
            heartbeat_interval_seconds: Some(cluster.config().heartbeat_interval.as_secs_f64()),
        });
        cluster.open_operator_stream(record(&first))
    });
    let heartbeat = cluster.config().heartbeat_interval;
    let beat = record(&Event::Heartbeat);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let body = futures_util::stream::unfold((rx, ticker), move |(mut rx, mut ticker)| {
        let beat = beat.clone();
        async move {
            tokio::select! {
                biased;
                msg = rx.recv() => Some((Ok::<_, std::io::Error>(msg?), (rx, ticker))),
                _ = ticker.tick() => Some((Ok(beat), (rx, ticker))),
            }
        }
    });
    let mut res = Response::builder().status(StatusCode::OK).body(Body::from_stream(body)).expect("static response");
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
