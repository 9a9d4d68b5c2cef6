//! Anomaly detection over series, online: every point is scored once as it
//! arrives, from bounded state, with no look-ahead. `nab` is the benchmark's
//! scoring, to measure detectors by; `watch` decides which series are watched
//! and turns scores into anomaly events (pure); `runner` feeds it from the
//! store and writes scores and events back.

pub mod nab;
pub mod runner;
pub mod watch;

use std::collections::VecDeque;

/// Robust views of a series, each a z-score (how many MAD-estimated standard
/// deviations from a median):
///
/// - a **point** that lies far from the last `capacity` points (a spike, a dip);
/// - a **level shift**: the median of the last [`RECENT`] points far from the
///   median of the `capacity` points before them (a step, a stretch that went
///   flat or noisy while each point alone stays in range);
/// - with the points' times ([`RobustDetector::score_at`]), the **daily
///   pattern**: the value far from what the series did at this quarter of an
///   hour on the last days.
///
/// Each view is damped (news only when clearly above its own recent peak, so a
/// long disturbance is one alarm, not a storm); the score is the larger of the
/// views, mapped to [0, 1]. On NAB's data the three score 59.4 where the point
/// view alone scores 47.9 (docs/anomaly.md).
#[derive(Clone, Debug)]
pub struct RobustDetector {
    point: SortedWindow,
    /// The points before the recent ones.
    history: SortedWindow,
    recent: VecDeque<f64>,
    point_peak: f64,
    level_peak: f64,
    seasonal: Seasonal,
}

