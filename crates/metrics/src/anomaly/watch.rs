//! Watching live series: which metrics are watched (rules), one detector per
//! series, and anomaly events opened and closed from the scores. Pure: samples
//! in, scores and events out; the runner (`anomaly::runner`) reads the store
//! and writes back.
//!
//! Bad input is absorbed here: samples at or before the last one seen
//! (duplicates, reordering) are skipped, non-finite values score 0, a counter
//! that goes down (a reset) starts its rate afresh, and a series whose first
//! points arrive mid-pattern only warms its detector up.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::RobustDetector;
use crate::model::{Labels, Sample};
use crate::rules_file::{FieldProblem, RuleError};

/// The name of the score series written back (`m3s_anomaly_score{metric="...", <source labels>}`).
pub const SCORE_METRIC: &str = "m3s_anomaly_score";

/// What is watched, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    /// A metric name (`mem_used_percent`).
    pub metric: String,
    /// Label values a series must have (`{cpu: cpu-total}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `gauge` (scored as it is) or `counter` (scored as its rate per second).
    #[serde(default)]
    pub kind: SeriesKind,
    /// Points of history the detector weighs (8 to 4096).
    #[serde(default = "default_window")]
    pub window: usize,
    /// The score, in (0, 1), at which an anomaly opens.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    #[default]
    Gauge,
    Counter,
}

/// The window NAB's benchmark scores the detector at (docs/anomaly.md): about
/// four hours of ten-second samples, 57 KB of state.
pub const DEFAULT_WINDOW: usize = 1536;

fn default_window() -> usize {
    DEFAULT_WINDOW
}

fn default_threshold() -> f64 {
    0.8
}

/// Points below the threshold after which an open anomaly closes.
pub const QUIET_POINTS: u32 = 6;
/// Series watched at most (a label explosion must not become a memory one).
pub const MAX_SERIES: usize = 5000;

impl WatchRule {
    pub fn gauge(metric: &str) -> WatchRule {
        WatchRule {
            metric: metric.to_owned(),
            labels: BTreeMap::new(),
            kind: SeriesKind::Gauge,
            window: default_window(),
            threshold: default_threshold(),
        }
    }

    fn matches(&self, labels: &Labels) -> bool {
        labels.name() == Some(self.metric.as_str()) && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Checks a rule from configuration, naming the field that is wrong.
    pub fn check(&self) -> Result<(), (&'static str, FieldProblem)> {
        if self.metric.is_empty() || self.metric == SCORE_METRIC {
            return Err(("metric", FieldProblem::NotWatchable(self.metric.clone())));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(("threshold", FieldProblem::OutOfRange { value: self.threshold, range: "between 0 and 1" }));
        }
        if !(8..=4096).contains(&self.window) {
            let value = self.window as f64;
            return Err(("window", FieldProblem::OutOfRange { value, range: "between 8 and 4096 points" }));
        }
        Ok(())
    }
}

/// A rules file: a YAML (or JSON) list of rules, each checked; the error names
/// the rule and field.
pub fn parse_rules(text: &str) -> Result<Vec<WatchRule>, RuleError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        watch: Vec<WatchRule>,
    }
    let file: File = serde_saphyr::from_str(text)?;
    for (i, rule) in file.watch.iter().enumerate() {
        rule.check().map_err(|(field, problem)| RuleError::Field {
            at: format!("watch[{i}] ({})", rule.metric),
            field,
            problem,
        })?;
    }
    Ok(file.watch)
}

/// The built-in metrics watched by default: node memory, disk and CPU, network
/// traffic, and every task's CPU and memory.
pub fn default_rules() -> Vec<WatchRule> {
    let mut cpu = WatchRule::gauge("cpu_usage_idle");
    cpu.labels.insert("cpu".into(), "cpu-total".into());
    let counter = |metric: &str| WatchRule { kind: SeriesKind::Counter, ..WatchRule::gauge(metric) };
    vec![
        WatchRule::gauge("mem_used_percent"),
        WatchRule::gauge("disk_used_percent"),
        cpu,
        counter("net_bytes_recv"),
        counter("net_bytes_sent"),
        WatchRule::gauge("mesos_task_cpus_used"),
        WatchRule::gauge("mesos_task_mem_rss_bytes"),
    ]
}

