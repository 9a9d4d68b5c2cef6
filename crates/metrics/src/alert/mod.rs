//! Alerting: rules in Prometheus's alerting-rule YAML (a PromQL condition
//! held for a duration), plus anomaly rules (a watched series' anomaly score
//! above a threshold for a duration), and the alerts' state machine: inactive
//! → pending → firing → resolved, silences with an expiry, and the
//! notifications each change owes. Pure: results and time in, states and
//! notifications out; `runner` evaluates against the store and delivers.

pub mod runner;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::Labels;
use crate::rules_file::{FieldProblem, RuleError};

/// A rule as written (`groups[].rules[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<GroupFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    rules: Vec<RuleEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    anomaly: Option<AnomalyCondition>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// An anomaly rule's condition: the series of `metric` whose score is at least `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyCondition {
    pub metric: String,
    #[serde(default = "default_anomaly_threshold")]
    pub threshold: f64,
}

fn default_anomaly_threshold() -> f64 {
    0.8
}

/// A checked rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    pub group: String,
    pub name: String,
    /// The PromQL condition (an anomaly rule's is written out as one).
    pub expr: String,
    pub for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// `5m`, `30s`, `1h`, `1d`, `0`.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if text == "0" {
        return Some(0);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Reads a rules file; an error names the group and rule, and the field.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleError> {
    let file: RuleFile = serde_saphyr::from_str(text)?;
    let mut out = Vec::new();
    for (g, group) in file.groups.iter().enumerate() {
        if let Some(i) = &group.interval
            && parse_duration_ms(i).is_none()
        {
            let at = format!("groups[{g}] ({})", group.name);
            return Err(RuleError::Field { at, field: "interval", problem: FieldProblem::NotADuration(i.clone()) });
        }
        for (r, entry) in group.rules.iter().enumerate() {
            let at = format!("groups[{g}].rules[{r}]");
            if entry.record.is_some() {
                return Err(RuleError::Field { at, field: "record", problem: FieldProblem::RecordingRule });
            }
            let Some(name) = entry.alert.clone() else {
                return Err(RuleError::Field { at, field: "alert", problem: FieldProblem::Missing });
            };
            let at = format!("{at} ({name})");
            let bad = |field: &'static str, problem: FieldProblem| RuleError::Field { at: at.clone(), field, problem };
            let expr = match (&entry.expr, &entry.anomaly) {
                (Some(e), None) => e.clone(),
                (None, Some(a)) => {
                    if !(a.threshold > 0.0 && a.threshold <= 1.0) {
                        let problem = FieldProblem::OutOfRange { value: a.threshold, range: "in (0, 1]" };
                        return Err(bad("anomaly.threshold", problem));
                    }
                    format!(
                        "{}{{metric=\"{}\"}} >= {}",
                        crate::anomaly::watch::SCORE_METRIC,
                        a.metric.replace('\\', "\\\\").replace('"', "\\\""),
                        a.threshold
                    )
                }
                _ => return Err(bad("expr", FieldProblem::ExprOrAnomaly)),
            };
            crate::promql::parse(&expr).map_err(|e| bad("expr", FieldProblem::Expr(e)))?;
            let for_ms = match &entry.for_ {
                None => 0,
                Some(f) => parse_duration_ms(f).ok_or_else(|| bad("for", FieldProblem::NotADuration(f.clone())))?,
            };
            if entry.keep_firing_for.is_some() {
                return Err(bad("keep_firing_for", FieldProblem::Unsupported));
            }
            out.push(Rule {
                group: group.name.clone(),
                name,
                expr,
                for_ms,
                labels: entry.labels.clone(),
                annotations: entry.annotations.clone(),
            });
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

/// One alert: a rule and one of its result's label sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    /// The result's labels, with `alertname` and the rule's labels.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub active_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    pub value: f64,
    /// Covered by a silence when it changed state (no notification went out).
    #[serde(default)]
    pub silenced: bool,
}

impl Alert {
    /// Alertmanager's fingerprint role: a stable key for the label set.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }
}

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let digest = ring_free_hash(labels);
    format!("{digest:016x}")
}

/// FNV-1a over the sorted pairs: stable across processes and versions.
fn ring_free_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// A silence: alerts whose labels include all of `matchers` notify nobody until `ends_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: BTreeMap<String, String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: String,
}

