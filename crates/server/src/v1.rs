//! The v1 JSON API (described by `openapi.json`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::{ApiState, views};

/// The OpenAPI 3.0 description of this module's routes.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/projects", get(list_projects))
        .route("/api/v1/projects/{project}", get(get_project).put(put_project).delete(delete_project))
        .route("/api/v1/projects/{project}/volumes/{volume}", delete(delete_volume))
        .route("/api/v1/projects/{project}/services/{service}", get(get_service))
        .route("/api/v1/projects/{project}/services/{service}/scale", put(scale))
        .route("/api/v1/projects/{project}/services/{service}/restart", post(restart))
        .route("/api/v1/projects/{project}/services/{service}/logs", get(service_logs))
        .route("/api/v1/tasks", get(list_tasks))
        .route("/api/v1/tasks/{task}", delete(kill_task))
        .route("/api/v1/tasks/{task}/logs", get(task_logs))
        .route("/api/v1/credentials", get(list_credentials).post(add_credential))
        .route("/api/v1/credentials/{name}", delete(remove_credential))
        .route("/api/v1/audit", get(audit))
}

async fn list_credentials(State(state): State<ApiState>) -> Json<Vec<crate::access::CredentialView>> {
    Json(state.inner.auth.credentials().list())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    name: String,
    role: crate::access::Role,
}

fn credential_error(e: crate::access::CredentialError) -> ApiError {
    use crate::access::CredentialError as E;
    match e {
        E::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m.to_string()),
        E::Exists(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        E::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        E::Io { .. } | E::Corrupt { .. } => ApiError::internal("saving credentials", e),
    }
}

/// Creates a credential; its token is in this answer only (m3s keeps its hash).
async fn add_credential(
    State(state): State<ApiState>,
    body: Result<Json<NewCredential>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(new) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let now = framework::driver::now_ms();
    let token = state.inner.auth.credentials().add(&new.name, new.role, now).map_err(credential_error)?;
    let body = json!({"name": new.name, "role": new.role, "token": token});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn remove_credential(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    state.inner.auth.credentials().remove(&name).map_err(credential_error)?;
    Ok(Json(json!({"removed": name})).into_response())
}

async fn audit(
    State(state): State<ApiState>,
    Query(q): Query<crate::audit::AuditQuery>,
) -> Json<Vec<crate::audit::AuditEntry>> {
    Json(state.inner.auth.audit().query(&q))
}

type Q = Query<HashMap<String, String>>;

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn health(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let f = state.framework();
    let (subscribed, framework_id) = f.read(|e| (e.is_subscribed(), e.framework_id().map(|i| i.value.clone())));
    Json(json!({
        "status": "ok",
        "subscribed": subscribed,
        "framework_id": framework_id,
        "master": f.master(),
        "store": f.store(),
        "store_healthy": f.store_healthy(),
    }))
}

async fn list_projects(State(state): State<ApiState>) -> Json<Vec<views::ProjectSummary>> {
    Json(state.framework().read(views::projects))
}

async fn get_project(State(state): State<ApiState>, Path(project): Path<String>) -> Result<Response, ApiError> {
    let now = framework::driver::now_ms();
    state
        .framework()
        .read(|e| views::project(e, &project, now))
        .map(|v| Json(v).into_response())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no project named '{project}'")))
}

fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("query parameter {name}={other:?}: expected true or false"),
        )),
    }
}

async fn put_project(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(q): Q,
    body: String,
) -> Result<Response, ApiError> {
    let strict = flag(&q, "strict")?;
    // `services=a,b`: only these change (`compose up a b`).
    let only: Option<std::collections::BTreeSet<String>> =
        q.get("services").map(|s| s.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let deployed = crate::deploy::deploy_only(&state, &project, &body, strict, only.as_ref())?;
    let o = deployed.outcome;
    Ok(Json(json!({
        "project": project,
        "created": o.created,
        "updated": o.updated,
        "unchanged": o.unchanged,
        "removed": o.removed,
        "warnings": deployed.warnings,
    }))
    .into_response())
}

async fn delete_project(State(state): State<ApiState>, Path(project): Path<String>) -> Result<Response, ApiError> {
    state.framework().remove(&project)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "project": project, "status": "removing" }))).into_response())
}

