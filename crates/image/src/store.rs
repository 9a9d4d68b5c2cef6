//! The content-addressed image store, in a directory of its own:
//!
//! ```text
//! blobs/sha256/<hex>      image configs (small documents, verified)
//! layers/sha256/<hex>/    unpacked layers by diff id: a layer shared by images is here once
//! layers/tmp/<uuid>/      a layer being unpacked; renamed into place once verified
//! images/<hex>.json       one record per reference (hex: sha256 of the reference)
//! lock                    pulls hold it shared, prune exclusive
//! ```
//!
//! Nothing half-made is ever used: a layer appears by rename after both its
//! compressed and its uncompressed digests were checked, a record by rename
//! after all its layers are in place. What a crash (or a full disk) leaves in
//! `layers/tmp/` is removed at the next open.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::digest::{Digest, Hashing};
use crate::manifest::{Descriptor, Platform};
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::unpack;

/// Layers fetched at once: enough to fill a link, few enough for a small machine.
const CONCURRENT_LAYERS: usize = 3;

/// An image in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The normalized reference it was pulled as (`docker.io/library/busybox:latest`).
    pub reference: String,
    pub manifest: Digest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Diff ids, lowest layer first.
    pub layers: Vec<Digest>,
    /// Compressed size of the layers, as the registry sent them.
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub pulled_at: u64,
}