impl Silence {
    pub fn covers(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms && self.matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// How long a resolved alert stays listed.
pub const RESOLVED_KEPT_MS: i64 = 15 * 60 * 1000;

/// Every alert, by rule name and fingerprint; and the silences.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    pub alerts: BTreeMap<String, BTreeMap<String, Alert>>,
    pub silences: Vec<Silence>,
}

impl Alerts {
    /// One evaluation of `rule` at `now_ms` that returned `results`: the
    /// alerts that changed to firing or resolved (unsilenced) are returned, to notify.
    pub fn evaluate(&mut self, rule: &Rule, now_ms: i64, results: &[(Labels, f64)]) -> Vec<Alert> {
        let mut notify = Vec::new();
        let silences = self.silences.clone();
        let alerts = self.alerts.entry(rule.name.clone()).or_default();
        let mut seen: HashMap<String, ()> = HashMap::new();
        for (labels, value) in results {
            let mut set: BTreeMap<String, String> = labels
                .iter()
                .filter(|(k, _)| *k != crate::model::NAME_LABEL)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            set.extend(rule.labels.clone());
            set.insert("alertname".into(), rule.name.clone());
            let key = fingerprint(&set);
            seen.insert(key.clone(), ());
            let alert = alerts.entry(key).or_insert_with(|| Alert {
                rule: rule.name.clone(),
                labels: set.clone(),
                annotations: rule.annotations.clone(),
                state: AlertState::Pending,
                active_at_ms: now_ms,
                fired_at_ms: None,
                resolved_at_ms: None,
                value: *value,
                silenced: false,
            });
            alert.value = *value;
            if alert.state == AlertState::Resolved {
                // Back again: a new episode.
                *alert = Alert {
                    state: AlertState::Pending,
                    active_at_ms: now_ms,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    ..alert.clone()
                };
            }
            if alert.state == AlertState::Pending && now_ms - alert.active_at_ms >= rule.for_ms {
                alert.state = AlertState::Firing;
                alert.fired_at_ms = Some(now_ms);
                alert.silenced = silences.iter().any(|s| s.covers(&alert.labels, now_ms));
                if !alert.silenced {
                    notify.push(alert.clone());
                }
            }
        }
        alerts.retain(|key, alert| {
            if seen.contains_key(key) {
                return true;
            }
            match alert.state {
                // Pending and gone: it never fired; nothing to say.
                AlertState::Pending => false,
                AlertState::Firing => {
                    alert.state = AlertState::Resolved;
                    alert.resolved_at_ms = Some(now_ms);
                    alert.silenced = silences.iter().any(|s| s.covers(&alert.labels, now_ms));
                    if !alert.silenced {
                        notify.push(alert.clone());
                    }
                    true
                }
                AlertState::Resolved => alert.resolved_at_ms.is_some_and(|r| now_ms - r < RESOLVED_KEPT_MS),
            }
        });
        notify
    }

    /// Forgets alerts of rules that are gone, and expired silences.
    pub fn prune(&mut self, rules: &[Rule], now_ms: i64) {
        self.alerts.retain(|name, _| rules.iter().any(|r| &r.name == name));
        self.silences.retain(|s| s.ends_ms > now_ms);
    }

    pub fn all(&self) -> Vec<Alert> {
        self.alerts.values().flat_map(|m| m.values().cloned()).collect()
    }
}

/// The body Alertmanager's webhook receivers get (version 4).
pub fn webhook_payload(alerts: &[Alert], external_url: &str) -> serde_json::Value {
    let time = |ms: Option<i64>| ms.map_or("0001-01-01T00:00:00Z".to_owned(), rfc3339);
    let status = if alerts.iter().any(|a| a.state == AlertState::Firing) { "firing" } else { "resolved" };
    let list: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            serde_json::json!({
                "status": if a.state == AlertState::Firing { "firing" } else { "resolved" },
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": time(a.fired_at_ms.or(Some(a.active_at_ms))),
                "endsAt": time(a.resolved_at_ms),
                "generatorURL": format!("{external_url}/ui/anomalies"),
                "fingerprint": a.fingerprint(),
            })
        })
        .collect();
    let common = |pick: &dyn Fn(&Alert) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut common = alerts.first().map(|a| pick(a).clone()).unwrap_or_default();
        for a in alerts.iter().skip(1) {
            common.retain(|k, v| pick(a).get(k) == Some(v));
        }
        common
    };
    let group: BTreeMap<String, String> =
        alerts.first().map(|a| [("alertname".to_owned(), a.rule.clone())].into_iter().collect()).unwrap_or_default();
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", group.get("alertname").map_or("", String::as_str)),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "m3s",
        "groupLabels": group,
        "commonLabels": common(&|a| &a.labels),
        "commonAnnotations": common(&|a| &a.annotations),
        "externalURL": external_url,
        "alerts": list,
    })
}

