//! `m3s manage ...`: the management role's flags (a git repository holding the
//! desired state), and the CLI over its API: status, plan, apply, drift, sync.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::api_client::{ApiClient, ApiOptions};
use crate::metrics_cmd::parse_duration;

/// The management role, part of `m3s up` and `m3s serve` when a repository is given.
#[derive(Debug, Clone, Args)]
pub struct ManageArgs {
    /// Git repository holding the desired state (`git://`, `https://`, `ssh://`, `file://` or a
    /// path); its `<dir>/projects/<name>/compose.yaml` are the compose projects. Unset: no management.
    #[arg(long = "manage-repo", env = "M3S_MANAGE_REPO")]
    pub repo: Option<String>,
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
    /// Secret of push webhooks at `POST /api/manage/v1/webhook` (GitHub and Gitea sign with it,
    /// GitLab sends it as its token). Unset: no webhook, polling only.
    #[arg(long = "manage-webhook-secret", env = "M3S_MANAGE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

impl ManageArgs {
    pub fn config(&self, work_dir: &Path) -> Option<server::manage::ManageConfig> {
        let url = self.repo.clone()?;
        // A local path is given to git as it is; a relative one is made absolute.
        let url = if url.contains("://") || url.contains('@') {
            url
        } else {
            std::fs::canonicalize(&url).map(|p| p.display().to_string()).unwrap_or(url)
        };
        Some(server::manage::ManageConfig {
            url,
            branch: self.branch.clone(),
            dir: self.dir.clone(),
            interval: self.interval,
            auto_apply: self.auto_apply,
            mirror_dir: work_dir.join("manage").join("repo.git"),
            webhook_secret: self.webhook_secret.clone().filter(|s| !s.is_empty()),
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
