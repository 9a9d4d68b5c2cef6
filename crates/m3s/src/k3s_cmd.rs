//! `m3s k3s ...`: the K3s framework's settings (mesos-m3s's environment
//! variables as flags), its start inside `m3s up`/`m3s serve --k3s` or alone
//! (`m3s k3s serve`), and the CLI over its API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use k3s::cluster::{CreateRequest, Datastore, Program, Resources, Role};
use mesos::scheduler::SchedulerConfig;
use serde_json::{Value, json};

use crate::api_client::ApiClient;
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
fn binary_uri(binary: &str) -> anyhow::Result<String> {
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

// ------------------------------------------------------------------ CLI

#[derive(Debug, Args)]
pub struct K3sCliArgs {
    #[command(flatten)]
    pub api: crate::api_client::ApiOptions,
    #[command(subcommand)]
    pub command: K3sCommand,
}

#[derive(Debug, Subcommand)]
// Parsed once; boxing `serve`'s arguments would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum K3sCommand {
    /// Run the K3s framework and its API against a Mesos master (without the compose framework).
    Serve(crate::serve_cmd::ServeArgs),
    /// Create a cluster: a datastore (etcd, or embedded for one server), servers, then agents.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        servers: u32,
        #[arg(long, default_value_t = 1)]
        agents: u32,
        /// etcd (a task of its own) or embedded (k3s's SQLite; one server only). Default:
        /// embedded for one server, etcd for more.
        #[arg(long)]
        datastore: Option<String>,
        /// The k3s binary for this cluster (a path or URL; default: the framework's --k3s-binary).
        #[arg(long = "k3s-binary")]
        k3s_binary: Option<String>,
        /// The k3s image for this cluster (default: the framework's --k3s-image).
        #[arg(long = "k3s-image", conflicts_with = "k3s_binary")]
        k3s_image: Option<String>,
        /// Let workloads run on servers (no NoSchedule taint).
        #[arg(long = "no-taint", default_value_t = false)]
        no_taint: bool,
    },
    /// List the clusters.
    Ls,
    /// A cluster's nodes: task state, Kubernetes readiness, version, and what is missing.
    Status { name: String },
    /// Set the number of servers and/or agents (agents going away are drained first).
    Scale {
        name: String,
        #[arg(long)]
        servers: Option<u32>,
        #[arg(long)]
        agents: Option<u32>,
    },
    /// Print or save the cluster's kubeconfig (saved with mode 0600).
    Kubeconfig {
        name: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Hibernate: stop servers and agents, keep the datastore, remember the counts.
    Shutdown { name: String },
    /// Restore a hibernated cluster.
    Start { name: String },
    /// Restart every task of a role (datastore, server or agent).
    Restart { name: String, role: String },
    /// Cordon every agent node.
    Cordon { name: String },
    /// Uncordon every agent node.
    Uncordon { name: String },
    /// Change a role's resources for the tasks started from now on (they are replaced).
    Resources {
        name: String,
        role: String,
        #[arg(long)]
        cpus: Option<f64>,
        #[arg(long)]
        memory: Option<f64>,
        #[arg(long)]
        disk: Option<f64>,
    },
    /// Delete a cluster (its tasks); --purge removes the datastore's data too.
    Delete {
        name: String,
        #[arg(long, default_value_t = false)]
        purge: bool,
    },
}

