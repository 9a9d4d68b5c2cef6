//! The agent half of the single-node cluster.

pub mod container;
pub mod docker;
pub mod fetcher;
pub mod health;
pub mod network;
pub mod runtime;
pub mod sandbox;