/// An anomaly: a stretch of a series whose scores crossed its rule's threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// `<start_ms>-<series hash>`: stable across the open and the close.
    pub id: String,
    pub metric: String,
    /// The series' labels, its name left out.
    pub labels: BTreeMap<String, String>,
    pub start_ms: i64,
    /// `None` while open.
    pub end_ms: Option<i64>,
    pub peak_score: f64,
    /// The value that opened it and what was expected instead.
    pub reason: String,
    pub detector: String,
}

/// What a batch of samples produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A score to write back as `m3s_anomaly_score`.
    Score {
        labels: Labels,
        t: i64,
        score: f64,
    },
    Opened(AnomalyEvent),
    Closed(AnomalyEvent),
}

struct SeriesState {
    rule: usize,
    detector: RobustDetector,
    last_t: i64,
    /// A counter's previous value, for its rate.
    last_value: Option<f64>,
    open: Option<AnomalyEvent>,
    quiet: u32,
}

/// One detector per watched series.
pub struct Watcher {
    rules: Vec<WatchRule>,
    series: HashMap<Labels, SeriesState>,
    /// Series forgotten after a silence, with the last sample scored: when they
    /// come back, older samples only warm the detector up (nothing is scored twice).
    retired: HashMap<Labels, i64>,
    /// Series not watched because [`MAX_SERIES`] was reached (said once in the log by the runner).
    pub dropped: u64,
}

impl Watcher {
    pub fn new(rules: Vec<WatchRule>) -> Watcher {
        Watcher { rules, series: HashMap::new(), retired: HashMap::new(), dropped: 0 }
    }

    pub fn rules(&self) -> &[WatchRule] {
        &self.rules
    }

    /// New rules (a reload): series whose rule is gone or changed start over.
    pub fn set_rules(&mut self, rules: Vec<WatchRule>) {
        if rules != self.rules {
            self.rules = rules;
            self.series.clear();
        }
    }

    pub fn watched(&self) -> usize {
        self.series.len()
    }

    /// The newest sample time seen of a series (where the next read starts).
    pub fn last_seen(&self, labels: &Labels) -> Option<i64> {
        self.series.get(labels).map(|s| s.last_t)
    }

    /// Open anomalies.
    pub fn open(&self) -> Vec<AnomalyEvent> {
        self.series.values().filter_map(|s| s.open.clone()).collect()
    }

    /// Scores `samples` of the series `labels` (in time order; older ones skipped).
    pub fn observe(&mut self, labels: &Labels, samples: &[Sample], out: &mut Vec<Output>) {
        if !self.series.contains_key(labels) {
            let Some(rule) = self.rules.iter().position(|r| r.matches(labels)) else { return };
            if self.series.len() >= MAX_SERIES {
                self.dropped += 1;
                return;
            }
            let window = self.rules[rule].window;
            self.series.insert(
                labels.clone(),
                SeriesState {
                    rule,
                    detector: RobustDetector::new(window),
                    last_t: i64::MIN,
                    last_value: None,
                    open: None,
                    quiet: 0,
                },
            );
        }
        let scored_until = self.retired.remove(labels).unwrap_or(i64::MIN);
        let state = self.series.get_mut(labels).expect("inserted above");
        let rule = &self.rules[state.rule];
        for s in samples {
            if s.t <= state.last_t {
                continue;
            }
            if s.t <= scored_until {
                // Scored before the series was forgotten: it only warms the detector up.
                if rule.kind == SeriesKind::Gauge {
                    state.detector.score_at(s.t, s.v);
                } else {
                    state.last_value = Some(s.v).filter(|v| v.is_finite());
                }
                state.last_t = s.t;
                continue;
            }
            let previous_t = state.last_t;
            state.last_t = s.t;
            let value = match rule.kind {
                SeriesKind::Gauge => s.v,
                SeriesKind::Counter => {
                    let rate = match state.last_value {
                        Some(prev) if s.v >= prev && previous_t > i64::MIN => {
                            (s.v - prev) / ((s.t - previous_t) as f64 / 1000.0)
                        }
                        // The first point, or a reset: no rate yet.
                        _ => f64::NAN,
                    };
                    state.last_value = Some(s.v).filter(|v| v.is_finite());
                    if rate.is_nan() {
                        continue;
                    }
                    rate
                }
            };
            let expected = state.detector.median();
            // Four decimals: a score is read by people and thresholds, and survives a JSON round trip.
            let score = (state.detector.score_at(s.t, value) * 1e4).round() / 1e4;
            out.push(Output::Score { labels: score_labels(labels, &rule.metric), t: s.t, score });
            match &mut state.open {
                Some(open) => {
                    open.peak_score = open.peak_score.max(score);
                    if score < rule.threshold {
                        state.quiet += 1;
                        if state.quiet >= QUIET_POINTS {
                            let mut closed = state.open.take().expect("open");
                            closed.end_ms = Some(s.t);
                            out.push(Output::Closed(closed));
                        }
                    } else {
                        state.quiet = 0;
                    }
                }
                None if score >= rule.threshold => {
                    let event = AnomalyEvent {
                        id: format!("{}-{:x}", s.t, labels_hash(labels)),
                        metric: rule.metric.clone(),
                        labels: plain_labels(labels),
                        start_ms: s.t,
                        end_ms: None,
                        peak_score: score,
                        reason: format!(
                            "{} = {} where about {} was expected",
                            rule.metric,
                            short(value),
                            short(expected)
                        ),
                        detector: format!("robust median/MAD over {} points and the daily pattern", rule.window),
                    };
                    state.quiet = 0;
                    state.open = Some(event.clone());
                    out.push(Output::Opened(event));
                }
                None => {}
            }
        }
    }

