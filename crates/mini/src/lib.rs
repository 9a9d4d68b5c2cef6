//! `m3s mini`: an embedded, single-node cluster that looks like an Apache Mesos
//! 1.11 master and agent on the wire.

pub mod agent;
pub mod master;
pub mod resources;
