//! The shared data model: labels, samples, series, matchers, and the
//! `Source` a query reads from.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label holding a series' metric name.
pub const NAME_LABEL: &str = "__name__";

/// A label set, sorted by name, names unique. `__name__` is a label like any other.
/// Shared and hashed once: queries clone and compare label sets at every step,
/// so a clone is a reference count and equality starts with a pointer check.
#[derive(Clone)]
pub struct Labels {
    pairs: Arc<[(String, String)]>,
    hash: u64,
}

impl Labels {
    /// Sorts and drops empty values (Prometheus: an empty label value means the label is absent).
    /// A later duplicate name replaces an earlier one.
    pub fn new(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.retain(|(_, v)| !v.is_empty());
        // Stable sort keeps insertion order among equal names; keep the last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Labels::from_sorted(out)
    }

    fn from_sorted(pairs: Vec<(String, String)>) -> Labels {
        let mut h = std::hash::DefaultHasher::new();
        pairs.hash(&mut h);
        Labels { pairs: pairs.into(), hash: h.finish() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.binary_search_by(|(k, _)| k.as_str().cmp(name)).ok().map(|i| self.pairs[i].1.as_str())
    }

    pub fn name(&self) -> Option<&str> {
        self.get(NAME_LABEL)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs.to_vec()
    }

    /// The same labels without `__name__` (what functions such as `rate` return).
    pub fn without_name(&self) -> Labels {
        if self.name().is_none() {
            return self.clone();
        }
        Labels::from_sorted(self.pairs.iter().filter(|(k, _)| k != NAME_LABEL).cloned().collect())
    }
}

impl Default for Labels {
    fn default() -> Labels {
        Labels::from_sorted(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.pairs, &other.pairs) || (self.hash == other.hash && self.pairs == other.pairs)
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Labels) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.pairs, &other.pairs) {
            return std::cmp::Ordering::Equal;
        }
        self.pairs.cmp(&other.pairs)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.pairs.iter()).finish()
    }
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `name{a="x", b="y"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for (k, v) in self.iter().filter(|(k, _)| *k != NAME_LABEL) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One sample: milliseconds since the Unix epoch and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// A series with the samples a query asked for, in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// A label matcher as in PromQL: `name="v"`, `!=`, `=~`, `!~`. Regexes are
/// anchored at both ends, as Prometheus anchors them.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl Matcher {
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Matcher, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(regex::Regex::new(&format!("^(?s:{value})$"))?),
            _ => None,
        };
        Ok(Matcher { name: name.into(), op, value, regex })
    }

    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher { name: name.into(), op: MatchOp::Eq, value: value.into(), regex: None }
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether this matcher matches the empty value, i.e. series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Why a source could not answer: a limit the query would pass, or a store error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectError(pub String);

/// Where queries read series from: the store, or a plain vector in tests.
pub trait Source {
    /// Every series matching all matchers, with its samples in `[start, end]`
    /// (milliseconds, inclusive). Series without samples in the range may be left out.
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, SelectError>;
}

/// A `Source` over series held in memory: the brute-force reference for tests.
impl Source for [Series] {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, SelectError> {
        Ok(self
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches_labels(&s.labels)))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s.samples.iter().copied().filter(|x| x.t >= start && x.t <= end).collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }
}

impl Source for Vec<Series> {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, SelectError> {
        self.as_slice().select(matchers, start, end)
    }
}

/// A field value of a line-protocol point.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    /// The sample value stored for this field: numbers as f64 (integers beyond
    /// 2^53 lose precision, as in VictoriaMetrics), booleans as 1 and 0.
    /// Strings are not stored as samples.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            FieldValue::Float(v) => Some(v),
            FieldValue::Int(v) => Some(v as f64),
            FieldValue::UInt(v) => Some(v as f64),
            FieldValue::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            FieldValue::Str(_) => None,
        }
    }
}

/// One line-protocol point (or a collector's reading).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the epoch; `None` means "now" at ingestion.
    pub timestamp: Option<i64>,
}

impl Point {
    /// The samples this point becomes, named as VictoriaMetrics names them:
    /// `{measurement}_{field}` with the tags as labels. `now_ms` fills a
    /// missing timestamp; nanoseconds are truncated to milliseconds.
    pub fn samples(&self, now_ms: i64) -> impl Iterator<Item = (Labels, Sample)> + '_ {
        let t = self.timestamp.map(|ns| ns.div_euclid(1_000_000)).unwrap_or(now_ms);
        self.fields
            .iter()
            .filter_map(move |(field, value)| Some((self.labels_of(field), Sample { t, v: value.as_f64()? })))
    }

    /// The label set of one field's series.
    pub fn labels_of(&self, field: &str) -> Labels {
        let name =
            if self.measurement.is_empty() { field.to_string() } else { format!("{}_{}", self.measurement, field) };
        let mut pairs = Vec::with_capacity(self.tags.len() + 1);
        pairs.push((NAME_LABEL.to_string(), name));
        pairs.extend(self.tags.iter().cloned());
        Labels::new(pairs)
    }
}
