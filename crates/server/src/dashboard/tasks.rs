//! Tasks of every framework, from the master: state history, sandbox files,
//! and stdout/stderr through the agents' files API.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mesos::legacy::{LegacyFramework, LegacyTask, MasterState};
use serde_json::json;

use super::html::{self, Esc, Nav, Shell, Url};
use super::{Csrf, Dashboard, sources};
use mesos::files::{LogError, SandboxFile};

type Q = Query<HashMap<String, String>>;

/// A task's newest status time, in milliseconds.
fn last_update_ms(t: &LegacyTask) -> i64 {
    t.latest_status().map_or(0, |s| (s.timestamp * 1000.0) as i64)
}

fn is_active(t: &LegacyTask) -> bool {
    !t.state.is_terminal()
}

/// Tasks grouped by name (a compose service's tasks share theirs), running
/// ones first; ended ones only when asked for (`show=all`) or filtered by state.
pub async fn list(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>, Query(q): Q) -> Response {
    let wanted = q.get("state").filter(|s| !s.is_empty());
    let all = wanted.is_some() || q.get("show").is_some_and(|s| s == "all");
    let mut b = String::new();
    match sources::master_state(&state).await {
        Err(e) => b.push_str(&html::notice("bad", &format!("The master did not answer: {e}"))),
        Ok(master) => {
            let mut rows: Vec<(&LegacyFramework, &LegacyTask)> = master
                .all_frameworks()
                .flat_map(|f| f.all_tasks().map(move |t| (f, t)))
                .filter(|(_, t)| wanted.is_none_or(|w| t.state.as_str() == w))
                .collect();
            let ended = rows.iter().filter(|(_, t)| !is_active(t)).count();
            if !all {
                rows.retain(|(_, t)| is_active(t));
            }
            rows.sort_by(|(_, a), (_, b)| {
                (&a.name, std::cmp::Reverse((is_active(a), last_update_ms(a))))
                    .cmp(&(&b.name, std::cmp::Reverse((is_active(b), last_update_ms(b)))))
            });
            match wanted {
                Some(w) => {
                    let _ =
                        write!(b, r##"<p>Only {} tasks. <a href="/ui/tasks">Running tasks</a></p>"##, html::badge(w));
                }
                None if all => {
                    b.push_str(r##"<p>Running and ended tasks. <a href="/ui/tasks">Running tasks only</a></p>"##)
                }
                None => {
                    let _ = write!(
                        b,
                        r##"<p>Running tasks. <a href="/ui/tasks?show=all">Show the {ended} ended ones too</a></p>"##
                    );
                }
            }
            let refresh = match wanted {
                Some(w) => format!("/ui/tasks?state={}", Url(w)),
                None if all => "/ui/tasks?show=all".to_owned(),
                None => "/ui/tasks".to_owned(),
            };
            let _ = write!(b, r#"<div id="live" hx-get="{refresh}""#);
            b.push_str(r##" hx-trigger="every 10s [document.visibilityState=='visible']" hx-select="#live" hx-swap="outerHTML">"##);
            let shown = &rows[..rows.len().min(500)];
            for group in shown.chunk_by(|(_, a), (_, b)| a.name == b.name) {
                let running = group.iter().filter(|(_, t)| is_active(t)).count();
                let _ = write!(
                    b,
                    r##"<table><caption>{} <small>{running} running, {} ended</small></caption><thead><tr><th scope="col">Task</th><th scope="col">Framework</th><th scope="col">State</th><th scope="col">CPUs</th><th scope="col">Memory</th><th scope="col">Last update (UTC)</th></tr></thead><tbody>"##,
                    Esc(&group[0].1.name),
                    group.len() - running
                );
                for (f, t) in group {
                    let _ = write!(
                        b,
                        r##"<tr><td><a href="/ui/tasks/{}/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
                        Url(&f.id),
                        Url(&t.id),
                        Esc(&t.id),
                        Esc(&f.name),
                        html::badge(t.state.as_str()),
                        html::num(t.resources.cpus, 2),
                        html::megabytes(t.resources.mem),
                        html::time_ms(last_update_ms(t)),
                    );
                }
                b.push_str("</tbody></table>");
            }
            if rows.is_empty() {
                b.push_str("<p>No tasks.</p>");
            }
            if rows.len() > 500 {
                let _ = write!(b, "<p>The first 500 of {} tasks are shown.</p>", rows.len());
            }
            b.push_str("</div>");
        }
    }
    html::page(&Shell { nav: Nav::Tasks, title: "Tasks", csrf: &csrf, charts: false }, &b).into_response()
}

fn find<'m>(
    master: &'m MasterState,
    framework_id: &str,
    task_id: &str,
) -> Option<(&'m LegacyFramework, &'m LegacyTask)> {
    let f = master.all_frameworks().find(|f| f.id == framework_id)?;
    Some((f, f.all_tasks().find(|t| t.id == task_id)?))
}

pub async fn detail(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    Path((framework_id, task_id)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    let title = format!("Task {task_id}");
    let shell = Shell { nav: Nav::Tasks, title: &title, csrf: &csrf, charts: false };
    let master = match sources::master_state(&state).await {
        Ok(m) => m,
        Err(e) => {
            return error_page(&shell, StatusCode::BAD_GATEWAY, &format!("The master did not answer: {e}"));
        }
    };
    let Some((f, t)) = find(&master, &framework_id, &task_id) else {
        let message = format!("The master knows no task {task_id} of framework {framework_id}.");
        return error_page(&shell, StatusCode::NOT_FOUND, &message);
    };
    let agent = master.slaves.iter().find(|a| a.id == t.slave_id).map_or(t.slave_id.as_str(), |a| a.hostname.as_str());
    let mut b = format!(
        r##"<dl class="facts"><dt>Name</dt><dd>{}</dd><dt>State</dt><dd>{}</dd><dt>Framework</dt><dd>{} (<code>{}</code>)</dd><dt>Agent</dt><dd>{}</dd><dt>Resources</dt><dd>{} CPUs, {}, disk {}</dd></dl>"##,
        Esc(&t.name),
        html::badge(t.state.as_str()),
        Esc(&f.name),
        Esc(&f.id),
        Esc(agent),
        html::num(t.resources.cpus, 2),
        html::megabytes(t.resources.mem),
        html::megabytes(t.resources.disk),
    );
    b.push_str(r##"<section aria-labelledby="history"><h2 id="history">State history</h2><table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">State</th><th scope="col">Healthy</th></tr></thead><tbody>"##);
    for s in &t.statuses {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            html::time_ms((s.timestamp * 1000.0) as i64),
            html::badge(s.state.as_str()),
            s.healthy.map_or("–", |h| if h { "yes" } else { "no" })
        );
    }
    b.push_str("</tbody></table></section>");

    let dir = q.get("path").map(String::as_str).unwrap_or("");
    let base = format!("/ui/tasks/{}/{}", Url(&framework_id), Url(&task_id));
    let _ = write!(
        b,
        r##"<section aria-labelledby="files"><h2 id="files">Sandbox{}</h2>"##,
        if dir.is_empty() { String::new() } else { format!(": {}", Esc(dir)) }
    );
    let files = state.api.inner.files.as_ref();
    let listing = match files {
        None => Err(LogError::NotFound("no master configured".into())),
        Some(files) => {
            files
                .browse(&SandboxFile {
                    agent_id: &t.slave_id,
                    framework_id: &framework_id,
                    task_id: &task_id,
                    path: dir,
                })
                .await
        }
    };
    match listing {
        Err(e) => b.push_str(&html::notice("bad", &format!("The sandbox cannot be listed: {e}"))),
        Ok(entries) => {
            b.push_str(r##"<table><thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Modified (UTC)</th><th scope="col">Mode</th></tr></thead><tbody>"##);
            if !dir.is_empty() {
                let parent = dir.trim_end_matches('/').rsplit_once('/').map_or("", |(parent, _)| parent);
                let _ = write!(
                    b,
                    r##"<tr><td><a href="{base}?path={}">..</a></td><td></td><td></td><td></td></tr>"##,
                    Url(parent)
                );
            }
            for e in &entries {
                let name = e.path.rsplit('/').next().unwrap_or(&e.path);
                let href = if e.is_dir() {
                    format!("{base}?path={}", Url(&e.path))
                } else {
                    format!("{base}/file?path={}", Url(&e.path))
                };
                let _ = write!(
                    b,
                    r##"<tr><td><a href="{href}">{}{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>"##,
                    Esc(name),
                    if e.is_dir() { "/" } else { "" },
                    if e.is_dir() { "–".into() } else { html::bytes(e.size as f64) },
                    html::time_ms((e.mtime * 1000.0) as i64),
                    Esc(&e.mode)
                );
            }
            b.push_str("</tbody></table>");
        }
    }
    b.push_str("</section>");
    b.push_str(&super::widgets::tail(&framework_id, &t.slave_id, &task_id, "Output"));
    html::page(&shell, &b).into_response()
}

/// Bytes of a sandbox file shown at once.
const VIEW: u64 = 64 * 1024;

/// The last 64 KiB of one sandbox file.
pub async fn file(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    Path((framework_id, task_id)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    let path = q.get("path").cloned().unwrap_or_default();
    let title = format!("{task_id}: {path}");
    let shell = Shell { nav: Nav::Tasks, title: &title, csrf: &csrf, charts: false };
    let agent = match sources::master_state(&state).await {
        Ok(m) => find(&m, &framework_id, &task_id).map(|(_, t)| t.slave_id.clone()),
        Err(e) => {
            return error_page(&shell, StatusCode::BAD_GATEWAY, &format!("The master did not answer: {e}"));
        }
    };
    let Some(agent) = agent else {
        return error_page(&shell, StatusCode::NOT_FOUND, &format!("The master knows no task {task_id}."));
    };
    let mut b =
        format!(r##"<p><a href="/ui/tasks/{}/{}">Back to the task</a></p>"##, Url(&framework_id), Url(&task_id));
    match read_chunk(&state, &agent, &framework_id, &task_id, &path, -1, VIEW).await {
        Ok(chunk) => {
            if chunk.offset > 0 {
                let _ = write!(
                    b,
                    "<p>The last {} of {} are shown.</p>",
                    html::bytes(chunk.data.len() as f64),
                    html::bytes(chunk.end() as f64)
                );
            }
            let _ = write!(b, r##"<pre class="log" tabindex="0">{}</pre>"##, Esc(&chunk.data));
        }
        Err(e) => {
            b.push_str(&html::notice("bad", &e.to_string()));
            return (log_error_status(&e), html::page(&shell, &b)).into_response();
        }
    }
    html::page(&shell, &b).into_response()
}

/// A page that only says what went wrong, with the status that says it too.
fn error_page(shell: &Shell, status: StatusCode, message: &str) -> Response {
    (status, html::page(shell, &html::notice("bad", message))).into_response()
}

fn log_error_status(e: &LogError) -> StatusCode {
    match e {
        LogError::NotFound(_) => StatusCode::NOT_FOUND,
        LogError::Agent(_) => StatusCode::BAD_GATEWAY,
    }
}

async fn read_chunk(
    state: &Dashboard,
    agent: &str,
    framework_id: &str,
    task_id: &str,
    path: &str,
    offset: i64,
    length: u64,
) -> Result<mesos::legacy::FileChunk, LogError> {
    let files = state.api.inner.files.as_ref().ok_or_else(|| LogError::NotFound("no master configured".into()))?;
    files.read_path(&SandboxFile { agent_id: agent, framework_id, task_id, path }, offset, length).await
}

/// For the tail: `{data, offset, eof}` from `offset` (absent: the last 64 KiB), or `{error}`
/// with 400 (bad request), 404 (no such task or file) or 502 (the agent did not answer).
pub async fn read(
    State(state): State<Dashboard>,
    Path((framework_id, task_id)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    let agent = q.get("agent").map(String::as_str).unwrap_or("");
    let path = q.get("path").map(String::as_str).unwrap_or("stdout");
    let offset = match q.get("offset").map(|o| o.parse::<i64>()) {
        None => -1,
        Some(Ok(o)) => o,
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": "offset: expected a number"}))).into_response();
        }
    };
    match read_chunk(&state, agent, &framework_id, &task_id, path, offset, VIEW).await {
        Ok(chunk) => {
            let next = chunk.end();
            Json(json!({"data": chunk.data, "offset": next, "eof": chunk.data.is_empty()})).into_response()
        }
        Err(e) => (log_error_status(&e), Json(json!({"error": e.to_string()}))).into_response(),
    }
}
