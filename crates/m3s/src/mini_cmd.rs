//! `m3s mini`: the embedded single-node cluster as its own process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use mini::cluster::{Cluster, ClusterConfig};
use mini::http::{Credential, HttpConfig};
use mini::master::AllowedUsers;
use mini::resources::Resources;

use crate::paths;

#[derive(Debug, Clone, Args)]
pub struct MiniArgs {
    /// Port for the master, scheduler, operator and agent endpoints.
    #[arg(long, env = "M3S_MINI_PORT", default_value_t = 5050)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "M3S_MINI_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where checkpoints and task sandboxes live (default: /var/lib/m3s/mini as root, else ~/.local/share/m3s/mini).
    #[arg(long, env = "M3S_MINI_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Hostname advertised in offers and state (default: this machine's).
    #[arg(long, env = "M3S_MINI_HOSTNAME")]
    pub hostname: Option<String>,
    /// IPv4 address advertised to frameworks (default: the bind address, or 127.0.0.1 when binding all).
    #[arg(long, env = "M3S_MINI_ADVERTISE_IP")]
    pub advertise_ip: Option<Ipv4Addr>,
    /// Agent resources, e.g. `cpus:2;mem:8192;disk:20000;ports:[31000-32000]` (default: what the machine has).
    #[arg(long, env = "M3S_MINI_RESOURCES")]
    pub resources: Option<String>,
    /// Agent attributes, e.g. `rack:r1;zone:a`.
    #[arg(long, env = "M3S_MINI_ATTRIBUTES", default_value = "")]
    pub attributes: String,
    /// JSON file `{"credentials":[{"principal":..,"secret":..}]}` of who may use the scheduler API,
    /// the operator's changes and the sandboxes (HTTP Basic). Default: <work-dir>/credentials.json,
    /// generated once (principal `m3s`, mode 0600).
    #[arg(long, env = "M3S_MINI_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// Users tasks may run as, comma-separated, or `*` for any (default: the user m3s runs as).
    #[arg(long, env = "M3S_MINI_ALLOWED_USERS", value_delimiter = ',')]
    pub allowed_users: Vec<String>,
    /// Seconds between HEARTBEAT events on subscription streams.
    #[arg(long, env = "M3S_MINI_HEARTBEAT", default_value_t = 15.0)]
    pub heartbeat_interval: f64,
    /// Serve without authentication: anyone who can reach the port can run commands as
    /// the allowed users.
    #[arg(long, default_value_t = false)]
    pub insecure_open: bool,
    #[command(flatten)]
    pub containers: ContainerArgs,
}

/// How the agent runs tasks with an image.
#[derive(Debug, Clone, Args, Default)]
pub struct ContainerArgs {
    /// The OCI runtime that runs containers (default: crun, else runc, from PATH).
    #[arg(long = "oci-runtime", env = "M3S_OCI_RUNTIME")]
    pub oci_runtime: Option<PathBuf>,
    /// How a container's root filesystem is made from its image's layers, as
    /// Mesos's --image_provisioner_backend: overlay (mounted, nothing copied) or
    /// copy (for filesystems overlayfs cannot use); default overlay where it mounts.
    #[arg(long = "image-provisioner-backend", env = "M3S_IMAGE_PROVISIONER_BACKEND")]
    pub image_provisioner_backend: Option<mini::agent::container::RootfsBackend>,
    /// CNI network configurations containers may join by name (Mesos's
    /// --network_cni_config_dir). Networks it does not define are made by m3s.
    #[arg(long = "network-cni-config-dir", alias = "network_cni_config_dir", env = "M3S_NETWORK_CNI_CONFIG_DIR")]
    pub network_cni_config_dir: Option<PathBuf>,
    /// Where the CNI plugins are (Mesos's --network_cni_plugins_dir).
    #[arg(
        long = "network-cni-plugins-dir",
        alias = "network_cni_plugins_dir",
        env = "M3S_NETWORK_CNI_PLUGINS_DIR",
        default_value = "/usr/lib/cni"
    )]
    pub network_cni_plugins_dir: PathBuf,
    /// Resolvers that containers' DNS servers forward other names to, as
    /// ip:port, comma-separated (default: the host's /etc/resolv.conf).
    #[arg(long = "dns-forward", env = "M3S_DNS_FORWARD", value_delimiter = ',')]
    pub dns_forward: Vec<SocketAddr>,
    /// Which containerizers run tasks, as Mesos's --containerizers: `mesos` (m3s's
    /// own runtime, for every task) or `docker,mesos` (DOCKER tasks through the
    /// Docker Engine at --docker-socket, the others on m3s's runtime).
    #[arg(long, env = "M3S_CONTAINERIZERS", value_delimiter = ',', default_value = "mesos")]
    pub containerizers: Vec<Containerizer>,
    /// The Docker daemon's socket (Mesos's --docker_socket).
    #[arg(long = "docker-socket", alias = "docker_socket", env = "M3S_DOCKER_SOCKET", default_value = docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
    /// Mesos's --docker (the docker CLI's path): accepted for compatibility; m3s
    /// speaks the Engine API at --docker-socket and runs no docker CLI.
    #[arg(long = "docker", hide = true)]
    pub docker: Option<PathBuf>,
    /// Remove this agent's Docker containers that no task claims when m3s starts
    /// (Mesos's --docker_kill_orphans).
    #[arg(long = "docker-kill-orphans", alias = "docker_kill_orphans", env = "M3S_DOCKER_KILL_ORPHANS", default_value_t = true, action = clap::ArgAction::Set)]
    pub docker_kill_orphans: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// A containerizer named in --containerizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Containerizer {
    Mesos,
    Docker,
}

