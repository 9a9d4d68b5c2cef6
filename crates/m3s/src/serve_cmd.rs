//! `m3s serve` (the compose framework and its API against any Mesos master) and
//! `m3s up` (the same on the embedded cluster, in one process).

use mesos::secret::Secret;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use framework::driver::Framework;
use framework::store::{Store, StoreConfig};
use mesos::scheduler::SchedulerConfig;

use crate::config::{FrameworkArgs, MesosArgs, ServiceArgs};
use crate::paths;

/// What `serve` and `up` share: the framework, its store and its API.
#[derive(Debug, Clone, Args)]
pub struct FrameworkServeArgs {
    #[command(flatten)]
    pub framework: FrameworkArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Where m3s keeps its state (default: /var/lib/m3s as root, else ~/.local/share/m3s).
    #[arg(long = "work-dir", env = "M3S_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Address the API listens on (its port is --framework-port). Anything but loopback
    /// needs credentials, which are always required unless --insecure-open-api.
    #[arg(long = "api-bind", env = "M3S_API_BIND", default_value = "127.0.0.1")]
    pub api_bind: IpAddr,
    /// Bearer token for the API (default: AUTH_USERNAME/AUTH_PASSWORD if set, else a token
    /// generated once and kept in <work-dir>/api-token).
    #[arg(long = "api-token", env = "M3S_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,
    /// Serve the API without authentication: anyone reaching the port can run commands.
    #[arg(long = "insecure-open-api", default_value_t = false)]
    pub insecure_open_api: bool,
    /// Serve the API over HTTPS with this certificate chain: base64 of the PEM (mesos-compose's variable).
    #[arg(long = "api-tls-cert-base64", env = "SSL_CRT_BASE64", hide_env_values = true)]
    pub tls_cert_base64: Option<String>,
    /// Its private key: base64 of the PEM. Never printed.
    #[arg(long = "api-tls-key-base64", env = "SSL_KEY_BASE64", hide_env_values = true)]
    pub tls_key_base64: Option<Secret>,
    /// CPUs of a service that states none.
    #[arg(long = "default-cpus", env = "DEFAULT_CPU", default_value_t = 0.1)]
    pub default_cpus: f64,
    /// Memory (MB) of a service that states none.
    #[arg(long = "default-memory", env = "DEFAULT_MEMORY", default_value_t = 50.0)]
    pub default_memory: f64,
    /// Disk (MB) of a service (0: none reserved).
    #[arg(long = "default-disk", env = "DEFAULT_DISK", default_value_t = 0.0)]
    pub default_disk: f64,
    /// Most replicas of one service (`deploy.replicas`, `scale`); more is refused with 422.
    #[arg(long = "max-replicas", env = "M3S_MAX_REPLICAS", default_value_t = framework::engine::DEFAULT_MAX_REPLICAS)]
    pub max_replicas: u32,
    /// Most replicas of all services of all projects together.
    #[arg(long = "max-total-replicas", env = "M3S_MAX_TOTAL_REPLICAS", default_value_t = framework::engine::DEFAULT_MAX_TOTAL_REPLICAS)]
    pub max_total_replicas: u32,
    /// Containerizer for services with an image: docker or mesos (per service: `container_type`).
    #[arg(long = "container-type", env = "M3S_CONTAINER_TYPE", default_value = "docker")]
    pub container_type: String,
    #[command(flatten)]
    pub metrics: crate::metrics_cmd::MetricsStoreArgs,
    #[command(flatten)]
    pub k3s: crate::k3s_framework::K3sArgs,
    #[command(flatten)]
    pub manage: crate::manage_cmd::ManageArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub mesos: MesosArgs,
    #[command(flatten)]
    pub common: FrameworkServeArgs,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Compose files to deploy at start (later ones override earlier ones).
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name for -f (default: the files' `name`, or their directory's name).
    #[arg(short = 'p', long = "project-name", env = "COMPOSE_PROJECT_NAME")]
    pub project: Option<String>,
    /// Profiles to enable for -f.
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// Port of the embedded cluster's Mesos endpoints (on 127.0.0.1, so Mesos tools work against it).
    #[arg(long = "mesos-port", env = "M3S_MINI_PORT", default_value_t = 5050)]
    pub mesos_port: u16,
    /// Resources of the embedded agent, e.g. `cpus:2;mem:8192;disk:20000;ports:[31000-32000]` (default: the machine's).
    #[arg(long = "resources", env = "M3S_MINI_RESOURCES")]
    pub resources: Option<String>,
    /// Users the embedded agent runs tasks as, comma-separated, or `*` (default: the user m3s runs as).
    #[arg(long = "allowed-users", env = "M3S_MINI_ALLOWED_USERS", value_delimiter = ',')]
    pub allowed_users: Vec<String>,
    /// Serve the embedded cluster's Mesos port without authentication: any local process could
    /// then run commands there as the allowed users.
    #[arg(long = "insecure-open-mesos", default_value_t = false)]
    pub insecure_open_mesos: bool,
    #[command(flatten)]
    pub containers: crate::mini_cmd::ContainerArgs,
    #[command(flatten)]
    pub build: crate::build_cmd::BuildArgs,
    #[command(flatten)]
    pub common: FrameworkServeArgs,
}

