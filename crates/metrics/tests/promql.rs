//! PromQL: parser errors, hand-computed evaluations, and a property test of
//! range evaluation against a deliberately naive per-step evaluator.

use metrics::model::{Labels, Sample, Series};
use metrics::promql::{Value, eval_instant, eval_range, parse};
use proptest::prelude::*;

fn series(name: &str, labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    pairs.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Series { labels: Labels::new(pairs), samples: points.iter().map(|&(t, v)| Sample { t, v }).collect() }
}

// A `Vec` (not a slice): it is the `Source`, and `dyn Source` needs a sized type.
#[allow(clippy::ptr_arg)]
fn instant(q: &str, data: &Vec<Series>, t: i64) -> Vec<(String, f64)> {
    match eval_instant(&parse(q).unwrap(), data, t).unwrap() {
        Value::Vector(v) => v.into_iter().map(|(l, s)| (l.to_string(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![("scalar".into(), v)],
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn parse_errors_say_where_and_what() {
    let cases = [
        ("rate(", "1:6: parse error"),
        ("foo{bar=}", "expected a quoted label value"),
        ("1 > 2", "comparisons between scalars must use BOOL modifier"),
        ("stddev(x)", "not supported by m3s: aggregation stddev"),
        ("x[5m:1m]", "not supported by m3s: subqueries"),
        ("rate(x)", "expected type range vector in call to function \"rate\", got instant vector"),
        ("histogram_quantile(0.9, x)", "not supported by m3s: function \"histogram_quantile\""),
        ("x @ 100", "not supported by m3s: the @ modifier"),
        ("{}", "at least one non-empty matcher"),
        ("foo{a=~\"(\"}", "invalid regular expression"),
        ("sum(x) + ", "unexpected end of input"),
        ("up\n  + )", "2:5: parse error"),
        ("x + on(a) group_left y", "group_left"),
        ("rate(x[5m]) and 1", "set operator not allowed in binary scalar expression"),
    ];
    for (q, want) in cases {
        let err = parse(q).expect_err(q).to_string();
        assert!(err.contains(want), "{q:?}: {err:?} should contain {want:?}");
    }
}

#[test]
fn every_supported_construct_parses() {
    for q in [
        "up",
        "up{job=\"a\", instance!=\"b\", path=~\"/api/.*\", code!~\"5..\"}",
        "{__name__=~\"node_.*\"}",
        "rate(x[5m] offset 1h)",
        "sum by (job) (rate(x[1m]))",
        "sum(rate(x[1m])) without (instance)",
        "topk(3, x)",
        "bottomk by (job) (2, x)",
        "-x ^ 2",
        "2 ^ 3 ^ 2",
        "a / on(job) b",
        "a - ignoring(instance) b",
        "x > bool 1",
        "x and y or z unless w",
        "clamp(x, 0, 1)",
        "round(x, 0.5)",
        "vector(1) + scalar(sum(x))",
        "time() - 60",
        "0x1f + 1e3 + .5 + Inf - NaN",
        "avg_over_time(x[1h30m])",
    ] {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
}

#[test]
fn precedence_follows_prometheus() {
    let data: Vec<Series> = vec![];
    let scalar = |q: &str| match eval_instant(&parse(q).unwrap(), &data, 0).unwrap() {
        Value::Scalar { v, .. } => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(scalar("-2 ^ 2"), -4.0);
    assert_eq!(scalar("2 ^ 3 ^ 2"), 512.0);
    assert_eq!(scalar("1 + 2 * 3 - 4 / 2"), 5.0);
    assert_eq!(scalar("7 % 4 * 2"), 6.0);
    assert_eq!(scalar("1 < bool 2 + 1"), 1.0);
}

#[test]
fn rate_and_increase_are_extrapolated_as_prometheus_does() {
    let s = 1000;
    // Samples covering the whole range: no extrapolation.
    let full = vec![series("c", &[], &(0..=6).map(|i| (i * 10 * s, (i * 10) as f64)).collect::<Vec<_>>())];
    assert_eq!(instant("increase(c[1m])", &full, 60 * s), vec![("{}".into(), 60.0)]);
    assert_eq!(instant("rate(c[1m])", &full, 60 * s), vec![("{}".into(), 1.0)]);
    // A counter reset: 0 10 20 | 5 15 25 35 → 20 + 35 = 55.
    let reset = vec![series(
        "c",
        &[],
        &[(0, 0.0), (10 * s, 10.0), (20 * s, 20.0), (30 * s, 5.0), (40 * s, 15.0), (50 * s, 25.0), (60 * s, 35.0)],
    )];
    assert_eq!(instant("increase(c[1m])", &reset, 60 * s), vec![("{}".into(), 55.0)]);
    // Samples 5 s inside both ends: extrapolated by 5 s each side (under 1.1 x the interval),
    // and not below zero at the start (the counter would reach zero exactly at t=0).
    let inner = vec![series("c", &[], &(0..6).map(|i| ((5 + i * 10) * s, (5 + i * 10) as f64)).collect::<Vec<_>>())];
    assert_eq!(instant("increase(c[1m])", &inner, 60 * s), vec![("{}".into(), 60.0)]);
    // Only one sample in range: no rate.
    assert!(instant("rate(c[5s])", &full, 60 * s).is_empty());
    // irate: the last two samples, with a reset.
    assert_eq!(instant("irate(c[1m])", &reset, 60 * s), vec![("{}".into(), 1.0)]);
    assert_eq!(instant("idelta(c[1m])", &reset, 60 * s), vec![("{}".into(), 10.0)]);
}

#[test]
fn lookback_offset_and_staleness() {
    let stale = f64::from_bits(0x7ff0000000000002);
    let data = vec![series("g", &[("i", "a")], &[(0, 1.0)]), series("g", &[("i", "b")], &[(0, 2.0), (60_000, stale)])];
    assert_eq!(instant("g", &data, 300_000).len(), 1, "b went stale at 60 s");
    assert_eq!(instant("g", &data, 30_000).len(), 2);
    assert_eq!(instant("g{i=\"a\"}", &data, 300_000), vec![("g{i=\"a\"}".into(), 1.0)], "5 m back is still in");
    assert!(instant("g{i=\"a\"}", &data, 300_001).is_empty(), "beyond 5 m is out");
    assert_eq!(instant("g{i=\"a\"} offset 1m", &data, 360_000).len(), 1);
    assert_eq!(instant("count_over_time(g[2m])", &data, 120_000).len(), 2, "stale markers are not samples");
}

#[test]
fn aggregations_matching_and_names() {
    let data = vec![
        series("m", &[("job", "a"), ("i", "1")], &[(0, 1.0)]),
        series("m", &[("job", "a"), ("i", "2")], &[(0, 5.0)]),
        series("m", &[("job", "b"), ("i", "1")], &[(0, 3.0)]),
        series("n", &[("job", "a"), ("i", "1")], &[(0, 10.0)]),
        series("n", &[("job", "b"), ("i", "1")], &[(0, 20.0)]),
    ];
    assert_eq!(instant("sum by (job) (m)", &data, 0), vec![("{job=\"a\"}".into(), 6.0), ("{job=\"b\"}".into(), 3.0)]);
    assert_eq!(
        instant("avg without (i) (m)", &data, 0),
        vec![("{job=\"a\"}".into(), 3.0), ("{job=\"b\"}".into(), 3.0)]
    );
    assert_eq!(instant("max(m)", &data, 0), vec![("{}".into(), 5.0)]);
    assert_eq!(instant("count(m)", &data, 0), vec![("{}".into(), 3.0)]);
    assert_eq!(instant("topk(1, m)", &data, 0), vec![("m{i=\"2\", job=\"a\"}".into(), 5.0)]);
    assert_eq!(instant("bottomk by (job) (1, m)", &data, 0).len(), 2);
    // One-to-one matching drops the name; `on` keeps only the matching labels.
    assert_eq!(
        instant("n - m{i=\"1\"}", &data, 0),
        vec![("{i=\"1\", job=\"a\"}".into(), 9.0), ("{i=\"1\", job=\"b\"}".into(), 17.0)]
    );
    assert_eq!(
        instant("n / on(job) sum by (job) (m)", &data, 0),
        vec![("{job=\"a\"}".into(), 10.0 / 6.0), ("{job=\"b\"}".into(), 20.0 / 3.0)]
    );
    // Comparisons filter and keep the name; with bool they give 0/1 and drop it.
    assert_eq!(instant("m > 2", &data, 0).len(), 2);
    assert!(instant("m > 2", &data, 0).iter().all(|(l, _)| l.starts_with("m{")));
    assert_eq!(instant("m > bool 2", &data, 0).iter().map(|x| x.1).sum::<f64>(), 2.0);
    // A scalar on the left of a comparison still keeps the vector's values.
    assert_eq!(instant("2 < m", &data, 0).iter().map(|x| x.1).collect::<Vec<_>>(), vec![3.0, 5.0]);
    // Many-to-many is an error, as in Prometheus.
    let err = eval_instant(&parse("m + on(job) n").unwrap(), &data, 0).unwrap_err().to_string();
    assert!(err.contains("many-to-many matching not allowed"), "{err}");
    assert_eq!(instant("m and on(job) n{job=\"b\"}", &data, 0).len(), 1);
    assert_eq!(instant("m unless on(job) n{job=\"b\"}", &data, 0).len(), 2);
}

#[test]
fn range_queries_step_and_limits() {
    let data = vec![series("g", &[], &(0..10).map(|i| (i * 10_000, i as f64)).collect::<Vec<_>>())];
    let out = eval_range(&parse("g * 2").unwrap(), &data, 0, 90_000, 30_000, usize::MAX).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].samples.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(),
        vec![(0, 0.0), (30_000, 6.0), (60_000, 12.0), (90_000, 18.0)]
    );
    let err = eval_range(&parse("g").unwrap(), &data, 0, 20_000_000, 1_000, usize::MAX).unwrap_err().to_string();
    assert!(err.contains("11,000 points"), "{err}");
    let err = eval_range(&parse("g[1m]").unwrap(), &data, 0, 10, 1, usize::MAX).unwrap_err().to_string();
    assert!(err.contains("range vector"), "{err}");
}

/// A naive evaluator for `sum by (g) (avg_over_time(m[30s]))` and `m` (lookback 5 m).
fn naive(data: &[Series], start: i64, end: i64, step: i64, over_time: bool) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut out: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    let mut t = start;
    while t <= end {
        let mut groups: std::collections::BTreeMap<String, f64> = Default::default();
        for s in data {
            if over_time {
                let w: Vec<f64> = s.samples.iter().filter(|x| x.t >= t - 30_000 && x.t <= t).map(|x| x.v).collect();
                if w.is_empty() {
                    continue;
                }
                let avg = w.iter().sum::<f64>() / w.len() as f64;
                *groups.entry(format!("{{g={:?}}}", s.labels.get("g").unwrap())).or_default() += avg;
            } else if let Some(last) = s.samples.iter().rfind(|x| x.t <= t && x.t >= t - 300_000) {
                groups.insert(s.labels.to_string(), last.v);
            }
        }
        for (k, v) in groups {
            out.entry(k).or_default().push((t, v));
        }
        t += step;
    }
    out.into_iter().collect()
}

proptest! {
    #[test]
    fn range_evaluation_matches_a_naive_evaluator(
        raw in prop::collection::vec((0u8..4, prop::collection::btree_map(0i64..120, -100i32..100, 0..30)), 1..6),
        start in 0i64..600, len in 0i64..900, step in 1i64..60,
    ) {
        let data: Vec<Series> = raw.iter().enumerate().map(|(i, (g, pts))| {
            series("m", &[("g", &g.to_string()), ("i", &i.to_string())], &pts.iter().map(|(&t, &v)| (t * 10_000, v as f64 / 4.0)).collect::<Vec<_>>())
        }).collect();
        let (start, end, step) = (start * 1000, (start + len) * 1000, step * 1000);
        for (q, over_time) in [("sum by (g) (avg_over_time(m[30s]))", true), ("m", false)] {
            let got: Vec<(String, Vec<(i64, f64)>)> = eval_range(&parse(q).unwrap(), &data, start, end, step, usize::MAX).unwrap()
                .into_iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v)).collect())).collect();
            let want = naive(&data, start, end, step, over_time);
            prop_assert_eq!(got.len(), want.len(), "{}", q);
            for ((gl, gp), (wl, wp)) in got.iter().zip(&want) {
                prop_assert_eq!(gl, wl);
                prop_assert_eq!(gp.len(), wp.len());
                for ((gt, gv), (wt, wv)) in gp.iter().zip(wp) {
                    prop_assert_eq!(gt, wt);
                    prop_assert!((gv - wv).abs() <= 1e-9 * wv.abs().max(1.0), "{} at {}: {} vs {}", q, gt, gv, wv);
                }
            }
        }
    }
}
