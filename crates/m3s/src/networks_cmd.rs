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
            let running = running_containers(&mini_dir.join("meta/oci"));
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

/// The containers whose process is alive: the OCI runtime keeps a container's
/// state until `delete`, also after its process died (m3s killed with it), so
/// the state's pid is checked too (crun's `status`, runc's `state.json`). A
/// state without a readable pid counts as running: nothing is taken from a
/// container that may still use it.
fn running_containers(oci_root: &std::path::Path) -> HashSet<String> {
    let alive = |dir: &std::path::Path| {
        let pid = ["status", "state.json"].iter().find_map(|file| {
            let state: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(file)).ok()?).ok()?;
            state.get("pid").or_else(|| state.get("init_process_pid"))?.as_u64()
        });
        pid.is_none_or(|pid| pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    std::fs::read_dir(oci_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| alive(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_whose_process_died_is_not_running() {
        let root = std::env::temp_dir().join(format!("m3s-networks-running-{}", std::process::id()));
        let state = |id: &str, file: &str, body: String| {
            std::fs::create_dir_all(root.join(id)).unwrap();
            std::fs::write(root.join(id).join(file), body).unwrap();
        };
        // A child that has exited and been reaped: its pid names no process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        state("alive-crun", "status", format!(r#"{{"pid": {}}}"#, std::process::id()));
        state("alive-runc", "state.json", format!(r#"{{"init_process_pid": {}}}"#, std::process::id()));
        state("dead", "status", format!(r#"{{"pid": {dead}}}"#));
        state("unknown", "other", String::new());
        let running = running_containers(&root);
        std::fs::remove_dir_all(&root).unwrap();
        let mut names: Vec<&str> = running.iter().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["alive-crun", "alive-runc", "unknown"]);
    }
}
