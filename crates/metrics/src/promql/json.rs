//! Values in the Prometheus HTTP API's JSON.

use serde_json::{Map, Value as Json, json};

use super::Value;
use crate::model::Labels;

/// As Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with Prometheus's spellings of the specials.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Milliseconds as the seconds number Prometheus writes (`1700000000.5`, `1700000000`).
pub fn format_time(t: i64) -> Json {
    if t % 1000 == 0 { json!(t / 1000) } else { json!(t as f64 / 1000.0) }
}

fn metric(labels: &Labels) -> Json {
    Json::Object(labels.iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect::<Map<_, _>>())
}

/// The `data` object of a query answer: `{"resultType": ..., "result": ...}`.
pub fn to_prometheus_json(value: &Value) -> Json {
    match value {
        Value::Scalar { t, v } => json!({ "resultType": "scalar", "result": [format_time(*t), format_float(*v)] }),
        Value::String { t, s } => json!({ "resultType": "string", "result": [format_time(*t), s] }),
        Value::Vector(v) => json!({
            "resultType": "vector",
            "result": v.iter().map(|(l, s)| json!({ "metric": metric(l), "value": [format_time(s.t), format_float(s.v)] })).collect::<Vec<_>>(),
        }),
        Value::Matrix(m) => json!({
            "resultType": "matrix",
            "result": m.iter().map(|s| json!({
                "metric": metric(&s.labels),
                "values": s.samples.iter().map(|x| json!([format_time(x.t), format_float(x.v)])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}
