//! Fuzzes the Docker Engine client's HTTP answer reader and its multiplexed
//! stream reader; see ../check_docker.rs.
#![no_main]

#[path = "../check_docker.rs"]
mod check_docker;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_docker::check_stream(data);
});
