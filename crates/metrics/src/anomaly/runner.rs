//! The IO edge of anomaly watching: every interval, the watched series' new
//! samples are read from the store and fed to the [`Watcher`]; scores are
//! written back as `m3s_anomaly_score` series (so PromQL sees them) and
//! anomaly events go to the anomaly log (`<metrics dir>/anomalies.jsonl`,
//! read back at start: an open anomaly survives a restart).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::watch::{AnomalyEvent, Output, WatchRule, Watcher};
use crate::model::{MatchOp, Matcher, Sample};
use crate::store::Store;

/// Events kept in memory (and answered); the file keeps them all, rotated once past 4 MB.
pub const EVENTS_KEPT: usize = 1000;
const ROTATE_BYTES: u64 = 4 << 20;
/// How far back a first read goes, to warm detectors up from history.
const WARM_UP_MS: i64 = 2 * 3600 * 1000;
/// A series silent this long is forgotten (its task ended).
const FORGET_MS: i64 = 3600 * 1000;

/// The anomaly watch: shared by the runner, the API and the dashboard.
#[derive(Clone)]
pub struct Anomalies {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    watcher: Mutex<Watcher>,
    events: Mutex<VecDeque<AnomalyEvent>>,
    file: Option<PathBuf>,
    /// Where the last tick read up to.
    read_to: Mutex<Option<i64>>,
    /// What the runner has to say about itself (errors reading, series dropped).
    problem: Mutex<Option<String>>,
    /// A rules file, reloaded when it changes.
    rules_file: Option<crate::rules_file::RulesFile>,
}

impl Anomalies {
    /// Watches `rules` over `store`; events are kept in `file` when given.
    pub fn new(store: Arc<Store>, rules: Vec<WatchRule>, file: Option<PathBuf>) -> Anomalies {
        let mut events: VecDeque<AnomalyEvent> = VecDeque::new();
        if let Some(text) = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
            for line in text.lines() {
                // An event is written when it opens and again when it closes: the last line wins.
                if let Ok(e) = serde_json::from_str::<AnomalyEvent>(line) {
                    match events.iter_mut().find(|old| old.id == e.id) {
                        Some(old) => *old = e,
                        None => events.push_back(e),
                    }
                    if events.len() > EVENTS_KEPT {
                        events.pop_front();
                    }
                }
            }
        }
        Anomalies {
            inner: Arc::new(Inner {
                store,
                watcher: Mutex::new(Watcher::new(rules)),
                events: Mutex::new(events),
                file,
                read_to: Mutex::new(None),
                problem: Mutex::new(None),
                rules_file: None,
            }),
        }
    }

    /// Takes the rules from `path` now and whenever it changes; a file that
    /// cannot be read keeps the rules in force, and the status says why.
    pub fn with_rules_file(self, path: PathBuf) -> Result<Anomalies, crate::rules_file::RulesFileError> {
        let file = crate::rules_file::RulesFile::new(path);
        self.set_rules(file.load(super::watch::parse_rules)?);
        let inner =
            Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("with_rules_file before the watch is shared"));
        Ok(Anomalies { inner: Arc::new(Inner { rules_file: Some(file), ..inner }) })
    }

    /// Reloads the rules file when it changed; why its content is not in force, if it is not.
    fn reload_rules(&self) -> Option<String> {
        let file = self.inner.rules_file.as_ref()?;
        if let Some(rules) = file.reload_if_changed(super::watch::parse_rules) {
            self.set_rules(rules);
        }
        file.problem()
    }

    /// Runs a tick every `interval` on the blocking pool.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = crate::store::now_ms();
                let worker = me.clone();
                if tokio::task::spawn_blocking(move || worker.tick(now)).await.is_err() {
                    tracing::error!("the anomaly watch panicked; it goes on at the next tick");
                }
            }
        })
    }

    pub fn rules(&self) -> Vec<WatchRule> {
        self.inner.watcher.lock().expect("watcher").rules().to_vec()
    }

    /// New rules without a restart.
    pub fn set_rules(&self, rules: Vec<WatchRule>) {
        self.inner.watcher.lock().expect("watcher").set_rules(rules);
    }

    /// Reads what is new since the last tick (up to `now_ms`) and scores it.
    pub fn tick(&self, now_ms: i64) {
        let mut problem = self.reload_rules();
        let start = self.inner.read_to.lock().expect("read_to").map_or(now_ms - WARM_UP_MS, |t| t - 60_000);
        let rules = self.rules();
        let mut out = Vec::new();
        for rule in &rules {
            let mut matchers = vec![Matcher::new(crate::model::NAME_LABEL, MatchOp::Eq, &rule.metric).expect("equal")];
            for (k, v) in &rule.labels {
                matchers.push(Matcher::new(k, MatchOp::Eq, v).expect("equal"));
            }
            match self.inner.store.try_select(&matchers, start, now_ms) {
                Ok(series) => {
                    for s in series.into_iter().filter(|s| !s.samples.is_empty()) {
                        let known = self.inner.watcher.lock().expect("watcher").last_seen(&s.labels).is_some();
                        // A series new to the watcher is read from further back, to warm its detector up.
                        let history = if known { None } else { self.history(&s.labels, now_ms) };
                        let mut watcher = self.inner.watcher.lock().expect("watcher");
                        watcher.observe(&s.labels, history.as_deref().unwrap_or(&s.samples), &mut out);
                    }
                }
                Err(e) => problem = problem.or(Some(format!("reading {}: {e}", rule.metric))),
            }
        }
        {
            let mut watcher = self.inner.watcher.lock().expect("watcher");
            watcher.forget_older_than(now_ms - FORGET_MS, &mut out);
            if watcher.dropped > 0 && problem.is_none() {
                problem = Some(format!(
                    "{} series not watched: more than {} match the rules",
                    watcher.dropped,
                    super::watch::MAX_SERIES
                ));
            }
        }
        *self.inner.read_to.lock().expect("read_to") = Some(now_ms);
        *self.inner.problem.lock().expect("problem") = problem;
        self.record(out);
    }

    /// The last [`WARM_UP_MS`] of one series.
    fn history(&self, labels: &crate::model::Labels, now_ms: i64) -> Option<Vec<Sample>> {
        let exact: Vec<Matcher> = labels.iter().map(|(k, v)| Matcher::new(k, MatchOp::Eq, v).expect("equal")).collect();
        let series = self.inner.store.try_select(&exact, now_ms - WARM_UP_MS, now_ms).ok()?;
        series.into_iter().find(|s| &s.labels == labels).map(|s| s.samples)
    }

    fn record(&self, out: Vec<Output>) {
        let mut scores = Vec::new();
        for o in out {
            match o {
                Output::Score { labels, t, score } => scores.push((labels, Sample { t, v: score })),
                Output::Opened(e) | Output::Closed(e) => self.keep(e),
            }
        }
        if !scores.is_empty()
            && let Err(e) = self.inner.store.write(scores)
        {
            tracing::warn!("writing anomaly scores: {e}");
        }
    }

    fn keep(&self, event: AnomalyEvent) {
        if event.end_ms.is_none() {
            tracing::warn!(metric = %event.metric, labels = ?event.labels, "anomaly: {}", event.reason);
        }
        if let Some(file) = &self.inner.file
            && let Err(e) = append(file, &event)
        {
            tracing::error!(file = %file.display(), "anomaly log not written: {e}");
        }
        let mut events = self.inner.events.lock().expect("events");
        match events.iter_mut().find(|old| old.id == event.id) {
            Some(old) => *old = event,
            None => events.push_back(event),
        }
        while events.len() > EVENTS_KEPT {
            events.pop_front();
        }
    }

    /// Events that started or ended at or after `since_ms`, newest first; only open ones if asked.
    pub fn events(&self, since_ms: i64, open_only: bool) -> Vec<AnomalyEvent> {
        let events = self.inner.events.lock().expect("events");
        events
            .iter()
            .rev()
            .filter(|e| e.start_ms >= since_ms || e.end_ms.is_none_or(|end| end >= since_ms))
            .filter(|e| !open_only || e.end_ms.is_none())
            .cloned()
            .collect()
    }

    /// Series watched now, and what is wrong with the watch, if anything.
    pub fn status(&self) -> (usize, Option<String>) {
        let watched = self.inner.watcher.lock().expect("watcher").watched();
        (watched, self.inner.problem.lock().expect("problem").clone())
    }
}

