//! Fuzzes m3s mini's resource syntax and scheduler call handling; see ../check_mini.rs.
#![no_main]

#[path = "../check_mini.rs"]
mod check_mini;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_mini::check(data);
});