pub fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = mesos::utc::civil_from_days(days);
    let (h, min, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "groups:\n  - name: node\n    rules:\n      - alert: HighMemory\n        expr: mem_used_percent > 90\n        for: 1m\n        labels: {severity: page}\n        annotations: {summary: memory is high}\n      - alert: MemoryAnomaly\n        anomaly: {metric: mem_used_percent, threshold: 0.9}\n";

    fn labels(host: &str) -> Labels {
        Labels::new(vec![("__name__".into(), "mem_used_percent".into()), ("host".into(), host.into())])
    }

    #[test]
    fn rules_are_read_as_prometheus_writes_them() {
        let rules = parse_rules(RULES).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].for_ms, rules[0].labels["severity"].as_str()), (60_000, "page"));
        assert_eq!(rules[1].expr, "m3s_anomaly_score{metric=\"mem_used_percent\"} >= 0.9");
        let e = |t: &str| parse_rules(t).unwrap_err().to_string();
        assert!(
            e("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'rate(x[5m]'\n")
                .starts_with("groups[0].rules[0] (A): expr:")
        );
        assert_eq!(
            e("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        for: soon\n"),
            "groups[0].rules[0] (A): for: \"soon\" is not a duration"
        );
        assert!(
            e("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: x\n")
                .contains("recording rules are not supported")
        );
        assert!(e("groups:\n  - name: g\n    rules:\n      - alert: A\n").contains("give either expr"));
        assert!(
            e("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        severity: page\n")
                .contains("severity")
        );
    }

    #[test]
    fn an_alert_goes_pending_firing_resolved_and_notifies_twice() {
        let rule = &parse_rules(RULES).unwrap()[0];
        let mut a = Alerts::default();
        assert!(a.evaluate(rule, 0, &[(labels("n1"), 95.0)]).is_empty(), "pending first");
        assert_eq!(a.all()[0].state, AlertState::Pending);
        assert!(a.evaluate(rule, 30_000, &[(labels("n1"), 96.0)]).is_empty());
        let fired = a.evaluate(rule, 60_000, &[(labels("n1"), 97.0)]);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].state, fired[0].labels["alertname"].as_str(), fired[0].labels["host"].as_str()),
            (AlertState::Firing, "HighMemory", "n1")
        );
        assert!(a.evaluate(rule, 75_000, &[(labels("n1"), 97.0)]).is_empty(), "firing is said once");
        let resolved = a.evaluate(rule, 90_000, &[]);
        assert_eq!((resolved.len(), resolved[0].state), (1, AlertState::Resolved));
        // A blip shorter than `for` never fires.
        assert!(a.evaluate(rule, 100_000, &[(labels("n2"), 91.0)]).is_empty());
        assert!(a.evaluate(rule, 110_000, &[]).is_empty());
        assert!(!a.all().iter().any(|x| x.labels["host"] == "n2"));
        // The resolved one is listed for a while, then forgotten.
        assert_eq!(a.all().len(), 1);
        a.evaluate(rule, 90_000 + RESOLVED_KEPT_MS, &[]);
        assert!(a.all().is_empty());
    }

    #[test]
    fn a_silence_keeps_an_alert_quiet_until_it_expires() {
        let rule = &Rule { for_ms: 0, ..parse_rules(RULES).unwrap()[0].clone() };
        let mut a = Alerts::default();
        a.silences.push(Silence {
            id: "s1".into(),
            matchers: [("host".to_owned(), "n1".to_owned())].into_iter().collect(),
            starts_ms: 0,
            ends_ms: 50_000,
            comment: "maintenance".into(),
            created_by: "ops".into(),
        });
        assert!(a.evaluate(rule, 10_000, &[(labels("n1"), 95.0)]).is_empty(), "silenced");
        assert!(a.all()[0].silenced && a.all()[0].state == AlertState::Firing);
        assert_eq!(
            a.evaluate(rule, 10_000, &[(labels("n2"), 95.0), (labels("n1"), 95.0)]).len(),
            1,
            "n2 is not silenced"
        );
        a.prune(std::slice::from_ref(rule), 60_000);
        assert!(a.silences.is_empty(), "expired silences go");
    }

    #[test]
    fn the_webhook_payload_is_alertmanagers() {
        let rule = &Rule { for_ms: 0, ..parse_rules(RULES).unwrap()[0].clone() };
        let mut a = Alerts::default();
        let fired = a.evaluate(rule, 1_764_979_200_000, &[(labels("n1"), 95.0)]);
        let body = webhook_payload(&fired, "http://m3s:10000");
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["commonLabels"]["severity"], "page");
        assert_eq!(body["alerts"][0]["startsAt"], "2025-12-06T00:00:00.000Z");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(body["alerts"][0]["annotations"]["summary"], "memory is high");
        assert_eq!(body["groupLabels"]["alertname"], "HighMemory");
    }
}
