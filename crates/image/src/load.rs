//! Images from files instead of a registry (`m3s images load`), for machines
//! that reach none:
//!
//! - an OCI image layout: a directory with `index.json` and `blobs/`, or a tar
//!   of one (`skopeo copy … oci-archive:`, `podman save --format oci-archive`,
//!   `docker save` since Docker 25);
//! - a `docker save` archive of older Docker (`manifest.json`, the config and
//!   one tar per layer), plain or gzip- or zstd-compressed.
//!
//! An archive is unpacked first with the same untrusting unpacker as layers,
//! into a directory of the store's `layers/tmp/`. Every blob is checked
//! against its digest, and every layer goes through the same verified
//! unpacking and rename as a pull, so a load interrupted halfway leaves nothing
//! that is used.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{self, Descriptor, Parsed, Platform};
use crate::reference::Reference;
use crate::store::{Image, PullError, Store, parse_config, unpack_digesting};
use crate::unpack;

/// The OCI annotation that names an image in a layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25's) full name of the image.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<LayoutEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutEntry {
    #[serde(default)]
    media_type: Option<String>,
    digest: Digest,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Loads the images in `source` (a directory or an archive file). `name`
    /// names them when the source does not, or renames a single image.
    pub fn load(&self, source: &Path, name: Option<&Reference>) -> Result<Vec<Image>, PullError> {
        let _lock = self.lock_shared().map_err(|e| PullError::Io { path: self.root().join("lock"), source: e })?;
        let label = source.display().to_string();
        let invalid = |message: String| PullError::Invalid { reference: label.clone(), message };
        let meta = std::fs::metadata(source).map_err(|e| PullError::Io { path: source.to_owned(), source: e })?;
        let (dir, unpacked) = if meta.is_dir() {
            (source.to_owned(), None)
        } else {
            let tmp = self.tmp_dir()?;
            let file = File::open(source).map_err(|e| PullError::Io { path: source.to_owned(), source: e })?;
            let reader = unpack::decompress(file).map_err(|e| invalid(format!("not an archive this can read: {e}")))?;
            if let Err(e) = unpack::unpack(reader, &tmp) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(invalid(format!("not a tar archive this can unpack: {e}")));
            }
            (tmp.clone(), Some(tmp))
        };
        let result = if dir.join("index.json").is_file() {
            self.load_layout(&dir, &label, name)
        } else if dir.join("manifest.json").is_file() {
            self.load_docker_archive(&dir, &label, name)
        } else {
            Err(invalid("neither an OCI image layout (index.json) nor a docker save archive (manifest.json)".into()))
        };
        if let Some(tmp) = unpacked {
            let _ = std::fs::remove_dir_all(tmp);
        }
        result
    }

    fn load_layout(&self, dir: &Path, label: &str, name: Option<&Reference>) -> Result<Vec<Image>, PullError> {
        let invalid = |message: String| PullError::Invalid { reference: label.to_owned(), message };
        let index: LayoutIndex = serde_json::from_slice(&read(&regular_file(dir, Path::new("index.json"), label)?)?)
            .map_err(|e| invalid(format!("index.json: {e}")))?;
        if index.manifests.is_empty() {
            return Err(invalid("index.json lists no image".into()));
        }
        if name.is_some() && index.manifests.len() > 1 {
            return Err(invalid(format!("it holds {} images: --name renames only one", index.manifests.len())));
        }
        let mut images = Vec::new();
        for entry in &index.manifests {
            let reference = match name {
                Some(name) => name.clone(),
                None => layout_name(&entry.annotations).ok_or_else(|| {
                    invalid(format!("image {} has no name in index.json: pass --name REF", entry.digest))
                })?,
            };
            let label = format!("{label} ({reference})");
            let bytes = blob(dir, &entry.digest, &label)?;
            let manifest = match manifest::parse(entry.media_type.as_deref(), &bytes)
                .map_err(|e| PullError::Invalid { reference: label.clone(), message: e.to_string() })?
            {
                Parsed::Manifest(m) => (entry.digest.clone(), m),
                Parsed::Index(inner) => {
                    let chosen = manifest::select(&inner, &Platform::current())
                        .map_err(|e| PullError::Invalid { reference: label.clone(), message: e.to_string() })?;
                    let bytes = blob(dir, &chosen.digest, &label)?;
                    match manifest::parse(
                        Some(&chosen.media_type).filter(|m| !m.is_empty()).map(String::as_str),
                        &bytes,
                    ) {
                        Ok(Parsed::Manifest(m)) => (chosen.digest.clone(), m),
                        Ok(Parsed::Index(_)) => {
                            return Err(PullError::Invalid {
                                reference: label,
                                message: "an index inside an index".into(),
                            });
                        }
                        Err(e) => return Err(PullError::Invalid { reference: label, message: e.to_string() }),
                    }
                }
            };
            let (manifest_digest, manifest) = manifest;
            let config_bytes = blob(dir, &manifest.config.digest, &label)?;
            let layers = manifest
                .layers
                .iter()
                .map(|d| blob_path(dir, &d.digest, &label).map(|p| (p, Some(d))))
                .collect::<Result<Vec<_>, _>>()?;
            let size = manifest.layers.iter().map(|l| l.size).sum();
            images.push(self.import(
                &reference,
                &label,
                manifest_digest,
                &manifest.config.digest,
                &config_bytes,
                &layers,
                size,
            )?);
        }
        Ok(images)
    }

    fn load_docker_archive(&self, dir: &Path, label: &str, name: Option<&Reference>) -> Result<Vec<Image>, PullError> {
        let invalid = |message: String| PullError::Invalid { reference: label.to_owned(), message };
        let entries: Vec<DockerArchiveEntry> =
            serde_json::from_slice(&read(&regular_file(dir, Path::new("manifest.json"), label)?)?)
                .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        if entries.is_empty() {
            return Err(invalid("manifest.json lists no image".into()));
        }
        if name.is_some() && entries.len() > 1 {
            return Err(invalid(format!("it holds {} images: --name renames only one", entries.len())));
        }
        let mut images = Vec::new();
        for entry in &entries {
            let reference = match (name, entry.repo_tags.as_ref().and_then(|t| t.first())) {
                (Some(name), _) => name.clone(),
                (None, Some(tag)) => tag.parse().map_err(|e: crate::reference::ReferenceError| {
                    invalid(format!("RepoTags {tag:?}: {}", e.reason))
                })?,
                (None, None) => {
                    return Err(invalid(format!("image {} has no RepoTags: pass --name REF", entry.config)));
                }
            };
            let label = format!("{label} ({reference})");
            let config_bytes = read(&inside(dir, &entry.config, &label)?)?;
            // The config's file is named by its digest, which is Docker's image id.
            let config_digest = Digest::of(&config_bytes);
            let layers = entry
                .layers
                .iter()
                .map(|l| inside(dir, l, &label).map(|p| (p, None)))
                .collect::<Result<Vec<_>, _>>()?;
            let size = layers.iter().map(|(p, _)| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
            images.push(self.import(
                &reference,
                &label,
                config_digest.clone(),
                &config_digest,
                &config_bytes,
                &layers,
                size,
            )?);
        }
        Ok(images)
    }

    /// Records an image whose config and layer files are at hand: each layer
    /// not yet here is unpacked and checked (against its descriptor where there
    /// is one, and always against the config's diff id) before it is used.
    #[allow(clippy::too_many_arguments)]
    fn import(
        &self,
        reference: &Reference,
        label: &str,
        manifest_digest: Digest,
        config_digest: &Digest,
        config_bytes: &[u8],
        layers: &[(PathBuf, Option<&Descriptor>)],
        size: u64,
    ) -> Result<Image, PullError> {
        let config = parse_config(label, config_bytes, layers.len())?;
        self.write_config(config_digest, config_bytes)?;
        for ((path, desc), diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            if self.layer_dir(diff_id).is_dir() {
                continue;
            }
            let tmp = self.tmp_dir()?;
            let result = File::open(path)
                .map_err(|e| PullError::Io { path: path.clone(), source: e })
                .and_then(|file| {
                    unpack_digesting(file, &tmp).map_err(|source| PullError::Unpack {
                        reference: label.to_owned(),
                        layer: desc.map_or(diff_id, |d| &d.digest).clone(),
                        source,
                    })
                })
                .and_then(|unpacked| self.place_layer(label, &tmp, unpacked, *desc, diff_id));
            if tmp.exists() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            result?;
        }
        self.record(reference.to_string(), manifest_digest, config_digest.clone(), config, size)
    }
}

