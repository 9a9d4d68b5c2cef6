//! The m3s framework engine.
//!
//! Desired state (projects, services, replicas) against actual state (Mesos
//! tasks), as a sans-IO state machine, plus its state store.

pub mod store;
