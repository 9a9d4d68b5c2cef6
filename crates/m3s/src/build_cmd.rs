//! Builds of compose `build:` services, where the files are (`m3s compose
//! build`, `m3s compose up`, `m3s up -f`): each image goes into this machine's
//! image store under the name compose gives it, or to a registry with
//! `--push-to`, and the service is sent with that image.

use std::path::Path;

use anyhow::{Context, bail};
use image::build::{BuildRequest, BuildSecret, Builder, Dockerfile, SecretValue};
use image::{Reference, Store};

use crate::project::Loaded;

/// What to build, and where the images go.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct BuildArgs {
    /// Build images even when the store has them.
    #[arg(long = "build", conflicts_with = "no_build")]
    pub build: bool,
    /// Build nothing: services with `build:` need their image already built.
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Push built images to this registry (host[:port][/path]) and run them from there, as a
    /// cluster whose agents do not share this machine's image store needs.
    #[arg(long = "push-to", value_name = "REGISTRY")]
    pub push_to: Option<String>,
    #[command(flatten)]
    pub builder: BuilderArgs,
}

/// Which builder builds, and so where images go.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct BuilderArgs {
    /// buildah (into m3s's image store, where m3s's own runtime runs images) or docker (into the
    /// Docker Engine at M3S_DOCKER_SOCKET, default /var/run/docker.sock, where the Docker
    /// containerizer runs them). Default: docker when the agent runs DOCKER tasks on Docker
    /// (--containerizers or M3S_CONTAINERIZERS naming docker), else buildah, else a Docker
    /// Engine that answers.
    #[arg(long, env = "M3S_BUILDER")]
    pub builder: Option<BuilderKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BuilderKind {
    Buildah,
    Docker,
}

