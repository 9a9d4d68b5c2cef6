//! The K3s framework's API: m3s's v1 (`/api/k3s/v1/clusters/...`, any number of
//! clusters) and mesos-m3s's v0 (`/api/m3s/v0/...`, on the default cluster,
//! with its answers: a count difference as text, `{"Scale","Running"}`,
//! `ok`/`nok`, and the `Api-Service: v0` header).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, middleware};
use k3s::cluster::CreateRequest;
use k3s::{K3s, K3sError, Role};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Auth, require_auth};
use crate::error::ApiError;

/// Requests are small JSON documents; anything larger is refused unread.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(k3s: K3s, auth: Auth) -> Router {
    let v1 = Router::new()
        .route("/api/k3s/v1/clusters", get(list).post(create))
        .route("/api/k3s/v1/clusters/{name}", get(status).delete(delete))
        .route("/api/k3s/v1/clusters/{name}/scale", put(scale))
        .route("/api/k3s/v1/clusters/{name}/kubeconfig", get(kubeconfig))
        .route("/api/k3s/v1/clusters/{name}/shutdown", post(shutdown))
        .route("/api/k3s/v1/clusters/{name}/start", post(start))
        .route("/api/k3s/v1/clusters/{name}/restart/{role}", post(restart))
        .route("/api/k3s/v1/clusters/{name}/cordon", post(cordon))
        .route("/api/k3s/v1/clusters/{name}/uncordon", post(uncordon))
        .route("/api/k3s/v1/clusters/{name}/resources/{role}", put(resources));
    let v0 = Router::new()
        .route(
            "/api/m3s/versions",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "/api/m3s/v0") }),
        )
        .route("/api/m3s/v0/{role}/scale", get(v0_count))
        .route("/api/m3s/v0/{role}/scale/{count}", get(v0_scale))
        .route("/api/m3s/v0/server/config", get(v0_kubeconfig))
        .route("/api/m3s/v0/server/version", get(v0_version))
        .route("/api/m3s/v0/status/m3s", get(v0_status))
        .route("/api/m3s/v0/status/k8s", get(v0_status_k8s))
        .route("/api/m3s/v0/agent/cordon", put(v0_cordon))
        .route("/api/m3s/v0/agent/uncordon", put(v0_uncordon))
        .route("/api/m3s/v0/cluster/shutdown", put(v0_shutdown))
        .route("/api/m3s/v0/cluster/start", put(v0_start))
        .route("/api/m3s/v0/{role}/restart", put(v0_restart))
        .route("/api/m3s/v0/capabilities", get(v0_capabilities))
        .route("/api/m3s/v0/{role}/{resource}/{value}", put(v0_resource))
        .layer(middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("api-service", HeaderValue::from_static("v0"));
            r
        }));
    v1.merge(v0)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(auth, require_auth))
        .layer(middleware::from_fn(crate::error::answer_panics))
        .with_state(k3s)
}

impl From<K3sError> for ApiError {
    fn from(e: K3sError) -> Self {
        let status = match &e {
            K3sError::NotFound(_) => StatusCode::NOT_FOUND,
            K3sError::Exists(_) => StatusCode::CONFLICT,
            K3sError::Invalid(_) | K3sError::NoRole { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            K3sError::Setup(_) => return ApiError::internal("k3s", &e),
            K3sError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            K3sError::Engine(inner) => return ApiError::from(inner.clone()),
        };
        ApiError::new(status, e.to_string())
    }
}

fn role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("unknown role {text:?}: expected datastore, server or agent"))
    })
}

