//! Replays the kept corpora of the layer unpacker's fuzz target
//! (fuzz/corpus/layer_unpack) and of the Dockerfile reader (dockerfile_from) through
//! their checks: no input panics, no layer
//! writes outside its layer, and the hostile seeds are refused.

#[path = "../../../fuzz/check_image.rs"]
mod check_image;

#[test]
fn layer_unpack_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/layer_unpack");
    let mut unpacked = 0;
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ok = check_image::check_layer(&std::fs::read(&path).unwrap());
        count += 1;
        unpacked += usize::from(ok);
        if name.contains("escape") || name.contains("dotdot") {
            assert!(!ok, "{name} was unpacked");
        }
        if name.starts_with("plain") {
            assert!(ok, "{name} was refused");
        }
    }
    assert!(count >= 10, "the layer corpus is missing");
    assert!(unpacked >= 4);
}

#[test]
fn dockerfile_from_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dockerfile_from");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        check_image::check_dockerfile(&std::fs::read(entry.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count >= 3, "the Dockerfile corpus is missing");
}
