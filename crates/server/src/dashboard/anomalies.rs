//! The Anomaly page: anomalies of the watched series (newest first), each with
//! its series' chart around the anomaly (the window marked by the chart's
//! range) and a link to the node, task or service it concerns; the Overview
//! shows the open ones (`widgets::anomaly_table`).

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use metrics::anomaly::watch::AnomalyEvent;

use super::html::{self, Nav, Shell};
use super::range::Range;
use super::widgets::{anomaly_table, chart};
use super::{Csrf, Dashboard};

/// Charts drawn at most (the rest are listed).
const CHARTED: usize = 6;

/// The PromQL selector of an anomaly's series.
fn selector(e: &AnomalyEvent) -> String {
    let labels: Vec<String> =
        e.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{}{{{}}}", e.metric, labels.join(","))
}

pub async fn page(State(state): State<Dashboard>, Extension(Csrf(csrf)): Extension<Csrf>) -> Response {
    let mut b = String::new();
    match state.metrics.anomalies() {
        None => b.push_str("<p>Anomaly detection is off here (<code>--anomaly-interval 0</code>).</p>"),
        Some(watch) => {
            let (watched, problem) = watch.status();
            let events = watch.events(metrics::store::now_ms() - 7 * 24 * 3600 * 1000, false);
            let _ = write!(b, "<p class=\"meta\">{watched} series watched · anomalies of the last 7 days</p>");
            if let Some(p) = problem {
                b.push_str(&html::notice("warn", &p));
            }
            if events.is_empty() {
                b.push_str("<p>No anomaly found.</p>");
            } else {
                b.push_str(&anomaly_table(&events));
                b.push_str("<div class=\"charts\">");
                for (i, e) in events.iter().take(CHARTED).enumerate() {
                    // Half an hour either side of the anomaly.
                    let end = e.end_ms.unwrap_or_else(metrics::store::now_ms);
                    let range =
                        Range { start_ms: e.start_ms - 1_800_000, end_ms: end + 1_800_000, name: "custom".into() };
                    let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let title = format!("{} ({}) from {}", e.metric, labels.join(", "), html::time_ms(e.start_ms));
                    b.push_str(&chart(&format!("anomaly-{i}"), &title, &selector(e), "", &range));
                }
                b.push_str("</div>");
            }
        }
    }
    html::page(&Shell { nav: Nav::Anomalies, title: "Anomalies", csrf: &csrf, charts: true }, &b).into_response()
}
