//! HTML by hand: an escaping wrapper, the page shell and small formatters.
//! Every value from outside m3s goes through `Esc`; nothing else writes markup.

use std::fmt::{self, Display, Write as _};

use axum::response::Html;

/// Text made safe for element content and quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A path segment or query value for a URL written into an attribute.
pub struct Url<'a>(pub &'a str);

impl Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                f.write_char(b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Nodes,
    Stacks,
    K3s,
    Manage,
    Tasks,
    Metrics,
    Report,
    Errors,
    Anomalies,
    Audit,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/ui/", "Overview"),
    (Nav::Nodes, "/ui/nodes", "Nodes"),
    (Nav::Stacks, "/ui/stacks", "Stacks"),
    (Nav::K3s, "/ui/k3s", "K3s"),
    (Nav::Manage, "/ui/manage", "Git"),
    (Nav::Tasks, "/ui/tasks", "Tasks"),
    (Nav::Metrics, "/ui/metrics", "Metrics"),
    (Nav::Report, "/ui/report", "Report"),
    (Nav::Errors, "/ui/errors", "Error log"),
    (Nav::Anomalies, "/ui/anomalies", "Anomalies"),
    (Nav::Audit, "/ui/audit", "Audit"),
];

/// What a page needs besides its body.
pub struct Shell<'a> {
    pub nav: Nav,
    pub title: &'a str,
    /// Empty when the dashboard is open (no sessions, nothing to check).
    pub csrf: &'a str,
    pub charts: bool,
}

pub fn page(shell: &Shell<'_>, body: &str) -> Html<String> {
    let mut h = String::with_capacity(body.len() + 2048);
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · m3s</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/dashboard.css">"#,
        title = Esc(shell.title)
    );
    if shell.charts {
        h.push_str(r#"<link rel="stylesheet" href="/ui/assets/uPlot.min.css"><script defer src="/ui/assets/uPlot.iife.min.js"></script>"#);
    }
    // No attribute inheritance: a refreshing container's hx-select must not leak into the forms inside it.
    h.push_str(r#"<meta name="htmx-config" content='{"disableInheritance":true,"includeIndicatorStyles":false}'>"#);
    h.push_str(r#"<script defer src="/ui/assets/htmx.min.js"></script><script defer src="/ui/assets/dashboard.js"></script></head>"#);
    // dashboard.js adds it as X-CSRF-Token to every request htmx makes.
    let _ = write!(h, "\n<body data-csrf=\"{}\">", Esc(shell.csrf));
    h.push_str(r##"<a class="skip" href="#main">Skip to content</a><header><nav aria-label="Sections"><span class="brand">m3s</span><ul>"##);
    for (nav, href, label) in NAV {
        let current = if *nav == shell.nav { r#" aria-current="page""# } else { "" };
        let _ = write!(h, r#"<li><a href="{href}"{current}>{label}</a></li>"#);
    }
    h.push_str("</ul>");
    if !shell.csrf.is_empty() {
        h.push_str(
            r#"<form method="post" action="/ui/logout" class="logout"><input type="hidden" name="csrf" value=""#,
        );
        let _ = write!(h, r#"{}"><button type="submit">Sign out</button></form>"#, Esc(shell.csrf));
    }
    let _ = write!(h, "</nav></header>\n<main id=\"main\" tabindex=\"-1\"><h1>{}</h1>\n", Esc(shell.title));
    h.push_str(body);
    h.push_str("</main></body></html>\n");
    Html(h)
}

/// Bytes as B, KiB, MiB, GiB.
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Megabytes (Mesos's unit for mem and disk) as bytes text.
pub fn megabytes(mb: f64) -> String {
    bytes(mb * 1024.0 * 1024.0)
}

/// A number with at most `digits` decimals, trailing zeros dropped.
pub fn num(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time_ms(ms: i64) -> String {
    mesos::utc::format_ms(ms)
}

/// A status word as a badge; the colour class comes from the word.
pub fn badge(state: &str) -> String {
    let class = match state {
        "TASK_RUNNING" | "running" | "healthy" | "TASK_FINISHED" | "completed" | "active" | "succeeded" => "ok",
        "TASK_FAILED" | "TASK_ERROR" | "TASK_LOST" | "TASK_DROPPED" | "TASK_GONE" | "failed" | "crash_looping"
        | "unhealthy" | "inactive" | "timed_out" => "bad",
        "TASK_KILLED" | "stopped" | "TASK_KILLING" | "stopping" => "off",
        _ => "wait",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, Esc(state.strip_prefix("TASK_").unwrap_or(state)))
}

/// A message block; `role=alert` makes screen readers announce it.
pub fn notice(kind: &str, text: &str) -> String {
    format!(r#"<p class="notice {kind}" role="alert">{}</p>"#, Esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            Esc(r#"<a href="x" title='y'>&</a>"#).to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(Esc("plain").to_string(), "plain");
        assert_eq!(Url("a b/c?d=é").to_string(), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn formatters() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(megabytes(2048.0), "2.0 GiB");
        assert_eq!(num(0.1000, 3), "0.1");
        assert_eq!(num(2.0, 2), "2");
        assert_eq!(time_ms(0), "1970-01-01 00:00:00");
    }
}
