//! PromQL evaluation over a `Source`, step by step, with each selector's data
//! fetched once for the whole query.

use std::collections::HashMap;

use super::LOOKBACK_MS;
use super::parser::{AggOp, BinOp, Expr, Func, Grouping, Selector, VectorMatching};
use crate::model::{Labels, NAME_LABEL, Sample, Series, Source};

/// Prometheus's staleness marker: a NaN with this bit pattern ends a series.
const STALE_NAN: u64 = 0x7ff0000000000002;

/// Most points a range query may return per series.
pub const MAX_POINTS: i64 = 11_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    Vector(Vec<(Labels, Sample)>),
    Matrix(Vec<Series>),
    String { t: i64, s: String },
}

/// Why a query cannot be evaluated, in Prometheus's words where it has them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("zero or negative query resolution step widths are not accepted")]
    Step,
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    Resolution,
    #[error(
        "the answer would have more than {0} points (--metrics-max-query-points): narrow the selector, aggregate, or raise the step"
    )]
    TooManyPoints(usize),
    #[error("invalid expression type \"{0}\" for range query, must be Scalar or instant Vector")]
    RangeQueryType(&'static str),
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    #[error(transparent)]
    Select(#[from] crate::model::SelectError),
    #[error("unary minus needs a scalar or an instant vector")]
    UnaryMinus,
    #[error("aggregations need an instant vector")]
    AggregationOperand,
    #[error("expected a scalar")]
    ExpectedScalar,
    #[error("{0} needs an instant vector")]
    FunctionOperand(String),
    #[error("binary operators need scalars or instant vectors")]
    BinaryOperands,
    #[error(
        "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{first}, {second}];many-to-many matching not allowed: matching labels must be unique on one side"
    )]
    ManyToMany { group: Labels, side: &'static str, first: Labels, second: Labels },
}

/// Evaluates at one instant (the Prometheus `/api/v1/query`).
pub fn eval_instant(expr: &Expr, source: &dyn Source, t: i64) -> Result<Value, EvalError> {
    let data = fetch(expr, source, t, t)?;
    let mut ev = Evaluator { data: &data, next_selector: 0 };
    Ok(match ev.eval(expr, t)? {
        Val::Scalar(v) => Value::Scalar { t, v },
        Val::Str(s) => Value::String { t, s },
        Val::Vector(mut v) => {
            check_unique(&v)?;
            if !is_ordered(expr) {
                v.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Value::Vector(v.into_iter().map(|(l, v)| (l, Sample { t, v })).collect())
        }
        Val::Matrix(m) => Value::Matrix(
            m.into_iter()
                .map(|(labels, samples)| Series { labels, samples })
                .filter(|s| !s.samples.is_empty())
                .collect(),
        ),
    })
}

/// Default of the points a range query may answer in all: about 30 MB of JSON.
pub const DEFAULT_MAX_ANSWER_POINTS: usize = 1_000_000;

/// Evaluates at every step from `start` to `end` (the Prometheus `/api/v1/query_range`):
/// one series per label set, sorted by labels. An answer growing past
/// `max_points` points is given up as soon as it does.
pub fn eval_range(
    expr: &Expr,
    source: &dyn Source,
    start: i64,
    end: i64,
    step: i64,
    max_points: usize,
) -> Result<Vec<Series>, EvalError> {
    if step <= 0 {
        return Err(EvalError::Step);
    }
    if (end - start) / step > MAX_POINTS {
        return Err(EvalError::Resolution);
    }
    let data = fetch(expr, source, start, end)?;
    let too_many = || EvalError::TooManyPoints(max_points);
    if let Expr::Selector(sel) = expr {
        return range_selector(sel, &data[0], start, end, step, max_points).ok_or_else(too_many);
    }
    // Output series by label set; the same label sets come back at every step.
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
    let steps = ((end - start) / step + 1) as usize;
    let mut points = 0usize;
    let mut push = |l: Labels, sample: Sample| {
        points += 1;
        let i = *index.entry(l.clone()).or_insert_with(|| {
            out.push((l, Vec::with_capacity(steps)));
            out.len() - 1
        });
        out[i].1.push(sample);
        points <= max_points
    };
    let mut t = start;
    while t <= end {
        let mut ev = Evaluator { data: &data, next_selector: 0 };
        match ev.eval(expr, t)? {
            Val::Scalar(v) => {
                if !push(Labels::default(), Sample { t, v }) {
                    return Err(too_many());
                }
            }
            Val::Vector(v) => {
                check_unique(&v)?;
                for (l, v) in v {
                    if !push(l, Sample { t, v }) {
                        return Err(too_many());
                    }
                }
            }
            Val::Matrix(_) => {
                return Err(EvalError::RangeQueryType("range vector"));
            }
            Val::Str(_) => {
                return Err(EvalError::RangeQueryType("string"));
            }
        }
        t += step;
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(labels, samples)| Series { labels, samples }).collect())
}

