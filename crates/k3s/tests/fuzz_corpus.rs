//! Replays the kept fuzz corpus of the kubeconfig reader (fuzz/corpus/kubeconfig)
//! through the fuzz target's check, so every input the fuzzer found interesting
//! stays a regression test without cargo-fuzz in CI.

#[path = "../../../fuzz/check_kubeconfig.rs"]
mod check_kubeconfig;

#[test]
fn kubeconfig_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kubeconfig");
    let mut accepted = 0;
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        accepted += usize::from(check_kubeconfig::check_kubeconfig(&data));
        count += 1;
    }
    assert!(count >= 3, "the kubeconfig corpus is missing");
    assert!(accepted >= 2, "k3s's own kubeconfig and a token one are read");
}
