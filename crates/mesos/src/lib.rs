//! The Mesos v1 HTTP API, as Apache Mesos 1.11 speaks it on the wire.
//!
//! This crate is m3s's only place that knows Mesos JSON. It holds:
//!
//! - [`v1`]: serde types for the scheduler API ([`v1::scheduler::Call`],
//!   [`v1::scheduler::Event`]), the master operator API ([`v1::operator`]) and the
//!   messages they share, following Mesos's own JSON mapping (proto field names,
//!   enums as strings, bytes as base64, unknown keys ignored, unknown enum values
//!   kept by name in an `Unknown` variant).
//! - [`legacy`]: the older JSON endpoints (`/master/state`, `/slaves`, `/tasks`,
//!   `/metrics/snapshot`, `/monitor/statistics`) with their own encoding.
//! - [`recordio`]: the framing of Mesos event streams, encoder and incremental
//!   decoder, independent of HTTP chunk boundaries.
//! - [`subscription`]: the scheduler subscription as a sans-IO state machine
//!   (stream id, heartbeat watchdog, reconnect backoff, pending acknowledgements):
//!   events and time go in, calls and deadlines come out. No sockets, no clock.
//! - [`scheduler`] and [`operator`]: thin async clients over reqwest that drive
//!   the state machine and speak HTTP (leader redirects, retries, TLS, auth).
//! - [`zk`]: leader detection through ZooKeeper for `zk://` master URLs.
//!
//! The split keeps protocol decisions testable without a network: tests feed
//! [`subscription::Subscription`] a script of events and a virtual clock.

pub mod backoff;
pub mod error;
pub mod files;
pub mod legacy;
pub mod master;
pub mod operator;
pub mod private_file;
pub mod recordio;
pub mod scheduler;
pub mod secret;
pub mod subscription;
pub mod transport;
pub mod utc;
pub mod v1;
pub mod zk;

mod json;