async fn list(State(k3s): State<K3s>) -> Result<Json<Vec<k3s::ClusterStatus>>, ApiError> {
    let mut out = Vec::new();
    for name in k3s.names() {
        match k3s.status(&name) {
            Ok(s) => out.push(s),
            Err(K3sError::NotFound(_)) => {} // deleted meanwhile
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(out))
}

async fn create(
    State(k3s): State<K3s>,
    body: Result<Json<CreateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let spec = k3s.create(request)?;
    Ok((StatusCode::CREATED, Json(k3s.status(&spec.name)?)).into_response())
}

async fn status(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    Ok(Json(k3s.status(&name)?))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

async fn delete(
    State(k3s): State<K3s>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    k3s.delete(&name, q.purge)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"deleted": name, "purged": q.purge}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    servers: Option<u32>,
    agents: Option<u32>,
}

async fn scale(
    State(k3s): State<K3s>,
    Path(name): Path<String>,
    body: Result<Json<ScaleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if body.servers.is_none() && body.agents.is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "give servers, agents or both"));
    }
    if let Some(n) = body.servers {
        k3s.scale(&name, Role::Server, n).await?;
    }
    if let Some(n) = body.agents {
        k3s.scale(&name, Role::Agent, n).await?;
    }
    Ok(Json(k3s.status(&name)?))
}

async fn kubeconfig(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let text = k3s.kubeconfig(&name)?;
    Ok(([(header::CONTENT_TYPE, "application/yaml"), (header::CACHE_CONTROL, "no-store")], text).into_response())
}

async fn shutdown(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    k3s.shutdown(&name)?;
    Ok(Json(k3s.status(&name)?))
}

async fn start(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    k3s.start_again(&name)?;
    Ok(Json(k3s.status(&name)?))
}

async fn restart(
    State(k3s): State<K3s>,
    Path((name, role_name)): Path<(String, String)>,
) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    k3s.restart(&name, role(&role_name)?)?;
    Ok(Json(k3s.status(&name)?))
}

async fn cordon(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({"cordoned": k3s.cordon(&name, true).await?})))
}

async fn uncordon(State(k3s): State<K3s>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({"uncordoned": k3s.cordon(&name, false).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesBody {
    cpus: Option<f64>,
    memory: Option<f64>,
    disk: Option<f64>,
}

async fn resources(
    State(k3s): State<K3s>,
    Path((name, role_name)): Path<(String, String)>,
    body: Result<Json<ResourcesBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<k3s::ClusterStatus>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let role = role(&role_name)?;
    for (resource, value) in [("cpus", body.cpus), ("memory", body.memory), ("disk", body.disk)] {
        if let Some(v) = value {
            k3s.set_resource(&name, role, resource, v)?;
        }
    }
    Ok(Json(k3s.status(&name)?))
}

// ------------------------------------------------------------------ v0

/// mesos-m3s's error body (`{"Function","Number","Message"}`), with the status m3s adds.
fn v0_error(function: &str, e: impl Into<ApiError>) -> Response {
    let e = e.into();
    (e.status, Json(json!({"Function": function, "Number": 1, "Message": e.message}))).into_response()
}

fn default_cluster(k3s: &K3s) -> String {
    k3s.settings().default_cluster.clone()
}

async fn v0_count(State(k3s): State<K3s>, Path(role_name): Path<String>) -> Response {
    let name = default_cluster(&k3s);
    let result = role(&role_name).and_then(|role| {
        let status = k3s.status(&name)?;
        let scale = match role {
            Role::Datastore => u32::from(status.datastore == k3s::cluster::Datastore::Etcd),
            Role::Server => status.servers,
            Role::Agent => status.agents,
        };
        let running = status.nodes.iter().filter(|n| n.role == role && n.state == "TASK_RUNNING").count();
        Ok(json!({"Scale": scale, "Running": running}))
    });
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => v0_error("V0GetCount", e),
    }
}

async fn v0_scale(State(k3s): State<K3s>, Path((role_name, count)): Path<(String, String)>) -> Response {
    let name = default_cluster(&k3s);
    let result: Result<i64, ApiError> = async {
        let role = role(&role_name)?;
        let count: u32 = count
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("count {count:?} is not a number")))?;
        let before = k3s.spec(&name)?.count(role);
        k3s.scale(&name, role, count).await?;
        Ok(i64::from(count) - i64::from(before))
    }
    .await;
    match result {
        Ok(diff) => ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], diff.to_string()).into_response(),
        Err(e) => v0_error("V0Scale", e),
    }
}

