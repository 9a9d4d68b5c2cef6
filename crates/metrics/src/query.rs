//! The native JSON query: one measurement's field, tag matchers, a time
//! range, an optional step with an aggregation per step, and grouping by tags.
//!
//! Semantics (documented in docs/metrics.md):
//! - without `step`, each series' raw samples in `[start, end]`;
//! - with `step`, buckets `[start + k·step, start + (k+1)·step)` stamped with
//!   their start; `mean`, `min`, `max`, `sum`, `count` aggregate the raw
//!   samples in the bucket (of every series in the group), `last` takes the
//!   latest sample in the bucket, `rate` is the per-second increase of each
//!   series within the bucket (counter resets handled), summed over the group;
//! - `group_by` names the tags that identify a group; without it every series
//!   is its own group. Empty buckets are left out.

use std::collections::BTreeMap;

use crate::model::{Labels, MatchOp, Matcher, NAME_LABEL, Sample, Series, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Mean,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Rate,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregation {0:?} (mean, min, max, sum, count, last, rate)")]
pub struct UnknownAggregation(pub String);

/// A native query that cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("end is before start")]
    Reversed,
    #[error("step must be positive")]
    Step,
    #[error("more than {MAX_BUCKETS} steps: use a larger step")]
    TooManySteps,
    #[error(transparent)]
    Select(#[from] crate::model::SelectError),
}

impl std::str::FromStr for Aggregation {
    type Err = UnknownAggregation;

    fn from_str(s: &str) -> Result<Aggregation, UnknownAggregation> {
        Ok(match s {
            "mean" | "avg" => Aggregation::Mean,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "sum" => Aggregation::Sum,
            "count" => Aggregation::Count,
            "last" => Aggregation::Last,
            "rate" => Aggregation::Rate,
            other => return Err(UnknownAggregation(other.to_owned())),
        })
    }
}

#[derive(Clone, Debug)]
pub struct NativeQuery {
    pub measurement: String,
    pub field: String,
    pub tags: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    /// Milliseconds; `None` returns raw samples.
    pub step: Option<i64>,
    pub aggregation: Aggregation,
    pub group_by: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NativeSeries {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// `[milliseconds, value]` pairs.
    pub points: Vec<(i64, f64)>,
}

/// The most buckets one query may ask for (as Prometheus's resolution limit).
pub const MAX_BUCKETS: i64 = 11_000;

pub fn run(q: &NativeQuery, source: &dyn Source) -> Result<Vec<NativeSeries>, QueryError> {
    if q.end < q.start {
        return Err(QueryError::Reversed);
    }
    let name = format!("{}_{}", q.measurement, q.field);
    let mut matchers = vec![Matcher::eq(NAME_LABEL, name.clone())];
    matchers.extend(q.tags.iter().cloned());
    let series = source.select(&matchers, q.start, q.end)?;
    let Some(step) = q.step else {
        return Ok(series
            .into_iter()
            .map(|s| NativeSeries {
                name: name.clone(),
                tags: tags_of(&s.labels, None),
                points: s.samples.iter().map(|x| (x.t, x.v)).collect(),
            })
            .collect());
    };
    if step <= 0 {
        return Err(QueryError::Step);
    }
    if (q.end - q.start) / step >= MAX_BUCKETS {
        return Err(QueryError::TooManySteps);
    }
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Series>> = BTreeMap::new();
    for s in series {
        groups.entry(tags_of(&s.labels, q.group_by.as_deref())).or_default().push(s);
    }
    Ok(groups
        .into_iter()
        .map(|(tags, members)| NativeSeries {
            name: name.clone(),
            tags,
            points: aggregate(&members, q.start, q.end, step, q.aggregation),
        })
        .collect())
}

/// A `tag` filter of a native query that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("expected key=value, key!=value, key=~regex or key!~regex")]
    Form,
    #[error("empty tag key")]
    EmptyKey,
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
}

/// `key=value`, `key!=value`, `key=~regex`, `key!~regex`.
pub fn parse_tag(s: &str) -> Result<Matcher, TagError> {
    let (i, op, len) = [("!=", MatchOp::Ne), ("=~", MatchOp::Re), ("!~", MatchOp::NotRe), ("=", MatchOp::Eq)]
        .iter()
        .filter_map(|(text, op)| s.find(text).map(|i| (i, *op, text.len())))
        .min_by_key(|(i, _, len)| (*i, std::cmp::Reverse(*len)))
        .ok_or(TagError::Form)?;
    if i == 0 {
        return Err(TagError::EmptyKey);
    }
    Ok(Matcher::new(&s[..i], op, &s[i + len..])?)
}

fn tags_of(labels: &Labels, group_by: Option<&[String]>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| *k != NAME_LABEL && group_by.is_none_or(|g| g.iter().any(|x| x == k)))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn aggregate(members: &[Series], start: i64, end: i64, step: i64, agg: Aggregation) -> Vec<(i64, f64)> {
    let buckets = ((end - start) / step + 1) as usize;
    // Per bucket: (sum, count, min, max, last_t, last_v, rate sum, has rate)
    let mut acc = vec![Acc::default(); buckets];
    for s in members {
        let mut i = 0;
        while i < s.samples.len() {
            let b = ((s.samples[i].t - start) / step) as usize;
            let bucket_end = start + (b as i64 + 1) * step;
            let j = i + s.samples[i..].partition_point(|x| x.t < bucket_end);
            acc[b].add(&s.samples[i..j]);
            i = j;
        }
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.count > 0)
        .filter_map(|(b, a)| {
            let v = match agg {
                Aggregation::Mean => a.sum / a.count as f64,
                Aggregation::Min => a.min,
                Aggregation::Max => a.max,
                Aggregation::Sum => a.sum,
                Aggregation::Count => a.count as f64,
                Aggregation::Last => a.last.1,
                Aggregation::Rate => a.rate?,
            };
            Some((start + b as i64 * step, v))
        })
        .collect()
}

#[derive(Clone)]
struct Acc {
    sum: f64,
    count: u64,
    min: f64,
    max: f64,
    last: (i64, f64),
    rate: Option<f64>,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc { sum: 0.0, count: 0, min: f64::INFINITY, max: f64::NEG_INFINITY, last: (i64::MIN, f64::NAN), rate: None }
    }
}

