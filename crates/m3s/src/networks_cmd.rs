//! `m3s networks`: the container networks the embedded agent made on this
//! machine (under `<work-dir>/mini/networks`): list them, or release what
//! containers that no longer run left behind (after m3s and its containers
//! were killed together, say). It works on the files, beside a running m3s
//! or without one.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use mini::agent::network::{NetworkConfig, Networks};

use crate::paths;

#[derive(Debug, Args)]
pub struct NetworksArgs {
    /// Work directory of `m3s up` (its networks are under <work-dir>/mini/networks).
    #[arg(long = "work-dir", env = "M3S_WORK_DIR", global = true)]
    pub work_dir: Option<PathBuf>,
    /// Where the CNI plugins are (Mesos's --network_cni_plugins_dir).
    #[arg(long = "network-cni-plugins-dir", global = true, default_value = "/usr/lib/cni")]
    pub cni_plugins_dir: PathBuf,
    #[command(subcommand)]
    pub command: Option<NetworksCommand>,
}

#[derive(Debug, Subcommand)]
pub enum NetworksCommand {
    /// List the networks m3s made, their subnets, bridges and containers (the default).
    Ls,
    /// Take containers that no longer run off their networks (CNI DEL, their
    /// namespaces, ports and addresses) and remove networks left empty.
    Prune,
}

pub async fn run(args: NetworksArgs) -> anyhow::Result<()> {
    let work_dir = args.work_dir.clone().unwrap_or_else(paths::default_work_dir);
    let mini_dir = paths::mini_dir(&work_dir);
    let state_dir = mini_dir.join("networks");
    if !state_dir.is_dir() {
        println!("no networks under {}", state_dir.display());
        return Ok(());
    }
    let networks = Networks::new(NetworkConfig {
        state_dir: state_dir.clone(),
        cni_config_dir: None,
        cni_plugins_dir: args.cni_plugins_dir.clone(),
        dns_upstreams: Some(Vec::new()),
    })
    .with_context(|| format!("opening {}", state_dir.display()))?;
    match args.command.unwrap_or(NetworksCommand::Ls) {
        NetworksCommand::Ls => {
            println!("{:<32} {:<18} {:<16} CONTAINERS", "NETWORK", "SUBNET", "BRIDGE");
            for n in networks.list() {
                let containers: Vec<String> = n
                    .containers
                    .iter()
                    .map(|(id, ip)| match ip {
                        Some(ip) => format!("{id} ({ip})"),
                        None => id.clone(),
                    })
                    .collect();
                println!("{:<32} {:<18} {:<16} {}", n.name, n.subnet, n.bridge, containers.join(", "));
            }
        }
        NetworksCommand::Prune => {
            // A container runs while the OCI runtime keeps its state (`crun delete` removes it).
            let running: HashSet<String> = std::fs::read_dir(mini_dir.join("meta/oci"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            let before = networks.list();
            networks.recover(&running).await;
            let after = networks.list();
            for n in &before {
                if !after.iter().any(|a| a.name == n.name) {
                    eprintln!("network {} removed", n.name);
                }
            }
        }
    }
    Ok(())
}
