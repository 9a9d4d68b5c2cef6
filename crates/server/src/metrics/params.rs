//! Query parameters of the query endpoints: repeated keys (`match[]`) from the
//! query string and from a form-encoded POST body, times and durations as
//! Prometheus accepts them.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

/// A query parameter that is missing or cannot be read, named.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("missing parameter {0:?}")]
    Missing(&'static str),
    #[error("invalid parameter {key:?}: cannot parse {value:?} to a valid timestamp (Unix seconds or RFC 3339)")]
    Time { key: &'static str, value: String },
    #[error("invalid parameter {key:?}: {value:?}")]
    Invalid { key: &'static str, value: String },
    #[error("parameter \"agg\": {0}")]
    Aggregation(#[from] metrics::query::UnknownAggregation),
    #[error("parameter \"tag\" {value:?}: {problem}")]
    Tag { value: String, problem: metrics::query::TagError },
    #[error(transparent)]
    Expr(#[from] metrics::promql::ParseError),
    #[error("start is after end")]
    Reversed,
}

/// Every `key=value` pair, from the URL and (for a form POST) the body.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Params {
        let mut pairs: Vec<(String, String)> =
            query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn required(&self, key: &'static str) -> Result<&str, ParamError> {
        self.get(key).filter(|v| !v.is_empty()).ok_or(ParamError::Missing(key))
    }

    /// A time parameter in milliseconds, `default` when absent.
    pub fn time(&self, key: &'static str, default: i64) -> Result<i64, ParamError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => parse_time(v).ok_or_else(|| ParamError::Time { key, value: v.to_owned() }),
        }
    }
}

/// Unix seconds (fractions allowed) or RFC 3339, to milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        return secs.is_finite().then(|| (secs * 1000.0).round() as i64);
    }
    parse_rfc3339(s)
}

/// A step or duration: seconds (`15`, `0.5`) or a Prometheus duration (`1m30s`).
pub fn parse_duration(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| (secs * 1000.0).round() as i64);
    }
    metrics::promql::parse_duration(s).filter(|ms| *ms > 0)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            // `±HH:MM`, bounded: a longer offset is not RFC 3339 (and would overflow).
            let (oh, om) = rest[1..].split_once(':')?;
            let two_digits = |s: &str| {
                (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<i64>().ok()).flatten()
            };
            let (oh, om) = (two_digits(oh)?, two_digits(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = mesos::utc::days_from_civil(y, mo, d);
    Some(((days * 86400 + h * 3600 + mi * 60 + sec - offset) * 1000) + millis)
}

/// A `datetime-local` form value (`YYYY-MM-DDTHH:MM[:SS]`, taken as UTC) or
/// anything `parse_time` takes, to milliseconds.
pub fn parse_form_time(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.len() {
        16 => parse_time(&format!("{s}:00Z")),
        19 => parse_time(&format!("{s}Z")),
        _ => parse_time(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_times_parse_back() {
        for ms in [0, 1_700_000_000_000, 951_782_400_000 /* 2000-02-29 */, 4_102_444_799_000] {
            let text = mesos::utc::format_ms(ms);
            assert_eq!(parse_form_time(&text.replace(' ', "T")), Some(ms), "{text}");
        }
        assert_eq!(parse_form_time("2023-11-14T22:13"), Some(1_699_999_980_000));
        assert_eq!(parse_form_time("soon"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20.25+01:00"), Some(1_700_000_000_250));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2023-13-14T22:13:20Z"), None);
        // Found by the dashboard_inputs fuzz target: an offset this long overflowed.
        assert_eq!(parse_time("2023-11-14T22:13:20+00000000000000000000:00"), None);
        assert_eq!(parse_time("2023-11-14T22:13:20+99999999999999:00"), None);
        assert_eq!(parse_time("2023-11-14T22:13:20+24:00"), None);
        assert_eq!(parse_time("2023-11-14T22:13:20-1:00"), None);
    }
}
