//! Fuzzes the anomaly watch (detectors, counters, events); see ../check_metrics.rs.
#![no_main]

#[path = "../check_metrics.rs"]
mod check_metrics;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_metrics::check_anomaly(data);
});
