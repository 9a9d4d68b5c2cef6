//! The dashboard's parsers on arbitrary input (see `server::dashboard::check_inputs`).
//! Shared by the fuzz target and the corpus replay test (crates/server/tests/fuzz_corpus.rs).

pub fn check_dashboard_inputs(data: &[u8]) {
    server::dashboard::check_inputs(data);
}
