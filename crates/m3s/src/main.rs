//! The `m3s` binary: command line, configuration and wiring. It holds no
//! protocol logic; that lives in the library crates.

mod access_cmd;
mod api_client;
mod build_cmd;
mod compose_cmd;
mod config;
mod dns_cmd;
mod images_cmd;
mod k3s_cmd;
mod k3s_framework;
mod manage_cmd;
mod mesos_cmd;
mod metrics_cmd;
mod mini_cmd;
mod networks_cmd;
mod paths;
mod project;
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
// Parsed once; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// K3s clusters as Mesos tasks: create, scale, hibernate, kubeconfig (on `m3s up --k3s`),
    /// or `m3s k3s serve` to run the K3s framework alone.
    K3s(k3s_cmd::K3sCliArgs),
    /// The desired state from git (`--manage-repo` on `m3s up`/`m3s serve`): status, plan, apply, drift.
    Manage(manage_cmd::ManageCliArgs),
    /// Named API credentials with roles (viewer, operator, admin): list, add, remove (admin only).
    Credentials(access_cmd::CredentialsArgs),
    /// The audit log: every change and refused change, who made it, when, and its result.
    Audit(access_cmd::AuditArgs),
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
    /// Print a shell completion script: `m3s completions bash > /etc/bash_completion.d/m3s`.
    Completions { shell: clap_complete::Shell },
    /// Write man pages (m3s.1, m3s-compose.1, m3s-compose-up.1, ...) into a directory.
    Man {
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
    /// Supervise one task (started by the agent, not by hand).
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        run_dir: std::path::PathBuf,
    },
    /// Follow, enter or remove a task's Docker container (run by the agent, not by hand).
    #[command(hide = true)]
    DockerExecutor {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let argv = compose_cmd::docker_compose_argv(std::env::args_os().collect());
    let compose = argv.get(1).is_some_and(|a| a == "compose");
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        // docker compose exits with 1 on a bad command line; help and version are no error.
        Err(e) if compose && e.use_stderr() => {
            let _ = e.print();
            return std::process::ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    // Work directories hold tokens, credentials and task environments: private by default.
    paths::private_umask();
    let client = match &cli.command {
        Command::Config { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Mesos { .. }
        | Command::Compose(_)
        | Command::Images(_)
        | Command::Networks(_) => true,
        Command::Metrics(m) => {
            matches!(m.command, metrics_cmd::MetricsCommand::Report(_) | metrics_cmd::MetricsCommand::Anomalies(_))
        }
        Command::K3s(k) => !matches!(k.command, k3s_cmd::K3sCommand::Serve(_)),
        Command::Manage(_) | Command::Credentials(_) | Command::Audit(_) => true,
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
    // As small: blocking calls to the Docker daemon, no async runtime.
    if let Command::DockerExecutor { args } = &cli.command {
        return std::process::ExitCode::from(mini::agent::docker::executor::main(args).clamp(0, 255) as u8);
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
        Command::K3s(args) => runtime().and_then(|rt| rt.block_on(k3s_cmd::run(args))),
        Command::Manage(args) => runtime().and_then(|rt| rt.block_on(manage_cmd::run(args))),
        Command::Credentials(args) => runtime().and_then(|rt| rt.block_on(access_cmd::credentials(args))),
        Command::Audit(args) => runtime().and_then(|rt| rt.block_on(access_cmd::audit(args))),
        Command::Images(args) => runtime().and_then(|rt| rt.block_on(images_cmd::run(args))),
        Command::Dns { mesos, args } => {
            mesos.resolve().and_then(|mesos| runtime().and_then(|rt| rt.block_on(dns_cmd::run(mesos, args))))
        }
        Command::Networks(args) => runtime().and_then(|rt| rt.block_on(networks_cmd::run(args))),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "m3s",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { dir } => write_man_pages(&dir),
        Command::Supervise { .. } | Command::DockerExecutor { .. } => unreachable!("handled above"),
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

/// One man page per command and subcommand, named as git's are (`m3s-compose-up.1`).
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    fn write(dir: &std::path::Path, name: &str, command: &clap::Command) -> anyhow::Result<usize> {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(command.clone().display_name(name.to_owned())).render(&mut bytes)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        let mut count = 1;
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            count += write(dir, &format!("{name}-{}", sub.get_name()), sub)?;
        }
        Ok(count)
    }
    std::fs::create_dir_all(dir)?;
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    let count = write(dir, "m3s", &command)?;
    eprintln!("{count} man pages in {}", dir.display());
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `{:?}` of the management and auth arguments (a debug log of them) shows no secret.
    #[test]
    fn secrets_stay_out_of_debug_output() {
        let argv = [
            "m3s",
            "up",
            "--manage-repo",
            "https://bot:url-s3cret@git.example/estate.git",
            "--manage-webhook-secret",
            "hook-s3cret",
        ];
        let Command::Up(up) = Cli::try_parse_from(argv).unwrap().command else { panic!("up") };
        let auth = config::AuthArgs {
            api_token: Some(mesos::secret::Secret::new("tok-s3cret")),
            auth_username: Some("admin".into()),
            auth_password: Some(mesos::secret::Secret::new("pw-s3cret")),
            insecure_open_api: false,
        };
        let shown = format!("{:?} {auth:?}", up.common.manage);
        for secret in ["tok-s3cret", "pw-s3cret", "url-s3cret", "hook-s3cret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("admin") && shown.contains("git.example"), "the rest is still shown: {shown}");
    }

    /// clap checks a command line's consistency (unique short flags, ...) only when it is built: all of it, here.
    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn docker_compose_flags_read_as_docker_compose_reads_them() {
        let parse = |line: &str| {
            let argv: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            Cli::try_parse_from(compose_cmd::docker_compose_argv(argv)).map(|c| c.command)
        };
        let Ok(Command::Compose(c)) = parse("m3s compose config -f a.yaml -p proj --profile x --env-file e") else {
            panic!("flags after the subcommand")
        };
        assert_eq!(
            (c.files, c.project.as_deref(), c.profiles, c.env_files),
            (vec!["a.yaml".into()], Some("proj"), vec!["x".to_owned()], vec!["e".into()])
        );
        let Ok(Command::Compose(c)) = parse("m3s compose -f a.yaml logs -ft web db") else { panic!("logs -f") };
        assert_eq!(c.files, vec![std::path::PathBuf::from("a.yaml")]);
        let compose_cmd::ComposeCommand::Logs { follow, timestamps, services, .. } = c.command else { panic!() };
        assert!(follow && timestamps);
        assert_eq!(services, ["web", "db"]);
        let Ok(Command::Compose(c)) = parse("m3s compose rm -sf web") else { panic!("rm -sf") };
        assert!(matches!(c.command, compose_cmd::ComposeCommand::Rm { force: true, stop: true, .. }));
        let Ok(Command::Compose(c)) = parse("m3s compose -f logs up --scale web=2 --wait-timeout 9 web") else {
            panic!()
        };
        assert_eq!(c.files, vec![std::path::PathBuf::from("logs")], "a file named logs is a file");
        assert!(matches!(c.command, compose_cmd::ComposeCommand::Up { wait_timeout: 9, .. }));
        let Ok(Command::Compose(c)) = parse("m3s compose exec web ls -f x") else { panic!("exec") };
        let compose_cmd::ComposeCommand::Exec { command, .. } = c.command else { panic!() };
        assert_eq!(command, ["ls", "-f", "x"], "the command's own flags are its own");
    }
}
