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
        let _ = write!(out, "{v}");
    }
}

/// Milliseconds as the seconds number Prometheus writes (`1700000000.5`, `1700000000`).
fn push_time(out: &mut String, t: i64) {
    if t % 1000 == 0 {
        let _ = write!(out, "{}", t / 1000);
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
            for (i, series) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_metric(out, &series.labels);
                out.push_str(",\"values\":[");
                for (j, s) in series.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(out, s.t, s.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// The same as a `serde_json::Value` (for tests and small answers).
pub fn to_prometheus_json(value: &Value) -> serde_json::Value {
    let mut out = String::new();
    write_prometheus_json(value, &mut out);
    serde_json::from_str(&out).expect("valid JSON")
}
