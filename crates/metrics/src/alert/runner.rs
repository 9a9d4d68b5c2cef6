//! The IO edge of alerting: every interval the rules are evaluated against the
//! store (the rules file reloaded when it changed), changes are notified to
//! webhooks in Alertmanager's format (retried with backoff; each webhook's
//! last failure shown) and written to the error log; alerts, silences and
//! undelivered notifications are kept in `<metrics dir>/alerts.json`, so a
//! restart of m3s loses none.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Alert, AlertState, Alerts, Rule, Silence};
use crate::errors::{ErrorLog, ErrorRecord};
use crate::rules_file::RulesFileError;
use crate::store::Store;

/// Undelivered notifications kept at most (the oldest go first).
pub const OUTBOX_MAX: usize = 1000;
const BACKOFF_MAX_MS: i64 = 5 * 60 * 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Delivery {
    url: String,
    body: serde_json::Value,
    attempts: u32,
    next_at_ms: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WebhookStatus {
    pub url: String,
    pub delivered: u64,
    pub pending: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ok_ms: Option<i64>,
}

#[derive(Default, Serialize, Deserialize)]
struct Kept {
    alerts: Alerts,
    outbox: VecDeque<Delivery>,
}

/// Why alerting could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("the webhooks' HTTP client: {0}")]
    Client(#[from] mesos::error::Error),
    #[error(transparent)]
    Rules(#[from] RulesFileError),
}

#[derive(Clone)]
pub struct Alerting {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    rules: Mutex<Vec<Rule>>,
    rules_file: Option<crate::rules_file::RulesFile>,
    kept: Mutex<Kept>,
    state_file: Option<PathBuf>,
    webhooks: Vec<String>,
    status: Mutex<BTreeMap<String, WebhookStatus>>,
    errors: Option<Arc<ErrorLog>>,
    problem: Mutex<Option<String>>,
    external_url: String,
    http: reqwest::Client,
}

impl Alerting {
    /// Rules from `rules_file`; notifications to `webhooks`; state in `state_file`.
    pub fn new(
        store: Arc<Store>,
        rules_file: Option<PathBuf>,
        webhooks: Vec<String>,
        state_file: Option<PathBuf>,
        errors: Option<Arc<ErrorLog>>,
        external_url: String,
    ) -> Result<Alerting, AlertingError> {
        let transport =
            mesos::transport::TransportConfig { call_timeout: Duration::from_secs(10), ..Default::default() };
        let http = transport.call_client()?;
        let kept = state_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<Kept>(&b).ok())
            .unwrap_or_default();
        let status =
            webhooks.iter().map(|u| (u.clone(), WebhookStatus { url: u.clone(), ..Default::default() })).collect();
        let alerting = Alerting {
            inner: Arc::new(Inner {
                store,
                rules: Mutex::new(Vec::new()),
                rules_file: rules_file.map(crate::rules_file::RulesFile::new),
                kept: Mutex::new(kept),
                state_file,
                webhooks,
                status: Mutex::new(status),
                errors,
                problem: Mutex::new(None),
                external_url,
                http,
            }),
        };
        alerting.reload()?;
        Ok(alerting)
    }

    /// Reads the rules file again, now; the number of rules, or why they cannot
    /// be used (the rules in force stay).
    pub fn reload(&self) -> Result<usize, RulesFileError> {
        let Some(file) = &self.inner.rules_file else { return Ok(0) };
        let rules = file.load(super::parse_rules)?;
        let count = rules.len();
        *self.inner.rules.lock().expect("rules") = rules;
        Ok(count)
    }

    /// Reloads the rules file when it changed; why its content is not in force, if it is not.
    fn reload_if_changed(&self) -> Option<String> {
        let file = self.inner.rules_file.as_ref()?;
        if let Some(rules) = file.reload_if_changed(super::parse_rules) {
            *self.inner.rules.lock().expect("rules") = rules;
        }
        file.problem()
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.inner.rules.lock().expect("rules").clone()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.inner.kept.lock().expect("kept").alerts.all()
    }

    pub fn silences(&self) -> Vec<Silence> {
        self.inner.kept.lock().expect("kept").alerts.silences.clone()
    }

    pub fn add_silence(&self, silence: Silence) {
        self.inner.kept.lock().expect("kept").alerts.silences.push(silence);
        self.save();
    }

    pub fn remove_silence(&self, id: &str) -> bool {
        let removed = {
            let mut kept = self.inner.kept.lock().expect("kept");
            let before = kept.alerts.silences.len();
            kept.alerts.silences.retain(|s| s.id != id);
            kept.alerts.silences.len() != before
        };
        self.save();
        removed
    }

    /// The webhooks' delivery status and what is wrong with the rules, if anything.
    pub fn status(&self) -> (Vec<WebhookStatus>, Option<String>) {
        let pending: BTreeMap<String, usize> =
            self.inner.kept.lock().expect("kept").outbox.iter().fold(BTreeMap::new(), |mut m, d| {
                *m.entry(d.url.clone()).or_default() += 1;
                m
            });
        let mut list: Vec<WebhookStatus> = self.inner.status.lock().expect("status").values().cloned().collect();
        for s in &mut list {
            s.pending = pending.get(&s.url).copied().unwrap_or(0);
        }
        (list, self.inner.problem.lock().expect("problem").clone())
    }

    /// Evaluates every rule at `now_ms` (blocking: reads the store).
    pub fn evaluate(&self, now_ms: i64) {
        let mut problem = self.reload_if_changed();
        let rules = self.rules();
        let mut notify = Vec::new();
        for rule in &rules {
            let expr = match crate::promql::parse(&rule.expr) {
                Ok(e) => e,
                Err(e) => {
                    problem = problem.or(Some(format!("{}: {e}", rule.name)));
                    continue;
                }
            };
            let results = match crate::promql::eval_instant(&expr, &*self.inner.store, now_ms) {
                Ok(crate::promql::Value::Vector(v)) => v.into_iter().map(|(l, s)| (l, s.v)).collect::<Vec<_>>(),
                Ok(_) => {
                    problem = problem.or(Some(format!("{}: the expression is not an instant vector", rule.name)));
                    continue;
                }
                Err(e) => {
                    problem = problem.or(Some(format!("{}: {}", rule.name, e)));
                    continue;
                }
            };
            let changed = self.inner.kept.lock().expect("kept").alerts.evaluate(rule, now_ms, &results);
            notify.extend(changed);
        }
        self.inner.kept.lock().expect("kept").alerts.prune(&rules, now_ms);
        *self.inner.problem.lock().expect("problem") = problem;
        if !notify.is_empty() {
            self.queue(&notify, now_ms);
        }
        self.save();
    }

    fn queue(&self, alerts: &[Alert], now_ms: i64) {
        for a in alerts {
            tracing::warn!(alert = %a.rule, state = ?a.state, labels = ?a.labels, "alert");
            if let Some(log) = &self.inner.errors {
                let kind = if a.state == AlertState::Firing { "alert_firing" } else { "alert_resolved" };
                let labels: Vec<String> =
                    a.labels.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
                let record = ErrorRecord {
                    time_ms: now_ms,
                    kind: kind.into(),
                    agent_id: None,
                    framework_id: None,
                    task_id: None,
                    task_name: None,
                    state: None,
                    reason: Some(a.rule.clone()),
                    source: Some("m3s alerting".into()),
                    message: Some(format!(
                        "{} {}{}",
                        labels.join(","),
                        a.annotations.get("summary").map(String::as_str).unwrap_or(""),
                        format_args!(" (value {})", a.value)
                    )),
                };
                let _ = log.record(record);
            }
        }
        // One notification per rule per webhook, as Alertmanager groups by alertname.
        let mut by_rule: BTreeMap<&str, Vec<Alert>> = BTreeMap::new();
        for a in alerts {
            by_rule.entry(a.rule.as_str()).or_default().push(a.clone());
        }
        let mut kept = self.inner.kept.lock().expect("kept");
        for group in by_rule.values() {
            let body = super::webhook_payload(group, &self.inner.external_url);
            for url in &self.inner.webhooks {
                kept.outbox.push_back(Delivery {
                    url: url.clone(),
                    body: body.clone(),
                    attempts: 0,
                    next_at_ms: now_ms,
                });
            }
        }
        while kept.outbox.len() > OUTBOX_MAX {
            kept.outbox.pop_front();
        }
    }

    fn save(&self) {
        let Some(file) = &self.inner.state_file else { return };
        let bytes = serde_json::to_vec(&*self.inner.kept.lock().expect("kept")).expect("serialises");
        if let Err(e) = mesos::private_file::write(file, &bytes) {
            tracing::error!(file = %file.display(), "alert state not saved: {e}");
        }
    }

    /// Sends the notifications that are due; a failed one waits 1 s, 2 s, 4 s, ... up to 5 min.
    pub async fn deliver(&self, now_ms: i64) {
        let due: Vec<Delivery> = {
            let mut kept = self.inner.kept.lock().expect("kept");
            let (due, later): (VecDeque<Delivery>, VecDeque<Delivery>) =
                kept.outbox.drain(..).partition(|d| d.next_at_ms <= now_ms);
            kept.outbox = later;
            due.into()
        };
        if due.is_empty() {
            return;
        }
        let mut retry = Vec::new();
        for mut d in due {
            let sent = self.inner.http.post(&d.url).json(&d.body).send().await;
            let failure = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("answered {}", r.status())),
                Err(e) => Some(e.to_string()),
            };
            let mut status = self.inner.status.lock().expect("status");
            let s = status
                .entry(d.url.clone())
                .or_insert_with(|| WebhookStatus { url: d.url.clone(), ..Default::default() });
            match failure {
                None => {
                    s.delivered += 1;
                    s.last_ok_ms = Some(now_ms);
                    s.last_error = None;
                }
                Some(why) => {
                    tracing::warn!(webhook = %d.url, attempts = d.attempts + 1, "alert notification failed: {why}");
                    s.last_error = Some(why);
                    d.attempts += 1;
                    d.next_at_ms = now_ms + (1000i64 << d.attempts.min(20)).min(BACKOFF_MAX_MS);
                    retry.push(d);
                }
            }
        }
        {
            let mut kept = self.inner.kept.lock().expect("kept");
            kept.outbox.extend(retry);
        }
        self.save();
    }

    /// When the next undelivered notification is due.
    fn next_delivery(&self) -> Option<i64> {
        self.inner.kept.lock().expect("kept").outbox.iter().map(|d| d.next_at_ms).min()
    }

    /// Evaluates every `interval` and delivers as notifications fall due.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(100);
            let mut next_eval = crate::store::now_ms();
            loop {
                let now = crate::store::now_ms();
                if now >= next_eval {
                    let worker = me.clone();
                    if tokio::task::spawn_blocking(move || worker.evaluate(now)).await.is_err() {
                        tracing::error!("alert evaluation panicked; it goes on at the next interval");
                    }
                    next_eval = now + interval_ms;
                }
                me.deliver(crate::store::now_ms()).await;
                let wake = me.next_delivery().map_or(next_eval, |d| d.min(next_eval));
                let wait = (wake - crate::store::now_ms()).clamp(10, interval_ms);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
        })
    }
}
