//! K3s clusters: each cluster's nodes (role, task, state, health, Kubernetes
//! readiness and version, why not healthy) and its kubeconfig, downloaded
//! behind the session like every page. Read-only: changes go through
//! `m3s k3s` or the API.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::html::{self, Esc, Nav, Shell, Url};
use super::{Csrf, Dashboard};

const NOT_RUNNING: &str =
    "<p>The K3s framework is not running here: start m3s with <code>--k3s</code> (see docs/k3s.md).</p>";

pub async fn list(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    let mut b = String::new();
    match &state.k3s {
        None => b.push_str(NOT_RUNNING),
        Some(k3s) => {
            let statuses: Vec<k3s::ClusterStatus> = k3s.names().iter().filter_map(|n| k3s.status(n).ok()).collect();
            if statuses.is_empty() {
                b.push_str("<p>No cluster yet: <code>m3s k3s create demo --servers 1 --agents 2</code>.</p>");
            }
            for s in &statuses {
                b.push_str(&cluster_html(s));
            }
        }
    }
    html::page(&Shell { nav: Nav::K3s, title: "K3s clusters", csrf: &csrf, charts: false }, &b).into_response()
}

fn cluster_html(s: &k3s::ClusterStatus) -> String {
    let state = if s.hibernated {
        "hibernated"
    } else if s.ready {
        "healthy"
    } else {
        "starting"
    };
    let mut b = String::new();
    let _ = write!(
        b,
        r##"<section aria-labelledby="cluster-{id}"><h2 id="cluster-{id}">{name} {badge}</h2>
<p>{servers} server(s), {agents} agent(s), datastore {datastore}; Kubernetes {version}{api}. <a href="/ui/k3s/{url}/kubeconfig" download="{name}.kubeconfig">Download the kubeconfig</a></p>
<table><thead><tr><th scope="col">Role</th><th scope="col">Task</th><th scope="col">Host</th><th scope="col">State</th><th scope="col">Healthy</th><th scope="col">Node Ready</th><th scope="col">Version</th><th scope="col">Why not healthy</th></tr></thead><tbody>"##,
        id = Esc(&s.name),
        name = Esc(&s.name),
        url = Url(&s.name),
        badge = html::badge(state),
        servers = s.servers,
        agents = s.agents,
        datastore = Esc(&format!("{:?}", s.datastore).to_lowercase()),
        version = Esc(s.kubernetes_version.as_deref().unwrap_or("–")),
        api = s.api_server.as_deref().map(|a| format!(" at <code>{}</code>", Esc(a))).unwrap_or_default(),
    );
    for n in &s.nodes {
        let _ = write!(
            b,
            r##"<tr><td>{role}</td><td><code>{task}</code></td><td>{host}</td><td>{state}</td><td>{healthy}</td><td>{ready}</td><td>{version}</td><td>{message}</td></tr>"##,
            role = Esc(n.role.service()),
            task = Esc(&n.task_id),
            host = Esc(&n.host),
            state = html::badge(&n.state),
            healthy = if n.healthy { "yes" } else { "no" },
            ready = match n.k8s_ready {
                Some(true) => "Ready",
                Some(false) => "NotReady",
                None => "–",
            },
            version = Esc(n.version.as_deref().unwrap_or("–")),
            message = Esc(n.message.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table>");
    if !s.problems.is_empty() {
        b.push_str("<ul class=\"problems\">");
        for p in &s.problems {
            let _ = write!(b, "<li>{}</li>", Esc(p));
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    b
}

pub async fn kubeconfig(State(state): State<Dashboard>, Path(name): Path<String>) -> Response {
    let Some(k3s) = &state.k3s else {
        return (StatusCode::NOT_FOUND, "the K3s framework is not running here").into_response();
    };
    match k3s.kubeconfig(&name) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "application/yaml".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.kubeconfig\"")),
            ],
            text,
        )
            .into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
