//! Mesos's Docker containerizer on the embedded agent (`--containerizers=docker,mesos`):
//! `DOCKER` tasks run by the Docker Engine, through its API.
//!
//! The agent pulls the image, makes the task's networks, creates and starts
//! the container `mesos-<container id>` ([`DockerContainerizer::start`]); a
//! launch that fails there fails the task with the daemon's message. What
//! follows the container is an executor, as Mesos's `mesos-docker-executor`:
//! `m3s docker-executor follow`, run by the runtime's supervisor like any task,
//! so it outlives m3s. It copies the container's output into the sandbox's
//! `stdout` and `stderr`, turns SIGTERM into the container's stop signal,
//! exits with the container's exit status and removes it. The supervisor's
//! after-exit step (`docker-executor remove`) removes a container whose
//! executor was killed. Health checks and `m3s compose exec` enter the
//! container with `docker-executor exec`.
//!
//! A restart of m3s re-adopts the executors from the runtime's records; Docker
//! containers of this agent (label `m3s.work_dir`) that no running task claims
//! are orphans and are removed (Mesos's `--docker_kill_orphans`).

pub mod executor;
pub mod run;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use docker::Engine;
use mesos::v1::{ContainerType, TaskInfo};

use crate::agent::container::Pull;
use crate::agent::runtime::ContainerSetup;
use run::{LABEL_CONTAINER_ID, LABEL_NETWORK_OWNER, LABEL_WORK_DIR, NetworkJoin, Run, RunInput};

/// How the agent reaches Docker (Mesos's `--docker_socket`, `--docker_config`,
/// `--docker_kill_orphans`).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub socket: PathBuf,
    /// A Docker `config.json` whose `auths` log in to registries for pulls.
    pub docker_config: Option<PathBuf>,
    pub kill_orphans: bool,
}

/// The Docker containerizer of one agent.
pub struct DockerContainerizer {
    engine: Engine,
    config: DockerConfig,
    credentials: image::auth::Credentials,
    work_dir: PathBuf,
    /// `<work_dir>/docker/<container id>/`: a task's secrets and address.
    dir: PathBuf,
    /// The m3s binary, which runs the executor.
    exe: PathBuf,
    /// Held while networks are looked up and made: Docker's own duplicate
    /// check races, and two launches would make two networks of one name.
    networks: std::sync::Mutex<()>,
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// How the supervisor runs the executor.
    pub program: String,
    pub args: Vec<String>,
    pub setup: ContainerSetup,
    /// The container's address on its network (none on the host's).
    pub address: Option<Ipv4Addr>,
}

