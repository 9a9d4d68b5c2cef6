//! Configuration shared by every role: flags that also read the environment
//! variables of the original M3s frameworks (mesos-compose, mesos-m3s), so an
//! existing deployment's environment keeps working. docs/configuration.md lists
//! them all; `m3s config` prints the resolved values with secrets hidden.

use mesos::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mesos::transport::{Credentials, TlsConfig, TransportConfig};
use mesos::v1::{FrameworkCapability, FrameworkCapabilityType, FrameworkInfo};
use serde::Serialize;

/// How to reach the Mesos master.
#[derive(Debug, Clone, Args, Serialize)]
pub struct MesosArgs {
    /// Master: host:port, a comma-separated list, http(s)://..., or zk://host:2181[,host:2181]/mesos.
    #[arg(global = true, long = "master", env = "MESOS_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// Principal for HTTP Basic authentication to the master (also read from MESOS_USERNAME).
    #[arg(global = true, long = "mesos-principal", env = "MESOS_PRINCIPAL")]
    pub principal: Option<String>,
    /// Secret for the principal (also read from MESOS_PASSWORD). Never printed.
    #[arg(global = true, long = "mesos-secret", env = "MESOS_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,
    /// Mesos credentials file (`{"credentials":[{"principal":..,"secret":..}]}`): its first entry is
    /// used when no principal is given. For a master on this machine, the embedded cluster's
    /// (<work-dir>/mini/credentials.json) is used by default.
    #[arg(global = true, long = "mesos-credentials", env = "MESOS_CREDENTIALS")]
    pub credentials_file: Option<PathBuf>,
    /// Use https for masters given without a scheme.
    #[arg(global = true, long = "mesos-ssl", env = "MESOS_SSL", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ssl: bool,
    /// PEM file of CA certificates to trust besides the system store.
    #[arg(global = true, long = "mesos-ca-file", env = "MESOS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (test clusters only). Off by default,
    /// unlike the original frameworks.
    #[arg(global = true, long = "mesos-insecure", env = "SKIP_SSL", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub insecure: bool,
    /// Seconds allowed to connect to a master.
    #[arg(global = true, long = "mesos-connect-timeout", env = "MESOS_CONNECT_TIMEOUT", default_value_t = 10.0)]
    pub connect_timeout: f64,
}

impl MesosArgs {
    /// Fills in values the original frameworks read under other names, and
    /// the principal and secret from a credentials file.
    pub fn resolve(mut self) -> anyhow::Result<Self> {
        if self.principal.is_none() {
            self.principal = env_nonempty("MESOS_USERNAME");
        }
        if self.secret.is_none() {
            self.secret = env_nonempty("MESOS_PASSWORD").map(Secret::from);
        }
        if self.principal.is_some() || self.secret.is_some() {
            return Ok(self);
        }
        let file = match &self.credentials_file {
            Some(path) => Some(path.clone()),
            // Never offered to a remote master: it would learn the local secret.
            None if is_local_master(&self.master) => {
                Some(crate::paths::credentials_file(&crate::paths::mini_dir(&crate::paths::default_work_dir())))
                    .filter(|p| p.exists())
            }
            None => None,
        };
        if let Some(path) = file {
            let first = crate::mini_cmd::read_credentials(&path)?.into_iter().next().expect("a non-empty list");
            self.principal = Some(first.principal);
            self.secret = Some(Secret::from(first.secret));
        }
        Ok(self)
    }

    pub fn transport(&self) -> anyhow::Result<TransportConfig> {
        let credentials = match (&self.principal, &self.secret) {
            (Some(p), Some(s)) => Some(Credentials::new(p, s.expose())),
            (Some(_), None) => anyhow::bail!("MESOS_PRINCIPAL is set but MESOS_SECRET (or MESOS_PASSWORD) is not"),
            (None, Some(_)) => anyhow::bail!("MESOS_SECRET is set but MESOS_PRINCIPAL (or MESOS_USERNAME) is not"),
            (None, None) => None,
        };
        if !self.connect_timeout.is_finite() || self.connect_timeout <= 0.0 {
            anyhow::bail!("--mesos-connect-timeout must be a positive number of seconds");
        }
        Ok(TransportConfig {
            credentials,
            tls: TlsConfig { ca_file: self.ca_file.clone(), insecure: self.insecure },
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            ..TransportConfig::default()
        })
    }
}

/// How the framework presents itself to the master.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FrameworkArgs {
    /// Framework name shown by the master.
    #[arg(long = "framework-name", env = "FRAMEWORK_NAME", default_value = "m3s")]
    pub name: String,
    /// Role the framework's resources are allocated to.
    #[arg(long = "framework-role", env = "FRAMEWORK_ROLE", default_value = "m3s")]
    pub role: String,
    /// User the tasks run as on the agents (default: the current user).
    #[arg(long = "framework-user", env = "FRAMEWORK_USER")]
    pub user: Option<String>,
    /// Hostname reported to the master (default: this machine's).
    #[arg(long = "framework-hostname", env = "FRAMEWORK_HOSTNAME")]
    pub hostname: Option<String>,
    /// Port of the framework's own API.
    #[arg(long = "framework-port", env = "FRAMEWORK_PORT", default_value_t = 10000)]
    pub port: u16,
    /// Web UI link shown in the Mesos UI.
    #[arg(long = "framework-webui-url", env = "FRAMEWORK_WEBUIURL")]
    pub webui_url: Option<String>,
    /// Seconds the master keeps the framework's tasks while it is disconnected (default one week).
    #[arg(long = "failover-timeout", env = "FRAMEWORK_FAILOVER_TIMEOUT", default_value_t = 604800.0)]
    pub failover_timeout: f64,
}