/// What a pull reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    Resolved {
        reference: String,
        layers: usize,
        bytes: u64,
    },
    /// A layer already in the store.
    Present {
        layer: Digest,
    },
    /// Bytes of a layer received so far, of its compressed size.
    Progress {
        layer: Digest,
        received: u64,
        size: u64,
    },
    Done {
        layer: Digest,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("{reference}: layer {layer}: {source}")]
    Unpack { reference: String, layer: Digest, source: unpack::UnpackError },
    #[error("{reference}: layer {layer}: {what} digest is {got}, expected {want}")]
    Digest { reference: String, layer: Digest, what: &'static str, want: Digest, got: Digest },
    #[error("image store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating) the store at `root` and removes what interrupted pulls left.
    pub fn open(root: &Path) -> io::Result<Store> {
        for dir in ["blobs/sha256", "layers/sha256", "layers/tmp", "images"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let store = Store { root: root.to_owned() };
        // Only when no pull runs (the shared lock of a pull in another process keeps them).
        if let Some(_lock) = store.try_lock_exclusive()? {
            for entry in std::fs::read_dir(root.join("layers/tmp"))? {
                let _ = std::fs::remove_dir_all(entry?.path());
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the unpacked layer with this diff id is (or would be).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers/sha256").join(diff_id.hex())
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.root.join("images").join(format!("{}.json", Digest::of(reference.as_bytes()).hex()))
    }

    /// The image pulled as `reference`, if it is here whole.
    pub fn get(&self, reference: &Reference) -> Option<Image> {
        let image: Image =
            serde_json::from_slice(&std::fs::read(self.record_path(&reference.to_string())).ok()?).ok()?;
        image.layers.iter().all(|l| self.layer_dir(l).is_dir()).then_some(image)
    }

    /// Forgets the image recorded as `reference`; its layers stay until
    /// [`Store::prune`]. False when there was none.
    pub fn remove(&self, reference: &Reference) -> io::Result<bool> {
        match std::fs::remove_file(self.record_path(&reference.to_string())) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every image in the store, by reference.
    pub fn list(&self) -> io::Result<Vec<Image>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.root.join("images"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(image) = serde_json::from_slice::<Image>(&std::fs::read(&path)?)
            {
                out.push(image);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Pulls `reference` for this machine's platform: what is already here is not fetched again.
    pub async fn pull(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<Image, PullError> {
        let _lock = self.lock_shared().map_err(|source| PullError::Io { path: self.root.join("lock"), source })?;
        let name = reference.to_string();
        let resolved = client.resolve(reference, &Platform::current()).await?;
        let manifest = resolved.manifest;
        let config_bytes = client.document(reference, &manifest.config.digest, "the image config").await?;
        let config = parse_config(&name, &config_bytes, manifest.layers.len())?;
        self.write_config(&manifest.config.digest, &config_bytes)?;
        let size = manifest.layers.iter().map(|l| l.size).sum();
        progress(PullEvent::Resolved { reference: name.clone(), layers: manifest.layers.len(), bytes: size });
        let work: Vec<(Descriptor, Digest)> =
            manifest.layers.iter().cloned().zip(config.rootfs.diff_ids.iter().cloned()).collect();
        let results: Vec<Result<(), PullError>> = futures_util::stream::iter(work)
            .map(|(desc, diff_id)| async move {
                if self.layer_dir(&diff_id).is_dir() {
                    progress(PullEvent::Present { layer: diff_id });
                    return Ok(());
                }
                self.fetch_layer(client, reference, &desc, &diff_id, progress).await?;
                progress(PullEvent::Done { layer: diff_id });
                Ok(())
            })
            .buffer_unordered(CONCURRENT_LAYERS)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, PullError>>()?;
        self.record(name, resolved.digest, manifest.config.digest.clone(), config, size)
    }

    /// Streams one layer from the registry into `layers/tmp/`, digesting the
    /// compressed and the uncompressed bytes on the way, and renames it into
    /// place only if both digests are right.
    async fn fetch_layer(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        desc: &Descriptor,
        diff_id: &Digest,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), PullError> {
        let name = reference.to_string();
        let tmp = self.tmp_dir()?;
        let result = async {
            let mut res = client.blob(reference, &desc.digest, "a layer").await?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(16);
            let dest = tmp.clone();
            let unpacker = tokio::task::spawn_blocking(move || {
                unpack_digesting(ChannelReader { rx: &mut rx, current: bytes::Bytes::new() }, &dest)
            });
            let mut received = 0u64;
            let mut sent = Ok(());
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) => {
                        received += chunk.len() as u64;
                        progress(PullEvent::Progress { layer: diff_id.clone(), received, size: desc.size });
                        if tx.send(Ok(chunk)).await.is_err() {
                            break; // the unpacker stopped: its error says why
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let message = format!("the download of layer {} broke off: {e}", desc.digest);
                        let _ = tx.send(Err(io::Error::other(message.clone()))).await;
                        sent = Err(RegistryError::Unreachable { registry: reference.registry.clone(), message });
                        break;
                    }
                }
            }
            drop(tx);
            let unpacked =
                unpacker.await.map_err(|e| PullError::Invalid { reference: name.clone(), message: e.to_string() })?;
            sent?;
            let unpacked = unpacked.map_err(|source| PullError::Unpack {
                reference: name.clone(),
                layer: desc.digest.clone(),
                source,
            })?;
            self.place_layer(&name, &tmp, unpacked, Some(desc), diff_id)
        }
        .await;
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Checks an unpacked layer's digests (the compressed one against `desc`
    /// when there is one, the uncompressed against `diff_id`) and renames it
    /// from `tmp` into place.
    pub(crate) fn place_layer(
        &self,
        name: &str,
        tmp: &Path,
        unpacked: Unpacked,
        desc: Option<&Descriptor>,
        diff_id: &Digest,
    ) -> Result<(), PullError> {
        let layer = desc.map_or(diff_id, |d| &d.digest);
        let mismatch = |what, want: &Digest, got: Digest| PullError::Digest {
            reference: name.to_owned(),
            layer: layer.clone(),
            what,
            want: want.clone(),
            got,
        };
        if let Some(desc) = desc {
            if unpacked.digest != desc.digest {
                return Err(mismatch("the compressed", &desc.digest, unpacked.digest));
            }
            if unpacked.size != desc.size {
                return Err(PullError::Invalid {
                    reference: name.to_owned(),
                    message: format!("layer {}: {} bytes, the manifest says {}", desc.digest, unpacked.size, desc.size),
                });
            }
        }
        if &unpacked.diff_id != diff_id {
            return Err(mismatch("the uncompressed (diff id)", diff_id, unpacked.diff_id));
        }
        let dest = self.layer_dir(diff_id);
        match std::fs::rename(tmp, &dest) {
            Ok(()) => Ok(()),
            // Another pull brought the same layer meanwhile.
            Err(_) if dest.is_dir() => Ok(()),
            Err(source) => Err(PullError::Io { path: dest, source }),
        }
    }

    /// A new directory under `layers/tmp/`, removed at the next open if left behind.
    pub(crate) fn tmp_dir(&self) -> Result<PathBuf, PullError> {
        let tmp = self.root.join("layers/tmp").join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir(&tmp).map_err(|source| PullError::Io { path: tmp.clone(), source })?;
        Ok(tmp)
    }

    /// Records an image whose layers are all in place: from now on it is used.
    pub(crate) fn record(
        &self,
        reference: String,
        manifest: Digest,
        config_digest: Digest,
        config: ImageConfig,
        size: u64,
    ) -> Result<Image, PullError> {
        let image = Image {
            reference,
            manifest,
            config_digest,
            layers: config.rootfs.diff_ids.clone(),
            config,
            size,
            pulled_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let bytes = serde_json::to_vec_pretty(&image).expect("images serialize");
        self.write_atomic(&self.record_path(&image.reference), &bytes)?;
        Ok(image)
    }

    pub(crate) fn write_config(&self, digest: &Digest, bytes: &[u8]) -> Result<(), PullError> {
        self.write_atomic(&self.root.join("blobs/sha256").join(digest.hex()), bytes)
    }

    /// Removes the images not in `keep` (normalized references) and every layer and
    /// config no remaining image uses. Layers in `in_use` (of running containers)
    /// stay whatever happens. Returns the removed references and the bytes freed.
    pub fn prune(&self, keep: &HashSet<String>, in_use: &HashSet<Digest>) -> io::Result<Pruned> {
        let _lock = self.lock_exclusive()?;
        let mut pruned = Pruned::default();
        let mut layers: BTreeSet<Digest> = in_use.clone().into_iter().collect();
        let mut configs = BTreeSet::new();
        for image in self.list()? {
            if keep.contains(&image.reference) {
                layers.extend(image.layers.iter().cloned());
                configs.insert(image.config_digest.clone());
            } else {
                std::fs::remove_file(self.record_path(&image.reference))?;
                pruned.images.push(image.reference);
            }
        }
        for entry in std::fs::read_dir(self.root.join("layers/sha256"))? {
            let entry = entry?;
            let Ok(digest) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse::<Digest>() else {
                continue;
            };
            if !layers.contains(&digest) {
                pruned.bytes += du(&entry.path());
                std::fs::remove_dir_all(entry.path())?;
                pruned.layers += 1;
            }
        }
        for entry in std::fs::read_dir(self.root.join("blobs/sha256"))? {
            let entry = entry?;
            let Ok(digest) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse::<Digest>() else {
                continue;
            };
            if !configs.contains(&digest) {
                pruned.bytes += entry.metadata()?.len();
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(pruned)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), PullError> {
        let io = |source| PullError::Io { path: path.to_owned(), source };
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    fn lock_file(&self) -> io::Result<OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        Ok(rustix::fs::open(
            self.root.join("lock"),
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?)
    }

    pub(crate) fn lock_shared(&self) -> io::Result<OwnedFd> {
        let fd = self.lock_file()?;
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockShared)?;
        Ok(fd)
    }

    fn lock_exclusive(&self) -> io::Result<OwnedFd> {
        let fd = self.lock_file()?;
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(fd)
    }

    fn try_lock_exclusive(&self) -> io::Result<Option<OwnedFd>> {
        let fd = self.lock_file()?;
        match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(fd)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub images: Vec<String>,
    pub layers: usize,
    pub bytes: u64,
}

/// Bytes of the regular files below `path`, links not followed.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_dir() {
        std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| du(&e.path())).sum())
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

/// An image config as the store takes it: valid, for linux, one diff id per layer.
pub(crate) fn parse_config(name: &str, bytes: &[u8], layers: usize) -> Result<ImageConfig, PullError> {
    let invalid = |message: String| PullError::Invalid { reference: name.to_owned(), message };
    let config: ImageConfig =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("the image config is not valid: {e}")))?;
    if !config.os.is_empty() && config.os != "linux" {
        return Err(invalid(format!("the image is for {}, not linux", config.os)));
    }
    if config.rootfs.diff_ids.len() != layers {
        return Err(invalid(format!("the manifest has {layers} layers, the config {}", config.rootfs.diff_ids.len())));
    }
    Ok(config)
}

/// What [`unpack_digesting`] saw of a layer.
pub(crate) struct Unpacked {
    /// Of the bytes as they came (compressed or not).
    pub digest: Digest,
    pub size: u64,
    /// Of the uncompressed tar.
    pub diff_id: Digest,
}

/// Unpacks a layer (gzip, zstd or plain) into `dest`, digesting the bytes as
/// they come and the tar they decompress to.
pub(crate) fn unpack_digesting(reader: impl Read, dest: &Path) -> Result<Unpacked, unpack::UnpackError> {
    let mut compressed = Hashing::new(reader);
    let diff_id = {
        let mut plain = Hashing::new(unpack::decompress(&mut compressed).map_err(unpack::UnpackError::Read)?);
        unpack::unpack(&mut plain, dest)?;
        plain.finish().map_err(unpack::UnpackError::Read)?.0
    };
    let (digest, size) = compressed.finish().map_err(unpack::UnpackError::Read)?;
    Ok(Unpacked { digest, size, diff_id })
}

/// A blocking reader over the chunks an async download sends.
struct ChannelReader<'a> {
    rx: &'a mut tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
