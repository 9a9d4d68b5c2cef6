//! Management: the platform's configuration as code. A git repository holds
//! the desired state (compose projects under `<dir>/projects/<name>/compose.yaml`);
//! m3s plans each commit against what runs and applies it.
//!
//! - [`git`]: a mirror of the repository through the git CLI (argv only, never
//!   a shell), files read from a commit's tree, never from a working copy.
//! - [`plan`]: desired against current project specs: added, changed (with
//!   the services and fields), removed, unchanged. Pure.
//! - [`webhook`]: push notifications of GitHub, Gitea and GitLab, verified
//!   (HMAC-SHA256 or token, in constant time) and read. Pure.

pub mod git;
pub mod plan;
pub mod runbook;
pub mod webhook;

/// Where compose projects live in the repository, under its configured directory.
pub const PROJECTS_DIR: &str = "projects";
/// Where K3s cluster definitions live (`<name>.yaml`, the fields of `POST /api/k3s/v1/clusters`).
pub const K3S_DIR: &str = "k3s";
/// The compose file of a project.
pub const COMPOSE_FILE: &str = "compose.yaml";
