//! Alerting over HTTP: Prometheus's `/api/v1/rules` and `/api/v1/alerts`
//! shapes (so Grafana and promtool-minded clients read them), silences, the
//! webhooks' delivery status, and a reload of the rules file.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics::alert::runner::Alerting;
use metrics::alert::{Alert, AlertState, Silence};
use serde::Deserialize;
use serde_json::json;

use super::MetricsState;
use crate::access::Principal;

fn alerting(state: &MetricsState) -> Option<Alerting> {
    state.inner.alerting.clone()
}

fn not_here() -> Response {
    let body = json!({"status": "error", "error": "no alert rules here: start m3s with --alert-rules FILE"});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn time(ms: i64) -> String {
    metrics::alert::rfc3339(ms)
}

fn alert_json(a: &Alert) -> serde_json::Value {
    let state = match a.state {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "inactive",
    };
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": state,
        "activeAt": time(a.active_at_ms),
        "value": a.value.to_string(),
        "silenced": a.silenced,
    })
}

pub async fn rules(State(state): State<MetricsState>) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    let alerts = a.alerts();
    let mut groups: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for rule in a.rules() {
        let mine: Vec<serde_json::Value> =
            alerts.iter().filter(|x| x.rule == rule.name && x.state != AlertState::Resolved).map(alert_json).collect();
        let state = if mine.iter().any(|x| x["state"] == "firing") {
            "firing"
        } else if mine.is_empty() {
            "inactive"
        } else {
            "pending"
        };
        let entry = json!({
            "type": "alerting",
            "name": rule.name,
            "query": rule.expr,
            "duration": rule.for_ms / 1000,
            "labels": rule.labels,
            "annotations": rule.annotations,
            "alerts": mine,
            "state": state,
            "health": "ok",
        });
        match groups.iter_mut().find(|(g, _)| *g == rule.group) {
            Some((_, list)) => list.push(entry),
            None => groups.push((rule.group.clone(), vec![entry])),
        }
    }
    let groups: Vec<serde_json::Value> =
        groups.into_iter().map(|(name, rules)| json!({"name": name, "file": "", "rules": rules})).collect();
    Json(json!({"status": "success", "data": {"groups": groups}})).into_response()
}

pub async fn alerts(State(state): State<MetricsState>) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    let list: Vec<serde_json::Value> =
        a.alerts().iter().filter(|x| x.state != AlertState::Resolved).map(alert_json).collect();
    Json(json!({"status": "success", "data": {"alerts": list}})).into_response()
}

pub async fn status(State(state): State<MetricsState>) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    let (webhooks, problem) = a.status();
    let alerts: Vec<Alert> = a.alerts();
    Json(json!({"rules": a.rules().len(), "problem": problem, "webhooks": webhooks, "alerts": alerts, "silences": a.silences()}))
        .into_response()
}

pub async fn reload(State(state): State<MetricsState>) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    match super::blocking(move || a.reload()).await {
        Ok(n) => Json(json!({"reloaded": n})).into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

pub async fn silences(State(state): State<MetricsState>) -> Response {
    match alerting(&state) {
        Some(a) => Json(a.silences()).into_response(),
        None => not_here(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    matchers: std::collections::BTreeMap<String, String>,
    /// How long, e.g. `2h`.
    duration: String,
    #[serde(default)]
    comment: String,
}

pub async fn add_silence(
    State(state): State<MetricsState>,
    principal: Option<axum::Extension<Principal>>,
    body: Result<Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    let bad = |m: String| (StatusCode::BAD_REQUEST, Json(json!({"error": m}))).into_response();
    let Json(new) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    if new.matchers.is_empty() {
        return bad("matchers: name at least one label, or the silence would cover every alert".into());
    }
    let Some(ms) = metrics::alert::parse_duration_ms(&new.duration).filter(|ms| *ms > 0) else {
        return bad(format!("duration: {:?} is not a duration (30m, 2h, 1d)", new.duration));
    };
    let now = metrics::store::now_ms();
    let mut id = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    let silence = Silence {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        matchers: new.matchers,
        starts_ms: now,
        ends_ms: now + ms,
        comment: new.comment,
        created_by: principal.map_or_else(|| crate::auth::ANONYMOUS.to_owned(), |p| p.0.name),
    };
    a.add_silence(silence.clone());
    (StatusCode::CREATED, Json(silence)).into_response()
}

pub async fn remove_silence(State(state): State<MetricsState>, Path(id): Path<String>) -> Response {
    let Some(a) = alerting(&state) else { return not_here() };
    if a.remove_silence(&id) {
        Json(json!({"removed": id})).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"error": format!("no silence {id:?}")}))).into_response()
    }
}