fn append(file: &std::path::Path, event: &AnomalyEvent) -> std::io::Result<()> {
    mesos::private_file::append_line(file, &serde_json::to_vec(event).expect("serialises"), ROTATE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::store::StoreConfig;

    #[test]
    fn anomalies_are_found_in_the_store_scored_back_and_kept_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("m3s-anomaly-runner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(StoreConfig::new(dir.join("store"))).unwrap();
        let labels = Labels::new(vec![("__name__".into(), "mem_used_percent".into()), ("host".into(), "n1".into())]);
        let now = crate::store::now_ms();
        let base = now - 3000 * 1000;
        let samples: Vec<_> = (0..300)
            .map(|i| {
                (
                    labels.clone(),
                    Sample { t: base + i * 10_000, v: if i == 290 { 99.0 } else { 40.0 + (i % 3) as f64 } },
                )
            })
            .collect();
        store.write(samples).unwrap();
        let file = dir.join("anomalies.jsonl");
        let watch = Anomalies::new(store.clone(), super::super::watch::default_rules(), Some(file.clone()));
        watch.tick(now);
        let found = watch.events(0, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].labels["host"], "n1");
        let score = Matcher::new("__name__", MatchOp::Eq, "m3s_anomaly_score").unwrap();
        let scored = store.try_select(&[score], 0, now).unwrap();
        assert_eq!(scored.len(), 1);
        assert_eq!(scored[0].labels.get("metric"), Some("mem_used_percent"));
        assert!(scored[0].samples.iter().any(|s| s.v > 0.8), "the spike's score is stored");
        // Nothing is scored twice.
        watch.tick(now + 1);
        assert_eq!(
            store.try_select(&[Matcher::new("__name__", MatchOp::Eq, "m3s_anomaly_score").unwrap()], 0, now).unwrap()
                [0]
            .samples
            .len(),
            scored[0].samples.len()
        );
        let again = Anomalies::new(store, Vec::new(), Some(file));
        assert_eq!(again.events(0, false), found, "the log is read back");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
