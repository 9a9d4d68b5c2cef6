//! Fuzzes the M3trics line_protocol parser; see ../check_metrics.rs.
#![no_main]

#[path = "../check_metrics.rs"]
mod check_metrics;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_metrics::check_line_protocol(data);
});
