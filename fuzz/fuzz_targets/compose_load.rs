//! Fuzzes compose loading, normalization and translation; see ../check_compose.rs.
#![no_main]

#[path = "../check_compose.rs"]
mod check_compose;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_compose::check(data);
});
