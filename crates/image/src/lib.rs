//! Container images for m3s: everything about images and nothing about Mesos.
//!
//! - [`reference`]: image references, normalised as Docker does (`busybox` is
//!   `docker.io/library/busybox:latest`);
//! - [`digest`]: sha256 digests, computed while bytes stream past;
//! - [`manifest`]: Docker schema 2 and OCI manifests and indexes, and the choice
//!   of this machine's platform;
//! - [`config`]: the image configuration, and users resolved in the image;
//! - [`unpack`]: layers (gzip, zstd or plain tar) into directories that
//!   overlayfs takes as lower layers, with whiteouts, confined to their directory;
//! - [`registry`]: a registry v2 client (anonymous, Basic and bearer-token auth,
//!   Docker `config.json` credentials);
//! - [`build`]: image builds (compose `build:`) delegated to buildah, loaded into the store;
//! - [`store`]: the content-addressed store under the agent's work directory,
//!   where a layer shared by several images is unpacked once and everything
//!   appears by atomic rename.
//!
//! The pure parts (references, manifests, platform choice, unpacking rules)
//! are plain functions tested without a network.

pub mod auth;
pub mod build;
pub mod config;
pub mod digest;
pub mod docker_build;
pub mod flatten;
pub mod load;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use reference::Reference;
pub use registry::{ClientConfig, RegistryClient, RegistryError};
pub use store::{Image, PullError, PullEvent, Store};
