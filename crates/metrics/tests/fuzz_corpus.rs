//! Replays the kept fuzz corpora of the M3trics parsers (fuzz/corpus/line_protocol,
//! fuzz/corpus/remote_write) through the fuzz targets' checks, so every input the
//! fuzzer found interesting stays a regression test without cargo-fuzz in CI.

#[path = "../../../fuzz/check_metrics.rs"]
mod check_metrics;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(name);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn line_protocol_corpus_replays() {
    let inputs = corpus("line_protocol");
    assert!(inputs.len() >= 20, "the line protocol corpus is missing");
    let parsed: usize = inputs.iter().map(|d| check_metrics::check_line_protocol(d)).sum();
    assert!(parsed > 0, "some seeds are valid line protocol");
}

#[test]
fn remote_write_corpus_replays() {
    let inputs = corpus("remote_write");
    assert!(inputs.len() >= 5, "the remote_write corpus is missing");
    assert!(inputs.iter().any(|d| check_metrics::check_remote_write(d)), "some seeds are valid requests");
}

#[test]
fn anomaly_watch_corpus_replays() {
    let inputs = corpus("anomaly_watch");
    assert!(inputs.len() >= 10, "the anomaly watch corpus is missing");
    let scored: usize = inputs.iter().map(|d| check_metrics::check_anomaly(d)).sum();
    assert!(scored > 1000, "the seeds are scored: {scored}");
}
