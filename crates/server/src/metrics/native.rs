//! M3trics's own endpoints: the native query, flush, reports, the error log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::query::{Aggregation, NativeQuery};
use serde_json::json;

use super::MetricsState;
use super::params::{ParamError, Params, parse_duration};

const DAY_MS: i64 = 86_400_000;

fn bad(message: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.to_string() }))).into_response()
}

/// A well-formed request the store refuses (a limit it would pass).
fn unprocessable(e: impl std::fmt::Display) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": e.to_string() }))).into_response()
}

/// `GET /api/m3trics/v1/query?measurement=&field=&tag=k=v&tag=k=~re&start=&end=&step=&agg=&group_by=a,b`
pub async fn query(State(state): State<MetricsState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let q = match native_query(&p) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    state.counters().query();
    let store = state.store().clone();
    match super::blocking(move || metrics::query::run(&q, &*store)).await {
        Ok(series) => Json(json!({ "series": series })).into_response(),
        Err(e) => bad(e),
    }
}

fn native_query(p: &Params) -> Result<NativeQuery, ParamError> {
    let now = metrics::store::now_ms();
    let end = p.time("end", now)?;
    let start = p.time("start", end - 3_600_000)?;
    let step = match p.get("step") {
        None | Some("") => None,
        Some(s) => Some(parse_duration(s).ok_or_else(|| ParamError::Invalid { key: "step", value: s.to_owned() })?),
    };
    let aggregation = p.get("agg").unwrap_or("mean").parse::<Aggregation>()?;
    let mut tags = Vec::new();
    for t in p.all("tag") {
        tags.push(metrics::query::parse_tag(t).map_err(|problem| ParamError::Tag { value: t.to_owned(), problem })?);
    }
    let group_by =
        p.get("group_by").map(|g| g.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect());
    Ok(NativeQuery {
        measurement: p.required("measurement")?.to_string(),
        field: p.required("field")?.to_string(),
        tags,
        start,
        end,
        step,
        aggregation,
        group_by,
    })
}

/// `POST /api/m3trics/v1/flush`: seals the head into a block now.
pub async fn flush(State(state): State<MetricsState>) -> Response {
    let store = state.store().clone();
    match super::blocking(move || store.flush().map(|()| store.stats())).await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => crate::error::ApiError::internal("metrics flush failed", e).into_response(),
    }
}

fn range(p: &Params) -> Result<(i64, i64), ParamError> {
    let now = metrics::store::now_ms();
    let end = p.time("end", now)?;
    let start = p.time("start", end - 3 * DAY_MS)?;
    if start > end {
        return Err(ParamError::Reversed);
    }
    Ok((start, end))
}

/// `start`, `end` (default: the last 3 days) and `limit` (default 10) of a report or the error log.
fn range_and_limit(p: &Params) -> Result<(i64, i64, usize), ParamError> {
    let (start, end) = range(p)?;
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(v) => v.parse().map_err(|_| ParamError::Invalid { key: "limit", value: v.to_owned() })?,
    };
    Ok((start, end, limit))
}

/// `GET /api/m3trics/v1/reports/nodes?order=least|most&start=&end=&limit=`: average memory use per node.
pub async fn report_nodes(State(state): State<MetricsState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let order = match p.get("order").unwrap_or("least") {
        "least" => metrics::report::Order::Least,
        "most" => metrics::report::Order::Most,
        other => return bad(format!("invalid parameter \"order\": {other:?} (least or most)")),
    };
    let (start, end, limit) = match range_and_limit(&p) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let store = state.store().clone();
    match super::blocking(move || metrics::report::node_memory(&*store, start, end, order, limit)).await {
        Ok(rows) => Json(json!({ "start": start, "end": end, "nodes": rows })).into_response(),
        Err(e) => unprocessable(e),
    }
}

/// `GET /api/m3trics/v1/reports/tasks?by=cpu|memory&start=&end=&limit=`: top tasks.
pub async fn report_tasks(State(state): State<MetricsState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let by = match p.get("by").unwrap_or("cpu") {
        "cpu" => metrics::report::By::Cpu,
        "memory" | "mem" => metrics::report::By::Memory,
        other => return bad(format!("invalid parameter \"by\": {other:?} (cpu or memory)")),
    };
    let (start, end, limit) = match range_and_limit(&p) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let store = state.store().clone();
    match super::blocking(move || metrics::report::top_tasks(&*store, start, end, by, limit)).await {
        Ok(rows) => Json(json!({ "start": start, "end": end, "tasks": rows })).into_response(),
        Err(e) => unprocessable(e),
    }
}

/// `GET /api/m3trics/v1/errors?start=&end=&limit=`: task failures and lost agents, newest first.
pub async fn errors(State(state): State<MetricsState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let Some(log) = state.inner.errors.clone() else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "no error log: M3trics runs without a Mesos master" })))
            .into_response();
    };
    let (start, end, limit) = match range_and_limit(&p) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let records = super::blocking(move || log.query(start, end, limit.max(1))).await;
    Json(json!({ "start": start, "end": end, "errors": records })).into_response()
}

/// `GET /api/m3trics/v1/anomalies?start=&end=&open=true`: anomaly events, newest first
/// (default: the last day), the watched series' count and what is wrong with the watch.
pub async fn anomalies(State(state): State<MetricsState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let Some(watch) = state.inner.anomalies.clone() else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "anomaly detection is off (--anomaly-interval 0)" })))
            .into_response();
    };
    let since = match p.get("start") {
        None | Some("") => metrics::store::now_ms() - 24 * 3600 * 1000,
        Some(_) => match range(&p) {
            Ok((start, _)) => start,
            Err(e) => return bad(e),
        },
    };
    let open_only = match p.get("open") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => return bad(format!("invalid parameter \"open\": {other:?} (true or false)")),
    };
    let (watched, problem) = watch.status();
    let events = watch.events(since, open_only);
    Json(json!({ "since": since, "watched_series": watched, "problem": problem, "anomalies": events })).into_response()
}
