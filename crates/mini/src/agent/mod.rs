//! The agent half of the single-node cluster.

pub mod runtime;