impl FrameworkArgs {
    pub fn framework_info(&self, principal: Option<&str>) -> FrameworkInfo {
        FrameworkInfo {
            user: self.user.clone().unwrap_or_else(current_user),
            name: self.name.clone(),
            failover_timeout: self.failover_timeout,
            checkpoint: true,
            roles: vec![self.role.clone()],
            hostname: self.hostname.clone(),
            principal: principal.map(str::to_owned),
            webui_url: self.webui_url.clone(),
            capabilities: FrameworkCapability::list(&[
                FrameworkCapabilityType::MultiRole,
                FrameworkCapabilityType::TaskKillingState,
                FrameworkCapabilityType::PartitionAware,
            ]),
            ..Default::default()
        }
    }
}

/// Settings read now and used by the roles that are still being built (the
/// compose framework's API and Redis state store); `m3s config` shows them so
/// that a deployment can be checked before those roles land.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ServiceArgs {
    /// Redis server (host:port) for framework state; unset means the embedded store.
    #[arg(long = "redis-server", env = "REDIS_SERVER")]
    pub redis_server: Option<String>,
    /// Redis password. Never printed.
    #[arg(long = "redis-password", env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<Secret>,
    /// Redis database number.
    #[arg(long = "redis-db", env = "REDIS_DB", default_value_t = 1)]
    pub redis_db: u32,
    /// User name for the m3s API (HTTP Basic).
    #[arg(long = "auth-username", env = "AUTH_USERNAME")]
    pub auth_username: Option<String>,
    /// Password for the m3s API. Never printed.
    #[arg(long = "auth-password", env = "AUTH_PASSWORD", hide_env_values = true)]
    pub auth_password: Option<Secret>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The user this process runs as (the embedded agent allows only it by default).
fn current_user() -> String {
    mini::agent::runtime::current_user_name().or_else(|| env_nonempty("USER")).unwrap_or_else(|| "root".to_owned())
}

/// Whether a `--master` value (or any `http(s)://host:port` URL) names one host on this machine.
pub fn is_local_master(master: &str) -> bool {
    let rest = master.strip_prefix("http://").or_else(|| master.strip_prefix("https://")).unwrap_or(master);
    if rest.contains(',') || rest.starts_with("zk://") {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Maps LOGLEVEL values of the original frameworks (`info`, `DEBUG`, `warning`)
/// to a tracing filter; anything else is taken as a tracing filter directive.
pub fn log_filter(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        "fatal" | "panic" => "error".to_owned(),
        other => other.to_owned(),
    }
}

#[derive(Clone, Debug, Args)]
pub struct AuthArgs {
    /// Bearer token (default: AUTH_USERNAME/AUTH_PASSWORD if set, else one generated into <work-dir>/api-token).
    #[arg(long = "api-token", env = "M3S_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,
    /// User name for HTTP Basic (and InfluxDB v1's u/p).
    #[arg(long = "auth-username", env = "AUTH_USERNAME")]
    pub auth_username: Option<String>,
    /// Its password. Never printed.
    #[arg(long = "auth-password", env = "AUTH_PASSWORD", hide_env_values = true)]
    pub auth_password: Option<Secret>,
    /// Serve without authentication: anyone reaching the port can write and read.
    #[arg(long = "insecure-open-api", default_value_t = false)]
    pub insecure_open_api: bool,
}

/// Auth from flags: Basic credentials (with the token, if given), else a token
/// (given, or generated once into `<work-dir>/api-token`, mode 0600).
pub fn resolve_auth(args: &AuthArgs, work_dir: &Path) -> anyhow::Result<(server::Auth, String)> {
    let (auth, note) = resolve_scheme(args, work_dir)?;
    let credentials = server::access::Credentials::load(work_dir.join("credentials"))?;
    let audit = server::audit::AuditLog::open(work_dir.join("audit.jsonl"));
    Ok((auth.with_stores(credentials, audit), note))
}

fn resolve_scheme(args: &AuthArgs, work_dir: &Path) -> anyhow::Result<(server::Auth, String)> {
    if args.insecure_open_api {
        return Ok((server::Auth::open(), "open: no authentication".into()));
    }
    if let (Some(u), Some(p)) = (&args.auth_username, &args.auth_password) {
        return Ok(match &args.api_token {
            Some(t) => (
                server::Auth::basic_or_token(u, p.expose(), t.expose()),
                format!("HTTP Basic as {u} or the bearer token"),
            ),
            None => (server::Auth::basic(u, p.expose()), format!("HTTP Basic as {u}")),
        });
    }
    if let Some(t) = &args.api_token {
        return Ok((server::Auth::token(t.expose()), "bearer token from M3S_API_TOKEN".into()));
    }
    let path = crate::paths::token_file(work_dir);
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            mesos::private_file::write(&path, token.as_bytes())
                .with_context(|| format!("cannot write the API token to {}", path.display()))?;
            token
        }
    };
    Ok((server::Auth::token(&token), format!("bearer token in {}", path.display())))
}
