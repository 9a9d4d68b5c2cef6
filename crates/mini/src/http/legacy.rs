//! The legacy GET endpoints: `/master/state`, `/master/frameworks`, `/slaves`,
//! `/tasks`, `/version`, `/health`, `/master/redirect`, `/master/flags`,
//! `/metrics/snapshot` (every one with `?jsonp=`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::views::{self, TasksQuery};
use super::{AppState, json};

type Params = Query<HashMap<String, String>>;

fn jsonp(q: &HashMap<String, String>) -> Option<&str> {
    q.get("jsonp").map(String::as_str)
}

pub(crate) async fn version(State(state): State<AppState>, Query(q): Params) -> Response {
    state.cluster.read(|m| json(&views::version(m), jsonp(&q)))
}

pub(crate) async fn health() -> Response {
    StatusCode::OK.into_response()
}

/// Always 307 to the leader (this master), protocol-relative, as Mesos does.
pub(crate) async fn redirect(State(state): State<AppState>) -> Response {
    let c = state.cluster.config();
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("//{}:{}", c.hostname, c.port)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

pub(crate) async fn state(State(state): State<AppState>, Query(q): Params) -> Response {
    let flags = views::Flags(state.config.flags.clone());
    state.cluster.read(|m| json(&views::master_state(m, &flags), jsonp(&q)))
}

pub(crate) async fn frameworks(State(state): State<AppState>, Query(q): Params) -> Response {
    let id = q.get("framework_id").map(String::as_str);
    state.cluster.read(|m| json(&views::frameworks(m, id), jsonp(&q)))
}

pub(crate) async fn slaves(State(state): State<AppState>, Query(q): Params) -> Response {
    state.cluster.read(|m| json(&views::slaves(m), jsonp(&q)))
}

pub(crate) async fn tasks(State(state): State<AppState>, Query(q): Params) -> Response {
    // Mesos falls back to the defaults for unparsable parameters.
    let query = TasksQuery::from_params(q.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    state.cluster.read(|m| json(&views::tasks(m, &query), jsonp(&q)))
}

pub(crate) async fn flags(State(state): State<AppState>, Query(q): Params) -> Response {
    let flags = views::Flags(state.config.flags.clone());
    json(&views::flags(&flags), jsonp(&q))
}

pub(crate) async fn metrics(State(state): State<AppState>, Query(q): Params) -> Response {
    let system = system_stats();
    let now = crate::cluster::clock().unix;
    state.cluster.read(|m| json(&views::metrics_snapshot(m, &system, now), jsonp(&q)))
}

/// Machine figures for `system/*` metrics, from /proc.
pub(crate) fn system_stats() -> views::SystemStats {
    let loads: Vec<f64> = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|s| s.parse().ok())
        .collect();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |v| v * 1024.0)
    };
    views::SystemStats {
        cpus_total: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        load_1min: loads.first().copied().unwrap_or(0.0),
        load_5min: loads.get(1).copied().unwrap_or(0.0),
        load_15min: loads.get(2).copied().unwrap_or(0.0),
        mem_free_bytes: kb("MemAvailable:"),
        mem_total_bytes: kb("MemTotal:"),
    }
}