    /// Forgets series not seen since `before_ms` (a task that ended), closing their anomalies.
    pub fn forget_older_than(&mut self, before_ms: i64, out: &mut Vec<Output>) {
        let retired = &mut self.retired;
        self.series.retain(|labels, s| {
            if s.last_t >= before_ms {
                return true;
            }
            if retired.len() < MAX_SERIES {
                retired.insert(labels.clone(), s.last_t);
            }
            if let Some(mut open) = s.open.take() {
                open.end_ms = Some(s.last_t);
                out.push(Output::Closed(open));
            }
            false
        });
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-2) { format!("{v:.3e}") } else { format!("{v:.2}") }
}

fn labels_hash(labels: &Labels) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

fn plain_labels(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().filter(|(k, _)| *k != crate::model::NAME_LABEL).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The score series' labels: the source's, renamed, with `metric` naming the source.
fn score_labels(labels: &Labels, metric: &str) -> Labels {
    let mut pairs: Vec<(String, String)> = labels
        .iter()
        .filter(|(k, _)| *k != crate::model::NAME_LABEL && *k != "metric")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pairs.push((crate::model::NAME_LABEL.to_owned(), SCORE_METRIC.to_owned()));
    pairs.push(("metric".to_owned(), metric.to_owned()));
    Labels::new(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str, host: &str) -> Labels {
        Labels::new(vec![("__name__".into(), name.into()), ("host".into(), host.into())])
    }

    fn samples(values: impl IntoIterator<Item = f64>, start: i64) -> Vec<Sample> {
        values.into_iter().enumerate().map(|(i, v)| Sample { t: start + i as i64 * 10_000, v }).collect()
    }

    fn events(out: &[Output]) -> (Vec<&AnomalyEvent>, Vec<&AnomalyEvent>) {
        let opened = out.iter().filter_map(|o| if let Output::Opened(e) = o { Some(e) } else { None }).collect();
        let closed = out.iter().filter_map(|o| if let Output::Closed(e) = o { Some(e) } else { None }).collect();
        (opened, closed)
    }

    #[test]
    fn rules_files_are_checked_by_rule_and_field() {
        let rules =
            parse_rules("watch:\n  - metric: load1\n  - {metric: net_bytes_recv, kind: counter, threshold: 0.9}\n")
                .unwrap();
        assert_eq!(
            (rules.len(), rules[1].kind, rules[1].threshold, rules[0].window),
            (2, SeriesKind::Counter, 0.9, DEFAULT_WINDOW)
        );
        let e = parse_rules("watch:\n  - {metric: load1, threshold: 2}\n").unwrap_err().to_string();
        assert_eq!(e, "watch[0] (load1): threshold: 2 is not between 0 and 1");
        assert!(
            parse_rules("watch:\n  - {metric: load1, sensitivity: 2}\n")
                .unwrap_err()
                .to_string()
                .contains("sensitivity")
        );
        assert!(
            parse_rules("watch:\n  - {metric: m3s_anomaly_score}\n")
                .unwrap_err()
                .to_string()
                .contains("cannot be watched")
        );
    }

    #[test]
    fn a_jump_opens_one_anomaly_that_closes_when_quiet() {
        let mut w = Watcher::new(default_rules());
        let l = labels("mem_used_percent", "a");
        let mut out = Vec::new();
        let normal = (0..200).map(|i| 40.0 + (i % 5) as f64 * 0.1);
        w.observe(&l, &samples(normal, 0), &mut out);
        assert_eq!(events(&out).0.len(), 0, "no alarm in noise");
        out.clear();
        let jump = [95.0].into_iter().chain((0..20).map(|i| 40.0 + (i % 5) as f64 * 0.1));
        w.observe(&l, &samples(jump, 2_000_000), &mut out);
        let (opened, closed) = events(&out);
        assert_eq!(opened.len(), 1, "{out:?}");
        assert_eq!(closed.len(), 1);
        assert_eq!(opened[0].start_ms, 2_000_000);
        assert!(opened[0].reason.starts_with("mem_used_percent = 95.00 where about 40."), "{}", opened[0].reason);
        assert_eq!(opened[0].labels["host"], "a");
        let scores = out.iter().filter(|o| matches!(o, Output::Score { .. })).count();
        assert_eq!(scores, 21, "one score per point");
        let Output::Score { labels, .. } = &out[0] else { panic!() };
        assert_eq!(
            (labels.name(), labels.get("metric"), labels.get("host")),
            (Some(SCORE_METRIC), Some("mem_used_percent"), Some("a"))
        );
    }

    #[test]
    fn unwatched_duplicate_and_bad_points_are_absorbed() {
        let mut w = Watcher::new(default_rules());
        let mut out = Vec::new();
        w.observe(&labels("something_else", "a"), &samples([1.0, 2.0], 0), &mut out);
        assert!(out.is_empty() && w.watched() == 0);
        let l = labels("mem_used_percent", "a");
        let bad = [f64::NAN, f64::INFINITY, 5.0, f64::NEG_INFINITY];
        w.observe(&l, &samples(bad, 0), &mut out);
        let n = out.len();
        w.observe(&l, &samples(bad, 0), &mut out);
        assert_eq!(out.len(), n, "samples already seen are skipped");
        for o in &out {
            if let Output::Score { score, .. } = o {
                assert!((0.0..=1.0).contains(score));
            }
        }
    }

    #[test]
    fn a_counter_is_scored_by_its_rate_and_a_reset_is_no_alarm() {
        let mut w = Watcher::new(default_rules());
        let l = labels("net_bytes_recv", "a");
        let mut out = Vec::new();
        let mut total = 0.0;
        let mut values = Vec::new();
        for i in 0..300 {
            total += 1000.0 + (i % 7) as f64;
            values.push(if i == 200 { 0.0 } else { total });
            if i == 200 {
                total = 0.0;
            }
        }
        w.observe(&l, &samples(values, 0), &mut out);
        assert_eq!(events(&out).0.len(), 0, "{:?}", events(&out).0);
        let scores = out.iter().filter(|o| matches!(o, Output::Score { .. })).count();
        assert_eq!(scores, 298, "no rate for the first point nor at the reset");
    }

    #[test]
    fn forgotten_series_close_their_anomalies_and_series_are_capped() {
        let mut w = Watcher::new(vec![WatchRule { window: 8, ..WatchRule::gauge("m") }]);
        let mut out = Vec::new();
        let l = labels("m", "a");
        w.observe(&l, &samples((0..40).map(|i| (i % 2) as f64).chain([1e6]), 0), &mut out);
        assert_eq!(w.open().len(), 1);
        out.clear();
        w.forget_older_than(i64::MAX, &mut out);
        assert_eq!(events(&out).1.len(), 1);
        assert_eq!(w.watched(), 0);
        // Back with its history: what was scored is not scored again.
        out.clear();
        w.observe(&l, &samples((0..40).map(|i| (i % 2) as f64).chain([1e6, 0.0]), 0), &mut out);
        assert_eq!(out.len(), 1, "only the new point: {out:?}");
        w.retired.clear();
        for i in 0..MAX_SERIES + 10 {
            w.observe(&labels("m", &i.to_string()), &samples([1.0], 0), &mut out);
        }
        assert_eq!((w.watched(), w.dropped), (MAX_SERIES, 11), "\"a\" is back and holds one place");
    }
}