/// A plain selector over a range (what dashboards ask most): one pass per series
/// with a cursor, instead of a search per step. `None` past `max_points` points.
fn range_selector(
    sel: &Selector,
    series: &[Series],
    start: i64,
    end: i64,
    step: i64,
    max_points: usize,
) -> Option<Vec<Series>> {
    let mut points = 0usize;
    let mut out: Vec<Series> = Vec::new();
    for s in series {
        let mut samples = Vec::new();
        let mut i = 0;
        let mut t = start;
        while t <= end {
            let at = t - sel.offset;
            while i < s.samples.len() && s.samples[i].t <= at {
                i += 1;
            }
            if let Some(last) = i.checked_sub(1).map(|j| s.samples[j])
                && last.t >= at - LOOKBACK_MS
                && last.v.to_bits() != STALE_NAN
            {
                samples.push(Sample { t, v: last.v });
            }
            t += step;
        }
        points += samples.len();
        if points > max_points {
            return None;
        }
        if !samples.is_empty() {
            out.push(Series { labels: s.labels.clone(), samples });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Some(out)
}

fn check_unique(v: &[(Labels, f64)]) -> Result<(), EvalError> {
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    for (l, _) in v {
        if !seen.insert(l) {
            return Err(EvalError::DuplicateLabelset);
        }
    }
    Ok(())
}

/// topk and bottomk answer in their own order.
fn is_ordered(expr: &Expr) -> bool {
    matches!(expr, Expr::Aggregate { op: AggOp::Topk | AggOp::Bottomk, .. })
}

/// Each selector's series, fetched once for the whole query, in the order a
/// depth-first walk meets the selectors (the evaluator walks the same way).
fn fetch(expr: &Expr, source: &dyn Source, start: i64, end: i64) -> Result<Vec<Vec<Series>>, EvalError> {
    let mut out = Vec::new();
    let mut failed = None;
    walk_selectors(expr, &mut |sel, range| {
        if failed.is_some() {
            return;
        }
        let back = range.unwrap_or(LOOKBACK_MS);
        match source.select(&sel.matchers, start - sel.offset - back, end - sel.offset) {
            Ok(mut series) => {
                for s in &mut series {
                    if range.is_some() {
                        s.samples.retain(|x| x.v.to_bits() != STALE_NAN);
                    }
                }
                out.push(series);
            }
            Err(e) => failed = Some(EvalError::Select(e)),
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn walk_selectors(expr: &Expr, f: &mut dyn FnMut(&Selector, Option<i64>)) {
    match expr {
        Expr::Selector(s) => f(s, None),
        Expr::Range(s, r) => f(s, Some(*r)),
        Expr::Call(_, args) => args.iter().for_each(|a| walk_selectors(a, f)),
        Expr::Aggregate { param, expr, .. } => {
            if let Some(p) = param {
                walk_selectors(p, f);
            }
            walk_selectors(expr, f);
        }
        Expr::Binary { lhs, rhs, .. } => {
            walk_selectors(lhs, f);
            walk_selectors(rhs, f);
        }
        Expr::Neg(e) => walk_selectors(e, f),
        Expr::Number(_) | Expr::Str(_) => {}
    }
}

enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<(Labels, f64)>),
    Matrix(Vec<(Labels, Vec<Sample>)>),
}

struct Evaluator<'a> {
    data: &'a [Vec<Series>],
    next_selector: usize,
}

impl Evaluator<'_> {
    fn take_selector(&mut self) -> &[Series] {
        let i = self.next_selector;
        self.next_selector += 1;
        &self.data[i]
    }

    fn eval(&mut self, expr: &Expr, t: i64) -> Result<Val, EvalError> {
        Ok(match expr {
            Expr::Number(n) => Val::Scalar(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Selector(sel) => {
                let at = t - sel.offset;
                let series = self.take_selector();
                Val::Vector(
                    series
                        .iter()
                        .filter_map(|s| {
                            let i = s.samples.partition_point(|x| x.t <= at);
                            let last = s.samples[..i].last()?;
                            (last.t >= at - LOOKBACK_MS && last.v.to_bits() != STALE_NAN)
                                .then(|| (s.labels.clone(), last.v))
                        })
                        .collect(),
                )
            }
            Expr::Range(sel, range) => {
                let end = t - sel.offset;
                let start = end - range;
                let series = self.take_selector();
                Val::Matrix(
                    series
                        .iter()
                        .map(|s| (s.labels.clone(), window(&s.samples, start, end).to_vec()))
                        .filter(|(_, w)| !w.is_empty())
                        .collect(),
                )
            }
            Expr::Neg(inner) => match self.eval(inner, t)? {
                Val::Scalar(v) => Val::Scalar(-v),
                Val::Vector(v) => Val::Vector(v.into_iter().map(|(l, v)| (l.without_name(), -v)).collect()),
                _ => return Err(EvalError::UnaryMinus),
            },
            Expr::Call(func, args) => self.call(*func, args, t)?,
            Expr::Aggregate { op, param, expr, grouping } => {
                let param = match param {
                    Some(p) => Some(self.scalar(p, t)?),
                    None => None,
                };
                let Val::Vector(v) = self.eval(expr, t)? else {
                    return Err(EvalError::AggregationOperand);
                };
                Val::Vector(aggregate(*op, param, v, grouping))
            }
            Expr::Binary { op, lhs, rhs, return_bool, matching } => {
                let l = self.eval(lhs, t)?;
                let r = self.eval(rhs, t)?;
                binary(*op, l, r, *return_bool, matching)?
            }
        })
    }

    fn scalar(&mut self, e: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(EvalError::ExpectedScalar),
        }
    }

    fn call(&mut self, func: Func, args: &[Expr], t: i64) -> Result<Val, EvalError> {
        use Func::*;
        match func {
            Time => return Ok(Val::Scalar(t as f64 / 1000.0)),
            Vector => {
                let v = self.scalar(&args[0], t)?;
                return Ok(Val::Vector(vec![(Labels::default(), v)]));
            }
            Scalar => {
                let Val::Vector(v) = self.eval(&args[0], t)? else { unreachable!("type-checked") };
                return Ok(Val::Scalar(if v.len() == 1 { v[0].1 } else { f64::NAN }));
            }
            _ => {}
        }
        if let Expr::Range(sel, range) = &args[0] {
            let Val::Matrix(m) = self.eval(&args[0], t)? else { unreachable!("a range selector gives a matrix") };
            let range_end = t - sel.offset;
            let range_start = range_end - range;
            let keep_name = func == LastOverTime;
            let out = m
                .into_iter()
                .filter_map(|(labels, samples)| {
                    let v = range_function(func, &samples, range_start, range_end, *range)?;
                    Some((if keep_name { labels } else { labels.without_name() }, v))
                })
                .collect();
            return Ok(Val::Vector(out));
        }
        let Val::Vector(v) = self.eval(&args[0], t)? else {
            return Err(EvalError::FunctionOperand(format!("{func:?}")));
        };
        let extra: Vec<f64> = args[1..].iter().map(|a| self.scalar(a, t)).collect::<Result<_, _>>()?;
        let f = |x: f64| -> f64 {
            match func {
                Abs => x.abs(),
                Ceil => x.ceil(),
                Floor => x.floor(),
                Round => {
                    // Go's math.Floor(x*inv + 0.5) / inv, as Prometheus rounds.
                    let to = extra.first().copied().unwrap_or(1.0);
                    let inv = 1.0 / to;
                    (x * inv + 0.5).floor() / inv
                }
                Sqrt => x.sqrt(),
                Exp => x.exp(),
                Ln => x.ln(),
                Log2 => x.log2(),
                Log10 => x.log10(),
                ClampMin => x.max(extra[0]),
                ClampMax => x.min(extra[0]),
                Clamp => x.max(extra[0]).min(extra[1]),
                _ => unreachable!("range and special functions handled above"),
            }
        };
        if func == Clamp && extra[0] > extra[1] {
            return Ok(Val::Vector(Vec::new()));
        }
        Ok(Val::Vector(v.into_iter().map(|(l, x)| (l.without_name(), f(x))).collect()))
    }
}

/// Samples with `start <= t <= end`.
fn window(samples: &[Sample], start: i64, end: i64) -> &[Sample] {
    let lo = samples.partition_point(|s| s.t < start);
    let hi = samples.partition_point(|s| s.t <= end);
    &samples[lo..hi.max(lo)]
}

fn range_function(func: Func, s: &[Sample], range_start: i64, range_end: i64, range: i64) -> Option<f64> {
    use Func::*;
    match func {
        Rate => extrapolated_rate(s, range_start, range_end, range, true, true),
        Increase => extrapolated_rate(s, range_start, range_end, range, true, false),
        Delta => extrapolated_rate(s, range_start, range_end, range, false, false),
        Irate | Idelta => {
            if s.len() < 2 {
                return None;
            }
            let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
            let mut v = if func == Irate && last.v < prev.v { last.v } else { last.v - prev.v };
            if func == Irate {
                let interval = (last.t - prev.t) as f64 / 1000.0;
                if interval == 0.0 {
                    return None;
                }
                v /= interval;
            }
            Some(v)
        }
        AvgOverTime => {
            let (mut mean, mut count) = (0.0f64, 0.0f64);
            for x in s {
                count += 1.0;
                if mean.is_infinite() {
                    if x.v.is_infinite() && (mean > 0.0) == (x.v > 0.0) {
                        continue;
                    }
                    if !x.v.is_infinite() && !x.v.is_nan() {
                        continue;
                    }
                }
                mean += x.v / count - mean / count;
            }
            Some(mean)
        }
        MinOverTime => Some(s.iter().skip(1).fold(s[0].v, |m, x| if x.v < m || m.is_nan() { x.v } else { m })),
        MaxOverTime => Some(s.iter().skip(1).fold(s[0].v, |m, x| if x.v > m || m.is_nan() { x.v } else { m })),
        SumOverTime => Some(s.iter().map(|x| x.v).sum()),
        CountOverTime => Some(s.len() as f64),
        LastOverTime => Some(s[s.len() - 1].v),
        _ => None,
    }
}

/// Prometheus's extrapolatedRate (promql/functions.go).
fn extrapolated_rate(
    s: &[Sample],
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        let mut last_value = 0.0;
        let mut correction = 0.0;
        for x in s {
            if x.v < last_value {
                correction += last_value;
            }
            last_value = x.v;
        }
        result += correction;
    }
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let average = sampled / (s.len() - 1) as f64;
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average / 2.0 };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    result *= interval / sampled;
    if rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

fn group_key(labels: &Labels, grouping: &Grouping) -> Labels {
    match grouping {
        Grouping::None => Labels::default(),
        Grouping::By(names) => Labels::new(
            labels.iter().filter(|(k, _)| names.iter().any(|n| n == k)).map(|(k, v)| (k.into(), v.into())).collect(),
        ),
        Grouping::Without(names) => Labels::new(
            labels
                .iter()
                .filter(|(k, _)| *k != NAME_LABEL && !names.iter().any(|n| n == k))
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ),
    }
}

fn aggregate(op: AggOp, param: Option<f64>, v: Vec<(Labels, f64)>, grouping: &Grouping) -> Vec<(Labels, f64)> {
    // Groups in first-seen order, as Prometheus keeps them.
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Vec<(Labels, f64)>> = HashMap::new();
    for (labels, value) in v {
        let key = group_key(&labels, grouping);
        let members = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        members.push((labels, value));
    }
    let mut out = Vec::new();
    for key in order {
        let members = groups.remove(&key).expect("grouped above");
        match op {
            AggOp::Topk | AggOp::Bottomk => {
                let k = param.unwrap_or(0.0);
                if k.is_nan() || k < 1.0 {
                    continue;
                }
                let k = (k as usize).min(members.len());
                let mut sorted = members;
                let top = op == AggOp::Topk;
                // NaN sorts last either way.
                sorted.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if top => b.1.partial_cmp(&a.1).expect("not NaN"),
                    _ => a.1.partial_cmp(&b.1).expect("not NaN"),
                });
                out.extend(sorted.into_iter().take(k));
            }
            _ => {
                let values: Vec<f64> = members.iter().map(|m| m.1).collect();
                let v = match op {
                    AggOp::Sum => values.iter().sum(),
                    AggOp::Count => values.len() as f64,
                    AggOp::Min => {
                        values.iter().skip(1).fold(values[0], |m, &x| if m > x || m.is_nan() { x } else { m })
                    }
                    AggOp::Max => {
                        values.iter().skip(1).fold(values[0], |m, &x| if m < x || m.is_nan() { x } else { m })
                    }
                    AggOp::Avg => {
                        let mut mean = values[0];
                        let mut count = 1.0;
                        for &x in &values[1..] {
                            count += 1.0;
                            if mean.is_infinite() {
                                if x.is_infinite() && (mean > 0.0) == (x > 0.0) {
                                    continue;
                                }
                                if !x.is_infinite() && !x.is_nan() {
                                    continue;
                                }
                            }
                            mean += x / count - mean / count;
                        }
                        mean
                    }
                    AggOp::Topk | AggOp::Bottomk => unreachable!("handled above"),
                };
                out.push((key, v));
            }
        }
    }
    out
}