thread_local! {
    /// Working space of the z-scores: per thread, not per series (it holds nothing between points).
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_scratch<T>(f: impl FnOnce(&mut Vec<f64>) -> T) -> T {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// The daily view: what the series did at this time of day on earlier days.
/// Each quarter of an hour of the day keeps the mean of each of the last
/// [`SEASON_DAYS`] days; a point is compared with their median, scaled by the
/// recent residuals' spread. Independent of the sampling rate.
#[derive(Clone, Debug)]
struct Seasonal {
    buckets: Vec<DayBucket>,
    residuals: SortedWindow,
    peak: f64,
}

#[derive(Clone, Debug)]
struct DayBucket {
    day: i64,
    sum: f64,
    count: u32,
    means: VecDeque<f64>,
}

/// The daily view's resolution: a quarter of an hour.
const SEASON_BUCKET_MS: i64 = 15 * 60 * 1000;
/// Days remembered per bucket.
const SEASON_DAYS: usize = 7;
/// Days of history before the daily view speaks.
const SEASON_MIN_DAYS: usize = 3;
/// Residuals whose spread scales the daily view.
const RESIDUALS: usize = 512;
/// The daily view's z counts for less: its expectation rests on few days.
const SEASON_WEIGHT: f64 = 0.8;
const DAY_MS: i64 = 86_400_000;

impl Seasonal {
    fn new() -> Seasonal {
        let buckets = (DAY_MS / SEASON_BUCKET_MS) as usize;
        Seasonal {
            buckets: (0..buckets)
                .map(|_| DayBucket {
                    day: i64::MIN,
                    sum: 0.0,
                    count: 0,
                    means: VecDeque::with_capacity(SEASON_DAYS + 1),
                })
                .collect(),
            residuals: SortedWindow::new(RESIDUALS),
            peak: 0.0,
        }
    }

    fn score(&mut self, t_ms: i64, value: f64, scratch: &mut Vec<f64>) -> f64 {
        let day = t_ms.div_euclid(DAY_MS);
        let bucket = &mut self.buckets[(t_ms.rem_euclid(DAY_MS) / SEASON_BUCKET_MS) as usize];
        if bucket.day != day {
            if bucket.count > 0 {
                bucket.means.push_back(bucket.sum / f64::from(bucket.count));
                if bucket.means.len() > SEASON_DAYS {
                    bucket.means.pop_front();
                }
            }
            *bucket = DayBucket { day, sum: 0.0, count: 0, means: std::mem::take(&mut bucket.means) };
        }
        let mut z = 0.0;
        if bucket.means.len() >= SEASON_MIN_DAYS {
            scratch.clear();
            scratch.extend(bucket.means.iter().copied());
            scratch.sort_by(f64::total_cmp);
            let expected = median_of_sorted(scratch);
            let residual = (value - expected).abs();
            if self.residuals.warm() {
                let spread = 1.4826 * median_of_sorted(&self.residuals.sorted);
                z = residual / spread.max((expected.abs() * 1e-3).max(1e-9));
            }
            self.residuals.push(residual);
        }
        bucket.sum += value;
        bucket.count += 1;
        damp(z, &mut self.peak) * SEASON_WEIGHT
    }
}

/// Points seen before a score means anything.
const WARM_UP: usize = 30;
/// How fast the memory of an alarm fades, per point.
const PEAK_DECAY: f64 = 0.999;
/// The recent points whose median is compared with the history's (a level shift).
pub const RECENT: usize = 12;

/// The last `capacity` values in arrival order and sorted.
#[derive(Clone, Debug)]
struct SortedWindow {
    capacity: usize,
    window: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    fn new(capacity: usize) -> SortedWindow {
        SortedWindow { capacity, window: VecDeque::with_capacity(capacity), sorted: Vec::with_capacity(capacity) }
    }

    fn warm(&self) -> bool {
        self.window.len() >= WARM_UP.min(self.capacity)
    }

    fn z(&self, value: f64, scratch: &mut Vec<f64>) -> f64 {
        let n = self.sorted.len();
        let median = median_of_sorted(&self.sorted);
        scratch.clear();
        scratch.extend(self.sorted.iter().map(|v| (v - median).abs()));
        let (_, mad, _) = scratch.select_nth_unstable_by(n / 2, f64::total_cmp);
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

/// A z as a score: 0 unless clearly above the recent peak (which it raises).
fn damp(z: f64, peak: &mut f64) -> f64 {
    let news = if z > *peak * 1.2 { z } else { 0.0 };
    *peak = peak.max(z) * PEAK_DECAY;
    news / (news + 4.0)
}

impl RobustDetector {
    /// A detector over the last `capacity` points (at least 8), the level view's
    /// history being the `capacity / 2` before the recent ones. State: both
    /// windows kept twice (arrival order and sorted), 24 bytes per point of
    /// `capacity`; the daily view's 96 buckets of 7 daily means and 512
    /// residuals (about 20 KB). 56 KB at 1536 points, 37 KB at 720.
    pub fn new(capacity: usize) -> RobustDetector {
        let capacity = capacity.max(8);
        RobustDetector {
            point: SortedWindow::new(capacity),
            history: SortedWindow::new((capacity / 2).max(8)),
            recent: VecDeque::with_capacity(RECENT + 1),
            point_peak: 0.0,
            level_peak: 0.0,
            seasonal: Seasonal::new(),
        }
    }

    /// [`RobustDetector::score`] with the point's time, which adds the daily
    /// view (a series breaking its daily pattern while staying in range).
    pub fn score_at(&mut self, t_ms: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let daily = with_scratch(|scratch| self.seasonal.score(t_ms, value, scratch));
        self.score(value).max(daily)
    }

    /// Scores one point in [0, 1]: 0 for the expected, towards 1 for the
    /// unheard-of. Non-finite values score 0 and are not remembered.
    pub fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let point_z = if self.point.warm() { with_scratch(|scratch| self.point.z(value, scratch)) } else { 0.0 };
        self.point.push(value);
        self.recent.push_back(value);
        if self.recent.len() > RECENT
            && let Some(old) = self.recent.pop_front()
        {
            self.history.push(old);
        }
        let level_z = if self.history.warm() && self.recent.len() == RECENT {
            let mut recent: [f64; RECENT] = [0.0; RECENT];
            for (slot, v) in recent.iter_mut().zip(&self.recent) {
                *slot = *v;
            }
            recent.sort_by(f64::total_cmp);
            with_scratch(|scratch| self.history.z(median_of_sorted(&recent), scratch))
        } else {
            0.0
        };
        let point = damp(point_z, &mut self.point_peak);
        let level = damp(level_z, &mut self.level_peak);
        point.max(level)
    }

    /// The window's median: what the detector expects (NaN before any point).
    pub fn median(&self) -> f64 {
        if self.point.sorted.is_empty() { f64::NAN } else { median_of_sorted(&self.point.sorted) }
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
    fn a_level_shift_after_a_spike_still_stands_out() {
        let mut d = RobustDetector::new(256);
        let noise = |i: usize| ((i * 7919) % 13) as f64 / 13.0;
        for i in 0..300 {
            d.score(10.0 + noise(i));
        }
        assert!(d.score(40.0) > 0.9, "the spike");
        let mut quiet: f64 = 0.0;
        for i in 0..100 {
            quiet = quiet.max(d.score(10.0 + noise(i)));
        }
        // A step far smaller than the spike: the point view still remembers the
        // spike's peak; the level view sees the step.
        let shifted: f64 = (0..40).map(|i| d.score(14.0 + noise(i))).fold(0.0, f64::max);
        assert!(shifted > 0.5 && shifted > quiet * 2.0, "shift {shifted}, quiet {quiet}");
    }

    #[test]
    fn a_broken_daily_pattern_stands_out_though_every_value_is_in_range() {
        let mut d = RobustDetector::new(512);
        let step = 5 * 60 * 1000;
        let day = |t: i64| 50.0 + 40.0 * ((t % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU).sin();
        let mut quiet: f64 = 0.0;
        for i in 0..288 * 6 {
            let t = i * step;
            quiet = quiet.max(d.score_at(t, day(t) + ((i * 7919) % 13) as f64 * 0.05));
        }
        // Night-time values in the afternoon: inside the day's range, not at this hour.
        let broken: f64 = (0..12).map(|i| d.score_at((288 * 6 + 72 + i) * step, 15.0)).fold(0.0, f64::max);
        assert!(broken > 0.5 && broken > quiet * 1.5, "broken {broken}, quiet {quiet}");
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
        assert_eq!(d.point.window.len(), 64);
        assert_eq!(d.point.sorted.len(), 64);
        assert_eq!(d.history.sorted.len(), 32);
        assert_eq!(d.recent.len(), RECENT);
    }
}
