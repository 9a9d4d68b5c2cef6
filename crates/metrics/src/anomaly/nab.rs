//! The Numenta Anomaly Benchmark's scoring, as NAB 1.1 computes it
//! (`nab/sweeper.py`, `nab/scorer.py`, `config/profiles.json`):
//!
//! - every labelled anomaly window is scored by the earliest detection in it:
//!   a scaled sigmoid of its position, the window's first row worth the
//!   profile's tp weight, its last about nothing; a window with no detection
//!   costs the fn weight;
//! - a detection outside every window costs the fp weight times a sigmoid of
//!   its distance past the last window (the full weight before any window);
//! - the first 15% of a file (at most 750 rows) is probation, not scored;
//! - one threshold for the whole corpus, chosen per profile to maximise the
//!   total, as NAB's sweeper optimises it;
//! - the total normalised: 100 × (raw − null) / (perfect − null), the null
//!   detector detecting nothing, the perfect one each window's first row.
//!
//! Pure functions over rows and windows; [`load`] reads NAB's layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// tp, fn and fp weights of a NAB profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fn_: f64,
    pub fp: f64,
}

pub const STANDARD: Profile = Profile { name: "standard", tp: 1.0, fn_: 1.0, fp: 0.11 };
pub const REWARD_LOW_FP: Profile = Profile { name: "reward_low_FP_rate", tp: 1.0, fn_: 1.0, fp: 0.22 };
pub const REWARD_LOW_FN: Profile = Profile { name: "reward_low_FN_rate", tp: 1.0, fn_: 2.0, fp: 0.11 };
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP, REWARD_LOW_FN];

