//! The store against a brute-force model: whatever is written, flushed,
//! reopened or replayed, a query returns what a plain list of samples says.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics::model::{Labels, Matcher, Sample, Series, Source};
use metrics::store::{Store, StoreConfig, chunk};
use proptest::prelude::*;

fn labels(name: &str, host: &str) -> Labels {
    Labels::new(vec![("__name__".into(), name.into()), ("host".into(), host.into())])
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.retention = None;
    c.chunk_max_samples = 7; // many chunks, so chunk boundaries are exercised
    c.max_blocks = 2; // and merges after almost every flush
    c
}

/// What the store must answer: the last value written at each (series, t).
#[derive(Default)]
struct Model(BTreeMap<Labels, BTreeMap<i64, f64>>);

impl Model {
    fn write(&mut self, l: &Labels, s: Sample) {
        self.0.entry(l.clone()).or_default().insert(s.t, s.v);
    }

    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        self.0
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches_labels(l)))
            .map(|(l, pts)| Series {
                labels: l.clone(),
                samples: pts.range(start..=end).map(|(&t, &v)| Sample { t, v }).collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect()
    }
}

fn sorted(mut v: Vec<Series>) -> Vec<Series> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

fn assert_same(store: &Store, model: &Model, matchers: &[Matcher], start: i64, end: i64) {
    let got = sorted(store.select(matchers, start, end).unwrap());
    let want = model.select(matchers, start, end);
    assert_eq!(got.len(), want.len(), "series count for {matchers:?} [{start}, {end}]");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.labels, w.labels);
        let g: Vec<(i64, u64)> = g.samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let w: Vec<(i64, u64)> = w.samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(g, w, "samples of {}", w.len());
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write(Vec<(u8, i64, f64)>),
    Flush,
    Compact,
    Reopen,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-10_000i64..10_000).prop_map(|n| n as f64 / 100.0),
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0u8..6, 0i64..200, value()), 1..40).prop_map(Op::Write),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_answers_like_the_model(ops in prop::collection::vec(op(), 1..25), start in 0i64..100, len in 0i64..150) {
        let dir = tempdir();
        let mut store = Store::open(config(dir.path())).unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Write(samples) => {
                    let batch: Vec<(Labels, Sample)> = samples
                        .iter()
                        .map(|&(s, t, v)| (labels(if s % 2 == 0 { "cpu" } else { "mem" }, &format!("h{}", s / 2)), Sample { t: t * 1000, v }))
                        .collect();
                    for (l, s) in &batch {
                        model.write(l, *s);
                    }
                    store.write(batch).unwrap();
                }
                Op::Flush => store.flush().unwrap(),
                Op::Compact => store.compact().unwrap(),
                // Dropped without close: what a crash leaves, recovered from the WAL.
                Op::Reopen => { drop(store); store = Store::open(config(dir.path())).unwrap(); }
            }
        }
        let (s, e) = (start * 1000, (start + len) * 1000);
        assert_same(&store, &model, &[Matcher::eq("__name__", "cpu")], s, e);
        assert_same(&store, &model, &[Matcher::new("host", metrics::model::MatchOp::Re, "h[01]").unwrap()], s, e);
        assert_same(&store, &model, &[Matcher::new("host", metrics::model::MatchOp::Ne, "h1").unwrap()], i64::MIN, i64::MAX);
        prop_assert!(store.stats().blocks <= 2, "compaction keeps the block count bounded");
        let files = std::fs::read_dir(dir.path().join("blocks")).unwrap().count();
        prop_assert_eq!(files, store.stats().blocks, "merged blocks' files are deleted");
    }

    #[test]
    fn chunks_round_trip_bit_exactly(values in prop::collection::vec(value(), 1..600), step in 1i64..100_000, jitter in prop::collection::vec(-1000i64..1000, 600)) {
        let mut t = -1_000_000i64;
        let samples: Vec<Sample> = values.iter().zip(&jitter).map(|(&v, &j)| { t += step + j.abs(); Sample { t, v } }).collect();
        let back = chunk::decode(&chunk::encode(&samples)).expect("decodes");
        prop_assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(&samples) {
            prop_assert_eq!(a.t, b.t);
            prop_assert_eq!(a.v.to_bits(), b.v.to_bits());
        }
    }

    #[test]
    fn corrupt_chunks_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = chunk::decode(&bytes);
    }
}

#[test]
fn flushed_data_is_compressed_and_survives_reopen() {
    let dir = tempdir();
    let mut c = StoreConfig::new(dir.path());
    c.retention = None;
    let store = Store::open(c.clone()).unwrap();
    // 100 series × 2,000 points of 2-decimal random walks every 30 s.
    let mut rng = 42u64;
    let mut batch = Vec::new();
    for host in 0..100 {
        let l = labels("load", &format!("node-{host:03}"));
        let mut v = 500i64;
        for i in 0..2000 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v += (rng >> 60) as i64 - 7;
            batch.push((l.clone(), Sample { t: 1_700_000_000_000 + i * 30_000, v: v as f64 / 100.0 }));
        }
    }
    store.write(batch.clone()).unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(stats.block_samples, 200_000);
    assert_eq!(stats.head_samples, 0);
    let per_sample = stats.block_bytes as f64 / 200_000.0;
    assert!(per_sample < 1.5, "{per_sample} bytes per sample");
    drop(store);
    let store = Store::open(c).unwrap();
    let got = store.select(&[Matcher::eq("host", "node-007")], i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), 1);
    let want: Vec<Sample> = batch.iter().filter(|(l, _)| l.get("host") == Some("node-007")).map(|(_, s)| *s).collect();
    assert_eq!(got[0].samples, want);
}

