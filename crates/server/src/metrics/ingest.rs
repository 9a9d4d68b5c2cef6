//! The write endpoints: InfluxDB v1 and v2 line protocol, Prometheus remote_write.
//!
//! As InfluxDB: a malformed line rejects the whole request with 400 naming
//! the first bad line, nothing written; well-formed points that cannot be
//! stored (only string fields, or older than the retention period) are
//! dropped with 422 naming them while the rest are written; a body over the
//! limit (after decompression) is 413.

use std::collections::HashMap;
use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::line::Precision;
use metrics::model::{Labels, Point, Sample};
use metrics::store::StoreError;
use serde_json::json;

use super::MetricsState;

#[derive(Clone, Copy, PartialEq)]
enum Api {
    V1,
    V2,
}

pub async fn write_v1(
    State(state): State<MetricsState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = line_protocol(&state, Api::V1, &params, &headers, body).await;
    state.counters().request("/write", response.status().as_u16());
    response
}

pub async fn write_v2(
    State(state): State<MetricsState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = line_protocol(&state, Api::V2, &params, &headers, body).await;
    state.counters().request("/api/v2/write", response.status().as_u16());
    response
}

fn error(api: Api, status: StatusCode, code: &str, message: String, line: Option<usize>) -> Response {
    let body = match api {
        Api::V1 => json!({ "error": message }),
        Api::V2 => match line {
            Some(line) => json!({ "code": code, "message": message, "line": line }),
            None => json!({ "code": code, "message": message }),
        },
    };
    let mut response = (status, Json(body)).into_response();
    if api == Api::V1 {
        response.headers_mut().insert("X-Influxdb-Error", header::HeaderValue::from_static("see body"));
    }
    response
}

async fn line_protocol(
    state: &MetricsState,
    api: Api,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if api == Api::V2 && params.get("bucket").is_none_or(|b| b.is_empty()) {
        return error(api, StatusCode::BAD_REQUEST, "invalid", "missing bucket value".into(), None);
    }
    let precision = match params.get("precision").map(|p| Precision::parse(p)).transpose() {
        Ok(p) => p.unwrap_or(Precision::Ns),
        Err(e) => return error(api, StatusCode::BAD_REQUEST, "invalid", e.to_string(), None),
    };
    let body = match decoded_body(headers, body, state.inner.max_body_bytes) {
        Ok(b) => b,
        Err((status, message)) => {
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request too large" } else { "invalid" };
            return error(api, status, code, message, None);
        }
    };
    let state = state.clone();
    super::blocking(move || write_lines(&state, api, &body, precision)).await
}

fn write_lines(state: &MetricsState, api: Api, body: &[u8], precision: Precision) -> Response {
    let batch = metrics::line::parse_batch(body, precision);
    if let Some(first) = batch.errors.first() {
        let message = format!("unable to parse '{}': {}", first.text, first.message);
        let message = match api {
            Api::V1 => format!("{message} (line {})", first.line),
            Api::V2 => message,
        };
        return error(api, StatusCode::BAD_REQUEST, "invalid", message, Some(first.line));
    }
    let now = metrics::store::now_ms();
    let floor = state.store().config().retention.map(|r| now - r.as_millis() as i64);
    let ceiling = now.saturating_add(state.store().config().limits.max_future_ms);
    let mut accepted: Vec<Point> = Vec::with_capacity(batch.points.len());
    let mut rejected: Vec<String> = Vec::new();
    let mut rejected_count = 0usize;
    for point in batch.points {
        let reason = if !point.fields.iter().any(|(_, v)| v.as_f64().is_some()) {
            Some("only string fields, which are not stored")
        } else if floor.is_some_and(|f| point.timestamp.map_or(now, |ns| ns.div_euclid(1_000_000)) < f) {
            Some("beyond the retention period")
        } else if point.timestamp.is_some_and(|ns| ns.div_euclid(1_000_000) > ceiling) {
            Some("too far in the future: more than --metrics-max-future ahead of this machine's clock")
        } else {
            None
        };
        match reason {
            None => accepted.push(point),
            Some(reason) => {
                rejected_count += 1;
                if rejected.len() < 3 {
                    rejected.push(format!("{} ({reason})", describe(&point)));
                }
            }
        }
    }
    let written = accepted.len();
    match state.store().write_points(&accepted, now) {
        Ok(_) => {}
        // Nothing of the request was written: the client must not retry it as it is.
        Err(StoreError::Limit(message)) => return error(api, StatusCode::BAD_REQUEST, "invalid", message, None),
        Err(e) => {
            tracing::error!("metrics write failed: {e}");
            return error(
                api,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "the store could not write".into(),
                None,
            );
        }
    }
    state.counters().points(written, rejected_count);
    if rejected_count > 0 {
        let message = format!("partial write: {} dropped={rejected_count}", rejected.join("; "));
        return error(api, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable entity", message, None);
    }
    StatusCode::NO_CONTENT.into_response()
}

fn describe(point: &Point) -> String {
    let mut out = point.measurement.clone();
    for (k, v) in &point.tags {
        out.push_str(&format!(",{k}={v}"));
    }
    out
}

/// The body, gunzipped when `Content-Encoding: gzip`, at most `max` bytes.
fn decoded_body(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Vec<u8>, (StatusCode, String)> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, format!("request body is larger than {max} bytes"));
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match encoding.trim() {
        "gzip" | "x-gzip" => {
            if body.len() > max {
                return Err(too_large());
            }
            let mut out = Vec::with_capacity(body.len() * 4);
            flate2::read::GzDecoder::new(&body[..])
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
            if out.len() > max {
                return Err(too_large());
            }
            Ok(out)
        }
        "identity" | "" => {
            if body.len() > max {
                return Err(too_large());
            }
            Ok(body.to_vec())
        }
        other => {
            Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported Content-Encoding {other:?} (gzip or none)")))
        }
    }
}

/// Prometheus remote_write 1.0: snappy-compressed protobuf `WriteRequest`.
pub async fn remote_write(State(state): State<MetricsState>, body: Bytes) -> Response {
    let st = state.clone();
    let response = super::blocking(move || {
        if body.len() > st.inner.max_body_bytes {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {} bytes", st.inner.max_body_bytes),
            )
                .into_response();
        }
        let series = match metrics::remote_write::decode(&body) {
            Ok(s) => s,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid remote write request: {e}")).into_response(),
        };
        let mut count = 0;
        let samples: Vec<(Labels, Sample)> = series
            .into_iter()
            .flat_map(|(labels, samples)| {
                count += samples.len();
                samples.into_iter().map(move |s| (labels.clone(), s))
            })
            .collect();
        match st.store().write(samples) {
            Ok(_) => {
                st.counters().points(count, 0);
                StatusCode::NO_CONTENT.into_response()
            }
            // 4xx: Prometheus drops the batch instead of retrying it forever.
            Err(StoreError::Limit(message)) => (StatusCode::BAD_REQUEST, message).into_response(),
            Err(e) => crate::error::ApiError::internal("metrics write failed", e).into_response(),
        }
    })
    .await;
    state.counters().request("/api/v1/write", response.status().as_u16());
    response
}
