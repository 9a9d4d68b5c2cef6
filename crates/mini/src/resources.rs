//! Resource bookkeeping for the single agent: scalars (`cpus`, `mem`, `disk`,
//! `gpus`, any other name) and ranges (`ports`), with the arithmetic the
//! allocator needs. Scalars are kept in Mesos's fixed point (three decimals) so
//! that adding and removing 0.1 cpus a thousand times comes back to zero.

use std::collections::BTreeMap;
use std::fmt;

use mesos::v1::{AllocationInfo, Range, Ranges, Resource, ValueType};

/// Mesos rounds scalars to this many decimal places (`Value::Scalar` is fixed point).
const SCALE: f64 = 1000.0;

/// Below these, free resources are not worth offering (Mesos's
/// `--min_allocatable_resources` default `cpus:0.01|mem:32`).
pub const MIN_CPUS: f64 = 0.01;
pub const MIN_MEM: f64 = 32.0;

/// A set of inclusive ranges, kept sorted and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    pub fn new(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut set = RangeSet::default();
        for (b, e) in ranges {
            set.add(b, e);
        }
        set
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }

    fn add(&mut self, begin: u64, end: u64) {
        let (begin, end) = (begin.min(end), begin.max(end));
        self.0.push((begin, end));
        self.0.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(b, e) in &self.0 {
            match merged.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((b, e)),
            }
        }
        self.0 = merged;
    }

    pub fn union(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for &(b, e) in &other.0 {
            out.add(b, e);
        }
        out
    }

    pub fn contains(&self, other: &RangeSet) -> bool {
        other.0.iter().all(|&(b, e)| self.0.iter().any(|&(sb, se)| sb <= b && e <= se))
    }

    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for &(b, e) in &self.0 {
            let mut pieces = vec![(b, e)];
            for &(ob, oe) in &other.0 {
                pieces = pieces
                    .into_iter()
                    .flat_map(|(pb, pe)| {
                        if oe < pb || ob > pe {
                            return vec![(pb, pe)];
                        }
                        let mut keep = Vec::new();
                        if ob > pb {
                            keep.push((pb, ob - 1));
                        }
                        if oe < pe {
                            keep.push((oe + 1, pe));
                        }
                        keep
                    })
                    .collect();
            }
            out.extend(pieces);
        }
        RangeSet(out)
    }
}

impl fmt::Display for RangeSet {
    /// Mesos's text form: `[31000-31005, 31010-31010]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{b}-{e}")?;
        }
        f.write_str("]")
    }
}

/// Scalars by name (fixed point, thousandths) and ranges by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    scalars: BTreeMap<String, i64>,
    ranges: BTreeMap<String, RangeSet>,
}

/// Why a resource string or a task's resources were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource {0:?}: expected name:value, e.g. cpus:2 or ports:[31000-32000]")]
    Syntax(String),
    #[error("resource {name:?}: {reason}")]
    Value { name: String, reason: String },
    #[error("resource {name:?} has type {kind}, which m3s mini does not support (use SCALAR or RANGES)")]
    Unsupported { name: String, kind: String },
}

