//! Replays the kept fuzz corpus of the dashboard's inputs (fuzz/corpus/dashboard_inputs)
//! through the fuzz target's check, so every input the fuzzer found interesting stays a
//! regression test without cargo-fuzz in CI.

#[path = "../../../fuzz/check_dashboard.rs"]
mod check_dashboard;

#[test]
fn dashboard_inputs_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dashboard_inputs");
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(inputs.len() >= 9, "the dashboard corpus is missing");
    for input in &inputs {
        check_dashboard::check_dashboard_inputs(input);
    }
}
