//! Ingestion path, stage by stage, on the same line-protocol batches:
//! parse only, parse + naming (points to labelled samples), and parse + naming +
//! store write (series log, WAL, head), then a flush. Prints points/s per stage and
//! the ratio of the full path to parsing alone.
//!
//! `cargo bench -p metrics --bench ingest` (M3S_BENCH_SERIES, M3S_BENCH_POINTS to resize).

use std::time::Instant;

use metrics::line::{Precision, parse_batch};
use metrics::store::{Store, StoreConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let series = env("M3S_BENCH_SERIES", 1000);
    let points = env("M3S_BENCH_POINTS", 1000);
    let hosts = series / 10;
    let t0 = 1_700_000_000i64;
    let mut rng = 7u64;
    let mut values = vec![5000i64; series];
    let mut batches = Vec::new();
    let mut batch = String::new();
    let mut lines = 0;
    for p in 0..points {
        for h in 0..hosts {
            batch.push_str(&format!("node,host=node-{h:03},dc=eu "));
            for f in 0..10 {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = &mut values[h * 10 + f];
                *v += (rng >> 59) as i64 - 16;
                if f > 0 {
                    batch.push(',');
                }
                batch.push_str(&format!("f{f}={}.{:02}", *v / 100, (*v % 100).abs()));
            }
            batch.push_str(&format!(" {}\n", t0 + p as i64 * 30));
            lines += 1;
            if lines % 1000 == 0 {
                batches.push(std::mem::take(&mut batch));
            }
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let samples = series * points;
    let bytes: usize = batches.iter().map(String::len).sum();
    println!("{series} series x {points} points = {samples} samples, {} MB of line protocol", bytes / 1_000_000);

    let start = Instant::now();
    let mut n = 0;
    for b in &batches {
        n += parse_batch(b.as_bytes(), Precision::S).points.len();
    }
    let parse = start.elapsed().as_secs_f64();
    assert_eq!(n * 10, samples);

    let start = Instant::now();
    let mut n = 0;
    for b in &batches {
        for p in parse_batch(b.as_bytes(), Precision::S).points {
            n += p.samples(0).count();
        }
    }
    let naming = start.elapsed().as_secs_f64();
    assert_eq!(n, samples);

    let dir = std::env::temp_dir().join(format!("m3trics-bench-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = StoreConfig::new(&dir);
    config.retention = None;
    let store = Store::open(config).unwrap();
    let start = Instant::now();
    for b in &batches {
        let batch = parse_batch(b.as_bytes(), Precision::S);
        store.write_points(&batch.points, 0).unwrap();
    }
    let write = start.elapsed().as_secs_f64();
    let start = Instant::now();
    store.flush().unwrap();
    let flush = start.elapsed().as_secs_f64();
    let stats = store.stats();

    // A range query over one field of every host (100 series by default) at 60 s step, by stage.
    let matchers = [metrics::model::Matcher::eq("__name__", "node_f0")];
    let (start_ms, end_ms) = (t0 * 1000, (t0 + (points as i64 - 1) * 30) * 1000);
    let timed = |f: &mut dyn FnMut()| {
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[3]
    };
    let select = timed(&mut || {
        std::hint::black_box(store.try_select(&matchers, start_ms - 300_000, end_ms).unwrap());
    });
    let expr = metrics::promql::parse("node_f0").unwrap();
    let mut matrix = Vec::new();
    let eval = timed(&mut || {
        matrix = metrics::promql::eval_range(&expr, &*store, start_ms, end_ms, 60_000, usize::MAX).unwrap();
    });
    let value = metrics::promql::Value::Matrix(matrix);
    let json = timed(&mut || {
        let mut out = String::new();
        metrics::promql::write_prometheus_json(&value, &mut out);
        std::hint::black_box(out);
    });
    let _ = std::fs::remove_dir_all(&dir);

    let rate = |secs: f64| samples as f64 / secs / 1e6;
    println!("| stage | time | M samples/s |\n|---|---:|---:|");
    println!("| parse | {parse:.3} s | {:.2} |", rate(parse));
    println!("| parse + naming | {naming:.3} s | {:.2} |", rate(naming));
    println!("| parse + naming + store write | {write:.3} s | {:.2} |", rate(write));
    println!("| flush (compress to a block) | {flush:.3} s | {:.2} |", rate(flush));
    println!(
        "block: {:.3} bytes/sample; full path / parse alone = {:.2}",
        stats.block_bytes as f64 / stats.block_samples as f64,
        parse / write
    );
    println!(
        "query node_f0 over {} series, {} points each, 60 s step (median of 7): select+decode {select:.1} ms, \
         eval (incl. select) {eval:.1} ms, JSON {json:.1} ms",
        hosts, points
    );
}
