//! Prometheus remote_write decoding: round trips, unknown fields, corrupt input, a golden request.

use metrics::model::{Labels, Sample};
use metrics::remote_write::{RemoteWriteError, decode, decode_uncompressed, encode, encode_uncompressed};
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn a_hand_built_request_decodes() {
    // WriteRequest{timeseries: [{labels: [{__name__, "up"}], samples: [{value: 1.0, timestamp: 5}]}]}
    let label = [&[0x0a, 8][..], b"__name__", &[0x12, 2], b"up"].concat();
    let sample = [&[0x09][..], &1.0f64.to_le_bytes(), &[0x10, 5]].concat();
    let ts = [&[0x0a, label.len() as u8][..], &label, &[0x12, sample.len() as u8], &sample].concat();
    // A metadata entry (field 3 of WriteRequest) that receivers skip.
    let request = [&[0x0a, ts.len() as u8][..], &ts, &[0x1a, 2, 0x08, 1]].concat();
    assert_eq!(
        decode_uncompressed(&request).unwrap(),
        vec![(labels(&[("__name__", "up")]), vec![Sample { t: 5, v: 1.0 }])]
    );
    assert_eq!(encode_uncompressed(&decode_uncompressed(&request).unwrap()), request[..request.len() - 4].to_vec());
}

#[test]
fn corrupt_requests_are_errors_naming_the_place() {
    let good = encode_uncompressed(&[(labels(&[("__name__", "a"), ("x", "y")]), vec![Sample { t: 1, v: 2.0 }])]);
    for cut in 1..good.len() {
        let e = decode_uncompressed(&good[..cut]).unwrap_err();
        assert!(matches!(e, RemoteWriteError::Protobuf(_)), "cut at {cut}: {e:?}");
    }
    let unnamed = encode_uncompressed(&[(labels(&[("x", "y")]), vec![])]);
    assert!(decode_uncompressed(&unnamed).unwrap_err().to_string().contains("timeseries 1: no __name__ label"));
    assert!(matches!(decode(b"definitely not snappy"), Err(RemoteWriteError::Snappy(_))));
    let bad_utf8 = [0x0a, 7, 0x0a, 5, 0x0a, 1, 0xff, 0x12, 0].to_vec();
    assert!(decode_uncompressed(&bad_utf8).unwrap_err().to_string().contains("label 1: name is not valid UTF-8"));
}

fn label_value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ é\"\\\\]{1,10}"
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(
        series in prop::collection::vec(
            (label_value(), prop::collection::btree_map("[a-z_]{1,6}", label_value(), 0..4),
             prop::collection::vec((any::<i64>(), prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)]), 0..10)),
            0..5),
    ) {
        let input: Vec<(Labels, Vec<Sample>)> = series.into_iter().map(|(name, ls, samples)| {
            let mut pairs: Vec<(String, String)> = ls.into_iter().filter(|(k, _)| k != "__name__").collect();
            pairs.push(("__name__".into(), name));
            (Labels::new(pairs), samples.into_iter().map(|(t, v)| Sample { t, v }).collect())
        }).collect();
        let back = decode(&encode(&input)).unwrap();
        prop_assert_eq!(back.len(), input.len());
        for ((bl, bs), (il, is)) in back.iter().zip(&input) {
            prop_assert_eq!(bl, il);
            prop_assert_eq!(bs.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>(), is.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&body);
        let _ = decode_uncompressed(&body);
    }
}
