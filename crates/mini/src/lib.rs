//! `m3s mini`: an embedded, single-node cluster that looks like an Apache Mesos
//! 1.11 master and agent on the wire, so that the same frameworks (and third-party
//! Mesos clients such as pymesos and avmesos-cli) run on it and on a real cluster.
//!
//! - [`master`]: the master as a sans-IO state machine (subscriptions, offers,
//!   status updates, reconciliation, failover). No IO, no clock.
//! - [`agent::runtime`]: command tasks as processes, each under a small
//!   supervisor process that outlives m3s, so restarts re-adopt running tasks.
//! - [`cluster`]: the driver joining the two, with the checkpoint and timers.
//! - [`http`]: the scheduler, operator, legacy and agent endpoints.
//! - [`resources`]: resource parsing and arithmetic.

pub mod agent;
pub mod checkpoint;
pub mod cluster;
pub mod dns;
pub mod http;
pub mod master;
pub mod resources;
pub mod signals;

/// The Mesos version m3s mini reports. Plain dotted integers: pymesos parses
/// each part with `int()`.
pub const MESOS_VERSION: &str = "1.11.0";