/// Why the Docker containerizer could not start, or start a container.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "--containerizers=docker: {0} (start dockerd, point --docker-socket at it, or leave docker out of --containerizers)"
    )]
    NoDaemon(#[source] docker::Error),
    #[error("--docker-config {0}")]
    Credentials(#[source] image::auth::CredentialsError),
    #[error("creating {}: {source}", path.display())]
    Dir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Secrets(#[from] crate::agent::container::ContainerError),
    #[error(transparent)]
    Task(#[from] run::InvalidDockerTask),
    #[error(
        "image {0} is not in the Docker daemon's store and the task's pull policy is never (build or load it into Docker first)"
    )]
    NotPresent(String),
    #[error("Failed to pull image: {0}")]
    Pull(#[source] docker::Error),
    #[error("network {0} is external and does not exist in Docker")]
    ExternalNetwork(String),
    #[error(transparent)]
    Engine(#[from] docker::Error),
}

impl DockerContainerizer {
    /// Checks that a daemon answers at the socket, as Mesos's agent checks at start.
    pub fn new(config: DockerConfig, work_dir: &Path, exe: &Path) -> Result<DockerContainerizer, DockerError> {
        let engine = Engine::new(&config.socket);
        let version = engine.version().map_err(DockerError::NoDaemon)?;
        tracing::info!(socket = %config.socket.display(), version = %version.version, api = %version.api_version, "Docker containerizer");
        let credentials = match &config.docker_config {
            Some(path) => image::auth::Credentials::from_docker_config(path).map_err(DockerError::Credentials)?,
            None => Default::default(),
        };
        Ok(DockerContainerizer {
            engine,
            config,
            credentials,
            work_dir: work_dir.to_owned(),
            dir: work_dir.join("docker"),
            exe: exe.to_owned(),
            networks: std::sync::Mutex::new(()),
        })
    }

    /// Whether the task is one for this containerizer: a `DOCKER` ContainerInfo.
    pub fn handles(task: &TaskInfo) -> bool {
        task.container.as_ref().is_some_and(|c| c.kind == ContainerType::Docker)
    }

    /// Pulls, makes networks, creates and starts the container; blocking. On
    /// an error nothing of the container is left.
    pub fn start(
        &self,
        task: &TaskInfo,
        framework_id: &str,
        container_id: &str,
        sandbox: &Path,
        agent_env: &[(String, String)],
        limits: Option<crate::agent::runtime::Limits>,
    ) -> Result<Started, DockerError> {
        let dir = self.dir.join(container_id);
        std::fs::create_dir_all(&dir).map_err(|source| DockerError::Dir { path: dir.clone(), source })?;
        let started = (|| {
            let secret_files = crate::agent::container::write_secrets(task, &dir)?;
            let run = run::run(&RunInput {
                task,
                framework_id,
                container_id,
                sandbox,
                agent_env,
                limits,
                work_dir: &self.work_dir,
                secret_files: &secret_files,
            })?;
            self.pull(&run)?;
            // Networks are made, and the container put on them, under the lock that
            // keeps their pruning out: a network is in use once its container started.
            let _networks = (!run.networks.is_empty()).then(|| self.networks.lock().unwrap_or_else(|e| e.into_inner()));
            self.make_networks(&run.networks)?;
            self.create_and_start(&run)
        })();
        match started {
            Ok((address, pid)) => {
                if let Some(a) = address {
                    let _ = std::fs::write(dir.join("address"), a.to_string());
                }
                Ok(self.executor(container_id, address, pid))
            }
            Err(e) => {
                let _ = self.engine.remove(&run::container_name(container_id));
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn pull(&self, run: &Run) -> Result<(), DockerError> {
        let present = || self.engine.has_image(&run.image);
        let needed = match run.pull {
            Pull::Always => true,
            Pull::Missing => !present()?,
            Pull::Never => {
                if present()? {
                    return Ok(());
                }
                return Err(DockerError::NotPresent(run.image.clone()));
            }
        };
        if !needed {
            return Ok(());
        }
        let auth = run.image.parse::<image::Reference>().ok().and_then(|r| self.credentials.docker_auth(&r.registry));
        self.engine.pull(&run.image, auth.as_ref()).map_err(DockerError::Pull)
    }

    /// Makes the task's USER networks that do not exist yet (an external one
    /// must); called with the networks lock held.
    fn make_networks(&self, networks: &[NetworkJoin]) -> Result<(), DockerError> {
        for n in networks {
            if self.engine.has_network(&n.name)? {
                continue;
            }
            if n.external {
                return Err(DockerError::ExternalNetwork(n.name.clone()));
            }
            let owner = self.work_dir.display().to_string();
            let create = docker::NetworkCreate {
                name: n.name.clone(),
                internal: n.internal,
                subnet: n.subnet.clone(),
                gateway: n.gateway.clone(),
                ip_range: n.ip_range.clone(),
                labels: [(LABEL_NETWORK_OWNER.to_owned(), owner)].into(),
            };
            self.engine.create_network(&create)?;
        }
        Ok(())
    }

    /// Returns the container's address and its init's pid.
    fn create_and_start(&self, run: &Run) -> Result<(Option<Ipv4Addr>, Option<u32>), DockerError> {
        self.engine.create(&run.name, &run.create)?;
        for n in run.networks.iter().skip(1) {
            self.engine.connect(&n.name, &run.name, &n.aliases)?;
        }
        self.engine.start(&run.name)?;
        let inspected = self.engine.inspect(&run.name)?;
        let pid = inspected.as_ref().and_then(|c| u32::try_from(c.state.pid).ok()).filter(|p| *p > 0);
        Ok((inspected.and_then(|c| c.address()), pid))
    }

    /// How the supervisor runs the executor that follows the container.
    fn executor(&self, container_id: &str, address: Option<Ipv4Addr>, pid: Option<u32>) -> Started {
        let exe = self.exe.display().to_string();
        let socket = self.config.socket.display().to_string();
        let name = run::container_name(container_id);
        let tool = |verb: &str| {
            vec![exe.clone(), "docker-executor".into(), verb.into(), "--socket".into(), socket.clone(), name.clone()]
        };
        Started {
            program: exe.clone(),
            args: tool("follow"),
            setup: ContainerSetup {
                detach: Vec::new(),
                overlay: None,
                after_exit: tool("remove"),
                exec: tool("exec"),
                stop_signal: None,
                // The container's usage is its init's cgroups', not the executor's.
                usage_of: pid,
            },
            address,
        }
    }

    /// The address recorded when the container started (for health checks after a restart).
    pub fn address_of(&self, container_id: &str) -> Option<Ipv4Addr> {
        std::fs::read_to_string(self.dir.join(container_id).join("address")).ok()?.trim().parse().ok()
    }

    /// Forgets a container: removes it from Docker (if still there) and its files;
    /// blocking. A container this containerizer did not start (it has no files
    /// here) costs nothing: the agent calls this for every task it forgets.
    pub fn remove(&self, container_id: &str) {
        if !self.dir.join(container_id).exists() {
            return;
        }
        if let Err(e) = self.engine.remove(&run::container_name(container_id)) {
            tracing::warn!(%container_id, error = %e, "could not remove the Docker container");
        }
        let _ = std::fs::remove_dir_all(self.dir.join(container_id));
        self.prune_networks();
    }

    /// Removes the networks m3s made that no container uses any more (Docker
    /// refuses to remove one in use, which is how "in use" is told).
    fn prune_networks(&self) {
        let _networks = self.networks.lock().unwrap_or_else(|e| e.into_inner());
        let owner = self.work_dir.display().to_string();
        for name in self.engine.list_networks(Some((LABEL_NETWORK_OWNER, &owner))).unwrap_or_default() {
            match self.engine.remove_network(&name) {
                Ok(()) => tracing::debug!(network = %name, "removed an unused Docker network"),
                Err(docker::Error::Api { status: 403 | 409, .. }) => {}
                Err(e) => tracing::warn!(network = %name, error = %e, "could not remove a Docker network"),
            }
        }
    }

    /// After a restart: removes this agent's Docker containers that no running
    /// task claims (when `kill_orphans`), and the files of ended ones; blocking.
    pub fn recover(&self, running: &HashSet<String>) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !running.contains(&id) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let owner = self.work_dir.display().to_string();
        let containers = match self.engine.list(LABEL_WORK_DIR, &owner) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "could not list Docker containers to find orphans");
                return;
            }
        };
        for c in containers {
            let id = c.labels.as_ref().and_then(|l| l.get(LABEL_CONTAINER_ID)).cloned().unwrap_or_default();
            if running.contains(&id) {
                continue;
            }
            let name = c.names.first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or(c.id.clone());
            if !self.config.kill_orphans {
                tracing::warn!(%name, "an orphan Docker container (no task claims it); kept, as --docker-kill-orphans=false asks");
                continue;
            }
            tracing::warn!(%name, state = %c.state, "removing an orphan Docker container (no task claims it)");
            if let Err(e) = self.engine.remove(&c.id) {
                tracing::error!(%name, error = %e, "could not remove an orphan Docker container");
            }
        }
        self.prune_networks();
    }
}
