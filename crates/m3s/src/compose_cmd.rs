//! `m3s compose ...`: the compose CLI, a client of a running m3s's v1 API
//! (`m3s up` or `m3s serve`). Files are read and checked here, where they are,
//! as docker compose does; the server gets one normalized document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::api_client::ApiClient;

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose files (later ones override earlier ones). Default: compose.yaml,
    /// compose.yml, docker-compose.yaml or docker-compose.yml in this directory.
    /// Given before the subcommand: `m3s compose -f FILE up`.
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name (default: the files' top-level `name`, COMPOSE_PROJECT_NAME, or the directory's name).
    #[arg(short = 'p', long = "project-name", env = "COMPOSE_PROJECT_NAME", global = true)]
    pub project: Option<String>,
    /// Profiles to enable (also COMPOSE_PROFILES, comma-separated).
    #[arg(long = "profile", env = "COMPOSE_PROFILES", value_delimiter = ',', global = true)]
    pub profiles: Vec<String>,
    #[command(flatten)]
    pub api: crate::api_client::ApiArgs,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Deploy the project (or apply changes to it) and wait until its services run.
    Up {
        /// Return once the project is accepted, without waiting.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Treat warnings (keys without meaning on Mesos, unset variables) as errors.
        #[arg(long)]
        strict: bool,
        /// Seconds to wait for the services to run.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// For pulls on this machine (with `m3s up` here, `up` pulls the images
        /// the embedded agent lacks first, showing their progress).
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
    },
    /// Stop and remove the project's tasks, and forget the project.
    Down {
        /// Return once removal has started.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Also remove the project's named and anonymous volumes (never external
        /// ones), once its tasks have ended. Needs the compose file.
        #[arg(short = 'v', long)]
        volumes: bool,
        /// Seconds to wait for the tasks to end.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// List the services and tasks of the project (or of every project).
    Ps {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the output of a service's tasks.
    Logs {
        /// Keep printing new output.
        #[arg(short = 'f', long)]
        follow: bool,
        service: String,
    },
    /// Set the number of replicas: `web=3 worker=0`.
    Scale {
        #[arg(required = true, value_name = "SERVICE=N")]
        services: Vec<String>,
    },
    /// Stop and start every task of a service.
    Restart { service: String },
    /// Run a one-off task of a service (its command replaced by COMMAND, if
    /// given), print its output and exit with its status, as `docker compose
    /// run --rm --no-deps` does: a project of its own for the time it runs,
    /// sharing the service's named volumes, with no ports and no dependencies.
    Run {
        /// KEY=VALUE added to the task's environment.
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Seconds to wait for the task to end (it is then stopped).
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Run a command in a service's running container, on this machine's
    /// embedded agent (`m3s up`): a terminal when stdin is one.
    Exec {
        /// Without a terminal, even when stdin is one.
        #[arg(short = 'T', long = "no-tty")]
        no_tty: bool,
        /// Which replica (1 is the first), as docker compose counts.
        #[arg(long, default_value_t = 1)]
        index: u32,
        /// Run as this user (numeric: uid[:gid]) instead of the container's.
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Working directory inside the container.
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// KEY=VALUE added to the command's environment.
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        service: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Pull the services' images into this machine's image store, which `m3s up` runs
    /// containers from (a real Mesos cluster's agents pull their own).
    Pull {
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
    },
    /// Check the files and print the normalized project (nothing is sent).
    Config {
        #[arg(long)]
        strict: bool,
    },
}

pub async fn run(args: ComposeArgs) -> anyhow::Result<()> {
    match &args.command {
        ComposeCommand::Config { strict } => {
            let loaded = load(&args, *strict)?;
            println!("{}", loaded.normalized);
            Ok(())
        }
        ComposeCommand::Pull { registry } => {
            let loaded = load(&args, false)?;
            let images: std::collections::BTreeSet<&String> =
                loaded.project.services.values().filter_map(|s| s.image.as_ref()).collect();
            let store = crate::images_cmd::store(args.api.work_dir.as_deref())?;
            let client = image::RegistryClient::new(registry.client_config()?)?;
            for name in images {
                crate::images_cmd::pull(&store, &client, name).await?;
            }
            Ok(())
        }
        ComposeCommand::Up { detach, strict, timeout, registry } => {
            let loaded = load(&args, *strict)?;
            pull_here_first(&args, registry, &loaded.project).await;
            let api = ApiClient::new(&args.api)?;
            let path = format!("/api/v1/projects/{}", loaded.name);
            let answer = api.put_text(&format!("{path}?strict={strict}"), &loaded.normalized).await?;
            for w in answer["warnings"].as_array().into_iter().flatten() {
                eprintln!("warning: {}", diagnostic_text(w));
            }
            for (what, label) in [("created", "created"), ("updated", "updated"), ("removed", "removed")] {
                let names: Vec<&str> =
                    answer[what].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                if !names.is_empty() {
                    eprintln!("{label}: {}", names.join(", "));
                }
            }
            if *detach {
                eprintln!("project {} deployed", loaded.name);
                return Ok(());
            }
            wait_up(&api, &path, Duration::from_secs(*timeout)).await
        }
        ComposeCommand::Down { detach, volumes, timeout } => {
            if *volumes && *detach {
                bail!("-v removes the volumes once the tasks have ended: it cannot be combined with -d");
            }
            // With -v, the file says which volumes are the project's: read it before anything is removed.
            let (name, volume_dirs) = if *volumes {
                let loaded = load(&args, false)?;
                let dirs = framework::translate::owned_volume_dirs(&loaded.name, &loaded.project);
                (loaded.name, dirs)
            } else {
                (project_name(&args)?, Vec::new())
            };
            let api = ApiClient::new(&args.api)?;
            let path = format!("/api/v1/projects/{name}");
            api.delete(&path).await?;
            if *detach {
                return Ok(());
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(*timeout);
            while api.get_opt(&path).await?.is_some() {
                if tokio::time::Instant::now() >= deadline {
                    let health = api.get("/api/v1/health").await.unwrap_or_default();
                    let why = if health["subscribed"] == false {
                        format!(
                            "m3s is not subscribed to the Mesos master at {}, so its tasks cannot be killed yet (see m3s's log)",
                            health["master"].as_str().unwrap_or("?")
                        )
                    } else {
                        "some tasks have not ended yet (see `m3s compose ps`)".to_owned()
                    };
                    bail!("project {name} is still being removed after {timeout}s: {why}; removal goes on");
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            eprintln!("project {name} removed");
            for dir in volume_dirs {
                if api.delete_opt(&format!("/api/v1/projects/{name}/volumes/{dir}")).await? {
                    eprintln!("volume {dir} removed");
                }
            }
            Ok(())
        }
        ComposeCommand::Run { env, timeout, service, command } => {
            let loaded = load(&args, false)?;
            let (run_name, document) = one_off_project(&loaded, service, command, env)?;
            let api = ApiClient::new(&args.api)?;
            let path = format!("/api/v1/projects/{run_name}");
            api.put_text(&path, &document).await?;
            let outcome = follow_one_off(&api, &run_name, service, Duration::from_secs(*timeout)).await;
            // The one-off project goes whatever happened (docker compose run --rm).
            if let Err(e) = api.delete(&path).await {
                eprintln!("warning: removing {run_name}: {e:#}");
            }
            let code = outcome?;
            std::process::exit(code);
        }
        ComposeCommand::Exec { no_tty, index, user, workdir, env, service, command } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            let view = api.get(&format!("/api/v1/projects/{name}/services/{service}")).await?;
            let replica = index.checked_sub(1).context("--index counts from 1")?;
            let task = view["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["replica"] == replica && t["state"] == "TASK_RUNNING")
                .and_then(|t| t["id"].as_str())
                .with_context(|| format!("service {service} of {name} has no running replica {index}"))?;
            let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
            let (mut argv, container_env) =
                match mini::agent::runtime::exec_target(&crate::paths::mini_dir(&work_dir), task) {
                    mini::agent::runtime::ExecTarget::Container { exec, env } => (exec, env),
                    mini::agent::runtime::ExecTarget::HostProcess => {
                        bail!("{service} runs as a host process (it has no image): there is no container to enter")
                    }
                    mini::agent::runtime::ExecTarget::NotHere => bail!(
                        "task {task} does not run on this machine's embedded agent (work dir {}): exec works with \
                     `m3s up`; pass --work-dir if it uses another",
                        work_dir.display()
                    ),
                };
            // `crun exec [OPTIONS] ID COMMAND...`: the options go before the id, which ends the prefix.
            let id = argv.pop().context("an empty exec command in the task's record")?;
            if !no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                argv.push("--tty".into());
            }
            // The prefix runs as the container's user in its working directory; -u and -w replace those.
            let mut replace = |flag: &str, value: &str| match argv.iter().position(|a| a == flag) {
                Some(i) if i + 1 < argv.len() => argv[i + 1] = value.to_owned(),
                _ => argv.extend([flag.to_owned(), value.to_owned()]),
            };
            if let Some(user) = user {
                replace("--user", user);
            }
            if let Some(dir) = workdir {
                replace("--cwd", dir);
            }
            // Given any variable, the runtime uses only the ones given: the
            // container's come first, each replaced by a -e of the same name.
            if !env.is_empty() {
                let mut given = Vec::new();
                for e in env {
                    let (key, _) = e.split_once('=').with_context(|| format!("-e {e}: expected KEY=VALUE"))?;
                    given.push((key.to_owned(), e.clone()));
                }
                let kept = container_env.iter().filter(|c| {
                    let key = c.split_once('=').map_or(c.as_str(), |(k, _)| k);
                    !given.iter().any(|(k, _)| k == key)
                });
                for e in kept.chain(given.iter().map(|(_, e)| e)) {
                    argv.extend(["--env".into(), e.clone()]);
                }
            }
            argv.push(id);
            argv.extend(command.iter().cloned());
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .with_context(|| format!("cannot run {}", argv[0]))?;
            // The command's exit status is ours, as with docker compose exec.
            std::process::exit(
                status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
            );
        }
        ComposeCommand::Ps { json } => {
            let api = ApiClient::new(&args.api)?;
            let projects: Vec<Value> = match project_name_opt(&args)? {
                Some(name) => vec![api.get(&format!("/api/v1/projects/{name}")).await?],
                None => {
                    let list = api.get("/api/v1/projects").await?;
                    let mut out = Vec::new();
                    for p in list.as_array().into_iter().flatten() {
                        if let Some(name) = p["name"].as_str() {
                            out.push(api.get(&format!("/api/v1/projects/{name}")).await?);
                        }
                    }
                    out
                }
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&projects)?);
            } else {
                print!("{}", ps_table(&projects));
            }
            Ok(())
        }
        ComposeCommand::Logs { follow, service } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            logs(&api, &name, service, *follow).await
        }
        ComposeCommand::Scale { services } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            for item in services {
                let Some((service, n)) = item.split_once('=') else { bail!("'{item}': expected SERVICE=N") };
                let n: u32 = n.parse().with_context(|| format!("'{item}': N must be a whole number"))?;
                api.put_json(
                    &format!("/api/v1/projects/{name}/services/{service}/scale"),
                    &serde_json::json!({ "replicas": n }),
                )
                .await?;
                eprintln!("{service}: {n} replica(s)");
            }
            Ok(())
        }
        ComposeCommand::Restart { service } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            api.post(&format!("/api/v1/projects/{name}/services/{service}/restart")).await?;
            eprintln!("{service}: restarting");
            Ok(())
        }
    }
}

