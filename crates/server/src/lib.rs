//! The m3s HTTP API: mesos-compose's v0 endpoints, so its clients keep working,
//! and a v1 JSON API described by an OpenAPI document (`/api/v1/openapi.json`).
//! Everything but version discovery, health and the description is authenticated
//! unless the operator explicitly runs it open.
//!
//! Handlers are thin: they parse, call `framework::driver::Framework`, and render
//! `views`. No handler builds a path or a shell command from request data.

pub mod access;
pub mod audit;
pub mod auth;
pub mod dashboard;
mod deploy;
pub mod error;
mod inventory;
pub mod k3s;
pub mod manage;
pub mod metrics;
mod session;
pub mod tls;
mod v0;
mod v1;
pub mod views;

use std::sync::Arc;

use axum::Router;
use framework::driver::Framework;

pub use auth::Auth;
pub use mesos::files::AgentFiles;

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    framework: Framework,
    auth: Auth,
    translate: framework::translate::Settings,
    files: Option<AgentFiles>,
    /// The local Docker Engine, for the inventory and the seed's `/docker/*`.
    docker: Option<docker::Engine>,
}

impl ApiState {
    pub fn new(framework: Framework, auth: Auth, translate: framework::translate::Settings) -> ApiState {
        ApiState { inner: Arc::new(Inner { framework, auth, translate, files: None, docker: None }) }
    }

    /// Enables task logs, read from the agents through the master at `files`.
    pub fn with_files(self, files: AgentFiles) -> ApiState {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("with_files before the state is shared"));
        ApiState { inner: Arc::new(Inner { files: Some(files), ..inner }) }
    }

    /// Shows the local Docker Engine in the inventory and at `/docker/version` and `/docker/containers`.
    pub fn with_docker(self, engine: docker::Engine) -> ApiState {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("with_docker before the state is shared"));
        ApiState { inner: Arc::new(Inner { docker: Some(engine), ..inner }) }
    }

    fn framework(&self) -> &Framework {
        &self.inner.framework
    }
}

/// Answers under `prefix` that a role is not running here, naming the flag that
/// starts it (rather than an empty 404).
pub fn role_not_running(prefix: &str, message: &'static str) -> Router {
    let answer = move || async move { crate::error::ApiError::new(axum::http::StatusCode::NOT_FOUND, message) };
    Router::new().route(&format!("{prefix}/{{*rest}}"), axum::routing::any(answer))
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(v0::routes())
        .merge(v1::routes())
        .merge(inventory::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(axum::middleware::from_fn(error::answer_panics))
        .with_state(state)
}