/// What `serve` and `k3s serve` share: the master, the work directory, the scheduler's configuration.
fn remote(args: &ServeArgs) -> anyhow::Result<(String, PathBuf, SchedulerConfig)> {
    let mesos = args.mesos.clone().resolve()?;
    let work_dir = args.common.work_dir.clone().unwrap_or_else(paths::default_work_dir);
    paths::prepare_work_dir(&work_dir)
        .with_context(|| format!("preparing the work directory {}", work_dir.display()))?;
    let mut config =
        SchedulerConfig::new(mesos.master.clone(), args.common.framework.framework_info(mesos.principal.as_deref()));
    config.tls = mesos.ssl;
    config.transport = mesos.transport()?;
    Ok((mesos.master, work_dir, config))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (master, work_dir, config) = remote(&args)?;
    let node = crate::metrics_cmd::NodeMetrics::Collect { host: None };
    let running = start_framework(&args.common, &work_dir, config, node, None).await?;
    eprintln!("m3s serve: compose framework on Mesos master {master}; API {}", running.describe_api());
    eprintln!("m3s serve: dashboard on {}/ui/ (sign in with the same credentials)", running.api_url);
    crate::mini_cmd::shutdown_signal().await;
    running.metrics.close().await;
    eprintln!("m3s serve: stopped; tasks keep running and are re-adopted at the next start");
    Ok(())
}

/// `m3s k3s serve`: the K3s framework and its API alone against a Mesos master.
pub async fn serve_k3s(args: ServeArgs) -> anyhow::Result<()> {
    let (master, work_dir, config) = remote(&args)?;
    let k3s = crate::k3s_framework::start(&args.common.k3s, &args.common.service, &work_dir, config).await?;
    let (auth, auth_note) = api_auth(&args.common, &work_dir)?;
    if !args.common.api_bind.is_loopback() && auth.is_open() {
        bail!("refusing an open API on {}: drop --insecure-open-api or bind to 127.0.0.1", args.common.api_bind);
    }
    let tls = api_tls(&args.common)?;
    let addr = SocketAddr::new(args.common.api_bind, args.common.framework.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the API (pass --framework-port)"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "m3s k3s serve: K3s framework {} on Mesos master {master}; API {scheme}://{addr} ({auth_note})",
        args.common.k3s.framework_name
    );
    let app = server::k3s::router(k3s, auth);
    spawn_api(listener, app, tls);
    crate::mini_cmd::shutdown_signal().await;
    eprintln!("m3s k3s serve: stopped; clusters keep running and are re-adopted at the next start");
    Ok(())
}

/// Serves the API (over TLS when configured) until the process ends.
fn spawn_api(listener: tokio::net::TcpListener, app: axum::Router, tls: Option<std::sync::Arc<rustls::ServerConfig>>) {
    tokio::spawn(async move {
        let served = match tls {
            Some(config) => server::tls::serve(listener, app, config).await,
            None => axum::serve(listener, app).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "the API server stopped");
        }
    });
}

