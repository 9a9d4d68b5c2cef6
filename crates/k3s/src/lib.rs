//! The K3s framework: Kubernetes clusters as Mesos tasks, as AVENTER's
//! mesos-m3s runs them: a datastore, then servers, then agents, each started
//! once the one before is healthy.
//!
//! - [`cluster`]: what a cluster is (counts, how k3s runs, resources) and its checks. Pure.
//! - [`plan`]: a cluster and what is known of its running tasks to the engine's
//!   [`framework::spec::ProjectSpec`]. Pure: the framework engine does the scheduling.
//! - [`kube`]: the small Kubernetes API client the framework needs (kubeconfig,
//!   nodes, version, cordon), on the binary's one rustls setup.
//! - [`controller`]: the framework at work: the engine's driver, cluster records in its
//!   store, and the watch that judges health (datastore `/health`, Ready nodes by task id).

pub mod cluster;
pub mod controller;
pub mod kube;
pub mod plan;

pub use cluster::{ClusterSpec, Role, Settings};
pub use controller::{ClusterStatus, K3s, K3sError};
