//! The HTTP face of the cluster: the master's scheduler and operator APIs and
//! legacy JSON endpoints, and the agent's endpoints, on one port (Mesos puts
//! the agent on its own port; its paths are kept, `/slave(1)/...`).
//!
//! Requests are checked in Mesos's order with its status codes and messages
//! (`src/master/http.cpp`): method, Content-Type, JSON, then validation.

mod agent;
mod legacy;
mod operator;
mod scheduler;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine as _;

use crate::cluster::Cluster;

/// One principal and secret allowed to use the scheduler API.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Credential {
    pub principal: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("principal", &self.principal).field("secret", &"***").finish()
    }
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// When set, scheduler and mutating operator calls need HTTP Basic
    /// credentials from this list (Mesos's `--authenticate_http_frameworks`).
    pub credentials: Option<Vec<Credential>>,
    /// Flags shown by `/master/flags` and GET_FLAGS.
    pub flags: Vec<(String, String)>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub cluster: Cluster,
    pub config: Arc<HttpConfig>,
}

/// The router for a cluster.
pub fn app(cluster: Cluster, config: HttpConfig) -> Router {
    let state = AppState { cluster, config: Arc::new(config) };
    let routes = Router::new()
        .route("/api/v1/scheduler", any(scheduler::scheduler))
        .route("/master/api/v1/scheduler", any(scheduler::scheduler))
        .route("/api/v1", any(operator::operator))
        .route("/api/v1/{*rest}", any(operator::operator))
        .route("/master/api/v1", any(operator::operator))
        .route("/slave(1)/api/v1", any(agent::agent_api))
        .route("/version", get(legacy::version))
        .route("/master/redirect", get(legacy::redirect))
        .route("/redirect", get(legacy::redirect))
        .route("/master/health", get(legacy::health))
        .route("/health", get(legacy::health))
        .route("/slave(1)/health", get(legacy::health))
        .route("/master/state", get(legacy::state))
        .route("/state", get(legacy::state))
        .route("/master/frameworks", get(legacy::frameworks))
        .route("/frameworks", get(legacy::frameworks))
        .route("/master/slaves", get(legacy::slaves))
        .route("/slaves", get(legacy::slaves))
        .route("/master/tasks", get(legacy::tasks))
        .route("/tasks", get(legacy::tasks))
        .route("/master/flags", get(legacy::flags))
        .route("/flags", get(legacy::flags))
        .route("/metrics/snapshot", get(legacy::metrics))
        .route("/slave(1)/state", get(agent::state))
        .route("/slave(1)/flags", get(legacy::flags))
        .route("/monitor/statistics", get(agent::statistics))
        .route("/slave(1)/monitor/statistics", get(agent::statistics))
        .route("/files/browse", get(agent::browse))
        .route("/files/read", get(agent::read))
        .route("/files/download", get(agent::download))
        .route("/slave(1)/files/browse", get(agent::browse))
        .route("/slave(1)/files/read", get(agent::read))
        .route("/slave(1)/files/download", get(agent::download))
        .fallback(not_found)
        .with_state(state);
    // The rewrite must happen before routing, so it wraps the router.
    Router::new().fallback_service(tower::ServiceExt::map_request(routes, strip_trailing_slash))
}

/// libprocess strips a trailing slash (`/master/frameworks/` works).
fn strip_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "")
}

/// A refused request: Mesos's status code and plain-text message.
#[derive(Debug)]
pub(crate) struct HttpError {
    status: StatusCode,
    message: String,
    /// `Allow` for 405, `WWW-Authenticate` for 401.
    header: Option<Box<(header::HeaderName, HeaderValue)>>,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into(), header: None }
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.header = Some(Box::new((name, value)));
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut res = text(self.status, self.message);
        if let Some(h) = self.header {
            let (name, value) = *h;
            res.headers_mut().insert(name, value);
        }
        res
    }
}

/// A plain-text answer as Mesos sends its errors.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut res = (status, message.into()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// JSON with `?jsonp=callback` support, as the legacy endpoints have.
pub(crate) fn json<T: serde::Serialize>(value: &T, jsonp: Option<&str>) -> Response {
    let body = serde_json::to_vec(value).expect("views always serialize");
    match jsonp.filter(|cb| !cb.is_empty() && cb.chars().all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c))) {
        Some(cb) => {
            let mut out = Vec::with_capacity(body.len() + cb.len() + 3);
            out.extend_from_slice(cb.as_bytes());
            out.push(b'(');
            out.extend_from_slice(&body);
            out.extend_from_slice(b");");
            ([(header::CONTENT_TYPE, "text/javascript")], out).into_response()
        }
        None => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

/// Mesos's method check: `405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'.`
pub(crate) fn require_post(method: &Method) -> Result<(), HttpError> {
    if method == Method::POST {
        return Ok(());
    }
    Err(HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{method}'."),
    )
    .with_header(header::ALLOW, HeaderValue::from_static("POST")))
}

/// Content-Type must be JSON (protobuf is not spoken here); missing is 400,
/// anything else 415. Parameters such as `; charset=utf-8` are tolerated.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), HttpError> {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => Err(HttpError::new(StatusCode::BAD_REQUEST, "Expecting 'Content-Type' to be present")),
        Some(ct) if ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(ct) if ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-protobuf")) => {
            Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "m3s mini speaks application/json only, not application/x-protobuf",
            ))
        }
        Some(_) => Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        )),
    }
}

/// `Accept` must allow JSON (missing means JSON).
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().all(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|t| {
                let t = t.split(';').next().unwrap_or("").trim();
                t.is_empty() || t == "*/*" || t == "application/*" || t.eq_ignore_ascii_case("application/json")
            })
        })
    })
}

/// Parses a JSON body with Mesos's error message.
pub(crate) fn parse_json(body: &Bytes) -> Result<serde_json::Value, HttpError> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to parse body into JSON: {e}")))
}

/// Checks HTTP Basic credentials when the cluster has any configured.
/// Returns the authenticated principal.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap, realm: &str) -> Result<Option<String>, HttpError> {
    let Some(credentials) = &state.config.credentials else { return Ok(None) };
    let unauthorized = || {
        let err = HttpError::new(StatusCode::UNAUTHORIZED, "");
        match HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
            Ok(v) => err.with_header(header::WWW_AUTHENTICATE, v),
            Err(_) => err,
        }
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(unauthorized)?;
    let (principal, secret) = given.split_once(':').ok_or_else(unauthorized)?;
    let ok = credentials.iter().any(|c| {
        c.principal == principal && mesos::transport::constant_time_eq(c.secret.as_bytes(), secret.as_bytes())
    });
    if ok { Ok(Some(principal.to_owned())) } else { Err(unauthorized()) }
}
