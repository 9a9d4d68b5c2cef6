//! The K3s framework's settings (mesos-m3s's environment variables as flags)
//! and its start inside `m3s up`, `m3s serve --k3s` and `m3s k3s serve`. A
//! leaf: the commands import it, it imports no command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use k3s::cluster::{CreateRequest, Program, Resources, Role};
use mesos::scheduler::SchedulerConfig;

use crate::metrics_cmd::parse_duration;

/// The K3s framework's settings, shared by `m3s up`, `m3s serve` and `m3s k3s serve`.
#[derive(Debug, Clone, Args)]
pub struct K3sArgs {
    /// Run the K3s framework too (`m3s k3s ...` manages its clusters).
    #[arg(long = "k3s", env = "M3S_K3S", default_value_t = false)]
    pub enabled: bool,
    /// The k3s binary agents fetch and run as a host process: a path or a URL.
    #[arg(long = "k3s-binary", env = "M3S_K3S_BINARY")]
    pub binary: Option<String>,
    /// An image whose entrypoint is k3s, run privileged on the host network (mesos-m3s's IMAGE_K3S).
    #[arg(long = "k3s-image", env = "IMAGE_K3S", conflicts_with = "binary")]
    pub image: Option<String>,
    /// The etcd a cluster's datastore runs: a path on the agents (Debian's etcd-server).
    #[arg(long = "k3s-etcd-binary", env = "M3S_ETCD_BINARY", default_value = "/usr/bin/etcd")]
    pub etcd_binary: String,
    /// An etcd image for the datastore instead (IMAGE_ETCD).
    #[arg(long = "k3s-etcd-image", env = "IMAGE_ETCD")]
    pub etcd_image: Option<String>,
    /// Where datastores keep their data on their agents (default: <work-dir>/k3s/data).
    #[arg(long = "k3s-data-dir", env = "VOLUME_DS")]
    pub data_dir: Option<PathBuf>,
    /// Extra `k3s server` flags, split at spaces (K3S_SERVER_STRING).
    #[arg(long = "k3s-server-args", env = "K3S_SERVER_STRING", default_value = "")]
    pub server_args: String,
    /// Extra `k3s agent` flags, split at spaces (K3S_AGENT_STRING).
    #[arg(long = "k3s-agent-args", env = "K3S_AGENT_STRING", default_value = "")]
    pub agent_args: String,
    /// Keep workloads off servers with a NoSchedule taint (K3S_ENABLE_TAINT).
    #[arg(long = "k3s-taint-servers", env = "K3S_ENABLE_TAINT", default_value_t = true, action = clap::ArgAction::Set)]
    pub taint_servers: bool,
    #[arg(long = "k3s-server-cpus", env = "K3S_SERVER_CPU", default_value_t = 1.0)]
    pub server_cpus: f64,
    #[arg(long = "k3s-server-mem", env = "K3S_SERVER_MEM", default_value_t = 2000.0)]
    pub server_mem: f64,
    #[arg(long = "k3s-server-disk", env = "K3S_SERVER_DISK", default_value_t = 1000.0)]
    pub server_disk: f64,
    #[arg(long = "k3s-agent-cpus", env = "K3S_AGENT_CPU", default_value_t = 2.0)]
    pub agent_cpus: f64,
    #[arg(long = "k3s-agent-mem", env = "K3S_AGENT_MEM", default_value_t = 2000.0)]
    pub agent_mem: f64,
    #[arg(long = "k3s-agent-disk", env = "K3S_AGENT_DISK", default_value_t = 10000.0)]
    pub agent_disk: f64,
    #[arg(long = "k3s-ds-cpus", env = "DS_CPU", default_value_t = 0.5)]
    pub ds_cpus: f64,
    #[arg(long = "k3s-ds-mem", env = "DS_MEM", default_value_t = 512.0)]
    pub ds_mem: f64,
    #[arg(long = "k3s-ds-disk", env = "DS_DISK", default_value_t = 1000.0)]
    pub ds_disk: f64,
    /// A node NotReady this long has its task replaced (K3S_NODE_TIMEOUT).
    #[arg(long = "k3s-node-timeout", env = "K3S_NODE_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub node_timeout: Duration,
    /// A replaced node's Kubernetes object is deleted this long after (CLEANUP_WAIT).
    #[arg(long = "k3s-cleanup-wait", env = "CLEANUP_WAIT", default_value = "5m", value_parser = parse_duration)]
    pub cleanup_wait: Duration,
    /// The cluster mesos-m3s's single-cluster API (`/api/m3s/v0/...`) acts on.
    #[arg(long = "k3s-default-cluster", env = "M3S_K3S_DEFAULT_CLUSTER", default_value = "m3s")]
    pub default_cluster: String,
    /// Servers of the default cluster, created at start when missing (mesos-m3s runs one
    /// cluster from its start); with neither count given, no cluster is created.
    #[arg(long = "k3s-server-count", env = "K3S_SERVER_COUNT")]
    pub server_count: Option<u32>,
    /// Agents of the default cluster, created at start when missing.
    #[arg(long = "k3s-agent-count", env = "K3S_AGENT_COUNT")]
    pub agent_count: Option<u32>,
    /// The K3s framework's name on the master (its role is the compose framework's).
    #[arg(long = "k3s-framework-name", env = "M3S_K3S_FRAMEWORK_NAME", default_value = "m3s-k3s")]
    pub framework_name: String,
}