/// The project `compose run` deploys: only SERVICE, run once, its command
/// replaced, without ports or dependencies, its named volumes those of the
/// project (as external volumes under their directory names).
fn one_off_project(
    loaded: &Loaded,
    service: &str,
    command: &[String],
    env: &[String],
) -> anyhow::Result<(String, String)> {
    let mut project = loaded.project.clone();
    let mut s =
        project.services.remove(service).with_context(|| format!("no service {service} in project {}", loaded.name))?;
    if !command.is_empty() {
        s.command = Some(compose::Command::Exec(command.to_vec()));
        s.arguments.clear();
    }
    for e in env {
        let (key, value) = e.split_once('=').with_context(|| format!("-e {e}: expected KEY=VALUE"))?;
        s.environment.insert(key.to_owned(), Some(value.to_owned()));
    }
    s.restart = Some(compose::Restart::No);
    s.deploy.restart_policy = None;
    s.deploy.replicas = Some(1);
    s.ports.clear();
    s.depends_on.clear();
    s.container_name = None;
    for (name, volume) in project.volumes.iter_mut() {
        if !volume.external {
            volume.name =
                Some(framework::translate::volume_dir_name(&loaded.name, &loaded.project, service, 0, Some(name)));
            volume.external = true;
        }
    }
    project.services = BTreeMap::from([(service.to_owned(), s)]);
    let hex: String = uuid::Uuid::new_v4().simple().to_string().chars().take(6).collect();
    let base: String = loaded.name.chars().take(63 - 11).collect();
    let run_name = format!("{base}-run-{hex}");
    project.name = Some(run_name.clone());
    let document = serde_json::to_string_pretty(&compose::normalize(&project)).expect("JSON values serialize");
    Ok((run_name, document))
}