impl Acc {
    /// One series' samples within this bucket.
    fn add(&mut self, samples: &[Sample]) {
        for s in samples {
            self.sum += s.v;
            self.count += 1;
            self.min = self.min.min(s.v);
            self.max = self.max.max(s.v);
            if s.t >= self.last.0 {
                self.last = (s.t, s.v);
            }
        }
        if let (Some(first), Some(last)) = (samples.first(), samples.last())
            && last.t > first.t
        {
            // Increase with counter resets: a drop means the counter restarted from zero.
            let increase: f64 =
                samples.windows(2).map(|w| if w[1].v < w[0].v { w[1].v } else { w[1].v - w[0].v }).sum();
            let per_second = increase / ((last.t - first.t) as f64 / 1000.0);
            self.rate = Some(self.rate.unwrap_or(0.0) + per_second);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(host: &str, points: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::new(vec![
                (NAME_LABEL.into(), "cpu_usage".into()),
                ("host".into(), host.into()),
                ("dc".into(), "x".into()),
            ]),
            samples: points.iter().map(|&(t, v)| Sample { t, v }).collect(),
        }
    }

    fn query(step: Option<i64>, aggregation: Aggregation, group_by: Option<Vec<String>>) -> NativeQuery {
        NativeQuery {
            measurement: "cpu".into(),
            field: "usage".into(),
            tags: vec![],
            start: 0,
            end: 59_999,
            step,
            aggregation,
            group_by,
        }
    }

    #[test]
    fn buckets_and_groups() {
        let data =
            vec![series("a", &[(0, 1.0), (10_000, 3.0), (30_000, 10.0)]), series("b", &[(5_000, 5.0), (40_000, 2.0)])];
        let out = run(&query(Some(30_000), Aggregation::Mean, Some(vec!["dc".into()])), &data).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tags, BTreeMap::from([("dc".to_string(), "x".to_string())]));
        assert_eq!(out[0].points, vec![(0, 3.0), (30_000, 6.0)]);
        let max = run(&query(Some(30_000), Aggregation::Max, None), &data).unwrap();
        assert_eq!(max.len(), 2);
        assert_eq!(max[0].points, vec![(0, 3.0), (30_000, 10.0)]);
        let last = run(&query(Some(60_000), Aggregation::Last, Some(vec![])), &data).unwrap();
        assert_eq!(last[0].points, vec![(0, 2.0)]);
        let raw = run(&query(None, Aggregation::Mean, None), &data).unwrap();
        assert_eq!(raw[1].points, vec![(5_000, 5.0), (40_000, 2.0)]);
    }

    #[test]
    fn rate_handles_counter_resets() {
        let data = vec![series("a", &[(0, 10.0), (10_000, 30.0), (20_000, 5.0)])];
        let out = run(&query(Some(60_000), Aggregation::Rate, None), &data).unwrap();
        // 20 up, then a reset to 5 (counted as 5): 25 over 20 s.
        assert_eq!(out[0].points, vec![(0, 1.25)]);
    }

    #[test]
    fn bad_ranges_are_errors() {
        let mut q = query(Some(0), Aggregation::Mean, None);
        assert!(run(&q, &Vec::<Series>::new()).unwrap_err() == QueryError::Step);
        q.step = Some(1);
        assert!(run(&q, &Vec::<Series>::new()).unwrap_err() == QueryError::TooManySteps);
    }
}
