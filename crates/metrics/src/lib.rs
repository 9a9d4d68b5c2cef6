//! M3trics: ingestion, storage, queries and reports.
//!
//! The data model is Prometheus's: a series is a sorted label set (its name in
//! `__name__`) with samples of `(milliseconds, f64)`. Line-protocol points map
//! onto it as VictoriaMetrics maps them: `{measurement}_{field}` with the tags
//! as labels.

pub mod alert;
pub mod anomaly;
pub mod collect;
pub mod errors;
pub mod exposition;
pub mod line;
pub mod model;
pub mod promql;
pub mod query;
pub mod remote_write;
pub mod report;
pub mod rules_file;
pub mod store;