/// One data file: its timestamps (seconds), values, and windows as row index ranges.
#[derive(Clone, Debug)]
pub struct Series {
    /// `<folder>/<file>.csv`, as `combined_windows.json` names it.
    pub name: String,
    pub times: Vec<i64>,
    pub values: Vec<f64>,
    /// Inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

impl Series {
    pub fn folder(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// NAB's scaled sigmoid: about +1 at position −1 (a window's left edge), 0 at
/// 0 (its right edge), towards −1 past it; −1 beyond 3.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 { -1.0 } else { 2.0 * sigmoid(-5.0 * position) - 1.0 }
}

/// Probation: the first 15% of the rows, at most 750.
pub fn probation(rows: usize) -> usize {
    ((rows as f64 * 0.15).floor() as usize).min(750)
}

/// Where a row stands: in probation, in window `w`, or outside every window.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Probation,
    Window(usize),
    Outside,
}

/// Each row's place and its unweighted sweep score (NAB's `calcSweepScore`).
fn sweep(series: &Series) -> Vec<(Place, f64)> {
    let rows = series.times.len();
    let probation = probation(rows);
    let mut out = Vec::with_capacity(rows);
    let mut previous: Option<(usize, f64)> = None; // right index, width
    for i in 0..rows {
        let window = series.windows.iter().position(|&(l, r)| l <= i && i <= r);
        let (place, score) = match window {
            Some(w) => {
                let (l, r) = series.windows[w];
                let width = (r - l + 1) as f64;
                let position = -((r - i + 1) as f64) / width;
                (Place::Window(w), scaled_sigmoid(position) / scaled_sigmoid(-1.0))
            }
            None => {
                let score = match previous {
                    None => -1.0,
                    Some((right, width)) => scaled_sigmoid(i.abs_diff(right) as f64 / (width - 1.0).max(1.0)),
                };
                (Place::Outside, score)
            }
        };
        if let Some(w) = window
            && i == series.windows[w].1
        {
            let (l, r) = series.windows[w];
            previous = Some((r, (r - l + 1) as f64));
        }
        out.push((if i < probation { Place::Probation } else { place }, score));
    }
    out
}

/// The raw score of one series at a threshold (a row counts as detected when
/// its anomaly score is at least the threshold).
pub fn raw_score(series: &Series, scores: &[f64], threshold: f64, profile: Profile) -> f64 {
    raw_swept(series, &sweep(series), scores, threshold, profile)
}

fn raw_swept(series: &Series, swept: &[(Place, f64)], scores: &[f64], threshold: f64, profile: Profile) -> f64 {
    let mut earliest: BTreeMap<usize, f64> = BTreeMap::new();
    let mut total = 0.0;
    for (&(place, sweep), score) in swept.iter().zip(scores) {
        if *score < threshold {
            continue;
        }
        match place {
            Place::Probation => {}
            Place::Outside => total += sweep * profile.fp,
            Place::Window(w) => {
                earliest.entry(w).or_insert(sweep * profile.tp);
            }
        }
    }
    let scored_windows = windows_scored(series);
    total += earliest.values().sum::<f64>();
    total -= (scored_windows - earliest.len()) as f64 * profile.fn_;
    total
}

/// Windows that count: NAB scores every labelled window (probation contains none in its data).
fn windows_scored(series: &Series) -> usize {
    series.windows.len()
}

/// The score of every series at one threshold, for the corpus.
fn corpus_raw(corpus: &[(Series, Vec<f64>)], threshold: f64, profile: Profile) -> f64 {
    corpus.iter().map(|(s, scores)| raw_score(s, scores, threshold, profile)).sum()
}

/// [`corpus_raw`] with the sweep scores computed once.
fn swept_raw(corpus: &[(Series, Vec<f64>)], swept: &[Vec<(Place, f64)>], threshold: f64, profile: Profile) -> f64 {
    corpus.iter().zip(swept).map(|((s, scores), w)| raw_swept(s, w, scores, threshold, profile)).sum()
}

/// The threshold that maximises the corpus's raw score, over every distinct
/// anomaly score (and above the highest: detect nothing).
pub fn best_threshold(corpus: &[(Series, Vec<f64>)], profile: Profile) -> f64 {
    let mut candidates: Vec<f64> =
        corpus.iter().flat_map(|(_, s)| s.iter().copied()).filter(|v| v.is_finite()).collect();
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    // Evaluating every distinct value is quadratic; NAB's sweeper is exact. Here
    // the candidates are thinned to at most 400 quantiles, plus "nothing".
    let step = (candidates.len() / 400).max(1);
    let swept: Vec<Vec<(Place, f64)>> = corpus.iter().map(|(s, _)| sweep(s)).collect();
    let mut best = (f64::INFINITY, swept_raw(corpus, &swept, f64::INFINITY, profile));
    for t in candidates.iter().step_by(step) {
        let raw = swept_raw(corpus, &swept, *t, profile);
        if raw > best.1 {
            best = (*t, raw);
        }
    }
    best.0
}

/// Normalised score of a set of series at a threshold: 0 for the null detector,
/// 100 for the perfect one. `None` for series without windows (nothing to normalise by).
pub fn normalised(corpus: &[(Series, Vec<f64>)], threshold: f64, profile: Profile) -> Option<f64> {
    let windows: usize = corpus.iter().map(|(s, _)| windows_scored(s)).sum();
    let null = -(windows as f64) * profile.fn_;
    let perfect = windows as f64 * profile.tp;
    (windows > 0).then(|| 100.0 * (corpus_raw(corpus, threshold, profile) - null) / (perfect - null))
}

/// A detector's results over a corpus.
#[derive(Clone, Debug)]
pub struct Report {
    pub series: usize,
    pub points: usize,
    /// Per profile: its threshold and normalised score.
    pub profiles: Vec<(Profile, f64, f64)>,
    /// Per folder, at the standard profile's threshold: normalised score, or the raw
    /// (false-positive) cost of a folder without windows.
    pub folders: Vec<(String, Option<f64>, f64)>,
}

impl Report {
    pub fn standard(&self) -> f64 {
        self.profiles.iter().find(|(p, _, _)| p.name == STANDARD.name).map_or(0.0, |(_, _, s)| *s)
    }
}

/// A detector as [`evaluate`] calls it: once per point, in order, with the
/// point's time (milliseconds since the epoch) and value.
pub type Scorer = Box<dyn FnMut(i64, f64) -> f64>;

/// Scores every series with a fresh detector and NAB's method.
pub fn evaluate(series: Vec<Series>, mut detector: impl FnMut() -> Scorer) -> Report {
    let points = series.iter().map(|s| s.values.len()).sum();
    let corpus: Vec<(Series, Vec<f64>)> = series
        .into_iter()
        .map(|s| {
            let mut d = detector();
            let scores = s.times.iter().zip(&s.values).map(|(t, v)| d(t.saturating_mul(1000), *v)).collect();
            (s, scores)
        })
        .collect();
    let profiles = PROFILES
        .iter()
        .map(|p| {
            let t = best_threshold(&corpus, *p);
            (*p, t, normalised(&corpus, t, *p).unwrap_or(0.0))
        })
        .collect::<Vec<_>>();
    let threshold = profiles[0].1;
    let mut names: Vec<String> = corpus.iter().map(|(s, _)| s.folder().to_owned()).collect();
    names.dedup();
    let folders = names
        .into_iter()
        .map(|folder| {
            let part: Vec<(Series, Vec<f64>)> = corpus.iter().filter(|(s, _)| s.folder() == folder).cloned().collect();
            let raw = corpus_raw(&part, threshold, STANDARD);
            (folder, normalised(&part, threshold, STANDARD), raw)
        })
        .collect();
    Report { series: corpus.len(), points, profiles, folders }
}

#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: line {line}: {message}", path.display())]
    Csv { path: PathBuf, line: usize, message: String },
    #[error("{}: {message}", path.display())]
    Windows { path: PathBuf, message: String },
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as seconds since the epoch (UTC, as NAB's files are).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    Some(mesos::utc::days_from_civil(y, m, day) * 86400 + h * 3600 + min * 60 + s)
}

/// Reads NAB's layout: `data/<folder>/*.csv` (`timestamp,value`) and
/// `combined_windows.json` (file → `[[start, end], ...]`), in name order.
pub fn load(dir: &Path) -> Result<Vec<Series>, NabError> {
    let windows_path = dir.join("combined_windows.json");
    let text =
        std::fs::read_to_string(&windows_path).map_err(|source| NabError::Io { path: windows_path.clone(), source })?;
    let labels: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text)
        .map_err(|e| NabError::Windows { path: windows_path.clone(), message: e.to_string() })?;
    let mut out = Vec::new();
    for (name, windows) in labels {
        let path = dir.join("data").join(&name);
        if !path.is_file() {
            continue; // a label of a file not in this subset
        }
        let text = std::fs::read_to_string(&path).map_err(|source| NabError::Io { path: path.clone(), source })?;
        let (mut times, mut values) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: &str| NabError::Csv { path: path.clone(), line: n + 1, message: message.into() };
            let (t, v) = line.split_once(',').ok_or_else(|| bad("expected timestamp,value"))?;
            times.push(parse_time(t).ok_or_else(|| bad("bad timestamp"))?);
            values.push(v.trim().parse::<f64>().map_err(|_| bad("bad value"))?);
        }
        let mut rows = Vec::new();
        for w in &windows {
            let [start, end] = &w[..] else {
                return Err(NabError::Windows {
                    path: windows_path.clone(),
                    message: format!("{name}: a window is not [start, end]"),
                });
            };
            let (Some(s), Some(e)) = (parse_time(start), parse_time(end)) else {
                return Err(NabError::Windows {
                    path: windows_path.clone(),
                    message: format!("{name}: bad window time"),
                });
            };
            let l = times.partition_point(|t| *t < s);
            let r = times.partition_point(|t| *t <= e);
            if l < r {
                rows.push((l, r - 1));
            }
        }
        out.push(Series { name, times, values, windows: rows });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rows: usize, windows: Vec<(usize, usize)>) -> Series {
        Series { name: "f/s.csv".into(), times: (0..rows as i64).collect(), values: vec![0.0; rows], windows }
    }

    #[test]
    fn the_sigmoid_rewards_early_detections() {
        assert!((scaled_sigmoid(-1.0) - 0.9866).abs() < 1e-3);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(10_000), 750);
    }

    #[test]
    fn null_scores_zero_and_perfect_a_hundred() {
        let s = series(1000, vec![(400, 499), (800, 899)]);
        let null = vec![0.0; 1000];
        let mut perfect = vec![0.0; 1000];
        perfect[400] = 1.0;
        perfect[800] = 1.0;
        let corpus = [(s.clone(), null), (s.clone(), perfect.clone())];
        assert_eq!(normalised(&corpus[..1], 0.5, STANDARD), Some(0.0));
        assert!((normalised(&corpus[1..], 0.5, STANDARD).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(normalised(&[(series(100, vec![]), vec![0.0; 100])], 0.5, STANDARD), None);
        // Late in a window is worth less; a false positive costs; probation costs nothing.
        let mut late = vec![0.0; 1000];
        late[495] = 1.0;
        late[100] = 1.0;
        let raw = raw_score(&s, &late, 0.5, STANDARD);
        assert!(raw > -1.0 && raw < 0.0, "{raw}");
        let mut fp = perfect;
        fp[600] = 1.0;
        assert!(raw_score(&s, &fp, 0.5, STANDARD) < 2.0);
        assert_eq!(best_threshold(&corpus[1..], STANDARD), 1.0);
    }

    #[test]
    fn times_are_read_as_nab_writes_them() {
        assert_eq!(parse_time("1970-01-02 00:00:01"), Some(86401));
        assert_eq!(parse_time("2014-04-10 07:15:00.000000"), parse_time("2014-04-10 07:15:00"));
        assert_eq!(parse_time("2014-13-10 07:15:00"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
