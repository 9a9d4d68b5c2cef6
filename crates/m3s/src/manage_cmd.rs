//! `m3s manage ...`: the management role's flags (a git repository holding the
//! desired state), and the CLI over its API: status, plan, apply, drift, sync.

use mesos::secret::Secret;
use std::path::{Path, PathBuf};

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::api_client::{ApiClient, ApiOptions};
use crate::metrics_cmd::parse_duration;

/// The management role, part of `m3s up` and `m3s serve` when a repository is given.
#[derive(Clone, Debug, Args)]
pub struct ManageArgs {
    /// Git repository holding the desired state (`git://`, `https://`, `ssh://`, `file://` or a
    /// path); its `<dir>/projects/<name>/compose.yaml` are the compose projects. Unset: no management.
    #[arg(long = "manage-repo", env = "M3S_MANAGE_REPO")]
    pub repo: Option<manage::git::RepoUrl>,
    #[arg(long = "manage-branch", env = "M3S_MANAGE_BRANCH", default_value = "main")]
    pub branch: String,
    /// The repository's directory that holds `projects/` (default: its root).
    #[arg(long = "manage-dir", env = "M3S_MANAGE_DIR", default_value = "")]
    pub dir: String,
    /// How often the repository is fetched.
    #[arg(long = "manage-interval", env = "M3S_MANAGE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Apply each new commit; with false, commits are only planned until `m3s manage apply`.
    #[arg(long = "manage-auto-apply", env = "M3S_MANAGE_AUTO_APPLY", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_apply: bool,
    /// At each sync (every interval), put back what was changed by hand since the last apply.
    #[arg(long = "manage-self-heal", env = "M3S_MANAGE_SELF_HEAL", default_value_t = false, action = clap::ArgAction::Set)]
    pub self_heal: bool,
    /// Secret of push webhooks at `POST /api/manage/v1/webhook` (GitHub and Gitea sign with it,
    /// GitLab sends it as its token). Unset: no webhook, polling only.
    #[arg(long = "manage-webhook-secret", env = "M3S_MANAGE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,
    /// A file holding an access token for an https repository (sent as HTTP Basic
    /// `x-access-token:<token>`; read at each fetch).
    #[arg(long = "manage-token-file", env = "M3S_MANAGE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// A private key for an ssh repository.
    #[arg(long = "manage-ssh-key", env = "M3S_MANAGE_SSH_KEY")]
    pub ssh_key: Option<PathBuf>,
    /// The known_hosts file the ssh server must be in (default: the user's).
    #[arg(long = "manage-known-hosts", env = "M3S_MANAGE_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
}

