//! Overview and Nodes: the master's view of the cluster (`/master/state`),
//! with measured use from the M3trics store.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mesos::legacy::LegacyResources;
use metrics::model::{Labels, Matcher};

use super::html::{self, Esc, Nav, Shell, Url};
use super::sources::{latest, master_state};
use super::widgets::{self, chart};
use super::{Csrf, Dashboard};

fn by_label(values: Vec<(Labels, f64)>, label: &str) -> BTreeMap<String, f64> {
    values.into_iter().filter_map(|(l, v)| Some((l.get(label)?.to_owned(), v))).collect()
}

fn sum(a: &LegacyResources, b: &LegacyResources) -> LegacyResources {
    LegacyResources {
        cpus: a.cpus + b.cpus,
        mem: a.mem + b.mem,
        disk: a.disk + b.disk,
        gpus: a.gpus + b.gpus,
        ..Default::default()
    }
}

fn unavailable(why: &str) -> String {
    html::notice("bad", &format!("The master did not answer: {why}"))
}

pub async fn overview(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    let mut b = String::from(
        r##"<div id="live" hx-get="/ui/" hx-trigger="every 10s [document.visibilityState=='visible']" hx-select="#live" hx-swap="outerHTML">"##,
    );
    match master_state(&state).await {
        Err(e) => b.push_str(&unavailable(&e.to_string())),
        Ok(master) => {
            let total = master.slaves.iter().map(|a| &a.resources).fold(LegacyResources::default(), |t, r| sum(&t, r));
            let used =
                master.slaves.iter().map(|a| &a.used_resources).fold(LegacyResources::default(), |t, r| sum(&t, r));
            let cpus_used: f64 = latest(&state, "mesos_task_cpus_used", vec![]).await.iter().map(|(_, v)| v).sum();
            let rss: f64 = latest(&state, "mesos_task_mem_rss_bytes", vec![]).await.iter().map(|(_, v)| v).sum();
            let _ = write!(
                b,
                r##"<section aria-labelledby="resources"><h2 id="resources">Cluster resources</h2>
<p class="meta">Master {} ({}) · {} agent(s) · Mesos {}</p>
<table><thead><tr><th scope="col"></th><th scope="col">CPUs</th><th scope="col">Memory</th><th scope="col">Disk</th></tr></thead><tbody>
<tr><th scope="row">Total</th><td>{}</td><td>{}</td><td>{}</td></tr>
<tr><th scope="row">Allocated to tasks</th><td>{} ({}%)</td><td>{} ({}%)</td><td>{}</td></tr>
<tr><th scope="row">Used by tasks (measured)</th><td>{}</td><td>{}</td><td>–</td></tr>
</tbody></table></section>"##,
                Esc(&master.hostname),
                Esc(&master.pid),
                master.slaves.len(),
                Esc(&master.version),
                html::num(total.cpus, 2),
                html::megabytes(total.mem),
                html::megabytes(total.disk),
                html::num(used.cpus, 2),
                percent(used.cpus, total.cpus),
                html::megabytes(used.mem),
                percent(used.mem, total.mem),
                html::megabytes(used.disk),
                html::num(cpus_used, 3),
                html::bytes(rss),
            );
            b.push_str(r##"<section aria-labelledby="frameworks"><h2 id="frameworks">Frameworks</h2><table><thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">State</th><th scope="col">Active tasks</th><th scope="col">CPUs</th><th scope="col">Memory</th></tr></thead><tbody>"##);
            for f in &master.frameworks {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    Esc(&f.name),
                    Esc(&f.id),
                    html::badge(if f.active && f.connected { "active" } else { "inactive" }),
                    f.tasks.len(),
                    html::num(f.used_resources.cpus, 2),
                    html::megabytes(f.used_resources.mem)
                );
            }
            if master.frameworks.is_empty() {
                b.push_str(r##"<tr><td colspan="6">No framework is registered.</td></tr>"##);
            }
            b.push_str("</tbody></table></section>");
            let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
            for t in master.all_tasks() {
                *by_state.entry(t.state.as_str()).or_default() += 1;
            }
            b.push_str(r##"<section aria-labelledby="states"><h2 id="states">Tasks by state</h2><ul class="counts">"##);
            for (s, n) in &by_state {
                let _ = write!(
                    b,
                    r##"<li><a href="/ui/tasks?state={}">{} <strong>{n}</strong></a></li>"##,
                    Url(s),
                    html::badge(s)
                );
            }
            if by_state.is_empty() {
                b.push_str("<li>No tasks yet.</li>");
            }
            b.push_str("</ul></section>");
        }
    }
    let errors = match state.metrics.error_log() {
        Some(log) => {
            let now = metrics::store::now_ms();
            log.query(now - 24 * 3_600_000, now, 10)
        }
        None => Vec::new(),
    };
    if let Some(watch) = state.metrics.anomalies() {
        let open = watch.events(0, true);
        b.push_str(r##"<section aria-labelledby="open-anomalies"><h2 id="open-anomalies">Open anomalies</h2>"##);
        if open.is_empty() {
            b.push_str("<p>None.</p>");
        } else {
            b.push_str(&widgets::anomaly_table(&open));
        }
        b.push_str(r##"<p><a href="/ui/anomalies">All anomalies</a></p></section>"##);
    }
    b.push_str(r##"<section aria-labelledby="recent-errors"><h2 id="recent-errors">Recent errors (24 h)</h2>"##);
    b.push_str(&widgets::error_table(&errors));
    b.push_str(r##"<p><a href="/ui/errors">The whole error log</a></p></section></div>"##);
    html::page(&Shell { nav: Nav::Overview, title: "Overview", csrf: &csrf, charts: false }, &b).into_response()
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 { html::num(part * 100.0 / whole, 1) } else { "0".into() }
}

pub async fn nodes(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    let mut b = String::new();
    match master_state(&state).await {
        Err(e) => b.push_str(&unavailable(&e.to_string())),
        Ok(master) => {
            b.push_str(r##"<section aria-labelledby="agents"><h2 id="agents">Agents</h2><table><thead><tr><th scope="col">Host</th><th scope="col">Id</th><th scope="col">State</th><th scope="col">CPUs (allocated / total)</th><th scope="col">Memory (allocated / total)</th><th scope="col">Disk</th><th scope="col">Ports</th></tr></thead><tbody>"##);
            for a in &master.slaves {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{} / {}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
                    Esc(&a.hostname),
                    Esc(&a.id),
                    html::badge(if a.active { "active" } else { "inactive" }),
                    html::num(a.used_resources.cpus, 2),
                    html::num(a.resources.cpus, 2),
                    html::megabytes(a.used_resources.mem),
                    html::megabytes(a.resources.mem),
                    html::megabytes(a.resources.disk),
                    Esc(a.resources.ports.as_deref().unwrap_or("–")),
                );
            }
            b.push_str("</tbody></table></section>");
        }
    }
    let cpu = by_label(latest(&state, "cpu_usage_percent", vec![Matcher::eq("cpu", "cpu-total")]).await, "host");
    let mem = by_label(latest(&state, "mem_used_percent", vec![]).await, "host");
    let mem_used = by_label(latest(&state, "mem_used", vec![]).await, "host");
    let load = by_label(latest(&state, "system_load1", vec![]).await, "host");
    b.push_str(r##"<section aria-labelledby="usage"><h2 id="usage">Node use (measured)</h2><table><thead><tr><th scope="col">Host</th><th scope="col">CPU</th><th scope="col">Memory</th><th scope="col">Load (1 min)</th></tr></thead><tbody>"##);
    for (host, c) in &cpu {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}%</td><td>{}% ({})</td><td>{}</td></tr>",
            Esc(host),
            html::num(*c, 1),
            mem.get(host).map_or("–".into(), |m| html::num(*m, 1)),
            mem_used.get(host).map_or("–".into(), |m| html::bytes(*m)),
            load.get(host).map_or("–".into(), |l| html::num(*l, 2)),
        );
    }
    if cpu.is_empty() {
        b.push_str(r##"<tr><td colspan="4">No node metrics yet (collected every 10 s).</td></tr>"##);
    }
    b.push_str("</tbody></table></section>");

    let task_cpu = latest(&state, "mesos_task_cpus_used", vec![]).await;
    let task_rss = by_label(latest(&state, "mesos_task_mem_rss_bytes", vec![]).await, "executor_id");
    let task_limit = by_label(latest(&state, "mesos_task_mem_limit_bytes", vec![]).await, "executor_id");
    b.push_str(r##"<section aria-labelledby="task-usage"><h2 id="task-usage">Task use (measured)</h2><table><thead><tr><th scope="col">Task</th><th scope="col">Agent</th><th scope="col">CPUs used</th><th scope="col">Memory (RSS / limit)</th></tr></thead><tbody>"##);
    let mut rows: Vec<_> = task_cpu.iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (labels, cpus) in &rows {
        let executor = labels.get("executor_id").unwrap_or("");
        let task = labels.get("task").unwrap_or(executor);
        let framework = labels.get("framework_id").unwrap_or("");
        let _ = write!(
            b,
            r##"<tr><td><a href="/ui/tasks/{}/{}">{}</a></td><td>{}</td><td>{}</td><td>{} / {}</td></tr>"##,
            Url(framework),
            Url(task),
            Esc(task),
            Esc(labels.get("host").unwrap_or("")),
            html::num(*cpus, 3),
            task_rss.get(executor).map_or("–".into(), |v| html::bytes(*v)),
            task_limit.get(executor).map_or("–".into(), |v| html::bytes(*v)),
        );
    }
    if rows.is_empty() {
        b.push_str(r##"<tr><td colspan="4">No running task has been measured yet.</td></tr>"##);
    }
    b.push_str("</tbody></table></section>");

    let hour = super::range::Range::last(3600);
    b.push_str(r##"<section aria-labelledby="charts"><h2 id="charts">Last hour</h2><div class="charts">"##);
    b.push_str(&chart("node-cpu", "Node CPU (%)", r##"cpu_usage_percent{cpu="cpu-total"}"##, "percent", &hour));
    b.push_str(&chart("node-mem", "Node memory used (%)", "mem_used_percent", "percent", &hour));
    b.push_str(&chart("task-cpu", "Task CPUs used", "mesos_task_cpus_used", "cores", &hour));
    b.push_str(&chart("task-mem", "Task memory (RSS)", "mesos_task_mem_rss_bytes", "bytes", &hour));
    b.push_str(r##"</div><p><a href="/ui/metrics">More in Metrics</a></p></section>"##);
    html::page(&Shell { nav: Nav::Nodes, title: "Nodes", csrf: &csrf, charts: true }, &b).into_response()
}
