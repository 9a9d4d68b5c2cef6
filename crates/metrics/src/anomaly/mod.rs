//! Anomaly detection over series, online: every point is scored once as it
//! arrives, from bounded state, with no look-ahead. `nab` is the benchmark's
//! scoring, to measure detectors by; `watch` decides which series are watched
//! and turns scores into anomaly events (pure); `runner` feeds it from the
//! store and writes scores and events back.

pub mod nab;
pub mod runner;
pub mod watch;

use std::collections::VecDeque;

/// A robust z-score against a sliding window: how many (MAD-estimated)
/// standard deviations a point lies from the window's median. A point far
/// above the recent peak of the series' own scores stands out; one that repeats
/// a recent alarm is damped, so that a long disturbance is one alarm rather
/// than a storm.
#[derive(Clone, Debug)]
pub struct RobustDetector {
    capacity: usize,
    window: VecDeque<f64>,
    /// The window's values, sorted (kept in step with `window`).
    sorted: Vec<f64>,
    scratch: Vec<f64>,
    /// The highest recent z, decaying towards zero.
    peak: f64,
}

/// Points seen before a score means anything.
const WARM_UP: usize = 30;
/// How fast the memory of an alarm fades, per point.
const PEAK_DECAY: f64 = 0.999;

impl RobustDetector {
    /// A detector over the last `capacity` points (at least 8). State: two
    /// vectors of `capacity` floats, so 16 bytes per point of window.
    pub fn new(capacity: usize) -> RobustDetector {
        let capacity = capacity.max(8);
        RobustDetector {
            capacity,
            window: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            scratch: Vec::with_capacity(capacity),
            peak: 0.0,
        }
    }

    /// Scores one point in [0, 1]: 0 for the expected, towards 1 for the
    /// unheard-of. Non-finite values score 0 and are not remembered.
    pub fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let z = if self.window.len() >= WARM_UP.min(self.capacity) { self.z(value) } else { 0.0 };
        self.push(value);
        // News only when clearly above the recent peak.
        let damped = if z > self.peak * 1.2 { z } else { 0.0 };
        self.peak = self.peak.max(z) * PEAK_DECAY;
        damped / (damped + 4.0)
    }

    /// The window's median: what the detector expects (NaN before any point).
    pub fn median(&self) -> f64 {
        if self.sorted.is_empty() { f64::NAN } else { median_of_sorted(&self.sorted) }
    }

    fn z(&mut self, value: f64) -> f64 {
        let n = self.sorted.len();
        let median = median_of_sorted(&self.sorted);
        self.scratch.clear();
        self.scratch.extend(self.sorted.iter().map(|v| (v - median).abs()));
        let mid = n / 2;
        let (_, mad, _) = self.scratch.select_nth_unstable_by(mid, f64::total_cmp);
        let spread = 1.4826 * *mad;
        // A constant window has no spread: any change is news, scaled by the level.
        let floor = (median.abs() * 1e-3).max(1e-9);
        (value - median).abs() / spread.max(floor)
    }

    fn push(&mut self, value: f64) {
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            let at = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
        self.window.push_back(value);
        let at = self.sorted.partition_point(|v| v.total_cmp(&value).is_lt());
        self.sorted.insert(at, value);
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_stands_out_and_noise_does_not() {
        let mut d = RobustDetector::new(100);
        let mut max_quiet: f64 = 0.0;
        for i in 0..300 {
            let noise = ((i * 7919) % 13) as f64 / 13.0;
            max_quiet = max_quiet.max(d.score(10.0 + noise));
        }
        let spike = d.score(50.0);
        assert!(spike > 0.9 && spike > max_quiet * 1.5, "spike {spike}, quiet {max_quiet}");
        let again = d.score(50.0);
        assert!(again < spike, "a repeat is damped: {again} after {spike}");
    }

    #[test]
    fn bad_values_do_not_break_it_and_state_stays_bounded() {
        let mut d = RobustDetector::new(64);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0.0] {
            let s = d.score(v);
            assert!((0.0..1.0).contains(&s), "{s}");
        }
        for i in 0..10_000 {
            let s = d.score(if i % 1000 == 0 { 1e300 } else { 5.0 });
            assert!((0.0..=1.0).contains(&s), "{s}");
        }
        assert_eq!(d.window.len(), 64);
        assert_eq!(d.sorted.len(), 64);
    }
}
