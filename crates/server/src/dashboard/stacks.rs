//! Stacks: compose projects from the framework's engine; deploy, scale,
//! restart and remove through the same calls as the API.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::html::{self, Esc, Nav, Shell, Url};
use super::{Csrf, Dashboard, is_htmx};
use crate::error::{ApiError, Diagnostic};
use crate::views;

/// Tells the page to refresh the project list (htmx `HX-Trigger`).
const CHANGED: (&str, &str) = ("HX-Trigger", "stacks-changed");

fn projects_html(state: &Dashboard) -> String {
    let now = framework::driver::now_ms();
    let projects: Vec<views::ProjectView> = state
        .api
        .framework()
        .read(|e| views::projects(e).iter().filter_map(|p| views::project(e, &p.name, now)).collect());
    // Refreshes itself, but not while a control inside has the focus (a half-typed replica count).
    let mut b = String::from(
        r##"<div id="stacks" hx-get="/ui/stacks" hx-trigger="every 5s [document.visibilityState=='visible' && !document.getElementById('stacks').contains(document.activeElement)], stacks-changed from:body" hx-select="#stacks" hx-swap="outerHTML">"##,
    );
    if projects.is_empty() {
        b.push_str("<p>No project is deployed. Deploy a compose file below, or run <code>m3s compose up</code>.</p>");
    }
    for p in &projects {
        let _ = write!(
            b,
            r##"<section class="project" aria-labelledby="project-{id}"><h2 id="project-{id}">{name}{removing}</h2>
<table><thead><tr><th scope="col">Service</th><th scope="col">State</th><th scope="col">Replicas (running / desired)</th><th scope="col">Healthy</th><th scope="col">Endpoints</th><th scope="col">Actions</th></tr></thead><tbody>"##,
            id = Esc(&p.name),
            name = Esc(&p.name),
            removing = if p.removing { " (removing)" } else { "" },
        );
        for s in &p.services {
            let endpoints: Vec<String> = s.endpoints.iter().map(|e| format!("<code>{}</code>", Esc(e))).collect();
            let base = format!("/ui/stacks/{}/{}", Url(&p.name), Url(&s.name));
            let _ = write!(
                b,
                r##"<tr><th scope="row"><a href="{base}">{name}</a></th><td>{badge}{message}</td><td>{running} / {replicas}</td><td>{healthy}</td><td>{endpoints}</td>
<td class="actions"><form hx-post="{base}/scale" hx-target="#action-result"><label for="replicas-{pid}-{sid}" class="visually-hidden">Replicas of {name}</label><input id="replicas-{pid}-{sid}" name="replicas" type="number" min="0" max="1000" value="{replicas}" required><button type="submit">Scale</button></form>
<button type="button" hx-post="{base}/restart" hx-target="#action-result" aria-label="Restart {name}">Restart</button> <a href="{base}">Logs</a></td></tr>"##,
                name = Esc(&s.name),
                pid = Esc(&p.name),
                sid = Esc(&s.name),
                badge = html::badge(s.state),
                message = if s.message.is_empty() {
                    String::new()
                } else {
                    format!(r##"<br><small>{}</small>"##, Esc(&s.message))
                },
                running = s.running,
                replicas = s.replicas,
                healthy = s.healthy,
                endpoints = if endpoints.is_empty() { "–".to_owned() } else { endpoints.join(" ") },
            );
        }
        let _ = write!(
            b,
            r##"</tbody></table><button type="button" class="danger" hx-post="/ui/stacks/{}/remove" hx-target="#action-result" hx-confirm="Remove project {} and stop all its tasks?">Remove {}</button></section>"##,
            Url(&p.name),
            Esc(&p.name),
            Esc(&p.name)
        );
    }
    b.push_str("</div>");
    b
}

const DEPLOY_FORM: &str = r##"<section aria-labelledby="deploy"><h2 id="deploy">Deploy a compose file</h2>
<form method="post" action="/ui/stacks" hx-post="/ui/stacks" hx-target="#deploy-result" class="deploy">
<p><label for="project">Project name</label><input id="project" name="project" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*" autocomplete="off"></p>
<p><label for="compose-file">Load a file</label><input id="compose-file" type="file" accept=".yaml,.yml,.json" data-load-into="compose"></p>
<p><label for="compose">compose.yaml</label><textarea id="compose" name="compose" rows="14" spellcheck="false" required placeholder="services:&#10;  web:&#10;    command: python3 -m http.server 8080"></textarea></p>
<p><input id="strict" name="strict" type="checkbox" value="true"><label for="strict">Treat warnings as errors</label></p>
<p><button type="submit">Deploy</button></p></form>"##;

pub async fn page(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    render_page(&state, &csrf, "")
}

fn render_page(state: &Dashboard, csrf: &str, result: &str) -> Response {
    let mut b = String::from(r##"<div id="action-result" aria-live="polite"></div>"##);
    b.push_str(&projects_html(state));
    b.push_str(DEPLOY_FORM);
    // Where a deploy's outcome goes: filled by htmx, or here when the form was posted without script.
    let _ = write!(b, r#"<div id="deploy-result" aria-live="polite">{result}</div></section>"#);
    html::page(&Shell { nav: Nav::Stacks, title: "Stacks", csrf, charts: false }, &b).into_response()
}

#[derive(Deserialize)]
pub struct DeployForm {
    #[serde(default)]
    project: String,
    #[serde(default)]
    compose: String,
    #[serde(default)]
    strict: Option<String>,
}

pub async fn deploy(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    headers: HeaderMap,
    Form(form): Form<DeployForm>,
) -> Response {
    let result = if form.project.trim().is_empty() {
        html::notice("bad", "Project name: required.")
    } else {
        let strict = form.strict.is_some();
        let name = form.project.trim().to_owned();
        match crate::deploy::deploy(&state.api, &name, &form.compose, strict) {
            Ok(deployed) => {
                let o = &deployed.outcome;
                let mut r = html::notice(
                    "ok",
                    &format!(
                        "Project {} deployed: {} new, {} changed, {} unchanged, {} removed.",
                        name,
                        o.created.len(),
                        o.updated.len(),
                        o.unchanged.len(),
                        o.removed.len()
                    ),
                );
                if !deployed.warnings.is_empty() {
                    r.push_str(&annotated(&form.compose, "Warnings:", &deployed.warnings));
                }
                r
            }
            Err(e) => rejected(&form.compose, &e),
        }
    };
    if is_htmx(&headers) {
        return ([CHANGED], result).into_response();
    }
    render_page(&state, &csrf, &result)
}

fn rejected(text: &str, e: &ApiError) -> String {
    if e.diagnostics.is_empty() {
        return html::notice("bad", &e.message);
    }
    let mut heading = e.message.clone();
    if let Some(first) = heading.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    annotated(text, &format!("{heading}:"), &e.diagnostics)
}

/// The submitted file with each diagnostic under its line, and the list of them.
fn annotated(text: &str, heading: &str, diagnostics: &[Diagnostic]) -> String {
    let mut b = format!(r##"<div class="diagnostics" role="alert"><p>{}</p><ul>"##, Esc(heading));
    for d in diagnostics {
        let place = match (d.line, d.column) {
            (Some(l), Some(c)) => format!("line {l}, column {c}"),
            (Some(l), None) => format!("line {l}"),
            _ => "project".to_owned(),
        };
        let path = if d.path.is_empty() { String::new() } else { format!(" ({})", d.path) };
        let _ = write!(b, "<li><strong>{}</strong>{}: {}</li>", Esc(&place), Esc(&path), Esc(&d.message));
    }
    b.push_str(r##"</ul><pre class="listing">"##);
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let here: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.line == Some(n)).collect();
        let class = if here.is_empty() { "" } else { r##" class="marked""## };
        let _ = writeln!(b, r##"<span{class}><span class="ln">{n:>4}</span> {}</span>"##, Esc(line));
        for d in here {
            let indent = " ".repeat(d.column.unwrap_or(1).saturating_sub(1) as usize);
            let _ = writeln!(b, r##"<span class="diag">     {indent}^ {}</span>"##, Esc(&d.message));
        }
    }
    b.push_str("</pre></div>");
    b
}

fn outcome(result: Result<String, ApiError>) -> Response {
    match result {
        Ok(message) => ([CHANGED], html::notice("ok", &message)).into_response(),
        // 200 with the message: htmx shows it where the action was asked for.
        Err(e) => html::notice("bad", &e.message).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ScaleForm {
    replicas: String,
}

pub async fn scale(
    State(state): State<Dashboard>,
    Path((project, service)): Path<(String, String)>,
    Form(form): Form<ScaleForm>,
) -> Response {
    outcome((|| {
        let replicas: u32 = form.replicas.trim().parse().map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("replicas={:?}: expected a whole number", form.replicas),
            )
        })?;
        state.api.framework().scale(&project, &service, replicas)?;
        Ok(format!("{project}/{service}: scaling to {replicas}."))
    })())
}

pub async fn restart(State(state): State<Dashboard>, Path((project, service)): Path<(String, String)>) -> Response {
    outcome(
        state
            .api
            .framework()
            .restart(&project, &service)
            .map(|()| format!("{project}/{service}: restarting."))
            .map_err(ApiError::from),
    )
}

pub async fn remove(State(state): State<Dashboard>, Path(project): Path<String>) -> Response {
    outcome(state.api.framework().remove(&project).map(|()| format!("{project}: removing.")).map_err(ApiError::from))
}

/// One service: its tasks and a live tail of the newest task's output.
pub async fn service(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    Path((project, service)): Path<(String, String)>,
) -> Response {
    let now = framework::driver::now_ms();
    let (view, framework_id) = state
        .api
        .framework()
        .read(|e| (views::service(e, &project, &service, now), e.framework_id().map(|i| i.value.clone())));
    let title = format!("{project} / {service}");
    let Some(mut view) = view else {
        let body = html::notice("bad", &format!("No service '{service}' in project '{project}'."));
        return html::page(&Shell { nav: Nav::Stacks, title: &title, csrf: &csrf, charts: false }, &body)
            .into_response();
    };
    let framework_id = framework_id.unwrap_or_default();
    view.tasks.sort_by_key(|t| std::cmp::Reverse(t.launched_at_ms));
    let mut b = format!(
        r##"<p>{} · {} of {} running · endpoints: {}</p>"##,
        html::badge(view.state),
        view.running,
        view.replicas,
        if view.endpoints.is_empty() { "–".to_owned() } else { Esc(&view.endpoints.join(", ")).to_string() }
    );
    b.push_str(r##"<section aria-labelledby="tasks"><h2 id="tasks">Tasks</h2><table><thead><tr><th scope="col">Task</th><th scope="col">Replica</th><th scope="col">State</th><th scope="col">Host</th><th scope="col">Launched</th><th scope="col">Message</th></tr></thead><tbody>"##);
    for t in &view.tasks {
        let _ = write!(
            b,
            r##"<tr><td><a href="/ui/tasks/{}/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
            Url(&framework_id),
            Url(&t.id),
            Esc(&t.id),
            t.replica,
            html::badge(&t.state),
            Esc(&t.host),
            html::time_ms(t.launched_at_ms as i64),
            Esc(t.message.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table></section>");
    if let Some(newest) = view.tasks.first() {
        b.push_str(&super::widgets::tail(
            &framework_id,
            &newest.agent_id,
            &newest.id,
            &format!("Output of {}", newest.id),
        ));
    }
    html::page(&Shell { nav: Nav::Stacks, title: &title, csrf: &csrf, charts: false }, &b).into_response()
}