impl K3sArgs {
    pub fn settings(&self, work_dir: &Path) -> anyhow::Result<k3s::Settings> {
        let data_dir = self.data_dir.clone().unwrap_or_else(|| work_dir.join("k3s").join("data"));
        let mut settings = k3s::Settings::new(data_dir.display().to_string());
        settings.k3s = match (&self.binary, &self.image) {
            (Some(binary), _) => Some(Program::Binary(binary_uri(binary)?)),
            (None, Some(image)) => Some(Program::Image(image.clone())),
            (None, None) => None,
        };
        settings.etcd = match &self.etcd_image {
            Some(image) => Program::Image(image.clone()),
            None => Program::Binary(self.etcd_binary.clone()),
        };
        settings.server_args = self.server_args.split_whitespace().map(str::to_owned).collect();
        settings.agent_args = self.agent_args.split_whitespace().map(str::to_owned).collect();
        settings.taint_servers = self.taint_servers;
        settings.resources.insert(
            Role::Server,
            Resources { cpus: self.server_cpus, mem_mb: self.server_mem, disk_mb: self.server_disk },
        );
        settings
            .resources
            .insert(Role::Agent, Resources { cpus: self.agent_cpus, mem_mb: self.agent_mem, disk_mb: self.agent_disk });
        settings
            .resources
            .insert(Role::Datastore, Resources { cpus: self.ds_cpus, mem_mb: self.ds_mem, disk_mb: self.ds_disk });
        settings.node_timeout_ms = self.node_timeout.as_millis() as u64;
        settings.cleanup_wait_ms = self.cleanup_wait.as_millis() as u64;
        k3s::cluster::check_name(&self.default_cluster).context("--k3s-default-cluster")?;
        settings.default_cluster = self.default_cluster.clone();
        Ok(settings)
    }
}

/// A local path as the `file://` URI the agent's fetcher takes; URLs as they are.
pub(crate) fn binary_uri(binary: &str) -> anyhow::Result<String> {
    if binary.contains("://") {
        return Ok(binary.to_owned());
    }
    let path = std::fs::canonicalize(binary).with_context(|| format!("--k3s-binary {binary}"))?;
    Ok(format!("file://{}", path.display()))
}

/// Starts the K3s framework: a framework of its own on the same master (its
/// FrameworkInfo named `--k3s-framework-name`), its state in `<work-dir>/k3s.redb`
/// or under its own Redis prefix.
pub async fn start(
    args: &K3sArgs,
    service: &crate::config::ServiceArgs,
    work_dir: &Path,
    mut config: SchedulerConfig,
) -> anyhow::Result<k3s::K3s> {
    let settings = args.settings(work_dir)?;
    config.subscription.framework_info.name = args.framework_name.clone();
    config.subscription.framework_info.id = None;
    let store_config = match &service.redis_server {
        Some(server) => StoreConfig::Redis {
            url: server.clone(),
            password: service.redis_password.clone(),
            db: service.redis_db as i64,
            prefix: args.framework_name.clone(),
        },
        None => StoreConfig::Redb { path: work_dir.join("k3s.redb") },
    };
    let store = Store::open(&store_config).await.context("opening the K3s framework's state store")?;
    let files = mesos::files::AgentFiles::new(&config.master, config.tls, config.transport.clone())?;
    let instance = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let framework = Framework::start(config, store, instance, framework::engine::Limits::default()).await?;
    let default_cluster = settings.default_cluster.clone();
    let k3s = k3s::K3s::start(framework, settings, files, work_dir.join("k3s"))?;
    if (args.server_count.is_some() || args.agent_count.is_some()) && !k3s.names().contains(&default_cluster) {
        let request = CreateRequest {
            name: default_cluster.clone(),
            servers: args.server_count,
            agents: args.agent_count,
            ..Default::default()
        };
        k3s.create(request).with_context(|| format!("creating the default cluster {default_cluster}"))?;
        eprintln!("m3s: K3s cluster {default_cluster} created (K3S_SERVER_COUNT, K3S_AGENT_COUNT)");
    }
    Ok(k3s)
}