/// How images are pulled.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryArgs {
    /// A Docker config.json whose `auths` log in to registries (Mesos's --docker_config),
    /// for m3s's pulls and the Docker containerizer's.
    #[arg(long = "docker-config", alias = "docker_config", env = "M3S_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,
    /// A registry (host:port) reached over plain HTTP; loopback registries always are. Repeatable.
    #[arg(long = "insecure-registry", env = "M3S_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    pub fn client_config(&self) -> anyhow::Result<image::ClientConfig> {
        let credentials = match &self.docker_config {
            Some(path) => image::auth::Credentials::from_docker_config(path)
                .map_err(|e| anyhow::anyhow!("--docker-config {e}"))?,
            None => Default::default(),
        };
        let tls = mesos::transport::TlsConfig::default().client_config().context("TLS for registries")?;
        Ok(image::ClientConfig {
            tls,
            credentials,
            insecure_registries: self.insecure_registries.clone(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        })
    }
}

impl ContainerArgs {
    /// The Docker containerizer's settings, when --containerizers names docker.
    fn docker(&self) -> anyhow::Result<Option<mini::agent::docker::DockerConfig>> {
        if !self.containerizers.contains(&Containerizer::Docker) {
            return Ok(None);
        }
        if !self.containerizers.contains(&Containerizer::Mesos) {
            anyhow::bail!(
                "--containerizers=docker alone would leave tasks without a Docker image nowhere to run: use docker,mesos"
            );
        }
        Ok(Some(mini::agent::docker::DockerConfig {
            socket: self.docker_socket.clone(),
            docker_config: self.registry.docker_config.clone(),
            kill_orphans: self.docker_kill_orphans,
        }))
    }

    fn config(&self, work_dir: &Path) -> anyhow::Result<mini::agent::container::ContainerConfig> {
        Ok(mini::agent::container::ContainerConfig {
            work_dir: work_dir.to_owned(),
            oci_runtime: self.oci_runtime.clone(),
            backend: self.image_provisioner_backend,
            registry: self.registry.client_config()?,
            network: mini::agent::network::NetworkConfig {
                state_dir: work_dir.join("networks"),
                cni_config_dir: self.network_cni_config_dir.clone(),
                cni_plugins_dir: self.network_cni_plugins_dir.clone(),
                dns_upstreams: (!self.dns_forward.is_empty()).then(|| self.dns_forward.clone()),
            },
        })
    }
}

/// A built cluster and what its clients need.
pub struct Built {
    pub cluster: Cluster,
    pub http: HttpConfig,
    /// The credential m3s's own clients use (the first of the list); `None` when open.
    pub client_credential: Option<Credential>,
    /// How the port is protected, for the start message.
    pub auth_note: String,
}

pub async fn run(args: MiniArgs) -> anyhow::Result<()> {
    let built = build(&args).await?;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let c = built.cluster.config();
    eprintln!(
        "m3s mini: Mesos {} master and agent on http://{}:{} (work dir {}, resources {}; {})",
        mini::MESOS_VERSION,
        c.ip,
        args.port,
        c.work_dir.display(),
        describe(&c.resources),
        built.auth_note
    );
    let cluster = built.cluster.clone();
    let app = mini::http::app(built.cluster, built.http);
    // Subscription streams never end by themselves, so a graceful drain would
    // wait forever: stop at once, as a Mesos master does; clients reconnect.
    tokio::select! {
        served = axum::serve(listener, app) => served?,
        _ = shutdown_signal() => {}
    }
    cluster.flush_checkpoint();
    eprintln!("m3s mini: stopped; running tasks keep running and are re-adopted at the next start");
    Ok(())
}

pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// The cluster and HTTP settings from the flags, with the checks a
/// misconfiguration deserves.
pub async fn build(args: &MiniArgs) -> anyhow::Result<Built> {
    if !args.heartbeat_interval.is_finite() || args.heartbeat_interval <= 0.0 {
        bail!("--heartbeat-interval must be a positive number of seconds");
    }
    let work_dir = args.work_dir.clone().unwrap_or_else(|| paths::mini_dir(&paths::default_work_dir()));
    paths::prepare_work_dir(&work_dir)
        .with_context(|| format!("preparing the work directory {}", work_dir.display()))?;
    let (credentials, auth_note) = if args.insecure_open {
        (None, "open: no authentication (--insecure-open)".to_owned())
    } else {
        let path = args.credentials.clone().unwrap_or_else(|| paths::credentials_file(&work_dir));
        let list = if args.credentials.is_none() { local_credentials(&path)? } else { read_credentials(&path)? };
        (Some(list), format!("frameworks authenticate with the credentials in {}", path.display()))
    };
    let allowed_users = allowed_users(&args.allowed_users)?;
    let resources = match &args.resources {
        Some(spec) => Resources::parse(spec).context("--resources")?,
        None => detect_resources(&work_dir, args.port),
    };
    let attributes = parse_attributes(&args.attributes)?;
    let ip = args.advertise_ip.unwrap_or(match args.bind {
        IpAddr::V4(v4) if !v4.is_unspecified() => v4,
        _ => Ipv4Addr::LOCALHOST,
    });
    let hostname = args.hostname.clone().unwrap_or_else(|| {
        if ip.is_loopback() {
            "localhost".to_owned()
        } else {
            rustix::system::uname().nodename().to_string_lossy().into_owned()
        }
    });
    let config = ClusterConfig {
        work_dir: work_dir.clone(),
        hostname,
        ip,
        port: args.port,
        resources: resources.clone(),
        attributes,
        heartbeat_interval: Duration::from_secs_f64(args.heartbeat_interval),
        supervisor_exe: std::env::current_exe().context("cannot find the m3s executable to run task supervisors")?,
        allowed_users: allowed_users.clone(),
        containers: Some(args.containers.config(&work_dir)?),
        docker: args.containers.docker()?,
    };
    let cluster =
        Cluster::start(config).await.with_context(|| format!("starting the cluster in {}", work_dir.display()))?;
    let flags = vec![
        ("port".to_owned(), args.port.to_string()),
        ("ip".to_owned(), ip.to_string()),
        ("work_dir".to_owned(), work_dir.display().to_string()),
        ("resources".to_owned(), describe(&resources)),
        ("authenticate_http_frameworks".to_owned(), credentials.is_some().to_string()),
        ("authenticate_http_readwrite".to_owned(), credentials.is_some().to_string()),
        ("allowed_users".to_owned(), allowed_users.to_string()),
        ("heartbeat_interval".to_owned(), format!("{}secs", args.heartbeat_interval)),
        ("containerizers".to_owned(), containerizers(&args.containers.containerizers)),
        ("docker_socket".to_owned(), args.containers.docker_socket.display().to_string()),
        ("allocation_interval".to_owned(), "0secs".to_owned()),
        ("min_allocatable_resources".to_owned(), "cpus:0.01|mem:32".to_owned()),
    ];
    let client_credential = credentials.as_ref().and_then(|list| list.first().cloned());
    Ok(Built { cluster, http: HttpConfig { credentials, flags }, client_credential, auth_note })
}

/// `--allowed-users`: the names given, `*` for anyone, or by default the user m3s runs as.
fn allowed_users(given: &[String]) -> anyhow::Result<AllowedUsers> {
    let given: Vec<&str> = given.iter().map(|u| u.trim()).filter(|u| !u.is_empty()).collect();
    if given.contains(&"*") {
        return Ok(AllowedUsers::Any);
    }
    if given.is_empty() {
        let me = mini::agent::runtime::current_user_name()
            .context("cannot find the name of the user m3s runs as; pass --allowed-users")?;
        return Ok(AllowedUsers::Only([me].into()));
    }
    Ok(AllowedUsers::Only(given.into_iter().map(str::to_owned).collect()))
}

/// The default credentials file: read, or generated once with principal `m3s`.
fn local_credentials(path: &Path) -> anyhow::Result<Vec<Credential>> {
    if path.exists() {
        return read_credentials(path);
    }
    let credential = Credential { principal: "m3s".into(), secret: uuid::Uuid::new_v4().simple().to_string() };
    let json =
        serde_json::json!({ "credentials": [{ "principal": credential.principal, "secret": credential.secret }] });
    mesos::private_file::write(path, format!("{json:#}\n").as_bytes())
        .with_context(|| format!("cannot write the Mesos credentials to {}", path.display()))?;
    Ok(vec![credential])
}

