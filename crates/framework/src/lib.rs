//! The m3s framework engine.
//!
//! Desired state (projects, services, replicas) against actual state (Mesos
//! tasks): [`engine`] is the sans-IO state machine, [`matching`] packs tasks
//! into offers, [`taskinfo`] builds Mesos tasks, [`translate`] turns compose
//! projects into [`spec`]s, [`store`] persists the engine's records.

pub mod driver;
pub mod engine;
pub mod matching;
pub mod spec;
pub mod store;
pub mod taskinfo;
pub mod translate;
