//! m3s's own metrics, on `/metrics` in Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::exposition::{CONTENT_TYPE, Exposition, Kind};

use super::MetricsState;

#[derive(Default)]
pub struct Counters {
    /// (path, status) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    points: AtomicU64,
    rejected_points: AtomicU64,
    queries: AtomicU64,
}

impl Counters {
    pub fn request(&self, path: &str, status: u16) {
        // Only known paths become label values, so a scanner cannot grow the map.
        let path =
            if super::PUBLIC.contains(&path) || path.starts_with("/api/") || path == "/write" { path } else { "other" };
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((path.to_string(), status)).or_default() += 1;
    }

    pub fn points(&self, written: usize, rejected: usize) {
        self.points.fetch_add(written as u64, Ordering::Relaxed);
        self.rejected_points.fetch_add(rejected as u64, Ordering::Relaxed);
    }

    pub fn query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn metrics(State(state): State<MetricsState>) -> Response {
    let store = state.store().clone();
    let stats = super::blocking(move || store.stats()).await;
    let c = state.counters();
    let mut e = Exposition::default();
    e.family("m3trics_http_requests_total", Kind::Counter, "M3trics HTTP requests by path and status code.");
    for ((path, code), n) in c.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        e.sample("m3trics_http_requests_total", &[("path", path), ("code", &code.to_string())], *n as f64);
    }
    e.family("m3trics_points_written_total", Kind::Counter, "Line-protocol points and remote-write samples accepted.")
        .sample("m3trics_points_written_total", &[], c.points.load(Ordering::Relaxed) as f64)
        .family("m3trics_points_rejected_total", Kind::Counter, "Points rejected in partial writes.")
        .sample("m3trics_points_rejected_total", &[], c.rejected_points.load(Ordering::Relaxed) as f64)
        .family("m3trics_queries_total", Kind::Counter, "Queries answered.")
        .sample("m3trics_queries_total", &[], c.queries.load(Ordering::Relaxed) as f64)
        .family("m3trics_samples_written_total", Kind::Counter, "Samples written to the store since start.")
        .sample("m3trics_samples_written_total", &[], stats.samples_written as f64)
        .family("m3trics_series", Kind::Gauge, "Series in the index.")
        .sample("m3trics_series", &[], stats.series as f64)
        .family("m3trics_head_samples", Kind::Gauge, "Samples in memory, not yet in a block.")
        .sample("m3trics_head_samples", &[], stats.head_samples as f64)
        .family("m3trics_blocks", Kind::Gauge, "Block files on disk.")
        .sample("m3trics_blocks", &[], stats.blocks as f64)
        .family("m3trics_block_bytes", Kind::Gauge, "Bytes of block files on disk.")
        .sample("m3trics_block_bytes", &[], stats.block_bytes as f64)
        .family("m3trics_block_samples", Kind::Gauge, "Samples in block files.")
        .sample("m3trics_block_samples", &[], stats.block_samples as f64)
        .family("m3trics_wal_bytes", Kind::Gauge, "Bytes of write-ahead log on disk.")
        .sample("m3trics_wal_bytes", &[], stats.wal_bytes as f64)
        .family("m3trics_flushes_total", Kind::Counter, "Flushes of the head into blocks since start.")
        .sample("m3trics_flushes_total", &[], stats.flushes as f64);
    if let Some(rss) = resident_bytes() {
        e.family("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.").sample(
            "process_resident_memory_bytes",
            &[],
            rss as f64,
        );
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], e.finish()).into_response()
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
