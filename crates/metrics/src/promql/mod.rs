//! PromQL subset: parser and evaluator (see docs/metrics.md for the subset).