async fn v0_kubeconfig(State(k3s): State<K3s>) -> Response {
    match k3s.kubeconfig(&default_cluster(&k3s)) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => v0_error("V0GetKubeconfig", e),
    }
}

async fn v0_version(State(k3s): State<K3s>) -> Response {
    match k3s.version(&default_cluster(&k3s)) {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => v0_error(
            "V0GetKubeVersion",
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the Kubernetes API has not answered yet"),
        ),
        Err(e) => v0_error("V0GetKubeVersion", e),
    }
}

async fn v0_status(State(k3s): State<K3s>) -> Response {
    match k3s.status(&default_cluster(&k3s)) {
        Ok(s) => Json(s).into_response(),
        Err(e) => v0_error("V0StatusM3s", e),
    }
}

async fn v0_status_k8s(State(k3s): State<K3s>) -> Response {
    let ok = k3s.status(&default_cluster(&k3s)).is_ok_and(|s| s.ready);
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], if ok { "ok" } else { "nok" }).into_response()
}

async fn v0_cordon(State(k3s): State<K3s>) -> Response {
    match k3s.cordon(&default_cluster(&k3s), true).await {
        Ok(nodes) => Json(json!({"cordoned": nodes})).into_response(),
        Err(e) => v0_error("V0Cordon", e),
    }
}

async fn v0_uncordon(State(k3s): State<K3s>) -> Response {
    match k3s.cordon(&default_cluster(&k3s), false).await {
        Ok(nodes) => Json(json!({"uncordoned": nodes})).into_response(),
        Err(e) => v0_error("V0Uncordon", e),
    }
}

async fn v0_shutdown(State(k3s): State<K3s>) -> Response {
    match k3s.shutdown(&default_cluster(&k3s)) {
        Ok(()) => Json(json!({"Message": "ok"})).into_response(),
        Err(e) => v0_error("V0ClusterShutdown", e),
    }
}

async fn v0_start(State(k3s): State<K3s>) -> Response {
    match k3s.start_again(&default_cluster(&k3s)) {
        Ok(()) => Json(json!({"Message": "ok"})).into_response(),
        Err(e) => v0_error("V0ClusterStart", e),
    }
}

async fn v0_restart(State(k3s): State<K3s>, Path(role_name): Path<String>) -> Response {
    let name = default_cluster(&k3s);
    let result: Result<(), ApiError> = if role_name == "cluster" {
        Role::ALL
            .iter()
            .filter(|r| k3s.spec(&name).is_ok_and(|s| s.count(**r) > 0))
            .try_for_each(|r| k3s.restart(&name, *r).map_err(ApiError::from))
    } else {
        role(&role_name).and_then(|r| k3s.restart(&name, r).map_err(ApiError::from))
    };
    match result {
        Ok(()) => Json(json!({"Message": "ok"})).into_response(),
        Err(e) => v0_error("V0Restart", e),
    }
}

async fn v0_capabilities() -> Json<serde_json::Value> {
    Json(json!({
        "m3s": ["scale", "cordon", "hibernate", "restart", "resources", "kubeconfig", "version", "status"],
        "api": ["/api/m3s/v0", "/api/k3s/v1"],
    }))
}

async fn v0_resource(
    State(k3s): State<K3s>,
    Path((role_name, resource, value)): Path<(String, String, String)>,
) -> Response {
    let name = default_cluster(&k3s);
    let result: Result<(), ApiError> = (|| {
        let role = role(&role_name)?;
        // mesos-m3s's `cpusLimit` and the like: m3s's tasks get their resources as limits.
        let resource = resource.trim_end_matches("Limit");
        let value: f64 =
            value.parse().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("{value:?} is not a number")))?;
        k3s.set_resource(&name, role, resource, value).map_err(ApiError::from)
    })();
    match result {
        Ok(()) => Json(json!({"Message": "ok"})).into_response(),
        Err(e) => v0_error("V0AdjustClusterResources", e),
    }
}