/// The name an OCI layout gives an image: containerd's full name, else the
/// ref.name annotation when it is a whole reference (skopeo writes what
/// followed the layout's path, `app/web:1`), not a bare tag.
fn layout_name(annotations: &BTreeMap<String, String>) -> Option<Reference> {
    if let Some(full) = annotations.get(CONTAINERD_NAME) {
        return full.parse().ok();
    }
    let name = annotations.get(REF_NAME)?;
    if !name.contains(':') && !name.contains('/') {
        return None; // a bare tag names no repository
    }
    name.parse().ok()
}

fn read(path: &Path) -> Result<Vec<u8>, PullError> {
    std::fs::read(path).map_err(|e| PullError::Io { path: path.to_owned(), source: e })
}

/// `relative` below `dir` as a regular file reached through no link: an
/// archive's `layer.tar -> /dev/zero` or `blobs -> /` is refused, not read.
fn regular_file(dir: &Path, relative: &Path, label: &str) -> Result<PathBuf, PullError> {
    let refused = |why: &str| PullError::Invalid {
        reference: label.to_owned(),
        message: format!("{}: {why}", relative.display()),
    };
    let mut path = dir.to_owned();
    let components: Vec<_> = relative.components().collect();
    for (i, component) in components.iter().enumerate() {
        let std::path::Component::Normal(part) = component else {
            return Err(refused("not a path inside the archive"));
        };
        path.push(part);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| PullError::Io { path: path.clone(), source: e })?;
        let last = i + 1 == components.len();
        if meta.file_type().is_symlink() || (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return Err(refused("not a regular file inside the archive (links are not followed)"));
        }
    }
    if components.is_empty() {
        return Err(refused("names nothing"));
    }
    Ok(path)
}

fn blob_path(dir: &Path, digest: &Digest, label: &str) -> Result<PathBuf, PullError> {
    regular_file(dir, &Path::new("blobs/sha256").join(digest.hex()), label)
}

/// A small blob (a manifest or a config), checked against its digest.
fn blob(dir: &Path, digest: &Digest, label: &str) -> Result<Vec<u8>, PullError> {
    let bytes = read(&blob_path(dir, digest, label)?)?;
    let got = Digest::of(&bytes);
    if &got != digest {
        return Err(PullError::Digest {
            reference: label.to_owned(),
            layer: digest.clone(),
            what: "the blob's",
            want: digest.clone(),
            got,
        });
    }
    Ok(bytes)
}

/// A file manifest.json names, which must be a regular file inside the archive.
fn inside(dir: &Path, relative: &str, label: &str) -> Result<PathBuf, PullError> {
    regular_file(dir, Path::new(relative), label)
}
