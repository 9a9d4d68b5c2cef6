//! `POST /api/v1/scheduler`: SUBSCRIBE opens a chunked RecordIO stream; every
//! other call answers 202 (or Mesos's error).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesos::v1::scheduler::{Call, CallKind, Error as ErrorEvent, Event};
use tokio::sync::mpsc;

use super::{AppState, HttpError, accepts_json, authenticate, parse_json, require_json, require_post};
use crate::cluster::{Cluster, record};

pub(crate) async fn scheduler(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(state, method, headers, body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: AppState, method: Method, headers: HeaderMap, body: Bytes) -> Result<Response, HttpError> {
    let principal = authenticate(&state, &headers, "mesos-master-scheduler")?;
    require_post(&method)?;
    require_json(&headers)?;
    let value = parse_json(&body)?;
    let call = validate(&value)?;
    let stream_id = headers.get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let CallKind::Subscribe(mut subscribe) = call.kind {
        if !accepts_json(&headers) {
            return Err(HttpError::new(StatusCode::NOT_ACCEPTABLE, "Expecting 'Accept' to allow application/json"));
        }
        if stream_id.is_some() {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            ));
        }
        if let Some(p) = &principal {
            match &subscribe.framework_info.principal {
                Some(given) if given != p => {
                    return Err(HttpError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "Authenticated principal '{p}' does not match principal '{given}' set in `FrameworkInfo`"
                        ),
                    ));
                }
                // The framework is bound to the principal that authenticated it, so
                // that no other principal can subscribe with its id.
                _ => subscribe.framework_info.principal = Some(p.clone()),
            }
        }
        return Ok(subscribe_stream(&state.cluster, call.framework_id, subscribe));
    }
    let cluster = state.cluster.clone();
    cluster
        .with_master(|m, now| m.handle_call(now, stream_id.as_deref(), call))
        .map_err(|e| HttpError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.message))?;
    Ok(empty(StatusCode::ACCEPTED))
}

/// Parses the call with Mesos's validation messages: `type` present, the
/// body for the type present, then the typed decode.
fn validate(value: &serde_json::Value) -> Result<Call, HttpError> {
    let invalid =
        |m: String| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to validate scheduler::Call: {m}"));
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Err(invalid("Expecting 'type' to be present".into()));
    };
    let body_key = kind.to_ascii_lowercase();
    let needs_body = !matches!(kind, "TEARDOWN" | "REVIVE" | "SUPPRESS");
    if needs_body && CallKind::TYPE_NAMES.contains(&kind) && value.get(&body_key).is_none_or(|b| b.is_null()) {
        return Err(invalid(format!("Expecting '{body_key}' to be present")));
    }
    if kind != "SUBSCRIBE" && value.get("framework_id").is_none_or(|b| b.is_null()) {
        return Err(invalid("Expecting 'framework_id' to be present".into()));
    }
    serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))
}

fn empty(status: StatusCode) -> Response {
    Response::builder().status(status).body(Body::empty()).expect("static response")
}

/// SUBSCRIBE: 200 with `Mesos-Stream-Id` and an endless RecordIO body, or an
/// ERROR record and the end of the stream when the FrameworkInfo is refused.
fn subscribe_stream(
    cluster: &Cluster,
    framework_id: Option<mesos::v1::FrameworkId>,
    subscribe: mesos::v1::scheduler::Subscribe,
) -> Response {
    // The stream must exist before the master's SUBSCRIBED event is dispatched,
    // so subscribe and register happen under one lock via a pre-registered id.
    let outcome = cluster.with_master(|m, now| {
        m.subscribe(now, framework_id, subscribe).map(|(fid, stream_id)| {
            let rx = cluster.open_stream(&stream_id);
            (fid, stream_id, rx)
        })
    });
    match outcome {
        Err(refusal) => {
            let id = uuid::Uuid::new_v4().to_string();
            let error = record(&Event::Error(ErrorEvent { message: refusal.0 }));
            let body = Body::from_stream(futures_util::stream::once(async move { Ok::<_, std::io::Error>(error) }));
            stream_response(&id, body)
        }
        Ok((_fid, stream_id, rx)) => {
            let heartbeat = cluster.config().heartbeat_interval;
            let guard = StreamGuard { cluster: cluster.clone(), stream_id: stream_id.clone() };
            stream_response(&stream_id, Body::from_stream(events(rx, heartbeat, guard)))
        }
    }
}

fn stream_response(stream_id: &str, body: Body) -> Response {
    let mut res = Response::builder().status(StatusCode::OK).body(body).expect("static response");
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(stream_id) {
        h.insert("Mesos-Stream-Id", v);
    }
    res
}

/// Tells the cluster when the client's connection goes away (the body stream
/// is dropped by hyper), so the framework's failover timeout starts.
struct StreamGuard {
    cluster: Cluster,
    stream_id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.cluster.stream_gone(&self.stream_id);
    }
}

/// The stream body: the master's events as they come, and a HEARTBEAT
/// every interval.
fn events(
    rx: mpsc::UnboundedReceiver<Bytes>,
    heartbeat: Duration,
    guard: StreamGuard,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let beat = record(&Event::Heartbeat);
    futures_util::stream::unfold((rx, ticker, guard), move |(mut rx, mut ticker, guard)| {
        let beat = beat.clone();
        async move {
            tokio::select! {
                biased;
                msg = rx.recv() => {
                    let bytes = msg?;
                    ticker.reset();
                    Some((Ok(bytes), (rx, ticker, guard)))
                }
                _ = ticker.tick() => Some((Ok(beat), (rx, ticker, guard))),
            }
        }
    })
}