impl Resources {
    /// Parses the agent flag syntax: `cpus:2;mem:8192;disk:20000;ports:[31000-32000]`.
    pub fn parse(spec: &str) -> Result<Self, ResourceError> {
        let mut out = Resources::default();
        for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once(':').ok_or_else(|| ResourceError::Syntax(item.to_owned()))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(ResourceError::Syntax(item.to_owned()));
            }
            if name.chars().any(|c| c.is_control() || c.is_whitespace() || "[]{}".contains(c)) {
                return Err(ResourceError::Value {
                    name: name.to_owned(),
                    reason: "a name may not contain spaces, control characters or brackets".into(),
                });
            }
            if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                let mut set = RangeSet::default();
                for part in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let bad = || ResourceError::Value { name: name.to_owned(), reason: format!("bad range {part:?}") };
                    let (b, e) = part.split_once('-').ok_or_else(bad)?;
                    let (b, e): (u64, u64) =
                        (b.trim().parse().map_err(|_| bad())?, e.trim().parse().map_err(|_| bad())?);
                    if b > e {
                        return Err(bad());
                    }
                    set.add(b, e);
                }
                out.ranges.insert(name.to_owned(), set);
            } else {
                let v: f64 = value.parse().map_err(|_| ResourceError::Value {
                    name: name.to_owned(),
                    reason: format!("{value:?} is not a number"),
                })?;
                if !v.is_finite() || v < 0.0 {
                    return Err(ResourceError::Value {
                        name: name.to_owned(),
                        reason: "must be a finite number ≥ 0".into(),
                    });
                }
                out.scalars.insert(name.to_owned(), fixed(v));
            }
        }
        out.normalize();
        Ok(out)
    }

    /// Zero scalars and empty ranges are no resources at all: dropping them
    /// keeps equality meaningful (`cpus:0` equals nothing) and the wire form
    /// free of empty entries.
    fn normalize(&mut self) {
        self.scalars.retain(|_, v| *v > 0);
        self.ranges.retain(|_, r| !r.is_empty());
    }

    /// Sums wire resources (a task's or an offer's), ignoring roles.
    pub fn from_wire(resources: &[Resource]) -> Result<Self, ResourceError> {
        let mut out = Resources::default();
        for r in resources {
            match (&r.kind, &r.scalar, &r.ranges) {
                (ValueType::Scalar, Some(s), _) => {
                    if !s.value.is_finite() || s.value < 0.0 {
                        return Err(ResourceError::Value {
                            name: r.name.clone(),
                            reason: "must be a finite number ≥ 0".into(),
                        });
                    }
                    *out.scalars.entry(r.name.clone()).or_default() += fixed(s.value);
                }
                (ValueType::Ranges, _, Some(ranges)) => {
                    let set = RangeSet::new(ranges.range.iter().map(|r| (r.begin, r.end)));
                    let merged = out.ranges.get(&r.name).map(|s| s.union(&set)).unwrap_or(set);
                    out.ranges.insert(r.name.clone(), merged);
                }
                (ValueType::Scalar, None, _) | (ValueType::Ranges, _, None) => {
                    return Err(ResourceError::Value {
                        name: r.name.clone(),
                        reason: "value missing for its type".into(),
                    });
                }
                (kind, _, _) => {
                    return Err(ResourceError::Unsupported { name: r.name.clone(), kind: kind.to_string() });
                }
            }
        }
        Ok(out)
    }

    /// Wire form, every resource unreserved (`role: "*"`), allocated to `role`
    /// when given (MULTI_ROLE frameworks and offers carry `allocation_info`).
    pub fn to_wire(&self, allocation_role: Option<&str>) -> Vec<Resource> {
        let allocation_info = allocation_role.map(|r| AllocationInfo { role: Some(r.to_owned()) });
        let mut out = Vec::new();
        for (name, set) in &self.ranges {
            if set.is_empty() {
                continue;
            }
            out.push(Resource {
                name: name.clone(),
                kind: ValueType::Ranges,
                ranges: Some(Ranges { range: set.ranges().iter().map(|&(begin, end)| Range { begin, end }).collect() }),
                role: Some("*".into()),
                allocation_info: allocation_info.clone(),
                ..Default::default()
            });
        }
        for (name, &v) in &self.scalars {
            if v == 0 {
                continue;
            }
            let mut r = Resource::scalar(name.clone(), v as f64 / SCALE);
            r.role = Some("*".into());
            r.allocation_info = allocation_info.clone();
            out.push(r);
        }
        out
    }

    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars.get(name).copied().unwrap_or(0) as f64 / SCALE
    }

    pub fn ranges(&self, name: &str) -> RangeSet {
        self.ranges.get(name).cloned().unwrap_or_default()
    }

    /// Scalar names and values, for the legacy flattened form.
    pub fn scalars(&self) -> impl Iterator<Item = (&str, f64)> {
        self.scalars.iter().map(|(k, v)| (k.as_str(), *v as f64 / SCALE))
    }

    /// Range names and sets.
    pub fn range_sets(&self) -> impl Iterator<Item = (&str, &RangeSet)> {
        self.ranges.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.scalars.values().all(|v| *v == 0) && self.ranges.values().all(RangeSet::is_empty)
    }

    /// Worth offering: at least the minimum cpus or memory.
    pub fn is_allocatable(&self) -> bool {
        self.scalar("cpus") >= MIN_CPUS || self.scalar("mem") >= MIN_MEM
    }

    /// Every scalar and range of `other` is within `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.scalars.iter().all(|(k, v)| *v <= 0 || self.scalars.get(k).copied().unwrap_or(0) >= *v)
            && other.ranges.iter().all(|(k, set)| set.is_empty() || self.ranges.get(k).is_some_and(|s| s.contains(set)))
    }

    /// The first resource of `other` that `self` lacks, for error messages.
    pub fn shortfall(&self, other: &Resources) -> Option<String> {
        for (k, v) in &other.scalars {
            let have = self.scalars.get(k).copied().unwrap_or(0);
            if *v > have {
                return Some(format!("{k}:{} (available {k}:{})", *v as f64 / SCALE, have as f64 / SCALE));
            }
        }
        for (k, set) in &other.ranges {
            let have = self.ranges(k);
            if !have.contains(set) {
                return Some(format!("{k}:{set} (available {k}:{have})"));
            }
        }
        None
    }

    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            *self.scalars.entry(k.clone()).or_default() += v;
        }
        for (k, set) in &other.ranges {
            let merged = self.ranges(k).union(set);
            self.ranges.insert(k.clone(), merged);
        }
        self.normalize();
    }

    /// Removes `other`; scalars do not go below zero.
    pub fn subtract(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = (*e - v).max(0);
        }
        for (k, set) in &other.ranges {
            let left = self.ranges(k).difference(set);
            self.ranges.insert(k.clone(), left);
        }
        self.normalize();
    }
}