/// What the machine has, as Mesos's agent computes its defaults: every CPU,
/// memory less min(1 GiB, half), disk less min(5 GiB, half); and ports, unlike
/// Mesos's 31000-32000, every unprivileged port (privileged ones too as root)
/// but those in use now and m3s's own, so that compose files publish the
/// ports they name (`3000:3000`) as they do under Docker.
fn detect_resources(work_dir: &Path, own_port: u16) -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mem_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(1024.0, |kb| kb / 1024.0);
    let mem = (mem_mb - (mem_mb / 2.0).min(1024.0)).floor();
    let probe = work_dir.ancestors().find(|p| p.exists()).unwrap_or(std::path::Path::new("/"));
    let disk_mb = rustix::fs::statvfs(probe).map_or(10240.0, |s| (s.f_bavail * s.f_frsize) as f64 / 1048576.0);
    let disk = (disk_mb - (disk_mb / 2.0).min(5120.0)).floor();
    let first = if rustix::process::geteuid().is_root() { 1 } else { 1024 };
    let mut taken = mini::agent::network::ports::in_use();
    taken.insert(own_port);
    let ports = port_ranges(first, &taken);
    Resources::parse(&format!("cpus:{cpus};mem:{mem};disk:{disk};ports:[{ports}]")).expect("well-formed")
}

/// `first`..=65535 without `taken`, as Mesos range text (`1-21,23-79,81-65535`).
fn port_ranges(first: u16, taken: &std::collections::BTreeSet<u16>) -> String {
    let mut ranges = Vec::new();
    let mut start = first;
    for &t in taken.range(first..) {
        if t > start {
            ranges.push(format!("{start}-{}", t - 1));
        }
        start = t.saturating_add(1);
        if t == u16::MAX {
            return ranges.join(",");
        }
    }
    ranges.push(format!("{start}-65535"));
    ranges.join(",")
}

fn describe(r: &Resources) -> String {
    let mut parts: Vec<String> = r.scalars().map(|(k, v)| format!("{k}:{v}")).collect();
    parts.extend(r.range_sets().map(|(k, s)| format!("{k}:{s}")));
    parts.join(";")
}

/// A Mesos credentials file (`{"credentials":[{"principal":..,"secret":..}]}`).
pub fn read_credentials(path: &Path) -> anyhow::Result<Vec<Credential>> {
    #[derive(serde::Deserialize)]
    struct File {
        credentials: Vec<Credential>,
    }
    let bytes = std::fs::read(path).with_context(|| format!("--credentials {}", path.display()))?;
    let file: File = serde_json::from_slice(&bytes).with_context(|| {
        format!("--credentials {}: expected {{\"credentials\":[{{\"principal\":..,\"secret\":..}}]}}", path.display())
    })?;
    if file.credentials.is_empty() {
        bail!("--credentials {}: the list is empty", path.display());
    }
    Ok(file.credentials)
}

/// `rack:r1;zone:a` → TEXT attributes (numbers become SCALAR, `[a-b]` RANGES, as Mesos parses them).
fn parse_attributes(spec: &str) -> anyhow::Result<Vec<mesos::v1::Attribute>> {
    use mesos::v1::{Attribute, Scalar, Text, ValueType};
    let mut out = Vec::new();
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, value)) = item.split_once(':') else { bail!("--attributes: {item:?} is not name:value") };
        let (name, value) = (name.trim(), value.trim());
        let attr = match value.parse::<f64>() {
            Ok(v) => Attribute {
                name: name.into(),
                kind: ValueType::Scalar,
                scalar: Some(Scalar { value: v }),
                ..Default::default()
            },
            Err(_) => Attribute {
                name: name.into(),
                kind: ValueType::Text,
                text: Some(Text { value: value.into() }),
                ..Default::default()
            },
        };
        out.push(attr);
    }
    Ok(out)
}

/// --containerizers as Mesos's /flags shows it.
fn containerizers(list: &[Containerizer]) -> String {
    // The names the flag takes, from the one place clap has them.
    let names: Vec<String> =
        list.iter().filter_map(clap::ValueEnum::to_possible_value).map(|v| v.get_name().to_owned()).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_ports_skip_those_in_use() {
        let taken: std::collections::BTreeSet<u16> = [22, 80, 81, 1023, 5050, 65535].into_iter().collect();
        assert_eq!(port_ranges(1, &taken), "1-21,23-79,82-1022,1024-5049,5051-65534");
        assert_eq!(port_ranges(1024, &taken), "1024-5049,5051-65534");
        assert_eq!(port_ranges(1024, &Default::default()), "1024-65535");
    }
}
