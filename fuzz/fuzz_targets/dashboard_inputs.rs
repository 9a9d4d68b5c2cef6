//! Fuzzes the dashboard's query, path and cookie parsing; see ../check_dashboard.rs.
#![no_main]

#[path = "../check_dashboard.rs"]
mod check_dashboard;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_dashboard::check_dashboard_inputs(data);
});
