//! The M3trics parsers on arbitrary input: never a panic; every error names a
//! line and says something; whatever parses survives a round trip (line
//! protocol through `write_point`, remote_write through `encode`).
//! Shared by the fuzz targets and the corpus replay test (crates/metrics/tests/fuzz_corpus.rs).

use metrics::line::{Precision, expressible, parse_batch, parse_line, write_point};
use metrics::remote_write::{decode, decode_uncompressed, encode};

/// Returns how many points parsed.
pub fn check_line_protocol(data: &[u8]) -> usize {
    let batch = parse_batch(data, Precision::Ns);
    for e in &batch.errors {
        assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty(), "{e:?}");
    }
    for p in &batch.points {
        let mut line = String::new();
        write_point(p, &mut line);
        if expressible(p) {
            let back = parse_line(line.as_bytes(), Precision::Ns);
            assert_eq!(back, Ok(Some(p.clone())), "{line}");
        }
    }
    batch.points.len()
}

/// Returns whether the input decoded (compressed or not).
pub fn check_remote_write(data: &[u8]) -> bool {
    let mut ok = false;
    for decoded in [decode(data), decode_uncompressed(data)].into_iter().flatten() {
        ok = true;
        let again = decode(&encode(&decoded)).expect("an encoded request decodes");
        assert_eq!(again.len(), decoded.len());
        for ((al, asamples), (dl, dsamples)) in again.iter().zip(&decoded) {
            assert_eq!(al, dl);
            let bits = |s: &[metrics::model::Sample]| s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(asamples), bits(dsamples));
        }
    }
    ok
}