fn api_tls(args: &FrameworkServeArgs) -> anyhow::Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
    match (&args.tls_cert_base64, &args.tls_key_base64) {
        (Some(cert), Some(key)) => {
            Ok(Some(server::tls::config_from_base64(cert, key.expose()).map_err(|e| anyhow::anyhow!("API TLS: {e}"))?))
        }
        (None, None) => Ok(None),
        _ => {
            bail!("API TLS needs both SSL_CRT_BASE64 and SSL_KEY_BASE64 (--api-tls-cert-base64, --api-tls-key-base64)")
        }
    }
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let work_dir = args.common.work_dir.clone().unwrap_or_else(paths::default_work_dir);
    paths::prepare_work_dir(&work_dir)
        .with_context(|| format!("preparing the work directory {}", work_dir.display()))?;
    // Check the files before anything starts, so a typo costs nothing.
    let loaded = if args.files.is_empty() {
        None
    } else {
        let source = crate::project::ProjectSource {
            files: args.files.clone(),
            name: args.project.clone(),
            profiles: args.profiles.clone(),
            ..Default::default()
        };
        Some(crate::project::load_files(&source, false)?)
    };
    // Images of `build:` services, built here before anything starts, into the store the agent runs from.
    let loaded = match loaded {
        Some(mut loaded) if loaded.project.services.values().any(|s| s.build.is_some()) => {
            let store = crate::images_cmd::store(Some(&work_dir))?;
            let agent_docker = args
                .containers
                .containerizers
                .contains(&crate::mini_cmd::Containerizer::Docker)
                .then_some(args.containers.docker_socket.as_path());
            let options = args.build.options(&args.containers.registry, agent_docker);
            tokio::task::block_in_place(|| crate::build_cmd::build_project(&mut loaded, Some(&store), &options))?;
            Some(loaded)
        }
        other => other,
    };

    let mini_args = crate::mini_cmd::MiniArgs {
        port: args.mesos_port,
        bind: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        work_dir: Some(paths::mini_dir(&work_dir)),
        hostname: None,
        advertise_ip: None,
        resources: args.resources.clone(),
        attributes: String::new(),
        credentials: None,
        allowed_users: args.allowed_users.clone(),
        heartbeat_interval: 15.0,
        insecure_open: args.insecure_open_mesos,
        containers: args.containers.clone(),
    };
    let mesos_addr = SocketAddr::new(mini_args.bind, mini_args.port);
    let listener = tokio::net::TcpListener::bind(mesos_addr).await.with_context(|| {
        format!("cannot listen on {mesos_addr} for the embedded cluster (another m3s up or a Mesos master? pass --mesos-port)")
    })?;
    let built = crate::mini_cmd::build(&mini_args).await?;
    let cluster = built.cluster.clone();
    let app = mini::http::app(built.cluster, built.http);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the embedded cluster's HTTP server stopped");
        }
    });

    let master = format!("http://{mesos_addr}");
    let principal = built.client_credential.as_ref().map(|c| c.principal.as_str());
    let mut config = SchedulerConfig::new(master.clone(), args.common.framework.framework_info(principal));
    config.transport.credentials =
        built.client_credential.as_ref().map(|c| mesos::transport::Credentials::new(&c.principal, &c.secret));
    // This machine is the embedded agent: its metrics carry the agent's hostname.
    let node = crate::metrics_cmd::NodeMetrics::Collect { host: Some(cluster.config().hostname.clone()) };
    // The embedded agent's Docker Engine, for the inventory and the seed's /docker endpoints.
    let docker = args
        .containers
        .containerizers
        .contains(&crate::mini_cmd::Containerizer::Docker)
        .then(|| docker::Engine::new(&args.containers.docker_socket));
    let running = start_framework(&args.common, &work_dir, config, node, docker).await?;
    eprintln!(
        "m3s up: embedded Mesos master and agent on {master} (work dir {}; {})",
        work_dir.display(),
        built.auth_note
    );
    eprintln!("m3s up: compose API and M3trics on {}", running.describe_api());
    eprintln!("m3s up: dashboard on {}/ui/ (sign in with the same credentials)", running.api_url);

    if let Some(loaded) = loaded {
        let translated =
            framework::translate::translate(&loaded.name, &loaded.project, &running.translate).map_err(|problems| {
                anyhow::anyhow!(problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))
            })?;
        for w in &translated.warnings {
            eprintln!("warning: {w}");
        }
        let outcome = running.framework.deploy(translated.spec)?;
        eprintln!(
            "m3s up: project {} deployed ({} new, {} changed, {} unchanged); `{} -p {} ps` shows it",
            loaded.name,
            outcome.created.len(),
            outcome.updated.len(),
            outcome.unchanged.len(),
            compose_command(&running.api_url, &work_dir),
            loaded.name
        );
    }
    crate::mini_cmd::shutdown_signal().await;
    cluster.flush_checkpoint();
    running.metrics.close().await;
    eprintln!(
        "m3s up: stopped; tasks keep running and are re-adopted at the next `m3s up` (`m3s compose down` removes a project)"
    );
    Ok(())
}

/// `m3s compose` as this m3s must be addressed: the program as it was started,
/// with `--api` and `--work-dir` where they are not the defaults.
fn compose_command(api_url: &str, work_dir: &Path) -> String {
    let program = std::env::args().next().unwrap_or_else(|| "m3s".to_owned());
    let mut command = format!("{program} compose");
    if api_url != "http://127.0.0.1:10000" {
        command.push_str(&format!(" --api {api_url}"));
    }
    if work_dir != paths::default_work_dir() {
        command.push_str(&format!(" --work-dir {}", work_dir.display()));
    }
    command
}

struct Running {
    framework: Framework,
    metrics: crate::metrics_cmd::RunningMetrics,
    translate: framework::translate::Settings,
    api_url: String,
    auth_note: String,
}

impl Running {
    fn describe_api(&self) -> String {
        format!("{} ({})", self.api_url, self.auth_note)
    }
}