pub async fn run(args: K3sCliArgs) -> anyhow::Result<()> {
    if let K3sCommand::Serve(serve) = args.command {
        return crate::serve_cmd::serve_k3s(serve).await;
    }
    let api = ApiClient::new(&args.api.into())?;
    let path = |name: &str, rest: &str| format!("/api/k3s/v1/clusters/{}{rest}", segment(name));
    match args.command {
        K3sCommand::Serve(_) => unreachable!("handled above"),
        K3sCommand::Create { name, servers, agents, datastore, k3s_binary, k3s_image, no_taint } => {
            let datastore = match datastore.as_deref() {
                None => None,
                Some("etcd") => Some(Datastore::Etcd),
                Some("embedded") => Some(Datastore::Embedded),
                Some(other) => bail!("--datastore {other:?}: expected etcd or embedded"),
            };
            let k3s_binary = k3s_binary.map(|b| binary_uri(&b)).transpose()?;
            let request = CreateRequest {
                name,
                servers: Some(servers),
                agents: Some(agents),
                datastore,
                k3s_binary,
                k3s_image,
                taint_servers: no_taint.then_some(false),
                ..Default::default()
            };
            let status = api.post_json("/api/k3s/v1/clusters", &serde_json::to_value(&request)?).await?;
            eprintln!(
                "cluster {} created: {} server(s), {} agent(s); `m3s k3s status {}` follows it",
                status["name"].as_str().unwrap_or(""),
                status["servers"],
                status["agents"],
                status["name"].as_str().unwrap_or("")
            );
        }
        K3sCommand::Ls => {
            let list = api.get("/api/k3s/v1/clusters").await?;
            println!("{:<20} {:<10} {:>7} {:>6} {:<6} VERSION", "NAME", "DATASTORE", "SERVERS", "AGENTS", "READY");
            for c in list.as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<10} {:>7} {:>6} {:<6} {}",
                    c["name"].as_str().unwrap_or(""),
                    c["datastore"].as_str().unwrap_or(""),
                    c["servers"].to_string(),
                    c["agents"].to_string(),
                    if c["hibernated"] == true {
                        "asleep"
                    } else if c["ready"] == true {
                        "yes"
                    } else {
                        "no"
                    },
                    c["kubernetes_version"].as_str().unwrap_or("-")
                );
            }
        }
        K3sCommand::Status { name } => print_status(&api.get(&path(&name, "")).await?),
        K3sCommand::Scale { name, servers, agents } => {
            if servers.is_none() && agents.is_none() {
                bail!("give --servers, --agents or both");
            }
            let status = api.put_json(&path(&name, "/scale"), &json!({"servers": servers, "agents": agents})).await?;
            print_status(&status);
        }
        K3sCommand::Kubeconfig { name, output } => {
            let text = api.get_text(&path(&name, "/kubeconfig")).await?;
            match output {
                Some(file) => {
                    // A kubeconfig holds a client key.
                    mesos::private_file::write(&file, text.as_bytes())
                        .with_context(|| format!("writing {}", file.display()))?;
                    eprintln!("kubeconfig of {name} written to {} (mode 0600)", file.display());
                }
                None => print!("{text}"),
            }
        }
        K3sCommand::Shutdown { name } => print_status(&api.post(&path(&name, "/shutdown")).await?),
        K3sCommand::Start { name } => print_status(&api.post(&path(&name, "/start")).await?),
        K3sCommand::Restart { name, role } => {
            print_status(&api.post(&path(&name, &format!("/restart/{}", segment(&role)))).await?)
        }
        K3sCommand::Cordon { name } => println!("{}", api.post(&path(&name, "/cordon")).await?),
        K3sCommand::Uncordon { name } => println!("{}", api.post(&path(&name, "/uncordon")).await?),
        K3sCommand::Resources { name, role, cpus, memory, disk } => {
            let body = json!({"cpus": cpus, "memory": memory, "disk": disk});
            print_status(&api.put_json(&path(&name, &format!("/resources/{}", segment(&role))), &body).await?);
        }
        K3sCommand::Delete { name, purge } => {
            api.delete(&path(&name, if purge { "?purge=true" } else { "" })).await?;
            eprintln!("cluster {name} deleted{}", if purge { " with its data" } else { "" });
        }
    }
    Ok(())
}

fn print_status(s: &Value) {
    println!(
        "cluster {}: {} server(s), {} agent(s), datastore {}{}",
        s["name"].as_str().unwrap_or(""),
        s["servers"],
        s["agents"],
        s["datastore"].as_str().unwrap_or(""),
        if s["hibernated"] == true {
            ", hibernated"
        } else if s["ready"] == true {
            ", ready"
        } else {
            ", not ready"
        },
    );
    if let Some(v) = s["kubernetes_version"].as_str() {
        println!("kubernetes {v} at {}", s["api_server"].as_str().unwrap_or("-"));
    }
    println!("{:<10} {:<34} {:<14} {:<8} {:<6} MESSAGE", "ROLE", "TASK", "STATE", "HEALTHY", "READY");
    for n in s["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:<10} {:<34} {:<14} {:<8} {:<6} {}",
            n["role"].as_str().unwrap_or(""),
            n["task_id"].as_str().unwrap_or(""),
            n["state"].as_str().unwrap_or(""),
            if n["healthy"] == true { "yes" } else { "no" },
            match n["k8s_ready"].as_bool() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            n["message"].as_str().unwrap_or("")
        );
    }
    for p in s["problems"].as_array().into_iter().flatten() {
        println!("! {}", p.as_str().unwrap_or(""));
    }
}

fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
