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

/// The anomaly watch on arbitrary samples: each 10 bytes are a time step (two
/// bytes, signed: duplicates and reordering included) and a value (eight bytes,
/// any f64: NaN, infinities, huge) for one of two series, a gauge and a
/// counter. Never a panic; every score in [0, 1]; every event ends after it
/// starts; state stays within its bounds. Returns how many scores came out.
pub fn check_anomaly(data: &[u8]) -> usize {
    use metrics::anomaly::watch::{Output, WatchRule, Watcher, default_rules};
    use metrics::model::{Labels, Sample};
    let mut rules = default_rules();
    rules.push(WatchRule { window: 8, ..WatchRule::gauge("tiny") });
    let mut watcher = Watcher::new(rules);
    let names = ["mem_used_percent", "net_bytes_recv", "tiny"];
    let mut t = [0i64; 3];
    let mut out = Vec::new();
    for chunk in data.chunks_exact(10) {
        let which = (chunk[0] % 3) as usize;
        let step = i16::from_le_bytes([chunk[0] >> 2, chunk[1]]) as i64 * 1000;
        t[which] = t[which].saturating_add(step);
        let v = f64::from_le_bytes(chunk[2..10].try_into().expect("8 bytes"));
        let labels = Labels::new(vec![("__name__".into(), names[which].into()), ("host".into(), "h".into())]);
        watcher.observe(&labels, &[Sample { t: t[which], v }], &mut out);
    }
    watcher.forget_older_than(i64::MAX, &mut out);
    let mut scores = 0;
    for o in &out {
        match o {
            Output::Score { score, .. } => {
                assert!((0.0..=1.0).contains(score), "score {score}");
                scores += 1;
            }
            Output::Opened(e) | Output::Closed(e) => {
                assert!(e.end_ms.is_none_or(|end| end >= e.start_ms), "{e:?}");
                assert!(e.peak_score.is_finite() && !e.reason.is_empty(), "{e:?}");
            }
        }
    }
    assert_eq!(watcher.watched(), 0, "everything was forgotten");
    scores
}
