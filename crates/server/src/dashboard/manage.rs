//! Management and audit pages: the repository's state (fetched and applied
//! commits, the last error with its file and line), the plan of the fetched
//! commit and the drift from the applied one, the apply history; and the audit
//! log, filtered by who. Read-only: applying goes through `m3s manage` or the API.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::html::{self, Esc, Nav, Shell};
use super::{Csrf, Dashboard};
use crate::audit::AuditQuery;

const NOT_RUNNING: &str =
    "<p>Management is not running here: start m3s with <code>--manage-repo URL</code> (see docs/manage.md).</p>";

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

pub async fn page(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    let mut b = String::new();
    match &state.manage {
        None => b.push_str(NOT_RUNNING),
        Some(m) => {
            let s = m.status();
            let _ = write!(
                b,
                "<dl class=\"facts\"><dt>Repository</dt><dd><code>{}</code> ({})</dd><dt>Fetched</dt><dd><code>{}</code></dd><dt>Applied</dt><dd><code>{}</code></dd><dt>Apply</dt><dd>{}</dd></dl>",
                Esc(&s.repository),
                Esc(&s.branch),
                Esc(s.head.as_deref().map_or("–", short)),
                Esc(s.applied.as_deref().map_or("–", short)),
                if s.auto_apply { "each new commit" } else { "after <code>m3s manage apply</code>" },
            );
            if let Some(e) = &s.error {
                b.push_str(&html::notice("bad", e));
                if !s.diagnostics.is_empty() {
                    b.push_str("<ul class=\"problems\">");
                    for d in &s.diagnostics {
                        let at = d.line.map(|l| format!("line {l}: ")).unwrap_or_default();
                        let _ = write!(b, "<li>{}{}</li>", Esc(&at), Esc(&d.message));
                    }
                    b.push_str("</ul>");
                }
            }
            b.push_str("<h2>Plan of the fetched commit</h2>");
            match m.plan(None).await {
                Ok((_, _, plan)) if plan.is_empty() => {
                    b.push_str("<p>Nothing to change: what runs is the fetched commit.</p>")
                }
                Ok((_, _, plan)) => {
                    let _ = write!(b, "<pre class=\"plan\">{}</pre>", Esc(&plan.render()));
                }
                Err(e) => b.push_str(&html::notice("bad", &e.message)),
            }
            b.push_str("<h2>Drift from the applied commit</h2>");
            match m.drift().await {
                Ok((_, plan)) if plan.is_empty() => b.push_str("<p>No drift.</p>"),
                Ok((_, plan)) => {
                    b.push_str("<p>What runs was changed by hand; applying the commit again would:</p>");
                    let _ = write!(b, "<pre class=\"plan\">{}</pre>", Esc(&plan.render()));
                }
                Err(e) => b.push_str(&html::notice("warn", &e.message)),
            }
            b.push_str("<h2>Runbooks</h2>");
            match m.runbooks().await {
                Ok((_, list)) if list.is_empty() => {
                    b.push_str("<p>None in the applied commit (<code>runbooks/&lt;name&gt;/compose.yaml</code>).</p>")
                }
                Ok((_, list)) => {
                    b.push_str("<table><thead><tr><th scope=\"col\">Runbook</th><th scope=\"col\">Description</th><th scope=\"col\">Runs on</th><th scope=\"col\">Parameters</th></tr></thead><tbody>");
                    for r in &list {
                        let target = match &r.target {
                            manage::runbook::Target::One => "one agent".to_owned(),
                            manage::runbook::Target::Every => "every agent".to_owned(),
                            manage::runbook::Target::Attributes(a) => {
                                let pairs: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
                                format!("agents with {}", pairs.join(", "))
                            }
                        };
                        let params: Vec<&str> = r.params.keys().map(String::as_str).collect();
                        let _ = write!(
                            b,
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            Esc(&r.name),
                            Esc(&r.description),
                            Esc(&target),
                            Esc(&params.join(", "))
                        );
                    }
                    b.push_str("</tbody></table><p>Run one with <code>m3s manage run NAME -p key=value</code>.</p>");
                }
                Err(e) => b.push_str(&html::notice("warn", &e.message)),
            }
            let runs = m.runs();
            if !runs.is_empty() {
                b.push_str("<h2>Runs</h2><table><thead><tr><th scope=\"col\">Started (UTC)</th><th scope=\"col\">Run</th><th scope=\"col\">Runbook</th><th scope=\"col\">By</th><th scope=\"col\">Agents</th><th scope=\"col\">State</th></tr></thead><tbody>");
                for r in runs.iter().take(20) {
                    let _ = write!(
                        b,
                        "<tr><td>{}</td><td><a href=\"/ui/manage/runs/{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        Esc(&utc(r.started_ms)),
                        html::Url(&r.id),
                        Esc(&r.id),
                        Esc(&r.runbook),
                        Esc(&r.who),
                        r.agents,
                        html::badge(r.state.as_str())
                    );
                }
                b.push_str("</tbody></table>");
            }
            b.push_str("<h2>History</h2><table><thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Commit</th><th scope=\"col\">Subject</th><th scope=\"col\">Result</th></tr></thead><tbody>");
            for h in &s.history {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    Esc(&utc(h.at_ms)),
                    Esc(short(&h.commit)),
                    Esc(&h.subject),
                    Esc(&h.result)
                );
            }
            b.push_str("</tbody></table>");
        }
    }
    html::page(&Shell { nav: Nav::Manage, title: "Management", csrf: &csrf, charts: false }, &b).into_response()
}

