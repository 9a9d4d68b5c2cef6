//! Page fragments more than one page shows: a chart, the error and anomaly tables, a
//! task's live output. A leaf: pages import it, it imports no page.

use std::fmt::Write as _;

use metrics::anomaly::watch::AnomalyEvent;
use metrics::errors::ErrorRecord;

use super::html::{self, Esc, Url};
use super::range::Range;

/// A chart filled in by dashboard.js from `/api/v1/query_range`.
pub fn chart(id: &str, title: &str, query: &str, unit: &str, range: &Range) -> String {
    format!(
        r##"<figure class="chart" id="{id}" data-query="{}"{} data-start="{}" data-end="{}" data-relative="{}" data-unit="{unit}"><figcaption>{}</figcaption><div class="plot" role="img" aria-label="{} chart"></div><p class="chart-status" aria-live="polite">Loading…</p></figure>"##,
        Esc(query),
        // A plain selector is averaged per step on long ranges, so no sample falls between points.
        if metrics::promql::parse_selector(query).is_ok() && !query.contains("offset") {
            r#" data-selector="1""#
        } else {
            ""
        },
        range.start_ms / 1000,
        range.end_ms / 1000,
        range.relative_s().map_or(String::new(), |s| s.to_string()),
        Esc(title),
        Esc(title),
    )
}

/// Error records as a table (also on the Overview).
pub fn error_table(errors: &[ErrorRecord]) -> String {
    if errors.is_empty() {
        return "<p>No errors recorded in this range.</p>".into();
    }
    let mut b = String::from(
        r##"<table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Kind</th><th scope="col">Task</th><th scope="col">Reason</th><th scope="col">Message</th></tr></thead><tbody>"##,
    );
    for e in errors {
        let task = match (&e.framework_id, &e.task_id) {
            (Some(f), Some(t)) => format!(
                r##"<a href="/ui/tasks/{}/{}">{}</a>"##,
                Url(f),
                Url(t),
                Esc(e.task_name.as_deref().unwrap_or(t))
            ),
            _ => Esc(e.agent_id.as_deref().map_or("–", |a| a)).to_string(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html::time_ms(e.time_ms),
            html::badge(&e.kind),
            task,
            Esc(e.reason.as_deref().unwrap_or("")),
            Esc(e.message.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table>");
    b
}

/// A live tail of a task's stdout or stderr, filled in by dashboard.js.
pub fn tail(framework_id: &str, agent_id: &str, task_id: &str, title: &str) -> String {
    format!(
        r##"<section aria-labelledby="output" class="tail"><h2 id="output">{title}</h2>
<p class="tail-controls"><label for="tail-stream">Stream</label><select id="tail-stream" data-tail-stream><option value="stdout">stdout</option><option value="stderr">stderr</option></select>
<button type="button" data-tail-pause aria-pressed="false">Pause</button> <span class="tail-status" aria-live="polite"></span></p>
<pre class="log" tabindex="0" aria-label="{title}" data-tail="/ui/tasks/{}/{}/read?agent={}" data-path="stdout"></pre></section>"##,
        Url(framework_id),
        Url(task_id),
        Url(agent_id),
        title = Esc(title),
    )
}

/// Where an anomaly's series leads: its task, its node.
fn anomaly_link(e: &AnomalyEvent) -> String {
    if let Some(task) = e.labels.get("task").or(e.labels.get("executor_id")) {
        return format!(r#"<a href="/ui/tasks?q={}">task {}</a>"#, Url(task), Esc(task));
    }
    if let Some(host) = e.labels.get("host") {
        return format!(r#"<a href="/ui/nodes">node {}</a>"#, Esc(host));
    }
    String::new()
}

fn anomaly_series(e: &AnomalyEvent) -> String {
    let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.join(", ")
}

fn anomaly_row(e: &AnomalyEvent) -> String {
    format!(
        "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        Esc(&html::time_ms(e.start_ms)),
        e.end_ms.map_or_else(|| html::badge("open"), |end| Esc(&html::time_ms(end)).to_string()),
        Esc(&e.metric),
        Esc(&anomaly_series(e)),
        html::num(e.peak_score, 2),
        Esc(&e.reason),
        anomaly_link(e)
    )
}

const ANOMALY_HEAD: &str = r##"<table><thead><tr><th scope="col">Start (UTC)</th><th scope="col">End</th><th scope="col">Metric</th><th scope="col">Series</th><th scope="col">Score</th><th scope="col">Why</th><th scope="col">Concerns</th></tr></thead><tbody>"##;

/// Anomalies as a table (the Anomaly page, the Overview's open ones).
pub fn anomaly_table(events: &[AnomalyEvent]) -> String {
    let mut b = String::from(ANOMALY_HEAD);
    for e in events {
        b.push_str(&anomaly_row(e));
    }
    b.push_str("</tbody></table>");
    b
}
