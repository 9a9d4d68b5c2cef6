//! The node inventory (the seed's `/docker/version` and `/docker/containers`):
//! per agent, its Mesos version, attributes and resources, the tasks of every
//! framework there and the containers it runs (the agent's
//! `/monitor/statistics`), and the local Docker Engine's version and containers
//! where one is configured. Also the seed's `/docker/swarm/{stack}`: a compose
//! stack deployed and removed through the same path as `PUT`/`DELETE
//! /api/v1/projects/{name}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/nodes", get(nodes))
        .route("/docker/version", get(docker_version))
        .route("/docker/containers", get(docker_containers))
        .route("/docker/swarm/{stack}", post(swarm_deploy).delete(swarm_remove))
}

#[derive(Debug, Serialize)]
pub struct NodeTask {
    pub framework: String,
    pub id: String,
    pub name: String,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub mesos_version: String,
    pub active: bool,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub resources: serde_json::Value,
    pub used_resources: serde_json::Value,
    pub tasks: Vec<NodeTask>,
    /// The agent's containers with their statistics, or why they could not be read.
    pub containers: serde_json::Value,
}

fn no_master() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no Mesos master to ask here")
}

async fn nodes(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let files = state.inner.files.as_ref().ok_or_else(no_master)?;
    let master = files
        .master_state()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, format!("asking the master: {e}")))?;
    let mut out = Vec::new();
    for agent in &master.slaves {
        let tasks = master
            .frameworks
            .iter()
            .flat_map(|f| f.tasks.iter().map(move |t| (f, t)))
            .filter(|(_, t)| t.slave_id == agent.id)
            .map(|(f, t)| NodeTask {
                framework: f.name.clone(),
                id: t.id.clone(),
                name: t.name.clone(),
                state: t.state.as_str().to_owned(),
            })
            .collect();
        let containers = match files.agent_json(agent, "/monitor/statistics").await {
            Ok(v) => v,
            Err(e) => json!({"error": e.to_string()}),
        };
        out.push(Node {
            id: agent.id.clone(),
            hostname: agent.hostname.clone(),
            mesos_version: agent.version.clone(),
            active: agent.active,
            attributes: agent
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect(),
            resources: serde_json::to_value(&agent.resources).unwrap_or_default(),
            used_resources: serde_json::to_value(&agent.used_resources).unwrap_or_default(),
            tasks,
            containers,
        });
    }
    let docker = match &state.inner.docker {
        Some(engine) => Some(docker_summary(engine.clone()).await),
        None => None,
    };
    Ok(Json(json!({"nodes": out, "docker": docker})).into_response())
}

/// The local Docker Engine's version and containers, or its error.
async fn docker_summary(engine: docker::Engine) -> serde_json::Value {
    let answer = tokio::task::spawn_blocking(move || Ok::<_, docker::Error>((engine.version()?, engine.list_all()?)))
        .await
        .map_err(|e| e.to_string());
    match answer {
        Ok(Ok((version, containers))) => json!({"version": version, "containers": containers}),
        Ok(Err(e)) => json!({"error": e.to_string()}),
        Err(e) => json!({"error": e}),
    }
}

fn engine(state: &ApiState) -> Result<docker::Engine, ApiError> {
    state.inner.docker.clone().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no Docker Engine here: m3s up with the Docker containerizer has one")
    })
}

async fn docker_call<T: Serialize + Send + 'static>(
    engine: docker::Engine,
    f: impl FnOnce(&docker::Engine) -> Result<T, docker::Error> + Send + 'static,
) -> Result<Response, ApiError> {
    let answer = tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| ApiError::internal("the Docker Engine call", e))?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, format!("Docker Engine: {e}")))?;
    Ok(Json(answer).into_response())
}

async fn docker_version(State(state): State<ApiState>) -> Result<Response, ApiError> {
    docker_call(engine(&state)?, |e| e.version()).await
}

async fn docker_containers(State(state): State<ApiState>) -> Result<Response, ApiError> {
    docker_call(engine(&state)?, |e| e.list_all()).await
}

/// The seed's stack deploy: the body is a compose file, deployed as project `stack`.
async fn swarm_deploy(
    State(state): State<ApiState>,
    Path(stack): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let o = crate::deploy::deploy_only(&state, &stack, &body, false, None)?.outcome;
    let body = json!({"stack": stack, "created": o.created, "updated": o.updated, "unchanged": o.unchanged, "removed": o.removed});
    Ok(Json(body).into_response())
}

async fn swarm_remove(State(state): State<ApiState>, Path(stack): Path<String>) -> Result<Response, ApiError> {
    state.framework().remove(&stack)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"stack": stack, "status": "removing"}))).into_response())
}
