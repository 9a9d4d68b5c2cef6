//! mesos-compose's v0 API, path for path, so its existing clients keep working.
//! Differences (documented in docs/compose.md): authenticated by default, and
//! `UPDATE` does what `PUT` does: changed services are replaced (mesos-compose
//! kept running tasks on the old spec). The `PUT`/`UPDATE` answer is the loaded
//! compose file as JSON in its normalized form (`compose::normalize`: one
//! self-contained document, interpolated, that loads back to the same project),
//! not mesos-compose's Go structure. `DELETE /{project}/{service}` scales the
//! service to 0 (its tasks are killed and stay down until the next deploy).
//! Every error here is 406, as mesos-compose answers.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, put};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::{ApiState, views};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/compose/versions", get(versions))
        .route("/api/compose/v0/tasks", get(tasks))
        .route("/api/compose/v0/tasks/{task}", delete(kill_task))
        .route("/api/compose/v0/framework/reregister", put(reregister))
        .route("/api/compose/v0/framework/suppress", put(suppress))
        .route("/api/compose/v0/framework", delete(reregister))
        .route("/api/compose/v0/{project}", any(project))
        .route("/api/compose/v0/{project}/{service}", delete(remove_service))
        .route("/api/compose/v0/{project}/{service}/restart", put(restart))
        .layer(axum::middleware::from_fn(api_service_header))
}

/// mesos-compose marks its answers with `Api-Service: v0`.
async fn api_service_header(request: Request, next: Next) -> Response {
    let v0 = request.uri().path().starts_with("/api/compose/");
    let mut response = next.run(request).await;
    if v0 {
        response.headers_mut().insert("Api-Service", HeaderValue::from_static("v0"));
    }
    response
}

/// mesos-compose answers 406 where m3s's v1 gives 404 or 422.
fn not_acceptable(e: ApiError) -> ApiError {
    ApiError { status: StatusCode::NOT_ACCEPTABLE, ..e }
}

async fn versions() -> &'static str {
    "/api/compose/v0"
}

/// Every task record; environment values are blanked (keys kept), as in mesos-compose.
async fn tasks(State(state): State<ApiState>) -> Json<Vec<serde_json::Value>> {
    Json(state.framework().read(|e| {
        e.tasks()
            .values()
            .map(|t| {
                let env: serde_json::Map<String, serde_json::Value> = e
                    .projects()
                    .get(&t.project)
                    .and_then(|p| p.spec.services.get(&t.service))
                    .map(|s| s.run.env.keys().map(|k| (k.clone(), json!(""))).collect())
                    .unwrap_or_default();
                let mut v = serde_json::to_value(views::task(t)).expect("views serialize");
                v["environment"] = serde_json::Value::Object(env);
                v
            })
            .collect()
    }))
}

async fn kill_task(State(state): State<ApiState>, Path(task): Path<String>) -> Result<Response, ApiError> {
    state.framework().kill_task(&task).map_err(|e| not_acceptable(e.into()))?;
    Ok(Json(json!({ "task": task, "status": "killing" })).into_response())
}

async fn reregister(State(state): State<ApiState>) -> Json<serde_json::Value> {
    state.framework().reregister();
    Json(json!({ "status": "reregistering" }))
}

async fn suppress(State(state): State<ApiState>) -> Json<serde_json::Value> {
    state.framework().suppress();
    Json(json!({ "status": "suppressed" }))
}

/// PUT (and mesos-compose's non-standard UPDATE) deploy the compose file in the body.
async fn project(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    method: Method,
    body: String,
) -> Result<Response, ApiError> {
    if method != Method::PUT && method.as_str() != "UPDATE" {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here (PUT or UPDATE)"),
        ));
    }
    let deployed = crate::deploy::deploy(&state, &project, &body, false).map_err(not_acceptable)?;
    Ok(Json(deployed.normalized).into_response())
}

/// Kills every task of the service (its replicas go to 0 until the next deploy).
async fn remove_service(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.framework().scale(&project, &service, 0).map_err(|e| not_acceptable(e.into()))?;
    Ok(Json(json!({ "project": project, "service": service, "status": "killing" })).into_response())
}

async fn restart(
    State(state): State<ApiState>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.framework().restart(&project, &service).map_err(|e| not_acceptable(e.into()))?;
    Ok(Json(json!({ "project": project, "service": service, "status": "restarting" })).into_response())
}
