//! Replays the kept fuzz corpus (fuzz/corpus/recordio_events) through the fuzz
//! target's check, so every input the fuzzer ever found interesting stays a
//! regression test without needing cargo-fuzz in CI.

#[path = "../../../fuzz/check.rs"]
mod check;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/recordio_events");
    let mut inputs = 0;
    let mut events = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        events += check::check(&data);
        inputs += 1;
    }
    assert!(inputs >= 9, "the seed corpus is missing from {}", dir.display());
    assert!(events >= 5, "the seeds with valid events must decode ({events} did)");
}
