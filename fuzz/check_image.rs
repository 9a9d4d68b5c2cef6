//! The layer unpacker's check, shared by the `layer_unpack` fuzz target and
//! the corpus replay in crates/image/tests/fuzz_corpus.rs: whatever bytes a
//! registry sends as a layer, unpacking never panics and never writes
//! outside the layer's directory (a sibling directory stays as it was).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Unpacks `data` (gzip, zstd or plain tar) into a fresh directory; returns
/// whether it unpacked without error. Panics if anything escaped.
pub fn check_layer(data: &[u8]) -> bool {
    let base = std::env::temp_dir().join(format!(
        "m3s-fuzz-layer-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let root = base.join("layer");
    let outside = base.join("outside");
    std::fs::create_dir_all(&root).expect("temp dir");
    std::fs::create_dir_all(&outside).expect("temp dir");
    std::fs::write(outside.join("canary"), b"untouched").expect("canary");
    let ok = match image::unpack::decompress(data) {
        Ok(reader) => image::unpack::unpack(reader, &root).is_ok(),
        Err(_) => false,
    };
    let mut siblings: Vec<PathBuf> =
        std::fs::read_dir(&base).expect("base").map(|e| e.expect("entry").path()).collect();
    siblings.sort();
    assert_eq!(siblings, vec![root.clone(), outside.clone()], "something was created beside the layer");
    assert_eq!(listing(&outside), vec![outside.join("canary")], "something was written outside the layer");
    assert_eq!(std::fs::read(outside.join("canary")).expect("canary"), b"untouched");
    std::fs::remove_dir_all(&base).expect("cleanup");
    ok
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    out.sort();
    out
}

/// The Dockerfile reader's check (fuzz target `dockerfile_from`): whatever
/// text a project's Dockerfile holds, reading its base images never panics,
/// never names `scratch`, and names only words of the file (or the args' values).
pub fn check_dockerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args = vec![("TAG".to_owned(), "1".to_owned())];
    for image in image::build::base_images(&text, &args) {
        assert!(!image.is_empty() && image != "scratch", "{image:?} from {text:?}");
        assert!(!image.contains(char::is_whitespace), "{image:?} is one word");
    }
}
