//! `m3s credentials ...` and `m3s audit`: named API credentials with roles
//! (admin only), and the audit log of every change, over a running m3s's API.

use clap::{Args, Subcommand};

use crate::api_client::{ApiClient, ApiOptions};

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub api: ApiOptions,
    #[command(subcommand)]
    pub command: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Named credentials and their roles (never their tokens).
    List,
    /// Create a credential; its token is printed this once (m3s keeps only its hash).
    Add {
        name: String,
        /// viewer (reads all but secrets), operator (also deploys, scales, applies, runs), admin (also credentials).
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
    },
    /// Remove a credential: its token and its dashboard sessions stop working.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub api: ApiOptions,
    /// Only this credential's entries (`git` for what the management role applied).
    #[arg(long)]
    pub who: Option<String>,
    /// Only actions containing this text (a project's name, `apply`).
    #[arg(long)]
    pub contains: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the entries as JSON lines.
    #[arg(long)]
    pub json: bool,
}

pub async fn credentials(args: CredentialsArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.api.into())?;
    match args.command {
        CredentialsCommand::List => {
            let list = api.get("/api/v1/credentials").await?;
            println!("{:<24} {:<9} CREATED", "NAME", "ROLE");
            for c in list.as_array().into_iter().flatten() {
                let created = c["created_ms"].as_i64().map(mesos::utc::format_ms).unwrap_or_default();
                println!("{:<24} {:<9} {created}", c["name"].as_str().unwrap_or(""), c["role"].as_str().unwrap_or(""));
            }
        }
        CredentialsCommand::Add { name, role } => {
            let made = api.post_json("/api/v1/credentials", &serde_json::json!({"name": name, "role": role})).await?;
            eprintln!("created {name} ({role}); its token, shown only now:");
            println!("{}", made["token"].as_str().unwrap_or(""));
        }
        CredentialsCommand::Remove { name } => {
            let path =
                format!("/api/v1/credentials/{}", form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>());
            api.delete(&path).await?;
            println!("removed {name}");
        }
    }
    Ok(())
}

pub async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.api.into())?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &args.limit.to_string());
    if let Some(w) = &args.who {
        query.append_pair("who", w);
    }
    if let Some(c) = &args.contains {
        query.append_pair("contains", c);
    }
    let entries = api.get(&format!("/api/v1/audit?{}", query.finish())).await?;
    // Oldest first, as a log reads.
    for e in entries.as_array().into_iter().flatten().rev() {
        if args.json {
            println!("{e}");
            continue;
        }
        let at = e["at_ms"].as_i64().map(mesos::utc::format_ms).unwrap_or_default();
        println!(
            "{at} {:<16} {:<9} {} -> {}",
            e["who"].as_str().unwrap_or(""),
            e["via"].as_str().unwrap_or(""),
            e["action"].as_str().unwrap_or(""),
            e["result"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