async fn start_framework(
    args: &FrameworkServeArgs,
    work_dir: &Path,
    config: SchedulerConfig,
    node: crate::metrics_cmd::NodeMetrics,
    docker: Option<docker::Engine>,
) -> anyhow::Result<Running> {
    let files = server::AgentFiles::new(&config.master, config.tls, config.transport.clone())?;
    let default_container = match args.container_type.as_str() {
        "docker" => compose::ContainerType::Docker,
        "mesos" => compose::ContainerType::Mesos,
        other => bail!("--container-type {other:?}: expected docker or mesos"),
    };
    for (flag, v) in [
        ("--default-cpus", args.default_cpus),
        ("--default-memory", args.default_memory),
        ("--default-disk", args.default_disk),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("{flag} must be a non-negative number");
        }
    }
    let translate = framework::translate::Settings {
        default_cpus: args.default_cpus,
        default_mem_mb: args.default_memory,
        default_disk_mb: args.default_disk,
        default_container,
        project_dir: std::env::current_dir().unwrap_or_default(),
        volumes_dir: work_dir.join("volumes"),
    };
    let store_config = match &args.service.redis_server {
        Some(server) => StoreConfig::Redis {
            url: server.clone(),
            password: args.service.redis_password.clone(),
            db: args.service.redis_db as i64,
            prefix: args.framework.name.clone(),
        },
        None => StoreConfig::Redb { path: work_dir.join("framework.redb") },
    };
    let store = Store::open(&store_config).await.context("opening the framework's state store")?;
    let instance = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let metrics_master = if config.master.starts_with("http") {
        Some((config.master.clone(), config.transport.clone()))
    } else {
        tracing::warn!(master = %config.master, "M3trics collects from http(s) masters only; not collecting cluster metrics");
        None
    };
    let limits =
        framework::engine::Limits { max_replicas: args.max_replicas, max_total_replicas: args.max_total_replicas };
    let k3s = if args.k3s.enabled {
        Some(crate::k3s_framework::start(&args.k3s, &args.service, work_dir, config.clone()).await?)
    } else {
        None
    };
    let framework = Framework::start(config, store, instance, limits).await?;

    let tls = api_tls(args)?;
    let (auth, auth_note) = api_auth(args, work_dir)?;
    if !args.api_bind.is_loopback() && auth.is_open() {
        bail!("refusing an open API on {}: drop --insecure-open-api or bind to 127.0.0.1", args.api_bind);
    }
    let addr = SocketAddr::new(args.api_bind, args.framework.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the API (pass --framework-port)"))?;
    let metrics = crate::metrics_cmd::start(&args.metrics, work_dir, auth.clone(), metrics_master, node)?;
    let mut state = server::ApiState::new(framework.clone(), auth.clone(), translate.clone()).with_files(files);
    if let Some(engine) = docker {
        state = state.with_docker(engine);
    }
    let manage = match args.manage.config(work_dir) {
        Some(config) => Some(
            server::manage::Manage::start(state.clone(), config, k3s.clone())
                .map_err(|e| anyhow::anyhow!("--manage-repo: {e}"))?,
        ),
        None => None,
    };
    let dashboard = server::dashboard::router(
        state.clone(),
        metrics.state.clone(),
        server::dashboard::DashboardConfig {
            secure: tls.is_some(),
            sign_in_hint: auth_note.clone(),
            k3s: k3s.clone(),
            manage: manage.clone(),
        },
    );
    let mut app = server::router(state).merge(metrics.router.clone()).merge(dashboard);
    app = match manage {
        Some(manage) => app.merge(server::manage::router(manage, auth.clone())),
        None => app.merge(server::role_not_running(
            "/api/manage",
            "management is not running here: start m3s with --manage-repo URL (docs/manage.md)",
        )),
    };
    app = match &k3s {
        Some(k3s) => app.merge(server::k3s::router(k3s.clone(), auth.clone())),
        None => app
            .merge(server::role_not_running(
                "/api/k3s",
                "the K3s framework is not running here: start m3s with --k3s (docs/k3s.md)",
            ))
            .merge(server::role_not_running(
                "/api/m3s",
                "the K3s framework is not running here: start m3s with --k3s (docs/k3s.md)",
            )),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    spawn_api(listener, app, tls);
    Ok(Running { framework, translate, api_url: format!("{scheme}://{addr}"), auth_note, metrics })
}

fn api_auth(args: &FrameworkServeArgs, work_dir: &Path) -> anyhow::Result<(server::Auth, String)> {
    let auth = crate::config::AuthArgs {
        api_token: args.api_token.clone(),
        auth_username: args.service.auth_username.clone(),
        auth_password: args.service.auth_password.clone(),
        insecure_open_api: args.insecure_open_api,
    };
    crate::config::resolve_auth(&auth, work_dir)
}
