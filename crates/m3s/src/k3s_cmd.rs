//! `m3s k3s ...`: the CLI over the K3s framework's API, and `m3s k3s serve`
//! (the framework alone; its settings and start are in `k3s_framework`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use k3s::cluster::{CreateRequest, Datastore};
use serde_json::{Value, json};

use crate::api_client::ApiClient;
use crate::k3s_framework::binary_uri;

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
