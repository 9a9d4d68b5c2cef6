//! The Prometheus HTTP query API, as Grafana's Prometheus data source uses it:
//! `{"status": "success", "data": ...}`, or `{"status": "error", "errorType",
//! "error"}` with 400 for bad parameters and 422 for a failed evaluation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::model::Matcher;
use metrics::promql;
use serde_json::{Value, json};

use super::MetricsState;
use super::params::{ParamError, Params, parse_duration};

fn success(data: Value) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

/// A query answer, written straight into the body.
fn success_value(value: &promql::Value) -> Response {
    let mut body = String::with_capacity(1024);
    body.push_str("{\"status\":\"success\",\"data\":");
    promql::write_prometheus_json(value, &mut body);
    body.push('}');
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn failure(status: StatusCode, kind: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "status": "error", "errorType": kind, "error": message.to_string() }))).into_response()
}

fn bad_data(message: impl std::fmt::Display) -> Response {
    failure(StatusCode::BAD_REQUEST, "bad_data", message)
}

pub async fn query(
    State(state): State<MetricsState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &body);
    let response = instant(&state, &p).await;
    state.counters().request("/api/v1/query", response.status().as_u16());
    response
}

/// The `query` parameter, parsed.
fn expression(p: &Params) -> Result<promql::Expr, ParamError> {
    Ok(promql::parse(p.required("query")?)?)
}

async fn instant(state: &MetricsState, p: &Params) -> Response {
    let expr = match expression(p) {
        Ok(e) => e,
        Err(e) => return bad_data(e),
    };
    let t = match p.time("time", metrics::store::now_ms()) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    state.counters().query();
    let store = state.store().clone();
    match super::blocking(move || promql::eval_instant(&expr, &*store, t).map(|v| success_value(&v))).await {
        Ok(response) => response,
        Err(e) => failure(StatusCode::UNPROCESSABLE_ENTITY, "execution", e.to_string()),
    }
}

pub async fn query_range(
    State(state): State<MetricsState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &body);
    let response = range(&state, &p).await;
    state.counters().request("/api/v1/query_range", response.status().as_u16());
    response
}

async fn range(state: &MetricsState, p: &Params) -> Response {
    let expr = match expression(p) {
        Ok(e) => e,
        Err(e) => return bad_data(e),
    };
    let (start, end) = match (
        p.required("start").and_then(|_| p.time("start", 0)),
        p.required("end").and_then(|_| p.time("end", 0)),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return bad_data(e),
    };
    if end < start {
        return bad_data("invalid parameter \"end\": end timestamp must not be before start time");
    }
    let step = match p.required("step") {
        Ok(s) => match parse_duration(s) {
            Some(step) => step,
            None => {
                return bad_data(format!(
                    "invalid parameter \"step\": cannot parse {s:?} to a valid duration (zero or negative query resolution step widths are not accepted)"
                ));
            }
        },
        Err(e) => return bad_data(e),
    };
    if (end - start) / step > 11_000 {
        return bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        );
    }
    state.counters().query();
    let store = state.store().clone();
    let max_points = state.inner.max_answer_points;
    let answer = move || {
        promql::eval_range(&expr, &*store, start, end, step, max_points)
            .map(|m| success_value(&promql::Value::Matrix(m)))
    };
    match super::blocking(answer).await {
        Ok(response) => response,
        Err(e) => failure(StatusCode::UNPROCESSABLE_ENTITY, "execution", e.to_string()),
    }
}

/// The `match[]` selectors of a labels or series request.
fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, promql::ParseError> {
    p.all("match[]").into_iter().map(promql::parse_selector).collect()
}

pub async fn labels(
    State(state): State<MetricsState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &body);
    let sel = match selectors(&p) {
        Ok(s) => s,
        Err(e) => return bad_data(e),
    };
    let store = state.store().clone();
    success(json!(super::blocking(move || store.label_names(&sel)).await))
}

pub async fn label_values(
    State(state): State<MetricsState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &Bytes::new());
    let sel = match selectors(&p) {
        Ok(s) => s,
        Err(e) => return bad_data(e),
    };
    let store = state.store().clone();
    success(json!(super::blocking(move || store.label_values(&name, &sel)).await))
}

pub async fn series(
    State(state): State<MetricsState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(raw.as_deref(), &headers, &body);
    let sel = match selectors(&p) {
        Ok(s) if s.is_empty() => return bad_data("no match[] parameter provided"),
        Ok(s) => s,
        Err(e) => return bad_data(e),
    };
    let store = state.store().clone();
    let series = super::blocking(move || store.series(&sel)).await;
    let data: Vec<Value> = series
        .iter()
        .map(|l| Value::Object(l.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()))
        .collect();
    success(Value::Array(data))
}

/// Grafana asks for this to tell which Prometheus flavour it talks to.
pub async fn buildinfo() -> Response {
    success(
        json!({ "version": "2.42.0", "revision": "m3s", "branch": "", "buildUser": "", "buildDate": "", "goVersion": "" }),
    )
}