/// The value of `l op r`, and whether a comparison holds.
fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => unreachable!("set operators are vector-only"),
    }
}

fn binary(op: BinOp, l: Val, r: Val, return_bool: bool, matching: &VectorMatching) -> Result<Val, EvalError> {
    let drop_name = !op.is_comparison() || return_bool;
    Ok(match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            let (v, keep) = apply(op, a, b);
            Val::Scalar(if op.is_comparison() { if keep { 1.0 } else { 0.0 } } else { v })
        }
        (Val::Vector(v), Val::Scalar(s)) => Val::Vector(vector_scalar(op, v, s, false, return_bool, drop_name)),
        (Val::Scalar(s), Val::Vector(v)) => Val::Vector(vector_scalar(op, v, s, true, return_bool, drop_name)),
        (Val::Vector(a), Val::Vector(b)) => Val::Vector(vector_vector(op, a, b, return_bool, matching)?),
        _ => return Err(EvalError::BinaryOperands),
    })
}

fn vector_scalar(
    op: BinOp,
    v: Vec<(Labels, f64)>,
    s: f64,
    swap: bool,
    return_bool: bool,
    drop_name: bool,
) -> Vec<(Labels, f64)> {
    v.into_iter()
        .filter_map(|(labels, x)| {
            let (l, r) = if swap { (s, x) } else { (x, s) };
            let (mut value, keep) = apply(op, l, r);
            if op.is_comparison() && swap {
                value = x;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                return None;
            }
            Some((if drop_name { labels.without_name() } else { labels }, value))
        })
        .collect()
}

