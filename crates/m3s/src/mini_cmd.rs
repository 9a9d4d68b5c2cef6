//! `m3s mini`: the embedded single-node cluster as its own process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use mini::cluster::{Cluster, ClusterConfig};
use mini::http::{Credential, HttpConfig};
use mini::resources::Resources;

#[derive(Debug, Clone, Args)]
pub struct MiniArgs {
    /// Port for the master, scheduler, operator and agent endpoints.
    #[arg(long, env = "M3S_MINI_PORT", default_value_t = 5050)]
    pub port: u16,
    /// Address to listen on. Anything but loopback needs --credentials or --insecure-open.
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
    /// JSON file `{"credentials":[{"principal":..,"secret":..}]}`: frameworks must authenticate (HTTP Basic).
    #[arg(long, env = "M3S_MINI_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// Seconds between HEARTBEAT events on subscription streams.
    #[arg(long, env = "M3S_MINI_HEARTBEAT", default_value_t = 15.0)]
    pub heartbeat_interval: f64,
    /// Allow a non-loopback bind address without credentials: anyone who can reach the port can run commands.
    #[arg(long, default_value_t = false)]
    pub insecure_open: bool,
}

pub async fn run(args: MiniArgs) -> anyhow::Result<()> {
    let (cluster, http) = build(&args).await?;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let c = cluster.config();
    eprintln!(
        "m3s mini: Mesos {} master and agent on http://{}:{} (work dir {}, resources {})",
        mini::MESOS_VERSION,
        c.ip,
        args.port,
        c.work_dir.display(),
        describe(&c.resources)
    );
    let app = mini::http::app(cluster.clone(), http);
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
pub async fn build(args: &MiniArgs) -> anyhow::Result<(Cluster, HttpConfig)> {
    let credentials = match &args.credentials {
        Some(path) => Some(read_credentials(path)?),
        None => None,
    };
    if !args.bind.is_loopback() && credentials.is_none() && !args.insecure_open {
        bail!(
            "refusing to listen on {} without --credentials: anyone reaching the port could run commands on this machine \
             (pass --insecure-open to accept that)",
            args.bind
        );
    }
    if !args.heartbeat_interval.is_finite() || args.heartbeat_interval <= 0.0 {
        bail!("--heartbeat-interval must be a positive number of seconds");
    }
    let work_dir = args.work_dir.clone().unwrap_or_else(default_work_dir);
    let resources = match &args.resources {
        Some(spec) => Resources::parse(spec).context("--resources")?,
        None => detect_resources(&work_dir),
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
    };
    let cluster =
        Cluster::start(config).await.with_context(|| format!("starting the cluster in {}", work_dir.display()))?;
    let flags = vec![
        ("port".to_owned(), args.port.to_string()),
        ("ip".to_owned(), ip.to_string()),
        ("work_dir".to_owned(), work_dir.display().to_string()),
        ("resources".to_owned(), describe(&resources)),
        ("authenticate_http_frameworks".to_owned(), credentials.is_some().to_string()),
        ("heartbeat_interval".to_owned(), format!("{}secs", args.heartbeat_interval)),
        ("allocation_interval".to_owned(), "0secs".to_owned()),
        ("min_allocatable_resources".to_owned(), "cpus:0.01|mem:32".to_owned()),
    ];
    Ok((cluster, HttpConfig { credentials, flags }))
}

fn default_work_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/m3s/mini");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("m3s/mini")
}

/// What the machine has, as Mesos's agent computes its defaults: every CPU,
/// memory less min(1 GiB, half), disk less min(5 GiB, half), ports 31000-32000.
fn detect_resources(work_dir: &std::path::Path) -> Resources {
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
    Resources::parse(&format!("cpus:{cpus};mem:{mem};disk:{disk};ports:[31000-32000]")).expect("well-formed")
}

fn describe(r: &Resources) -> String {
    let mut parts: Vec<String> = r.scalars().map(|(k, v)| format!("{k}:{v}")).collect();
    parts.extend(r.range_sets().map(|(k, s)| format!("{k}:{s}")));
    parts.join(";")
}

fn read_credentials(path: &std::path::Path) -> anyhow::Result<Vec<Credential>> {
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
