//! The date-range picker: last 1 h, 24 h, 3 d, 7 d, or a custom start and end.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::html::Esc;
use crate::metrics::params::parse_form_time;

pub const PRESETS: &[(&str, &str, i64)] = &[
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86400),
    ("3d", "Last 3 days", 3 * 86400),
    ("7d", "Last 7 days", 7 * 86400),
];

#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub start_ms: i64,
    pub end_ms: i64,
    /// The preset's name, or "custom".
    pub name: String,
}

/// A time range the picker's fields do not make, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("range={0:?}: expected 1h, 24h, 3d, 7d or custom")]
    Preset(String),
    #[error("{0}: required for a custom range")]
    Missing(&'static str),
    #[error("{key}={value:?}: expected a date and time such as 2026-11-25T08:00 (UTC)")]
    Time { key: &'static str, value: String },
    #[error("end: must be after start")]
    Reversed,
}

impl Range {
    pub fn last(seconds: i64) -> Range {
        let end_ms = metrics::store::now_ms();
        let name = PRESETS.iter().find(|p| p.2 == seconds).map_or("custom", |p| p.0).to_owned();
        Range { start_ms: end_ms - seconds * 1000, end_ms, name }
    }

    /// Seconds back from now, for a preset (charts then follow the clock).
    pub fn relative_s(&self) -> Option<i64> {
        PRESETS.iter().find(|p| p.0 == self.name).map(|p| p.2)
    }

    /// From `range=` (a preset or `custom`) and, for custom, `start=`/`end=`
    /// (a `datetime-local` value in UTC, RFC 3339 or Unix seconds).
    /// `default` is the preset when none is given. Errors name the field.
    pub fn from_query(q: &HashMap<String, String>, default: &str) -> Result<Range, RangeError> {
        let name = q.get("range").map_or(default, String::as_str);
        if let Some(p) = PRESETS.iter().find(|p| p.0 == name) {
            return Ok(Range::last(p.2));
        }
        if name != "custom" {
            return Err(RangeError::Preset(name.to_owned()));
        }
        let time = |key: &'static str| -> Result<i64, RangeError> {
            let v = q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()).ok_or(RangeError::Missing(key))?;
            parse_form_time(v).ok_or_else(|| RangeError::Time { key, value: v.to_owned() })
        };
        let (start_ms, end_ms) = (time("start")?, time("end")?);
        if end_ms <= start_ms {
            return Err(RangeError::Reversed);
        }
        Ok(Range { start_ms, end_ms, name: "custom".into() })
    }

    /// The picker's fields, for a GET form that also carries the page's own fields.
    pub fn picker(&self) -> String {
        let mut h = String::from(
            r##"<fieldset class="range"><legend>Time range</legend><label for="range">Range</label><select id="range" name="range">"##,
        );
        for (value, label, _) in PRESETS.iter().copied().chain([("custom", "Custom (UTC)", 0)]) {
            let selected = if value == self.name { " selected" } else { "" };
            let _ = write!(h, r##"<option value="{value}"{selected}>{label}</option>"##);
        }
        let field = |ms: i64| mesos::utc::format_ms(ms).replace(' ', "T");
        let _ = write!(
            h,
            r##"</select><label for="start">Start (UTC)</label><input id="start" name="start" type="datetime-local" step="1" value="{}"><label for="end">End (UTC)</label><input id="end" name="end" type="datetime-local" step="1" value="{}"></fieldset>"##,
            Esc(&field(self.start_ms)),
            Esc(&field(self.end_ms)),
        );
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn presets_custom_and_errors_naming_the_field() {
        let r = Range::from_query(&q(&[]), "24h").unwrap();
        assert_eq!((r.end_ms - r.start_ms, r.name.as_str()), (86_400_000, "24h"));
        assert_eq!(Range::from_query(&q(&[("range", "7d")]), "1h").unwrap().relative_s(), Some(7 * 86400));
        let c = Range::from_query(
            &q(&[("range", "custom"), ("start", "2026-11-24T10:00"), ("end", "2026-11-24T12:30:15")]),
            "1h",
        )
        .unwrap();
        assert_eq!(c.end_ms - c.start_ms, (2 * 3600 + 30 * 60 + 15) * 1000);
        assert_eq!(c.relative_s(), None);
        let err = |pairs: &[(&str, &str)]| Range::from_query(&q(pairs), "1h").unwrap_err().to_string();
        assert!(err(&[("range", "2w")]).starts_with("range=\"2w\""));
        assert!(err(&[("range", "custom"), ("end", "2026-11-24T12:00")]).starts_with("start: required"));
        assert!(
            err(&[("range", "custom"), ("start", "2026-11-24T12:00"), ("end", "noon")]).starts_with("end=\"noon\"")
        );
        assert!(
            err(&[("range", "custom"), ("start", "2026-11-24T12:00"), ("end", "2026-11-24T11:00")])
                .starts_with("end: must be after")
        );
    }
}