/// `DELETE /api/v1/projects/P/volumes/DIR`: removes a volume directory the
/// project owned (`compose down -v`), once the project is gone. `DIR` is a
/// name under the volumes directory that starts with `P_`, as m3s names a
/// project's named and anonymous volumes; external volumes are never asked for.
async fn delete_volume(
    State(state): State<ApiState>,
    Path((project, volume)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    framework::spec::check_project_name(&project).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let owned = volume.strip_prefix(&format!("{project}_")).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    if !owned || volume.contains("..") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("volume '{volume}': project {project}'s volumes are named '{project}_<name>'"),
        ));
    }
    if state.framework().read(|e| e.projects().contains_key(&project)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("project {project} is deployed; its volumes are removed after `compose down`"),
        ));
    }
    let dir = state.inner.translate.volumes_dir.join(&volume);
    // Not followed if it is a symlink: only the link would go.
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("no volume '{volume}'")))
        }
        Err(e) => Err(ApiError::internal(&format!("reading {}", dir.display()), e)),
        Ok(meta) => {
            let removed = if meta.is_dir() { std::fs::remove_dir_all(&dir) } else { std::fs::remove_file(&dir) };
            removed.map_err(|e| ApiError::internal(&format!("removing {}", dir.display()), e))?;
            tracing::info!(project = %project, volume = %volume, "volume removed");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

async fn get_service(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = framework::driver::now_ms();
    state
        .framework()
        .read(|e| views::service(e, &project, &service, now))
        .map(|v| Json(v).into_response())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no service '{service}' in project '{project}'")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    /// `null`: back to the file's count (`compose start`).
    replicas: Option<u32>,
}

async fn scale(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
    body: String,
) -> Result<Response, ApiError> {
    let bad = |e: &dyn std::fmt::Display| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body: expected {{\"replicas\": N}} with N a whole number, or null for the file's count: {e}"),
        )
    };
    let value: serde_json::Value = serde_json::from_str(&body).map_err(|e| bad(&e))?;
    if value.get("replicas").is_none() {
        return Err(bad(&"missing field `replicas`"));
    }
    let ScaleBody { replicas } = serde_json::from_value(value).map_err(|e| bad(&e))?;
    match replicas {
        Some(n) => state.framework().scale(&project, &service, n)?,
        None => state.framework().unscale(&project, &service)?,
    }
    Ok(Json(json!({ "project": project, "service": service, "replicas": replicas })).into_response())
}

async fn restart(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.framework().restart(&project, &service)?;
    Ok(Json(json!({ "project": project, "service": service, "status": "restarting" })).into_response())
}

async fn list_tasks(State(state): State<ApiState>, Query(q): Q) -> Json<Vec<views::TaskView>> {
    let (project, service) = (q.get("project"), q.get("service"));
    Json(state.framework().read(|e| {
        e.tasks()
            .values()
            .filter(|t| project.is_none_or(|p| *p == t.project) && service.is_none_or(|s| *s == t.service))
            .map(views::task)
            .collect()
    }))
}

async fn kill_task(State(state): State<ApiState>, Path(task): Path<String>) -> Result<Response, ApiError> {
    state.framework().kill_task(&task)?;
    Ok(Json(json!({ "task": task, "status": "killing" })).into_response())
}

/// Default tail when no offset is given.
const TAIL: u64 = 64 * 1024;

async fn task_logs(State(state): State<ApiState>, Path(task): Path<String>, Query(q): Q) -> Result<Response, ApiError> {
    let stream = match q.get("stream").map(String::as_str) {
        None | Some("stdout") => "stdout",
        Some("stderr") => "stderr",
        Some(other) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("stream={other:?}: expected stdout or stderr")));
        }
    };
    let offset: i64 = match q.get("offset") {
        None => -1,
        Some(o) => {
            o.parse().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("offset={o:?}: expected a number")))?
        }
    };
    let length: u64 = match q.get("length") {
        None => TAIL,
        Some(l) => l.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("length={l:?}: expected a whole number of bytes"))
        })?,
    };
    let chunk = read_log(&state, &task, stream, offset, length.min(TAIL)).await?;
    // An empty answer means the reader is at the end of what the task has written so far.
    let eof = chunk.data.is_empty();
    let next = chunk.end();
    Ok(Json(json!({ "task": task, "stream": stream, "data": chunk.data, "offset": next, "eof": eof })).into_response())
}

async fn read_log(
    state: &ApiState,
    task: &str,
    stream: &str,
    offset: i64,
    length: u64,
) -> Result<mesos::legacy::FileChunk, ApiError> {
    let Some(files) = &state.inner.files else {
        return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "task logs are not configured on this server"));
    };
    let found = state.framework().read(|e| {
        let t = e.tasks().get(task)?;
        Some((t.agent_id.clone(), e.framework_id()?.value.clone()))
    });
    let Some((agent, framework_id)) = found else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no task with id '{task}'")));
    };
    files.read(&agent.value, &framework_id, task, stream, offset, length).await.map_err(|e| match e {
        mesos::files::LogError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        mesos::files::LogError::Agent(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
    })
}

/// The newest task of each replica, stdout then stderr, each line prefixed with `<service>-<replica> | `.
async fn service_logs(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let newest: Option<Vec<(u32, String)>> = state.framework().read(|e| {
        e.projects().get(&project)?.spec.services.get(&service)?;
        let mut by_replica: HashMap<u32, (u64, String)> = HashMap::new();
        for t in e.tasks().values().filter(|t| t.project == project && t.service == service) {
            let entry = by_replica.entry(t.replica).or_insert((0, String::new()));
            if t.launched_at_ms >= entry.0 {
                *entry = (t.launched_at_ms, t.task_id.clone());
            }
        }
        let mut v: Vec<(u32, String)> = by_replica.into_iter().map(|(r, (_, id))| (r, id)).collect();
        v.sort();
        Some(v)
    });
    let Some(newest) = newest else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no service '{service}' in project '{project}'")));
    };
    let mut out = String::new();
    for (replica, task) in newest {
        for stream in ["stdout", "stderr"] {
            match read_log(&state, &task, stream, -1, TAIL).await {
                Ok(chunk) => {
                    for line in chunk.data.lines() {
                        out.push_str(&format!("{service}-{replica} | {line}\n"));
                    }
                }
                Err(e) => out.push_str(&format!("{service}-{replica} | ({stream} unavailable: {})\n", e.message)),
            }
        }
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}
