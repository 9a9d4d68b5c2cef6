//! Replays the kept fuzz corpora of `mini_inputs` and `dns_query`
//! (fuzz/corpus/) through the fuzz targets' checks, so every input the fuzzer found
//! interesting stays a regression test without cargo-fuzz in CI.

#[path = "../../../fuzz/check_mini.rs"]
mod check_mini;

#[path = "../../../fuzz/check_dns.rs"]
mod check_dns;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mini_inputs");
    let (mut inputs, mut accepted) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        accepted += usize::from(check_mini::check(&data));
        inputs += 1;
    }
    assert!(inputs >= 10, "the seed corpus is missing from {}", dir.display());
    assert!(accepted >= 5, "the valid seeds must be accepted ({accepted} were)");
}

#[test]
fn dns_fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dns_query");
    let (mut inputs, mut accepted) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        accepted += usize::from(check_dns::check(&data));
        inputs += 1;
    }
    assert!(inputs >= 5, "the seed corpus is missing from {}", dir.display());
    assert!(accepted >= 3, "the valid seeds must be accepted ({accepted} were)");
}
