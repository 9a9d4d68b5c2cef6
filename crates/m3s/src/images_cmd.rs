//! `m3s images`: the embedded agent's image store on this machine (under
//! `<work-dir>/mini/images`): list, pull (with progress), load (from files), prune. It works on
//! the store's files directly, beside a running `m3s up` (pulls and prune
//! take the store's lock).

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use clap::{Args, Subcommand};
use image::store::{PullEvent, Store};

use crate::mini_cmd::RegistryArgs;
use crate::paths;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Work directory of `m3s up` (its store is <work-dir>/mini/images).
    #[arg(long = "work-dir", env = "M3S_WORK_DIR", global = true)]
    pub work_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<ImagesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List the images in the store (the default).
    Ls,
    /// Pull images into the store, showing progress.
    Pull {
        images: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Load images from an OCI image layout (a directory, or a tar of one: skopeo's
    /// oci-archive, `podman save --format oci-archive`, `docker save` of Docker 25+)
    /// or a `docker save` archive of older Docker, for machines that reach no registry.
    Load {
        /// The directory or archive (tar, plain or gzip- or zstd-compressed).
        path: PathBuf,
        /// The name to record the image as, where the source names none (or to rename one).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove the images no container uses, and the layers no image uses.
    Prune,
}

pub fn store(work_dir: Option<&Path>) -> anyhow::Result<Store> {
    let work_dir = work_dir.map(Path::to_path_buf).unwrap_or_else(paths::default_work_dir);
    let dir = paths::mini_dir(&work_dir).join("images");
    Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let work_dir = args.work_dir.clone().unwrap_or_else(paths::default_work_dir);
    let store = store(Some(&work_dir))?;
    match args.command.unwrap_or(ImagesCommand::Ls) {
        ImagesCommand::Ls => {
            println!("{:<60}  {:<19}  {:>10}  {:>6}", "IMAGE", "ID", "SIZE", "LAYERS");
            for image in store.list()? {
                println!(
                    "{:<60}  {:<19}  {:>10}  {:>6}",
                    image.reference,
                    &image.manifest.to_string()[..19],
                    server::dashboard::format_bytes(image.size as f64),
                    image.layers.len()
                );
            }
            Ok(())
        }
        ImagesCommand::Pull { images, registry } => {
            let client = image::RegistryClient::new(registry.client_config()?)?;
            for name in images {
                pull(&store, &client, &name).await?;
            }
            Ok(())
        }
        ImagesCommand::Load { path, name } => {
            let name = match name {
                Some(n) => {
                    Some(n.parse::<image::Reference>().map_err(|e| anyhow::anyhow!("--name {n}: {}", e.reason))?)
                }
                None => None,
            };
            let loaded = tokio::task::spawn_blocking(move || store.load(&path, name.as_ref())).await??;
            for image in loaded {
                println!("loaded {} ({})", image.reference, image.config_digest);
            }
            Ok(())
        }
        ImagesCommand::Prune => {
            let (keep, in_use) = in_use(&paths::mini_dir(&work_dir).join("containers"));
            let pruned = store.prune(&keep, &in_use)?;
            for r in &pruned.images {
                println!("removed {r}");
            }
            println!(
                "{} images and {} layers removed, {} freed",
                pruned.images.len(),
                pruned.layers,
                server::dashboard::format_bytes(pruned.bytes as f64)
            );
            Ok(())
        }
    }
}

/// Pulls one image, with a progress bar per layer in a terminal and plain
/// lines otherwise.
pub async fn pull(store: &Store, client: &image::RegistryClient, name: &str) -> anyhow::Result<()> {
    let reference: image::Reference = name.parse()?;
    let terminal = std::io::stderr().is_terminal();
    let bars = Mutex::new(Bars::default());
    let progress = |event: PullEvent| bars.lock().expect("progress").show(&event, terminal);
    let image = store.pull(client, &reference, &progress).await.with_context(|| format!("pulling {reference}"))?;
    eprintln!(
        "{}: pulled {} ({})",
        image.reference,
        image.manifest,
        server::dashboard::format_bytes(image.size as f64)
    );
    Ok(())
}

/// Progress as it is shown: a line per layer.
#[derive(Default)]
struct Bars {
    /// Layer (short id) → (received, size), in the order they started.
    layers: BTreeMap<String, (u64, u64)>,
    order: Vec<String>,
    drawn: usize,
    last_percent: BTreeMap<String, u64>,
}

impl Bars {
    fn show(&mut self, event: &PullEvent, terminal: bool) {
        let mut err = std::io::stderr().lock();
        match event {
            PullEvent::Resolved { reference, layers, bytes } => {
                let _ =
                    writeln!(err, "{reference}: {layers} layers, {}", server::dashboard::format_bytes(*bytes as f64));
            }
            PullEvent::Present { layer } => {
                let _ = writeln!(err, "{}: already here", short(layer));
            }
            PullEvent::Progress { layer, received, size } => {
                let id = short(layer);
                if !self.layers.contains_key(&id) {
                    self.order.push(id.clone());
                }
                self.layers.insert(id.clone(), (*received, *size));
                if terminal {
                    // Back to the first bar, then every bar again.
                    if self.drawn > 0 {
                        let _ = write!(err, "\x1b[{}A", self.drawn);
                    }
                    for id in &self.order {
                        let (r, s) = self.layers[id];
                        let width = 30usize;
                        let filled = if s == 0 { width } else { (r.min(s) as usize * width) / s as usize };
                        let _ = writeln!(
                            err,
                            "\x1b[2K{id} [{}{}] {} / {}",
                            "=".repeat(filled),
                            " ".repeat(width - filled),
                            server::dashboard::format_bytes(r as f64),
                            server::dashboard::format_bytes(s as f64)
                        );
                    }
                    self.drawn = self.order.len();
                } else {
                    // Plain lines at each quarter.
                    let percent = if *size == 0 { 100 } else { received * 100 / size };
                    let step = percent / 25 * 25;
                    if self.last_percent.get(&id) != Some(&step) {
                        self.last_percent.insert(id.clone(), step);
                        let _ = writeln!(err, "{id}: {step}% of {}", server::dashboard::format_bytes(*size as f64));
                    }
                }
            }
            PullEvent::Done { layer } => {
                if !terminal {
                    let _ = writeln!(err, "{}: done", short(layer));
                }
            }
        }
    }
}

fn short(d: &image::Digest) -> String {
    d.hex()[..12].to_owned()
}

/// The images and layers the containers of this machine use (their bundles' `image.json`).
fn in_use(bundles: &Path) -> (HashSet<String>, HashSet<image::Digest>) {
    #[derive(serde::Deserialize)]
    struct InUse {
        reference: String,
        layers: Vec<image::Digest>,
    }
    let mut refs = HashSet::new();
    let mut layers = HashSet::new();
    for e in std::fs::read_dir(bundles).into_iter().flatten().flatten() {
        if let Ok(bytes) = std::fs::read(e.path().join("image.json"))
            && let Ok(u) = serde_json::from_slice::<InUse>(&bytes)
        {
            refs.insert(u.reference);
            layers.extend(u.layers);
        }
    }
    (refs, layers)
}