fn utc(ms: u64) -> String {
    html::time_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    who: String,
    #[serde(default)]
    contains: String,
}

pub async fn audit(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let query = AuditQuery {
        who: (!filter.who.is_empty()).then(|| filter.who.clone()),
        contains: (!filter.contains.is_empty()).then(|| filter.contains.clone()),
        limit: Some(500),
        ..Default::default()
    };
    let entries = state.api.inner.auth.audit().query(&query);
    let mut b = String::new();
    let _ = write!(
        b,
        r##"<form method="get" action="/ui/audit" class="filters"><label>Who <input name="who" value="{}"></label> <label>Action contains <input name="contains" value="{}"></label> <button type="submit">Filter</button></form>"##,
        Esc(&filter.who),
        Esc(&filter.contains)
    );
    if entries.is_empty() {
        b.push_str("<p>No change recorded yet.</p>");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who</th><th scope=\"col\">Via</th><th scope=\"col\">Action</th><th scope=\"col\">Result</th></tr></thead><tbody>");
        for e in &entries {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                Esc(&utc(e.at_ms)),
                Esc(&e.who),
                Esc(&e.via),
                Esc(&e.action),
                Esc(&e.result)
            );
        }
        b.push_str("</tbody></table>");
    }
    html::page(&Shell { nav: Nav::Audit, title: "Audit log", csrf: &csrf, charts: false }, &b).into_response()
}

/// One run: its parameters and each task's output (read now while it runs).
pub async fn run(
    State(state): State<Dashboard>,
    Extension(Csrf(csrf)): Extension<Csrf>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let mut b = String::new();
    let found = match &state.manage {
        Some(m) => m.run_now(&id).await,
        None => None,
    };
    let Some(r) = found else {
        b.push_str(&html::notice("bad", &format!("No run {id:?}.")));
        let mut response =
            html::page(&Shell { nav: Nav::Manage, title: "Run", csrf: &csrf, charts: false }, &b).into_response();
        *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
        return response;
    };
    let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = write!(
        b,
        "<dl class=\"facts\"><dt>Runbook</dt><dd><code>{}</code> of <code>{}</code></dd><dt>By</dt><dd>{}</dd><dt>Started</dt><dd>{} UTC</dd><dt>Parameters</dt><dd><code>{}</code></dd><dt>State</dt><dd>{}</dd></dl>",
        Esc(&r.runbook),
        Esc(short(&r.commit)),
        Esc(&r.who),
        Esc(&utc(r.started_ms)),
        Esc(&params.join(" ")),
        html::badge(r.state.as_str())
    );
    for t in &r.tasks {
        let _ = write!(
            b,
            "<section><h2>{} <code>{}</code> {}</h2>{}<h3>stdout</h3><pre>{}</pre><h3>stderr</h3><pre>{}</pre></section>",
            Esc(&t.host),
            Esc(&t.task_id),
            html::badge(&t.state),
            t.message.as_deref().map(|m| format!("<p>{}</p>", Esc(m))).unwrap_or_default(),
            Esc(&t.stdout),
            Esc(&t.stderr)
        );
    }
    html::page(&Shell { nav: Nav::Manage, title: &format!("Run {}", r.id), csrf: &csrf, charts: false }, &b)
        .into_response()
}