fn fixed(v: f64) -> i64 {
    (v * SCALE).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agent_resource_flags() {
        let r = Resources::parse("cpus:2;mem:8192;disk:20000;ports:[31000-32000]").unwrap();
        assert_eq!(r.scalar("cpus"), 2.0);
        assert_eq!(r.ranges("ports").len(), 1001);
        assert!(Resources::parse("cpus").unwrap_err().to_string().contains("expected name:value"));
        assert!(Resources::parse("cpus:x").unwrap_err().to_string().contains("\"x\" is not a number"));
        assert!(Resources::parse("ports:[5-1]").is_err());
        assert!(Resources::parse("mem:-1").is_err());
        assert!(Resources::parse("bad\u{8}name:1").is_err(), "control characters in names");
        assert_eq!(Resources::parse("cpus:0;ports:[]").unwrap(), Resources::default(), "zero is nothing");
    }

    #[test]
    fn fixed_point_arithmetic_returns_to_zero() {
        let mut total = Resources::parse("cpus:2").unwrap();
        let task = Resources::parse("cpus:0.1").unwrap();
        for _ in 0..1000 {
            total.subtract(&task);
            total.add(&task);
        }
        assert_eq!(total.scalar("cpus"), 2.0);
    }

    #[test]
    fn ranges_subtract_and_contain() {
        let mut free = Resources::parse("ports:[31000-31010]").unwrap();
        let used = Resources::parse("ports:[31002-31003,31010-31010]").unwrap();
        assert!(free.contains(&used));
        free.subtract(&used);
        assert_eq!(free.ranges("ports").to_string(), "[31000-31001, 31004-31009]");
        assert!(!free.contains(&used));
        assert!(free.shortfall(&used).unwrap().starts_with("ports:[31002-31003, 31010-31010]"));
        free.add(&used);
        assert_eq!(free.ranges("ports").to_string(), "[31000-31010]");
    }

    #[test]
    fn wire_round_trip() {
        let r = Resources::parse("cpus:0.5;mem:64;ports:[31000-31001]").unwrap();
        let wire = r.to_wire(Some("m3s"));
        assert_eq!(wire.len(), 3);
        assert_eq!(wire[0].allocation_info.as_ref().unwrap().role.as_deref(), Some("m3s"));
        assert_eq!(Resources::from_wire(&wire).unwrap(), r);
    }
}
