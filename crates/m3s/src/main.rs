//! The `m3s` binary: command line, configuration and wiring. It holds no
//! protocol logic; that lives in the library crates.

mod api_client;
mod compose_cmd;
mod config;
mod dns_cmd;
mod images_cmd;
mod mesos_cmd;
mod metrics_cmd;
mod mini_cmd;
mod networks_cmd;
mod paths;
mod serve_cmd;

use clap::{Parser, Subcommand};

use config::{FrameworkArgs, MesosArgs, ServiceArgs};

/// m3s: Mesos frameworks for compose projects and K3s, an embedded
/// single-node Mesos-compatible cluster, and M3trics, in one binary.
#[derive(Debug, Parser)]
#[command(name = "m3s", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long = "log-level", env = "LOGLEVEL", default_value = "info", global = true)]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the resolved configuration (flags and environment), secrets hidden.
    Config {
        #[command(flatten)]
        mesos: MesosArgs,
        #[command(flatten)]
        framework: FrameworkArgs,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Talk to a Mesos master: read its state, or follow events as a framework.
    Mesos {
        #[command(flatten)]
        mesos: MesosArgs,
        #[command(subcommand)]
        command: mesos_cmd::MesosCommand,
    },
    /// Everything on this machine in one process: the embedded cluster, the compose
    /// framework and its API; deploys the given compose files.
    Up(serve_cmd::UpArgs),
    /// Run the compose framework and its API against a Mesos master (embedded or real).
    Serve(serve_cmd::ServeArgs),
    /// Manage compose projects on a running m3s (`m3s up` or `m3s serve`).
    Compose(compose_cmd::ComposeArgs),
    /// M3trics: run the metrics store alone, or print its reports.
    Metrics(metrics_cmd::MetricsArgs),
    /// The embedded agent's container images on this machine: list, pull, prune.
    Images(images_cmd::ImagesArgs),
    /// Mesos-DNS's names (`<task>.<framework>.mesos`) for a Mesos master's tasks,
    /// over DNS and Mesos-DNS's REST lookups, in place of Mesos-DNS.
    Dns {
        #[command(flatten)]
        mesos: MesosArgs,
        #[command(flatten)]
        args: dns_cmd::DnsArgs,
    },
    /// The embedded agent's container networks on this machine: list, prune.
    Networks(networks_cmd::NetworksArgs),
    /// Run the embedded single-node cluster: a Mesos-compatible master and agent.
    Mini(mini_cmd::MiniArgs),
    /// Supervise one task (started by the agent, not by hand).
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        run_dir: std::path::PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Work directories hold tokens, credentials and task environments: private by default.
    paths::private_umask();
    let client = match &cli.command {
        Command::Config { .. }
        | Command::Mesos { .. }
        | Command::Compose(_)
        | Command::Images(_)
        | Command::Networks(_) => true,
        Command::Metrics(m) => matches!(m.command, metrics_cmd::MetricsCommand::Report(_)),
        _ => false,
    };
    if client {
        // Client commands end quietly when their reader goes away (`m3s mesos get tasks | head`),
        // as Unix tools do; Rust's runtime ignores SIGPIPE, which makes `println!` panic instead.
        // The servers keep ignoring it: a closed log pipe must not stop the platform.
        // SAFETY: setting a signal's disposition to the default before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // The supervisor stays tiny: no logging setup, no async runtime.
    if let Command::Supervise { run_dir } = &cli.command {
        return std::process::ExitCode::from(mini::agent::runtime::supervise(run_dir).clamp(0, 255) as u8);
    }
    // One process-wide TLS crypto provider (ring), for every client built later.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_new(config::log_filter(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not for log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let result = match cli.command {
        Command::Config { mesos, framework, service } => {
            mesos.resolve().and_then(|mesos| print_config(mesos, framework, service))
        }
        Command::Mesos { mesos, command } => {
            mesos.resolve().and_then(|mesos| runtime().and_then(|rt| rt.block_on(mesos_cmd::run(mesos, command))))
        }
        Command::Mini(args) => runtime().and_then(|rt| rt.block_on(mini_cmd::run(args))),
        Command::Up(args) => runtime().and_then(|rt| rt.block_on(serve_cmd::up(args))),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve_cmd::serve(args))),
        Command::Compose(args) => runtime().and_then(|rt| rt.block_on(compose_cmd::run(args))),
        Command::Metrics(args) => runtime().and_then(|rt| rt.block_on(metrics_cmd::run(args))),
        Command::Images(args) => runtime().and_then(|rt| rt.block_on(images_cmd::run(args))),
        Command::Dns { mesos, args } => {
            mesos.resolve().and_then(|mesos| runtime().and_then(|rt| rt.block_on(dns_cmd::run(mesos, args))))
        }
        Command::Networks(args) => runtime().and_then(|rt| rt.block_on(networks_cmd::run(args))),
        Command::Supervise { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("m3s: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: library errors often repeat their
/// source's message in their own, which `{:#}` would print twice.
fn describe(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

/// Two worker threads: m3s is IO-bound, and the machines it targets are small.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn print_config(mesos: MesosArgs, framework: FrameworkArgs, service: ServiceArgs) -> anyhow::Result<()> {
    // Validates what the clients would build, so a bad value fails here too.
    mesos.transport()?;
    mesos::master::Masters::parse(&mesos.master, mesos.ssl)?;
    let info = framework.framework_info(mesos.principal.as_deref());
    let out = serde_json::json!({
        "mesos": mesos,
        "framework": framework,
        "framework_info": info,
        "service": service,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