impl ManageArgs {
    pub fn config(&self, work_dir: &Path) -> Option<server::manage::ManageConfig> {
        let url = self.repo.as_ref()?.as_str();
        // A local path is given to git as it is; a relative one is made absolute.
        let url = if url.contains("://") || url.contains('@') {
            manage::git::RepoUrl::new(url)
        } else {
            manage::git::RepoUrl::new(std::fs::canonicalize(url).map_or(url.to_owned(), |p| p.display().to_string()))
        };
        Some(server::manage::ManageConfig {
            url,
            branch: self.branch.clone(),
            dir: self.dir.clone(),
            interval: self.interval,
            auto_apply: self.auto_apply,
            mirror_dir: work_dir.join("manage").join("repo.git"),
            webhook_secret: self.webhook_secret.clone().filter(|s| !s.is_empty()),
            self_heal: self.self_heal,
            repo_auth: manage::git::RepoAuth {
                token_file: self.token_file.as_deref().map(absolute),
                ssh_key: self.ssh_key.as_deref().map(absolute),
                known_hosts: self.known_hosts.as_deref().map(absolute),
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct ManageCliArgs {
    #[command(flatten)]
    pub api: ApiOptions,
    #[command(subcommand)]
    pub command: ManageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ManageCommand {
    /// The repository, the fetched and applied commits, the last error, the history.
    Status,
    /// What applying a commit (default: the fetched head) would change.
    Plan {
        #[arg(long)]
        commit: Option<String>,
    },
    /// Apply a commit (default: the fetched head); an earlier one rolls back.
    Apply {
        #[arg(long)]
        commit: Option<String>,
    },
    /// Where what runs differs from the applied commit.
    Drift,
    /// Fetch now (and apply, when auto-apply is on).
    Sync,
    /// The runbooks of the applied commit and their parameters.
    Runbooks,
    /// Run a runbook and follow its output until every task ends (exit 1 unless all succeed).
    Run {
        name: String,
        /// A parameter, `name=value` (repeatable); checked before anything starts.
        #[arg(short = 'p', long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print the run's id and return without following it.
        #[arg(long)]
        detach: bool,
    },
    /// Runbook runs, newest first; with an id, that run with its output.
    Runs { id: Option<String> },
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected name=value"))
}

fn print_run_header(r: &serde_json::Value) {
    println!(
        "run {} of {} ({}) by {} on {} agent(s): {}",
        r["id"].as_str().unwrap_or(""),
        r["runbook"].as_str().unwrap_or(""),
        crate::api_client::pairs(&r["params"], " "),
        r["who"].as_str().unwrap_or(""),
        r["agents"],
        r["state"].as_str().unwrap_or("")
    );
}

/// Follows a run: each task's new output as it arrives, then its end.
async fn follow(api: &ApiClient, id: &str) -> anyhow::Result<()> {
    let mut printed: std::collections::BTreeMap<(String, &'static str), usize> = Default::default();
    loop {
        let r = api.get(&format!("/api/manage/v1/runs/{id}")).await?;
        for t in r["tasks"].as_array().into_iter().flatten() {
            let task = t["host"].as_str().unwrap_or("").to_owned() + " " + t["task_id"].as_str().unwrap_or("");
            for stream in ["stdout", "stderr"] {
                let text = t[stream].as_str().unwrap_or("");
                let seen = printed.entry((task.clone(), stream)).or_insert(0);
                // Output is a window of the newest bytes: a shorter text means it moved on.
                let new = text.get(*seen..).unwrap_or(text);
                for line in new.lines() {
                    if stream == "stderr" {
                        eprintln!("[{task}] {line}");
                    } else {
                        println!("[{task}] {line}");
                    }
                }
                *seen = text.len();
            }
        }
        if r["state"] != "running" {
            for t in r["tasks"].as_array().into_iter().flatten() {
                println!(
                    "{} {}: {}{}",
                    t["host"].as_str().unwrap_or(""),
                    t["task_id"].as_str().unwrap_or(""),
                    t["state"].as_str().unwrap_or(""),
                    t["message"].as_str().map(|m| format!(" ({m})")).unwrap_or_default()
                );
            }
            let state = r["state"].as_str().unwrap_or("");
            println!("run {id}: {state}");
            if state != "succeeded" {
                bail!("run {id} {state}");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(args: ManageCliArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.api.into())?;
    let query = |commit: &Option<String>| match commit {
        Some(c) => format!("?commit={}", form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()),
        None => String::new(),
    };
    match args.command {
        ManageCommand::Status | ManageCommand::Sync => {
            let s = if matches!(args.command, ManageCommand::Sync) {
                api.post("/api/manage/v1/sync").await?
            } else {
                api.get("/api/manage/v1/status").await?
            };
            println!("repository {} ({})", s["repository"].as_str().unwrap_or(""), s["branch"].as_str().unwrap_or(""));
            println!("fetched    {}", s["head"].as_str().unwrap_or("-"));
            println!("applied    {}", s["applied"].as_str().unwrap_or("-"));
            if let Some(e) = s["error"].as_str() {
                println!("error      {e}");
            }
            for h in s["history"].as_array().into_iter().flatten().take(10) {
                println!(
                    "  {} {}: {}",
                    &h["commit"].as_str().unwrap_or("")[..12.min(h["commit"].as_str().unwrap_or("").len())],
                    h["subject"].as_str().unwrap_or(""),
                    h["result"].as_str().unwrap_or("")
                );
            }
        }
        ManageCommand::Plan { commit } => {
            let p = api.get(&format!("/api/manage/v1/plan{}", query(&commit))).await?;
            println!("commit {} {}", p["commit"].as_str().unwrap_or(""), p["subject"].as_str().unwrap_or(""));
            print!("{}", p["text"].as_str().unwrap_or(""));
        }
        ManageCommand::Apply { commit } => {
            let p = api.post(&format!("/api/manage/v1/apply{}", query(&commit))).await?;
            println!("applied {}", p["commit"].as_str().unwrap_or(""));
            print!("{}", p["text"].as_str().unwrap_or(""));
        }
        ManageCommand::Runbooks => {
            let list = api.get("/api/manage/v1/runbooks").await?;
            for r in list["runbooks"].as_array().into_iter().flatten() {
                let target = match &r["target"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!(
                    "{} (target {target}, timeout {}s): {}",
                    r["name"].as_str().unwrap_or(""),
                    r["timeout_s"],
                    r["description"].as_str().unwrap_or("")
                );
                for (name, p) in r["params"].as_object().into_iter().flatten() {
                    let default = p["default"].as_str().map(|d| format!(", default {d}")).unwrap_or_default();
                    let required = if p["required"] == true { ", required" } else { "" };
                    println!("  -p {name}=<{}>{default}{required}", p["type"].as_str().unwrap_or(""));
                }
            }
        }
        ManageCommand::Run { name, params, detach } => {
            let params: serde_json::Map<String, serde_json::Value> =
                params.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            let path = format!(
                "/api/manage/v1/runbooks/{}/run",
                form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            );
            let r = api.post_json(&path, &serde_json::json!({ "params": params })).await?;
            print_run_header(&r);
            if !detach {
                follow(&api, r["id"].as_str().unwrap_or("")).await?;
            }
        }
        ManageCommand::Runs { id: Some(id) } => {
            let r = api
                .get(&format!(
                    "/api/manage/v1/runs/{}",
                    form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
                ))
                .await?;
            print_run_header(&r);
            for t in r["tasks"].as_array().into_iter().flatten() {
                println!(
                    "--- {} {}: {}",
                    t["host"].as_str().unwrap_or(""),
                    t["task_id"].as_str().unwrap_or(""),
                    t["state"].as_str().unwrap_or("")
                );
                print!("{}", t["stdout"].as_str().unwrap_or(""));
                eprint!("{}", t["stderr"].as_str().unwrap_or(""));
            }
        }
        ManageCommand::Runs { id: None } => {
            for r in api.get("/api/manage/v1/runs").await?.as_array().into_iter().flatten() {
                print_run_header(r);
            }
        }
        ManageCommand::Drift => {
            let p = api.get("/api/manage/v1/drift").await?;
            if p["drifted"] == true {
                println!(
                    "what runs differs from the applied commit {}; applying it again would:",
                    p["commit"].as_str().unwrap_or("")
                );
                print!("{}", p["text"].as_str().unwrap_or(""));
                bail!("drift");
            }
            println!("no drift from {}", p["commit"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}
