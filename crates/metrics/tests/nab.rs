//! The NAB scorer on the benchmark's own data (../shared/data/nab): the null
//! detector scores 0, the perfect one 100, and the robust detector runs online
//! over every series.

use metrics::anomaly::RobustDetector;
use metrics::anomaly::nab::{self, Series};

fn data() -> Vec<Series> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab");
    nab::load(&dir).unwrap_or_else(|e| panic!("the NAB subset beside the repository: {e}"))
}

#[test]
fn the_null_and_perfect_detectors_anchor_the_scale() {
    let series = data();
    assert!(series.len() >= 20, "{} series", series.len());
    assert!(series.iter().map(|s| s.windows.len()).sum::<usize>() >= 20, "windows are matched to rows");
    let null = nab::evaluate(series.clone(), || Box::new(|_, _| 0.0));
    assert_eq!(null.standard(), 0.0);
    // Perfect: each window's first row, and nothing else.
    let mut starts: Vec<Vec<usize>> = series.iter().map(|s| s.windows.iter().map(|w| w.0).collect()).collect();
    starts.reverse();
    let perfect = nab::evaluate(series, move || {
        let starts = starts.pop().unwrap();
        let mut i = 0;
        Box::new(move |_, _| {
            i += 1;
            if starts.contains(&(i - 1)) { 1.0 } else { 0.0 }
        })
    });
    assert!((perfect.standard() - 100.0).abs() < 1e-9, "{}", perfect.standard());
}

#[test]
fn the_robust_detector_beats_the_null_detector() {
    let report = nab::evaluate(data(), || {
        let mut d = RobustDetector::new(256);
        Box::new(move |t, v| d.score_at(t, v))
    });
    assert!(report.standard() > 0.0, "{report:?}");
    assert_eq!(report.folders.len(), 4);
}