impl BuilderArgs {
    /// The Docker daemon builds go to, or `None` for buildah and m3s's store.
    /// `agent_docker`: the socket of the Docker containerizer of an agent
    /// started by this command (`m3s up --containerizers docker,mesos`).
    pub fn docker_home(&self, agent_docker: Option<&Path>) -> Option<std::path::PathBuf> {
        let socket = agent_docker.map(Path::to_owned).unwrap_or_else(|| {
            std::env::var_os("M3S_DOCKER_SOCKET").map_or_else(|| docker::DEFAULT_SOCKET.into(), Into::into)
        });
        let agent_uses_docker = agent_docker.is_some()
            || std::env::var("M3S_CONTAINERIZERS").is_ok_and(|c| c.split(',').any(|c| c.trim() == "docker"));
        match self.builder {
            Some(BuilderKind::Buildah) => None,
            Some(BuilderKind::Docker) => Some(socket),
            None if agent_uses_docker => Some(socket),
            None if image::build::find_program("buildah").is_some() => None,
            None if docker::Engine::new(&socket).ping().is_ok() => Some(socket),
            None => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Build even where the image is in the store.
    pub force: bool,
    /// Never build (`--no-build`).
    pub never: bool,
    pub no_cache: bool,
    pub pull: bool,
    pub push_to: Option<String>,
    /// Only these services (all when empty).
    pub services: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub docker_config: Option<std::path::PathBuf>,
    /// Build with this Docker Engine (its socket), into its images, instead of buildah into the store.
    pub docker: Option<std::path::PathBuf>,
}

impl BuildArgs {
    /// `agent_docker`: as [`BuilderArgs::docker_home`] takes it.
    pub fn options(&self, registry: &crate::mini_cmd::RegistryArgs, agent_docker: Option<&Path>) -> BuildOptions {
        BuildOptions {
            force: self.build,
            never: self.no_build,
            push_to: self.push_to.clone(),
            insecure_registries: registry.insecure_registries.clone(),
            docker_config: registry.docker_config.clone(),
            docker: self.builder.docker_home(agent_docker),
            ..Default::default()
        }
    }
}

/// The image a `build:` service runs: its `image`, or `<project>-<service>` as docker compose names it.
pub fn image_name(project: &str, service: &str, s: &compose::Service) -> String {
    s.image.clone().unwrap_or_else(|| format!("{project}-{service}"))
}

/// Builds what the options ask for and points each `build:` service at its
/// image. `store` is this machine's image store, `None` when the m3s that
/// runs the project is elsewhere (then only `--push-to` makes an image it can run).
pub fn build_project(
    loaded: &mut Loaded,
    store: Option<&Store>,
    options: &BuildOptions,
) -> anyhow::Result<Vec<String>> {
    for name in &options.services {
        match loaded.project.services.get(name) {
            None => bail!("no service {name} in project {}", loaded.name),
            Some(s) if s.build.is_none() => bail!("service {name} has no build section"),
            Some(_) => {}
        }
    }
    let mut built = Vec::new();
    let mut builder: Option<Box<dyn Builder>> = None;
    let names: Vec<String> = loaded.project.services.keys().cloned().collect();
    for name in names {
        let s = &loaded.project.services[&name];
        let Some(b) = s.build.clone() else { continue };
        let chosen = options.services.is_empty() || options.services.contains(&name);
        let image = image_name(&loaded.name, &name, s);
        let reference: Reference = image.parse().with_context(|| format!("services.{name}.image: {image:?}"))?;
        let forced = options.force || s.pull_policy.as_deref() == Some("build");
        let present = match &options.docker {
            Some(socket) => docker::Engine::new(socket).has_image(&reference.to_string()).unwrap_or(false),
            None => store.is_some_and(|st| st.get(&reference).is_some()),
        };
        let wanted = chosen && !options.never && (forced || !present || options.push_to.is_some());
        if wanted {
            if let Some(socket) = &options.docker {
                let request = request(loaded, &name, &b, &reference, options)?;
                let pushed = build_with_docker(&name, socket, &request, &reference, options)?;
                run_from(loaded.project.services.get_mut(&name).expect("listed above"), &reference, pushed.as_ref());
                built.push(name);
                continue;
            }
            if store.is_none() && options.push_to.is_none() {
                bail!(
                    "services.{name}.build: the m3s that runs this project is not on this machine, so it cannot use \
                     an image built here: pass --push-to REGISTRY (a registry its agents reach)"
                );
            }
            let builder = match &builder {
                Some(b) => b,
                None => builder.insert(image::build::default_builder()?),
            };
            let request = request(loaded, &name, &b, &reference, options)?;
            eprintln!("{name}: building {reference} with {}", builder.name());
            let mut show = |line: &str| eprintln!("{name} | {line}");
            let scratch;
            let target_store = match store {
                Some(st) => st,
                None => {
                    // Built for a registry only: a store of its own, for the time of the build.
                    scratch = scratch_store()?;
                    &scratch.1
                }
            };
            image::build::build_into(target_store, builder.as_ref(), &request, &mut show)
                .map_err(|e| anyhow::anyhow!("services.{name}.build: {e}"))?;
            let pushed = match &options.push_to {
                Some(registry) => {
                    let destination = pushed_name(registry, &reference)?;
                    let plain =
                        destination.is_loopback() || options.insecure_registries.contains(&destination.registry);
                    builder
                        .push(&reference, &destination, plain, options.docker_config.as_deref(), &mut show)
                        .map_err(|e| anyhow::anyhow!("services.{name}: pushing to {destination}: {e}"))?;
                    eprintln!("{name}: pushed {destination}");
                    Some(destination)
                }
                None => None,
            };
            run_from(loaded.project.services.get_mut(&name).expect("listed above"), &reference, pushed.as_ref());
            built.push(name);
        } else if !chosen {
            // Not asked for (`up web`): named as built, whether or not it is yet; the server
            // keeps what is deployed of it, and only `m3s compose build` or `up` of it builds it.
            run_from(loaded.project.services.get_mut(&name).expect("listed above"), &reference, None);
        } else if options.push_to.is_none() {
            if !present {
                bail!(
                    "services.{name}: image {reference} is not built and --no-build was given: run `m3s compose build {name}`"
                );
            }
            run_from(loaded.project.services.get_mut(&name).expect("listed above"), &reference, None);
        }
    }
    loaded.renormalize();
    Ok(built)
}

/// Points a built service at its image: pushed, the registry's copy (pulled
/// when missing); else the one built here, which the agent must not look for
/// in a registry (`pull_policy: build`).
fn run_from(service: &mut compose::Service, built: &Reference, pushed: Option<&Reference>) {
    match pushed {
        Some(destination) => {
            service.image = Some(destination.to_string());
            service.pull_policy = Some("missing".into());
        }
        None => {
            service.image = Some(built.to_string());
            service.pull_policy = Some("build".into());
        }
    }
}

/// A build through the Docker Engine at `socket`, and its push with
/// `--push-to`; returns where it was pushed.
fn build_with_docker(
    name: &str,
    socket: &Path,
    request: &BuildRequest,
    reference: &Reference,
    options: &BuildOptions,
) -> anyhow::Result<Option<Reference>> {
    let engine = docker::Engine::new(socket);
    eprintln!("{name}: building {reference} with the Docker Engine at {}", socket.display());
    let mut show = |line: &str| eprintln!("{name} | {line}");
    image::docker_build::build(&engine, request, &mut show)
        .map_err(|e| anyhow::anyhow!("services.{name}.build: {e}"))?;
    if let Some(registry) = &options.push_to {
        let destination = pushed_name(registry, reference)?;
        let auth = docker_auth(options.docker_config.as_deref(), &destination)?;
        image::docker_build::push(&engine, reference, &destination, auth.as_ref(), &mut show)
            .map_err(|e| anyhow::anyhow!("services.{name}: pushing to {destination}: {e}"))?;
        eprintln!("{name}: pushed {destination}");
        return Ok(Some(destination));
    }
    Ok(None)
}

/// The login for `reference`'s registry in a Docker config.json, as the Engine takes it.
fn docker_auth(config: Option<&Path>, reference: &Reference) -> anyhow::Result<Option<docker::RegistryAuth>> {
    let Some(path) = config else { return Ok(None) };
    let credentials =
        image::auth::Credentials::from_docker_config(path).map_err(|e| anyhow::anyhow!("--docker-config {e}"))?;
    Ok(credentials.docker_auth(&reference.registry))
}

/// `REGISTRY/<repository>:<tag>` for an image built as `reference`.
fn pushed_name(registry: &str, reference: &Reference) -> anyhow::Result<Reference> {
    let repository = reference.repository.strip_prefix("library/").unwrap_or(&reference.repository);
    let tag = reference.tag.as_deref().unwrap_or("latest");
    let name = format!("{}/{repository}:{tag}", registry.trim_end_matches('/'));
    name.parse().with_context(|| format!("--push-to {registry}: {name:?} is not an image name"))
}

fn scratch_store() -> anyhow::Result<(TempDir, Store)> {
    let dir = TempDir(std::env::temp_dir().join(format!("m3s-build-{}", uuid::Uuid::new_v4().simple())));
    let store = Store::open(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
    Ok((dir, store))
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn request(
    loaded: &Loaded,
    name: &str,
    b: &compose::Build,
    reference: &Reference,
    options: &BuildOptions,
) -> anyhow::Result<BuildRequest> {
    let path = format!("services.{name}.build");
    if compose::is_remote_context(&b.context) {
        bail!("{path}.context: {:?} is a URL; m3s builds from directories only (clone it first)", b.context);
    }
    let context = image::build::check_context(&loaded.project_dir, Path::new(&b.context), &format!("{path}.context"))?;
    let mut additional_contexts = Vec::new();
    for (key, value) in &b.additional_contexts {
        let value = if value.contains("://") {
            value.clone()
        } else {
            let at = format!("{path}.additional_contexts.{key}");
            image::build::check_context(&loaded.project_dir, Path::new(value), &at)?.display().to_string()
        };
        additional_contexts.push((key.clone(), value));
    }
    let dockerfile = match (&b.dockerfile, &b.dockerfile_inline) {
        (_, Some(text)) => Dockerfile::Inline(text.clone()),
        (Some(file), None) => Dockerfile::Path(file.into()),
        (None, None) => Dockerfile::Default,
    };
    let mut secrets = Vec::new();
    for id in &b.secrets {
        let object =
            loaded.project.secrets.get(id).with_context(|| format!("{path}.secrets: no top-level secret {id:?}"))?;
        let value = if let Some(file) = &object.file {
            SecretValue::File(loaded.project_dir.join(file))
        } else if let Some(var) = &object.environment {
            let v =
                std::env::var(var).with_context(|| format!("secrets.{id}: environment variable {var} is not set"))?;
            SecretValue::Bytes(v.into_bytes())
        } else if let Some(content) = &object.content {
            SecretValue::Bytes(content.clone().into_bytes())
        } else {
            bail!("{path}.secrets: secret {id:?} is external; a build needs its file, environment or content");
        };
        secrets.push(BuildSecret { id: id.clone(), value });
    }
    let mut tags = vec![reference.clone()];
    for t in &b.tags {
        tags.push(t.parse().with_context(|| format!("{path}.tags: {t:?} is not an image name"))?);
    }
    Ok(BuildRequest {
        context,
        dockerfile,
        args: b.args.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect(),
        target: b.target.clone(),
        labels: b.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        additional_contexts,
        secrets,
        network: b.network.clone(),
        no_cache: b.no_cache || options.no_cache,
        pull: b.pull || options.pull,
        tags,
        insecure_registries: options.insecure_registries.clone(),
    })
}

/// `compose push`: each built service's image, from the builder's storage to
/// the registry its `image:` names.
pub fn push_project(
    loaded: &Loaded,
    services: &[String],
    registry: &crate::mini_cmd::RegistryArgs,
    docker: Option<&Path>,
) -> anyhow::Result<()> {
    let mut builder: Option<Box<dyn Builder>> = None;
    let mut pushed = 0;
    for (name, s) in &loaded.project.services {
        if !(services.is_empty() || services.contains(name)) || s.build.is_none() {
            continue;
        }
        let Some(image) = &s.image else {
            bail!(
                "services.{name}: no image: names where to push it; add one (e.g. registry.example:5000/{name}:1), \
                 or build with --push-to REGISTRY"
            );
        };
        let reference: Reference = image.parse().with_context(|| format!("services.{name}.image: {image:?}"))?;
        let mut show = |line: &str| eprintln!("{name} | {line}");
        if let Some(socket) = docker {
            let auth = docker_auth(registry.docker_config.as_deref(), &reference)?;
            image::docker_build::push(&docker::Engine::new(socket), &reference, &reference, auth.as_ref(), &mut show)
                .map_err(|e| {
                anyhow::anyhow!("services.{name}: pushing {reference}: {e} (built? `m3s compose build {name}`)")
            })?;
            eprintln!("{name}: pushed {reference}");
            pushed += 1;
            continue;
        }
        let builder = match &builder {
            Some(b) => b,
            None => builder.insert(image::build::default_builder()?),
        };
        let plain = reference.is_loopback() || registry.insecure_registries.contains(&reference.registry);
        builder.push(&reference, &reference, plain, registry.docker_config.as_deref(), &mut show).map_err(|e| {
            anyhow::anyhow!("services.{name}: pushing {reference}: {e} (built? `m3s compose build {name}`)")
        })?;
        eprintln!("{name}: pushed {reference}");
        pushed += 1;
    }
    if pushed == 0 {
        eprintln!("no service of {} has a build section to push", loaded.name);
    }
    Ok(())
}
