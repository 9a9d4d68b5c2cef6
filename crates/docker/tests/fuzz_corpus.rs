//! Replays the kept corpus of the `docker_stream` fuzz target through its check:
//! no answer panics or yields more than it carried; the well-formed seeds are read.

#[path = "../../../fuzz/check_docker.rs"]
mod check_docker;

#[test]
fn docker_stream_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/docker_stream");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let accepted = check_docker::check_stream(&std::fs::read(&path).unwrap());
        match name.as_str() {
            "http-length" | "http-chunked" | "http-close" | "http-error" | "mux-two" => {
                assert!(accepted, "{name} was refused")
            }
            "http-huge-length" | "http-huge-chunk" | "mux-huge-frame" | "mux-cut-header" => {
                assert!(!accepted, "{name} was accepted")
            }
            _ => {}
        }
        count += 1;
    }
    assert!(count >= 9, "the corpus is missing");
}
