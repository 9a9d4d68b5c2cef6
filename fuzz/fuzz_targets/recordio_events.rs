//! Fuzzes RecordIO framing plus scheduler event decoding; see ../check.rs.
#![no_main]

#[path = "../check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