/// Prints the one-off task's output as it comes (stdout to stdout, stderr to
/// stderr) until it ends; its exit status (1 when it never ran).
async fn follow_one_off(api: &ApiClient, project: &str, service: &str, timeout: Duration) -> anyhow::Result<i32> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut offsets = [0i64; 2];
    loop {
        let view = api.get(&format!("/api/v1/projects/{project}/services/{service}")).await?;
        let task = view["tasks"].as_array().and_then(|t| t.last()).cloned();
        let state = view["state"].as_str().unwrap_or("").to_owned();
        let mut progressed = false;
        if let Some(id) = task.as_ref().and_then(|t| t["id"].as_str()) {
            for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
                let url = format!("/api/v1/tasks/{id}/logs?stream={stream}&offset={}", offsets[i]);
                let Ok(chunk) = api.get(&url).await else { continue };
                let data = chunk["data"].as_str().unwrap_or("");
                if !data.is_empty() {
                    progressed = true;
                    if i == 0 {
                        print!("{data}");
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                    } else {
                        eprint!("{data}");
                    }
                }
                offsets[i] = chunk["offset"].as_i64().unwrap_or(offsets[i]);
            }
        }
        if !progressed && matches!(state.as_str(), "completed" | "failed") {
            let message = task.as_ref().and_then(|t| t["message"].as_str()).unwrap_or("").to_owned();
            if state == "completed" {
                return Ok(0);
            }
            if let Some(code) = message.strip_prefix("Command exited with status ").and_then(|c| c.trim().parse().ok())
            {
                return Ok(code);
            }
            let why =
                if message.is_empty() { view["message"].as_str().unwrap_or("it failed").to_owned() } else { message };
            eprintln!("{service}: {why}");
            return Ok(1);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{service} did not end within {}s; it is stopped", timeout.as_secs());
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// A project read from its files, checked, and ready to send.
pub struct Loaded {
    pub name: String,
    pub project: compose::Project,
    /// The normalized project as one compose document (JSON, which is YAML).
    pub normalized: String,
}

const DEFAULT_FILES: &[&str] = &["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

fn files(args: &ComposeArgs) -> anyhow::Result<Vec<PathBuf>> {
    if !args.files.is_empty() {
        return Ok(args.files.clone());
    }
    match DEFAULT_FILES.iter().map(PathBuf::from).find(|p| p.exists()) {
        Some(p) => Ok(vec![p]),
        None => bail!("no compose file: pass -f FILE, or run where {} is", DEFAULT_FILES.join(" or ")),
    }
}

/// Loads the files with the environment and the project directory's `.env`, checks them, and names the project.
pub fn load_files(
    files: &[PathBuf],
    explicit_name: Option<&str>,
    profiles: &[String],
    strict: bool,
) -> anyhow::Result<Loaded> {
    let project_dir = files[0].parent().map(Path::to_path_buf).unwrap_or_default();
    let project = read_project(files, &project_dir, profiles, strict)?;
    for w in project.warnings.iter() {
        eprintln!("warning: {w}");
    }
    let dir_name =
        std::fs::canonicalize(if project_dir.as_os_str().is_empty() { Path::new(".") } else { &project_dir })
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "default".to_owned());
    let name = match explicit_name {
        // Given by the user: used as it is, or refused (docker compose does the same).
        Some(name) => {
            framework::spec::check_project_name(name).map_err(|m| anyhow::anyhow!("-p: {m}"))?;
            name.to_owned()
        }
        None => {
            let raw = project.name.clone().unwrap_or(dir_name);
            let name = framework::translate::normalize_project_name(&raw);
            if name.is_empty() {
                bail!("project name '{raw}' has no usable characters: pass -p NAME");
            }
            name
        }
    };
    let normalized = serde_json::to_string_pretty(&compose::normalize(&project)).expect("JSON values serialize");
    Ok(Loaded { name, project, normalized })
}

/// Reads the files from disk: the process environment over the project directory's
/// `.env`, env_file, extends, include, profiles, and strict.
fn read_project(
    files: &[PathBuf],
    project_dir: &Path,
    profiles: &[String],
    strict: bool,
) -> anyhow::Result<compose::Project> {
    let options = compose::LoadOptions {
        project_dir: if project_dir.as_os_str().is_empty() { PathBuf::from(".") } else { project_dir.to_owned() },
        env: std::env::vars().collect(),
        profiles: profiles.to_vec(),
        strict,
        dotenv: true,
    };
    compose::load_files(files, &options).map_err(|e| anyhow::anyhow!("{e}"))
}

fn load(args: &ComposeArgs, strict: bool) -> anyhow::Result<Loaded> {
    load_files(&files(args)?, args.project.as_deref(), &args.profiles, strict)
}

fn project_name_opt(args: &ComposeArgs) -> anyhow::Result<Option<String>> {
    if let Some(p) = &args.project {
        framework::spec::check_project_name(p).map_err(|m| anyhow::anyhow!("-p: {m}"))?;
        return Ok(Some(p.clone()));
    }
    if args.files.is_empty() && !DEFAULT_FILES.iter().any(|f| Path::new(f).exists()) {
        return Ok(None);
    }
    Ok(Some(load(args, false)?.name))
}

/// With the API on this machine and the embedded agent's image store beside
/// it (`m3s up` here), pulls what the services need and the store lacks (per
/// `pull_policy`: `never` nothing, `always` everything), so that `up` shows the
/// progress. A failed pull is only a warning: the agent pulls and reports too.
async fn pull_here_first(args: &ComposeArgs, registry: &crate::mini_cmd::RegistryArgs, project: &compose::Project) {
    let local = reqwest::Url::parse(&args.api.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
    if !local || !crate::paths::mini_dir(&work_dir).join("images").is_dir() {
        return;
    }
    let Ok(store) = crate::images_cmd::store(Some(&work_dir)) else { return };
    let mut wanted = std::collections::BTreeSet::new();
    for s in project.services.values() {
        let Some(name) = &s.image else { continue };
        let Ok(reference) = name.parse::<image::Reference>() else { continue };
        let missing = store.get(&reference).is_none();
        match s.pull_policy.as_deref() {
            Some("never") | Some("build") => {}
            Some("always") => {
                wanted.insert(name.clone());
            }
            _ if missing => {
                wanted.insert(name.clone());
            }
            _ => {}
        }
    }
    if wanted.is_empty() {
        return;
    }
    let client = match registry.client_config().and_then(|c| Ok(image::RegistryClient::new(c)?)) {
        Ok(client) => client,
        Err(e) => return eprintln!("warning: not pulling here ({e:#}); the agent pulls"),
    };
    for name in wanted {
        if let Err(e) = crate::images_cmd::pull(&store, &client, &name).await {
            eprintln!("warning: {e:#}; the agent tries again and reports what fails");
        }
    }
}

fn project_name(args: &ComposeArgs) -> anyhow::Result<String> {
    project_name_opt(args)?.context("which project? pass -p NAME or -f FILE")
}

async fn wait_up(api: &ApiClient, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let view = api.get(path).await?;
        let mut all_up = true;
        let mut failed = Vec::new();
        for s in view["services"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or("?").to_owned();
            let state = s["state"].as_str().unwrap_or("?").to_owned();
            let message = s["message"].as_str().unwrap_or("");
            let line = if message.is_empty() { state.clone() } else { format!("{state} ({message})") };
            if shown.get(&name) != Some(&line) {
                eprintln!("{name}: {line}");
                shown.insert(name.clone(), line);
            }
            match state.as_str() {
                "running" | "healthy" | "completed" => {}
                "failed" => failed.push(name),
                _ => all_up = false,
            }
        }
        if !failed.is_empty() {
            bail!("failed: {}", failed.join(", "));
        }
        if all_up {
            eprintln!("all services are up; `m3s compose ps` shows them");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("not every service was up after {}s (see `m3s compose ps`)", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn diagnostic_text(d: &Value) -> String {
    match (d["file"].as_str(), d["line"].as_u64(), d["path"].as_str(), d["message"].as_str()) {
        (Some(f), Some(l), Some(p), Some(m)) => format!("{f}:{l}:{}: {p}: {m}", d["column"].as_u64().unwrap_or(0)),
        (_, _, Some(p), Some(m)) => format!("{p}: {m}"),
        _ => d.to_string(),
    }
}

fn ps_table(projects: &[Value]) -> String {
    let mut rows = vec![["PROJECT", "SERVICE", "REPLICAS", "STATE", "ENDPOINTS", "MESSAGE"].map(String::from).to_vec()];
    for p in projects {
        let project = p["name"].as_str().unwrap_or("?");
        for s in p["services"].as_array().into_iter().flatten() {
            let endpoints: Vec<&str> =
                s["endpoints"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            rows.push(vec![
                project.to_owned(),
                s["name"].as_str().unwrap_or("?").to_owned(),
                format!("{}/{}", s["running"].as_u64().unwrap_or(0), s["replicas"].as_u64().unwrap_or(0)),
                s["state"].as_str().unwrap_or("?").to_owned(),
                endpoints.join(","),
                s["message"].as_str().unwrap_or("").to_owned(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn logs(api: &ApiClient, project: &str, service: &str, follow: bool) -> anyhow::Result<()> {
    let view = api.get(&format!("/api/v1/projects/{project}/services/{service}")).await?;
    // The newest task of each replica, stdout and stderr, from their start.
    let mut newest: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    for t in view["tasks"].as_array().into_iter().flatten() {
        let (Some(replica), Some(id)) = (t["replica"].as_u64(), t["id"].as_str()) else { continue };
        let started = t["launched_at_ms"].as_u64().unwrap_or(0);
        if newest.get(&replica).is_none_or(|(s, _)| started >= *s) {
            newest.insert(replica, (started, id.to_owned()));
        }
    }
    let mut offsets: BTreeMap<(String, &str), i64> = BTreeMap::new();
    loop {
        let mut progressed = false;
        for (replica, (_, id)) in &newest {
            for stream in ["stdout", "stderr"] {
                let offset = *offsets.get(&(id.clone(), stream)).unwrap_or(&0);
                let chunk = api.get(&format!("/api/v1/tasks/{id}/logs?stream={stream}&offset={offset}")).await?;
                let data = chunk["data"].as_str().unwrap_or("");
                if !data.is_empty() {
                    progressed = true;
                    for line in data.lines() {
                        println!("{service}-{replica} | {line}");
                    }
                }
                offsets.insert((id.clone(), stream), chunk["offset"].as_i64().unwrap_or(offset));
            }
        }
        if !follow {
            return Ok(());
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
