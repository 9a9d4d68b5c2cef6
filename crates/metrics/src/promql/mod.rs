//! The PromQL subset m3s answers, with Prometheus 2.42's semantics:
//!
//! - literals: numbers (`1`, `1.5e3`, `0x1f`, `Inf`, `NaN`), strings, durations
//!   (`ms s m h d w y`, combined as in `1h30m`);
//! - selectors: `name`, `name{l="v", l!="v", l=~"re", l!~"re"}`, `{__name__=~"..."}`,
//!   range selectors `[5m]`, the `offset` modifier; an instant selector takes the
//!   latest sample within 5 minutes (the lookback delta), a range selector the
//!   samples in `[t - range, t]`; stale markers are honoured;
//! - functions: `rate`, `irate`, `increase`, `delta`, `idelta`, `avg_over_time`,
//!   `min_over_time`, `max_over_time`, `sum_over_time`, `count_over_time`,
//!   `last_over_time`, `abs`, `ceil`, `floor`, `round`, `sqrt`, `exp`, `ln`,
//!   `log2`, `log10`, `clamp`, `clamp_min`, `clamp_max`, `time`, `scalar`, `vector`;
//! - aggregations: `sum`, `avg`, `min`, `max`, `count`, `topk`, `bottomk`, with
//!   `by (...)` or `without (...)` before or after the argument;
//! - binary operators `+ - * / % ^`, comparisons `== != > < >= <=` (with and
//!   without `bool`), `and`, `or`, `unless`, between scalars and vectors, and
//!   between vectors one-to-one with `on (...)` / `ignoring (...)`; unary minus.
//!
//! Not supported (a parse error saying so): subqueries, the `@` modifier,
//! `group_left`/`group_right`, and functions and aggregations not listed.

mod eval;
mod json;
mod lexer;
mod parser;

use std::fmt;

pub use eval::{DEFAULT_MAX_ANSWER_POINTS, EvalError, Value, eval_instant, eval_range};
pub use json::{format_float, to_prometheus_json, write_prometheus_json};
pub use lexer::parse_duration;
pub use parser::{AggOp, BinOp, Expr, Func, Grouping, Selector, VectorMatching, parse, parse_selector};

/// How far back an instant selector looks for a sample.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// A query that does not parse: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(src: &str, pos: usize, message: impl Into<String>) -> ParseError {
        let pos = pos.min(src.len());
        let before = &src[..pos];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError { line, column, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: parse error: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}