fn signature(labels: &Labels, matching: &VectorMatching) -> Labels {
    if matching.on {
        Labels::new(
            labels
                .iter()
                .filter(|(k, _)| matching.labels.iter().any(|n| n == k))
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    } else {
        Labels::new(
            labels
                .iter()
                .filter(|(k, _)| *k != NAME_LABEL && !matching.labels.iter().any(|n| n == k))
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

fn vector_vector(
    op: BinOp,
    lhs: Vec<(Labels, f64)>,
    rhs: Vec<(Labels, f64)>,
    return_bool: bool,
    matching: &VectorMatching,
) -> Result<Vec<(Labels, f64)>, EvalError> {
    if op.is_set() {
        let right: std::collections::HashSet<Labels> = rhs.iter().map(|(l, _)| signature(l, matching)).collect();
        return Ok(match op {
            BinOp::And => lhs.into_iter().filter(|(l, _)| right.contains(&signature(l, matching))).collect(),
            BinOp::Unless => lhs.into_iter().filter(|(l, _)| !right.contains(&signature(l, matching))).collect(),
            _ => {
                let left: std::collections::HashSet<Labels> = lhs.iter().map(|(l, _)| signature(l, matching)).collect();
                let mut out = lhs;
                out.extend(rhs.into_iter().filter(|(l, _)| !left.contains(&signature(l, matching))));
                out
            }
        });
    }
    let mut right: HashMap<Labels, (Labels, f64)> = HashMap::with_capacity(rhs.len());
    for (labels, v) in rhs {
        let sig = signature(&labels, matching);
        if let Some((other, _)) = right.get(&sig) {
            return Err(EvalError::ManyToMany { group: sig, side: "right", first: other.clone(), second: labels });
        }
        right.insert(sig, (labels, v));
    }
    let mut matched: HashMap<Labels, Labels> = HashMap::new();
    let mut out = Vec::new();
    for (labels, l) in lhs {
        let sig = signature(&labels, matching);
        let Some((_, r)) = right.get(&sig) else { continue };
        if let Some(previous) = matched.insert(sig.clone(), labels.clone()) {
            return Err(EvalError::ManyToMany { group: sig, side: "left", first: previous, second: labels });
        }
        let (mut value, keep) = apply(op, l, *r);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut result = if !op.is_comparison() || return_bool { labels.without_name() } else { labels };
        result = if matching.on {
            Labels::new(
                result.into_pairs().into_iter().filter(|(k, _)| matching.labels.iter().any(|n| n == k)).collect(),
            )
        } else {
            Labels::new(
                result.into_pairs().into_iter().filter(|(k, _)| !matching.labels.iter().any(|n| n == k)).collect(),
            )
        };
        out.push((result, value));
    }
    Ok(out)
}
