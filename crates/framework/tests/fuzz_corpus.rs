//! Replays the kept compose fuzz corpus (fuzz/corpus/compose_load) through the
//! fuzz target's check, so every input the fuzzer found interesting stays a
//! regression test without cargo-fuzz in CI.

#[path = "../../../fuzz/check_compose.rs"]
mod check_compose;

#[test]
fn compose_fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/compose_load");
    let (mut inputs, mut loaded) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        loaded += usize::from(check_compose::check(&data));
        inputs += 1;
    }
    assert!(inputs >= 80, "the seed corpus is missing from {}", dir.display());
    assert!(loaded >= 30, "the seeds that are valid compose files must load ({loaded} did)");
}