#[test]
fn a_torn_wal_tail_loses_only_the_torn_record() {
    let dir = tempdir();
    let store = Store::open(config(dir.path())).unwrap();
    store.write(vec![(labels("a", "x"), Sample { t: 1, v: 1.0 })]).unwrap();
    store.write(vec![(labels("a", "x"), Sample { t: 2, v: 2.0 })]).unwrap();
    drop(store);
    let wal = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(len - 3).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let got = store.select(&[Matcher::eq("__name__", "a")], 0, 10).unwrap();
    assert_eq!(got[0].samples, vec![Sample { t: 1, v: 1.0 }]);
    // And the store goes on accepting writes after the torn record.
    store.write(vec![(labels("a", "x"), Sample { t: 3, v: 3.0 })]).unwrap();
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.select(&[Matcher::eq("__name__", "a")], 0, 10).unwrap()[0].samples.len(), 2);
}

#[test]
fn retention_drops_old_blocks_and_old_head_samples() {
    let dir = tempdir();
    let mut c = config(dir.path());
    c.retention = Some(Duration::from_secs(3600));
    let store = Store::open(c).unwrap();
    let now = metrics::store::now_ms();
    store
        .write(vec![
            (labels("a", "old"), Sample { t: now - 7_200_000, v: 1.0 }),
            (labels("a", "new"), Sample { t: now, v: 2.0 }),
        ])
        .unwrap();
    store.flush().unwrap();
    let got = store.select(&[Matcher::eq("__name__", "a")], i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels.get("host"), Some("new"));
}

#[test]
fn label_api_lists_names_values_and_series() {
    let dir = tempdir();
    let store = Store::open(config(dir.path())).unwrap();
    store
        .write(vec![(labels("cpu", "a"), Sample { t: 1, v: 1.0 }), (labels("mem", "b"), Sample { t: 1, v: 1.0 })])
        .unwrap();
    assert_eq!(store.label_names(&[]), vec!["__name__", "host"]);
    assert_eq!(store.label_values("host", &[]), vec!["a", "b"]);
    assert_eq!(store.label_values("host", &[vec![Matcher::eq("__name__", "mem")]]), vec!["b"]);
    assert_eq!(store.series(&[vec![Matcher::eq("host", "a")]]), vec![labels("cpu", "a")]);
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("m3trics-store-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

#[test]
fn a_write_over_a_limit_is_refused_whole_and_leaves_no_series_behind() {
    let dir = tempdir();
    let mut c = config(dir.path());
    c.limits.max_series = 3;
    c.limits.max_labels = 3;
    c.limits.max_query_samples = 4;
    let store = Store::open(c.clone()).unwrap();
    store.write(vec![(labels("a", "x"), Sample { t: 1, v: 1.0 })]).unwrap();
    let five: Vec<_> = (0..5).map(|i| (labels("b", &format!("h{i}")), Sample { t: 1, v: 1.0 })).collect();
    let err = store.write(five).unwrap_err().to_string();
    assert!(err.contains("--metrics-max-series"), "{err}");
    assert_eq!(store.stats().series, 1, "the refused write's series are gone");
    assert!(store.select(&[Matcher::eq("__name__", "b")], 0, 10).unwrap().is_empty());
    // The same through line protocol, whose series are found by their raw key.
    let points = metrics::line::parse_batch(
        b"c,h=1 v=1 1000000\nc,h=2 v=1 1000000\nc,h=3 v=1 1000000\n",
        metrics::line::Precision::Ns,
    );
    let err = store.write_points(&points.points, 0).unwrap_err().to_string();
    assert!(err.contains("--metrics-max-series"), "{err}");
    assert_eq!(store.stats().series, 1);
    let wide = Labels::new((0..4).map(|i| (format!("k{i}"), "v".to_owned())).collect());
    assert!(
        store.write(vec![(wide, Sample { t: 1, v: 1.0 })]).unwrap_err().to_string().contains("--metrics-max-labels")
    );
    let two = metrics::line::parse_batch(b"c,h=1 v=1 1000000\nc,h=2 v=1 1000000\n", metrics::line::Precision::Ns);
    assert_eq!(store.write_points(&two.points, 0).unwrap(), 2, "room for two is room for two");
    let far = Sample { t: metrics::store::now_ms() + 2 * 86_400_000, v: 1.0 };
    assert!(store.write(vec![(labels("a", "x"), far)]).unwrap_err().to_string().contains("--metrics-max-future"));
    // A query reading more samples than allowed is refused before decoding anything.
    store.write((2..8).map(|t| (labels("a", "x"), Sample { t, v: 1.0 })).collect::<Vec<_>>()).unwrap();
    store.flush().unwrap();
    let err = store.select(&[Matcher::eq("__name__", "a")], 0, 10).unwrap_err().to_string();
    assert!(err.contains("--metrics-max-query-samples"), "{err}");
    // (Whole chunks count: a chunk is decoded whole.) A smaller series still answers.
    assert_eq!(store.select(&[Matcher::eq("__name__", "c_v")], 0, i64::MAX).unwrap().len(), 2);
    // Series refused once are not written by a later flush or reopen either.
    drop(store);
    let store = Store::open(c).unwrap();
    assert_eq!(store.stats().series, 3);
}
