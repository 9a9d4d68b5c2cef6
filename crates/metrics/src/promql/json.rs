//! Values in the Prometheus HTTP API's JSON, written straight into a string:
//! a range answer has hundreds of thousands of points, and building a
//! `serde_json::Value` tree for them costs more than the query itself.

use std::fmt::Write;

use super::Value;
use crate::model::Labels;

/// As Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with Prometheus's spellings of the specials.
pub fn format_float(v: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, v);
    out
}

fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // ryu finds the same shortest digits as Display, faster; Go's 'f' format
        // never uses an exponent and writes 1 rather than 1.0.
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        if text.contains('e') {
            let _ = write!(out, "{v}");
        } else {
            out.push_str(text.strip_suffix(".0").unwrap_or(text));
        }
    }
}

/// Milliseconds as the seconds number Prometheus writes (`1700000000.5`, `1700000000`).
fn push_time(out: &mut String, t: i64) {
    if t % 1000 == 0 {
        out.push_str(itoa::Buffer::new().format(t / 1000));
    } else {
        let _ = write!(out, "{}", t as f64 / 1000.0);
    }
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

fn push_metric(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_time(out, t);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

/// The `data` object of a query answer: `{"resultType": ..., "result": ...}`.
pub fn write_prometheus_json(value: &Value, out: &mut String) {
    match value {
        Value::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            push_point(out, *t, *v);
        }
        Value::String { t, s } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            push_time(out, *t);
            out.push(',');
            push_str(out, s);
            out.push(']');
        }
        Value::Vector(v) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, (labels, s)) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_metric(out, labels);
                out.push_str(",\"value\":");
                push_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            let points: usize = m.iter().map(|s| s.samples.len()).sum();
            if points > PARALLEL_POINTS {
                // Big answers are written in two halves on two threads, then joined.
                let (a, b) = m.split_at(m.len() / 2);
                let (left, right) = std::thread::scope(|scope| {
                    let right = scope.spawn(|| write_series(b));
                    (write_series(a), right.join().expect("JSON writer thread"))
                });
                out.reserve(left.len() + right.len() + 2);
                out.push_str(&left);
                if !left.is_empty() && !right.is_empty() {
                    out.push(',');
                }
                out.push_str(&right);
            } else {
                out.push_str(&write_series(m));
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// Above this many points a matrix is written by two threads.
const PARALLEL_POINTS: usize = 50_000;

/// `{"metric": ..., "values": [...]}` objects, comma-separated.
fn write_series(series: &[crate::model::Series]) -> String {
    let points: usize = series.iter().map(|s| s.samples.len()).sum();
    let mut out = String::with_capacity(points * 24 + series.len() * 64);
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        push_metric(&mut out, &s.labels);
        out.push_str(",\"values\":[");
        for (j, x) in s.samples.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_point(&mut out, x.t, x.v);
        }
        out.push_str("]}");
    }
    out
}

/// The same as a `serde_json::Value` (for tests and small answers).
pub fn to_prometheus_json(value: &Value) -> serde_json::Value {
    let mut out = String::new();
    write_prometheus_json(value, &mut out);
    serde_json::from_str(&out).expect("valid JSON")
}
