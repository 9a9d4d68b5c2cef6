//! Metrics (charts with selectors), Report and Error log: views of M3trics.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use metrics::model::NAME_LABEL;
use metrics::report::{By, Order};

use super::html::{self, Esc, Nav, Shell, Url};
use super::range::Range;
use super::{Csrf, Dashboard, blocking, sources, widgets};

type Q = Query<HashMap<String, String>>;

fn option_list(id: &str, label: &str, values: &[String], selected: &str, any: &str) -> String {
    let mut h =
        format!(r##"<label for="{id}">{label}</label><select id="{id}" name="{id}"><option value="">{any}</option>"##);
    for v in values {
        let sel = if v == selected { " selected" } else { "" };
        let _ = write!(h, r##"<option value="{}"{sel}>{}</option>"##, Esc(v), Esc(v));
    }
    h.push_str("</select>");
    h
}

/// A PromQL string literal.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unit_of(query: &str) -> &'static str {
    if query.contains("_bytes") || query.starts_with("mem_used") && !query.contains("percent") {
        "bytes"
    } else if query.contains("percent") {
        "percent"
    } else {
        ""
    }
}

pub async fn metrics(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>, Query(q): Q) -> Response {
    let get = |k: &str| q.get(k).map(|s| s.trim()).unwrap_or("").to_owned();
    let (metric, host, task, custom) = (get("metric"), get("host"), get("task"), get("query"));
    let mut problems = Vec::new();
    let range = Range::from_query(&q, "1h").unwrap_or_else(|e| {
        problems.push(e.to_string());
        Range::last(3600)
    });
    let store = state.metrics.store().clone();
    let (names, hosts, tasks) = blocking(move || {
        (store.label_values(NAME_LABEL, &[]), store.label_values("host", &[]), store.label_values("task", &[]))
    })
    .await;
    let query = if !custom.is_empty() {
        custom.clone()
    } else {
        let metric = if metric.is_empty() { "cpu_usage_percent".to_owned() } else { metric.clone() };
        let mut matchers = Vec::new();
        if metric == "cpu_usage_percent" {
            matchers.push(r##"cpu="cpu-total""##.to_owned());
        }
        if !host.is_empty() {
            matchers.push(format!("host={}", quoted(&host)));
        }
        if !task.is_empty() {
            matchers.push(format!("task={}", quoted(&task)));
        }
        if matchers.is_empty() { metric } else { format!("{metric}{{{}}}", matchers.join(",")) }
    };
    if let Err(e) = metrics::promql::parse(&query) {
        problems.push(format!("query: {e}"));
    }
    let mut b = String::new();
    for p in &problems {
        b.push_str(&html::notice("bad", p));
    }
    b.push_str(r##"<form method="get" action="/ui/metrics" class="controls"><fieldset><legend>Series</legend>"##);
    b.push_str(&option_list("metric", "Metric", &names, &metric, "(choose)"));
    b.push_str(&option_list("host", "Node or agent", &hosts, &host, "(all)"));
    b.push_str(&option_list("task", "Task", &tasks, &task, "(all)"));
    let _ = write!(
        b,
        r##"<label for="query">or PromQL</label><input id="query" name="query" value="{}" placeholder="rate(net_bytes_recv[5m])" size="40" spellcheck="false"></fieldset>"##,
        Esc(&custom)
    );
    b.push_str(&range.picker());
    b.push_str(r##"<p><button type="submit">Show</button></p></form>"##);
    if problems.iter().all(|p| !p.starts_with("query")) {
        b.push_str(&widgets::chart("metrics-chart", &query, &query, unit_of(&query), &range));
        b.push_str(r##"<p class="hint">Drag across the chart to zoom in (the range becomes custom); double-click or <button type="button" data-zoom-reset>Reset zoom</button> to go back.</p>"##);
    }
    let _ = write!(
        b,
        r##"<p class="hint">The same data as JSON: <a href="/api/v1/query_range?query={}&amp;start={}&amp;end={}&amp;step=60">/api/v1/query_range</a></p>"##,
        Url(&query),
        range.start_ms / 1000,
        range.end_ms / 1000
    );
    html::page(&Shell { nav: Nav::Metrics, title: "Metrics", csrf: &csrf, charts: true }, &b).into_response()
}

fn opt_bytes(v: Option<f64>) -> String {
    v.map_or("–".into(), html::bytes)
}

fn opt_num(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| html::num(v, 3))
}

pub async fn report(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>, Query(q): Q) -> Response {
    let mut b = String::new();
    let range = Range::from_query(&q, "24h").unwrap_or_else(|e| {
        b.push_str(&html::notice("bad", &e.to_string()));
        Range::last(86400)
    });
    let most = q.get("order").is_some_and(|o| o == "most");
    let store = state.metrics.store().clone();
    let (start, end) = (range.start_ms, range.end_ms);
    let reports = blocking(move || {
        let order = if most { Order::Most } else { Order::Least };
        Ok::<_, metrics::model::SelectError>((
            metrics::report::node_memory(&*store, start, end, order, 50)?,
            metrics::report::top_tasks(&*store, start, end, By::Cpu, 20)?,
            metrics::report::top_tasks(&*store, start, end, By::Memory, 20)?,
        ))
    })
    .await;
    let (nodes, mut by_cpu, mut by_mem) = match reports {
        Ok(reports) => reports,
        Err(e) => {
            b.push_str(&html::notice("bad", &e.to_string()));
            Default::default()
        }
    };
    // Tasks still running come first (each list keeps its order otherwise).
    let running: std::collections::HashSet<(String, String)> = match sources::master_state(&state).await {
        Ok(m) => m
            .all_frameworks()
            .flat_map(|f| f.all_tasks().filter(|t| !t.state.is_terminal()).map(move |t| (f.id.clone(), t.id.clone())))
            .collect(),
        Err(_) => Default::default(),
    };
    let is_running = |t: &metrics::report::TaskUsage| running.contains(&(t.framework_id.clone(), t.task.clone()));
    by_cpu.sort_by_key(|t| !is_running(t));
    by_mem.sort_by_key(|t| !is_running(t));
    b.push_str(r##"<form method="get" action="/ui/report" class="controls">"##);
    b.push_str(&range.picker());
    let _ = write!(
        b,
        r##"<fieldset><legend>Nodes</legend><label for="order">Order</label><select id="order" name="order"><option value="least"{}>Least average memory use first</option><option value="most"{}>Most average memory use first</option></select></fieldset><p><button type="submit">Show</button></p></form>"##,
        if most { "" } else { " selected" },
        if most { " selected" } else { "" }
    );
    let _ = write!(
        b,
        r##"<p class="meta">From {} to {} UTC.</p><section aria-labelledby="node-memory"><h2 id="node-memory">Nodes by {} average memory use</h2><table><thead><tr><th scope="col">Host</th><th scope="col">Average used</th><th scope="col">Average used (bytes)</th><th scope="col">Total</th><th scope="col">Samples</th></tr></thead><tbody>"##,
        html::time_ms(range.start_ms),
        html::time_ms(range.end_ms),
        if most { "most" } else { "least" }
    );
    for n in &nodes {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&n.host),
            html::num(n.avg_used_percent, 1),
            opt_bytes(n.avg_used_bytes),
            opt_bytes(n.total_bytes),
            n.samples
        );
    }
    if nodes.is_empty() {
        b.push_str(r##"<tr><td colspan="5">No node memory samples in this range.</td></tr>"##);
    }
    b.push_str("</tbody></table></section>");
    for (id, title, rows) in [("top-cpu", "Top tasks by CPU", &by_cpu), ("top-memory", "Top tasks by memory", &by_mem)]
    {
        let _ = write!(
            b,
            r##"<section aria-labelledby="{id}"><h2 id="{id}">{title}</h2><table><thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Agent</th><th scope="col">CPUs (avg / max)</th><th scope="col">RSS (avg / max)</th></tr></thead><tbody>"##
        );
        for t in rows.iter() {
            let _ = write!(
                b,
                r##"<tr><td><a href="/ui/tasks/{}/{}">{}</a></td><td>{}</td><td>{}</td><td>{} / {}</td><td>{} / {}</td></tr>"##,
                Url(&t.framework_id),
                Url(&t.task),
                Esc(&t.task),
                if is_running(t) { "running" } else { "ended" },
                Esc(&t.host),
                opt_num(t.avg_cpus_used),
                opt_num(t.max_cpus_used),
                opt_bytes(t.avg_mem_rss_bytes),
                opt_bytes(t.max_mem_rss_bytes)
            );
        }
        if rows.is_empty() {
            b.push_str(r##"<tr><td colspan="5">No task samples in this range.</td></tr>"##);
        }
        b.push_str("</tbody></table></section>");
    }
    html::page(&Shell { nav: Nav::Report, title: "Report", csrf: &csrf, charts: false }, &b).into_response()
}

pub async fn errors(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>, Query(q): Q) -> Response {
    let mut b = String::new();
    let range = Range::from_query(&q, "7d").unwrap_or_else(|e| {
        b.push_str(&html::notice("bad", &e.to_string()));
        Range::last(7 * 86400)
    });
    b.push_str(r##"<form method="get" action="/ui/errors" class="controls">"##);
    b.push_str(&range.picker());
    b.push_str(r##"<p><button type="submit">Show</button></p></form>"##);
    match state.metrics.error_log() {
        None => b.push_str(&html::notice("bad", "This server keeps no error log.")),
        Some(log) => {
            let records = log.query(range.start_ms, range.end_ms, 1000);
            let _ = write!(b, r##"<p class="meta">{} record(s), newest first (at most 1,000).</p>"##, records.len());
            b.push_str(&widgets::error_table(&records));
        }
    }
    html::page(&Shell { nav: Nav::Errors, title: "Error log", csrf: &csrf, charts: false }, &b).into_response()
}
