//! The anomaly detector on the Numenta Anomaly Benchmark (`cargo bench -p
//! metrics --bench nab`): the NAB subset beside the repository
//! (`../shared/data/nab`, or `M3S_NAB_DIR`), each series fed point by point
//! through `RobustDetector::score_at`, the code path the live watch uses, and
//! scored with NAB's method. In the same run, the peers: the same detector
//! without times (points and level shifts only) and a windowed Gaussian (NAB's
//! own baseline: a z-score against the mean and deviation of the last points).
//! Prints each one's standard score per folder and in total, the CPU per
//! point (elapsed: run it on an idle machine), and the ratios.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use metrics::anomaly::watch::DEFAULT_WINDOW;
use metrics::anomaly::{RobustDetector, nab};

/// NAB's windowed Gaussian, online: the tail probability of a point under the
/// normal law of the last `window` points.
struct WindowedGaussian {
    window: VecDeque<f64>,
    capacity: usize,
    sum: f64,
    sum_sq: f64,
}

impl WindowedGaussian {
    fn score(&mut self, v: f64) -> f64 {
        let n = self.window.len() as f64;
        let score = if n >= 30.0 {
            let mean = self.sum / n;
            let sd = (self.sum_sq / n - mean * mean).max(0.0).sqrt().max(1e-9);
            let z = ((v - mean) / sd).abs();
            // 1 - the two-sided tail probability, by erfc's bound.
            1.0 - (-(z * z) / 2.0).exp()
        } else {
            0.0
        };
        self.window.push_back(v);
        self.sum += v;
        self.sum_sq += v * v;
        if self.window.len() > self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        score
    }
}

fn run(name: &str, series: &[nab::Series], make: impl Fn() -> nab::Scorer) -> f64 {
    let started = Instant::now();
    let report = nab::evaluate(series.to_vec(), make);
    let per_point = started.elapsed().as_secs_f64() * 1e6 / report.points.max(1) as f64;
    println!("{name}: standard {:.1} ({per_point:.1} µs per point elapsed, scoring included)", report.standard());
    for (folder, score, _) in &report.folders {
        if let Some(s) = score {
            println!("    {folder:<24} {s:>6.1}");
        }
    }
    report.standard()
}

fn main() {
    let dir = std::env::var_os("M3S_NAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab"));
    let series = match nab::load(&dir) {
        Ok(s) if !s.is_empty() => s,
        other => {
            eprintln!("SKIPPED: no NAB data at {} ({other:?}); set M3S_NAB_DIR", dir.display());
            return;
        }
    };
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    println!("NAB at {}: {} series, {points} points; window {DEFAULT_WINDOW}", dir.display(), series.len());
    let full = run("m3s (points, level shifts, daily pattern)", &series, || {
        let mut d = RobustDetector::new(DEFAULT_WINDOW);
        Box::new(move |t, v| d.score_at(t, v))
    });
    let untimed = run("m3s without times (points, level shifts)", &series, || {
        let mut d = RobustDetector::new(DEFAULT_WINDOW);
        Box::new(move |_, v| d.score(v))
    });
    let gaussian = run("windowed Gaussian (NAB's baseline)", &series, || {
        let mut d = WindowedGaussian { window: VecDeque::new(), capacity: DEFAULT_WINDOW, sum: 0.0, sum_sq: 0.0 };
        Box::new(move |_, v| d.score(v))
    });
    println!(
        "ratios: m3s / without times {:.2}, m3s / windowed Gaussian {:.2}; target 58 (KNN-CAD), m3s {}",
        full / untimed.max(1e-9),
        full / gaussian.max(1e-9),
        if full > 58.0 { "above it" } else { "below it" }
    );
    println!("NAB standard score: {full:.1}");
}
