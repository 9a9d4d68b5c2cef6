//! M3trics over HTTP, on one router: InfluxDB line protocol (`/write`,
//! `/api/v2/write`), Prometheus remote_write (`/api/v1/write`), the Prometheus
//! query API (`/api/v1/query`, `query_range`, `labels`, `label/{name}/values`,
//! `series`), the native query, reports and error log (`/api/m3trics/v1/...`),
//! and m3s's own metrics (`/metrics`).
//!
//! Everything but `/metrics`, `/ping` and `/health` is authenticated unless
//! the operator runs it open. Handlers parse and render; the work is in the
//! `metrics` crate, run on the blocking pool because the store does file IO.

mod alerts;
mod ingest;
mod native;
pub(crate) mod params;
mod prom;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics::store::Store;

use crate::Auth;
use crate::access::Principal;
pub use stats::Counters;

/// What every M3trics handler gets.
#[derive(Clone)]
pub struct MetricsState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    auth: Auth,
    max_body_bytes: usize,
    /// Points a range query may answer in all (`--metrics-max-query-points`).
    max_answer_points: usize,
    errors: Option<Arc<metrics::errors::ErrorLog>>,
    anomalies: Option<metrics::anomaly::runner::Anomalies>,
    alerting: Option<metrics::alert::runner::Alerting>,
    counters: Counters,
}

impl MetricsState {
    pub fn new(store: Arc<Store>, auth: Auth) -> MetricsState {
        MetricsState {
            inner: Arc::new(Inner {
                store,
                auth,
                max_body_bytes: DEFAULT_MAX_BODY,
                max_answer_points: metrics::promql::DEFAULT_MAX_ANSWER_POINTS,
                errors: None,
                anomalies: None,
                alerting: None,
                counters: Counters::default(),
            }),
        }
    }

    /// The largest write body accepted, after decompression (413 beyond).
    pub fn with_max_body(self, bytes: usize) -> MetricsState {
        self.map(|i| Inner { max_body_bytes: bytes, ..i })
    }

    /// The most points a range query may answer (422 beyond).
    pub fn with_max_answer_points(self, points: usize) -> MetricsState {
        self.map(|i| Inner { max_answer_points: points, ..i })
    }

    /// Serves the error log at `/api/m3trics/v1/errors`.
    pub fn with_error_log(self, log: Arc<metrics::errors::ErrorLog>) -> MetricsState {
        self.map(|i| Inner { errors: Some(log), ..i })
    }

    /// Serves the anomaly watch at `/api/m3trics/v1/anomalies`.
    pub fn with_anomalies(self, anomalies: metrics::anomaly::runner::Anomalies) -> MetricsState {
        self.map(|i| Inner { anomalies: Some(anomalies), ..i })
    }

    /// Serves alerting: `/api/v1/rules`, `/api/v1/alerts`, silences, status, reload.
    pub fn with_alerting(self, alerting: metrics::alert::runner::Alerting) -> MetricsState {
        self.map(|i| Inner { alerting: Some(alerting), ..i })
    }

    pub fn alerting(&self) -> Option<&metrics::alert::runner::Alerting> {
        self.inner.alerting.as_ref()
    }

    pub fn anomalies(&self) -> Option<&metrics::anomaly::runner::Anomalies> {
        self.inner.anomalies.as_ref()
    }

    fn map(self, f: impl FnOnce(Inner) -> Inner) -> MetricsState {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("configure the state before sharing it"));
        MetricsState { inner: Arc::new(f(inner)) }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn error_log(&self) -> Option<&Arc<metrics::errors::ErrorLog>> {
        self.inner.errors.as_ref()
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }
}

/// 32 MiB, as VictoriaMetrics's default `-maxInsertRequestSize`.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;

pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/write", post(ingest::write_v1))
        .route("/api/v2/write", post(ingest::write_v2))
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route("/api/v1/query_range", get(prom::query_range).post(prom::query_range))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/m3trics/v1/query", get(native::query))
        .route("/api/m3trics/v1/flush", post(native::flush))
        .route("/api/m3trics/v1/reports/nodes", get(native::report_nodes))
        .route("/api/m3trics/v1/reports/tasks", get(native::report_tasks))
        .route("/api/m3trics/v1/errors", get(native::errors))
        .route("/api/m3trics/v1/anomalies", get(native::anomalies))
        .route("/api/v1/rules", get(alerts::rules))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/m3trics/v1/alerting", get(alerts::status))
        .route("/api/m3trics/v1/rules/reload", post(alerts::reload))
        .route("/api/m3trics/v1/silences", get(alerts::silences).post(alerts::add_silence))
        .route("/api/m3trics/v1/silences/{id}", axum::routing::delete(alerts::remove_silence))
        .route("/metrics", get(stats::metrics))
        .route("/ping", get(ping).head(ping))
        .route("/health", get(ping))
        // Bodies are read only up to the limit (a chunked one stops there; 413), and one
        // whose Content-Length is over it is refused before a byte is read (`refuse_oversized`).
        .layer(axum::extract::DefaultBodyLimit::max(state.inner.max_body_bytes.saturating_add(1)))
        .layer(axum::middleware::from_fn_with_state(state.clone(), refuse_oversized))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require))
        .layer(axum::middleware::from_fn(crate::error::answer_panics))
        .with_state(state)
}

/// InfluxDB's `/ping`: 204 with a version header clients look for.
async fn ping() -> Response {
    (StatusCode::NO_CONTENT, [("X-Influxdb-Version", "1.8.10-m3s"), ("X-Influxdb-Build", "OSS")]).into_response()
}

const PUBLIC: &[&str] = &["/metrics", "/ping", "/health"];

/// 413 for a body whose declared length is over the limit, before it is read:
/// a 200 MB write costs a header's worth of memory.
async fn refuse_oversized(State(state): State<MetricsState>, request: Request, next: Next) -> Response {
    let max = state.inner.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        let path = request.uri().path().to_owned();
        state.inner.counters.request(&path, 413);
        let message = format!("request body is larger than {max} bytes");
        let mut response = if path == "/api/v2/write" {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(serde_json::json!({"code": "request too large", "message": message})),
            )
                .into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(serde_json::json!({"error": message}))).into_response()
        };
        // The rest of the body is not read: the connection cannot carry another request.
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

/// Authentication as the rest of m3s (Basic or bearer token), plus what
/// InfluxDB clients send: `Authorization: Token <token>` (v2) and the
/// `u`/`p` query parameters (v1).
async fn require(State(state): State<MetricsState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if PUBLIC.contains(&path) {
        return next.run(request).await;
    }
    let auth = &state.inner.auth;
    if let Some(principal) = principal(auth, request.method(), request.headers(), request.uri().query()) {
        return auth.authorize(principal, "api", request, next, crate::auth::forbidden).await;
    }
    let v2 = path == "/api/v2/write";
    let mut response = if v2 {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"code": "unauthorized", "message": "unauthorized access"})),
        )
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "authentication required"}))).into_response()
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"m3s\"".parse().expect("static header"));
    state.inner.counters.request(path, 401);
    response
}

fn principal(auth: &Auth, method: &Method, headers: &HeaderMap, query: Option<&str>) -> Option<Principal> {
    if let Some(p) = auth.request_principal(method, headers) {
        return Some(p);
    }
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("token")
    {
        return auth.principal_of_token(token.trim());
    }
    if let Some(query) = query {
        let mut user = None;
        let mut password = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "u" => user = Some(v.into_owned()),
                "p" => password = Some(v.into_owned()),
                _ => {}
            }
        }
        if let (Some(u), Some(p)) = (user, password) {
            return auth.principal_of_credentials(&u, &p);
        }
    }
    None
}

/// Runs store work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("metrics worker panicked")
}
