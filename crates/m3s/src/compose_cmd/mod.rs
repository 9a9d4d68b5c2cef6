//! `m3s compose ...`: the compose CLI, a client of a running m3s's v1 API
//! (`m3s up` or `m3s serve`). Files are read and checked here, where they are,
//! as docker compose does; the server gets one normalized document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

mod inspect;

use crate::api_client::ApiClient;
use crate::project::{Loaded, ProjectSource, load_files};

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose files (later ones override earlier ones). Default: compose.yaml,
    /// compose.yml, docker-compose.yaml or docker-compose.yml in the project directory.
    /// Accepted before or after the subcommand, as docker compose does (except
    /// after `logs`, where -f is --follow).
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Project name (default: the files' top-level `name`, COMPOSE_PROJECT_NAME, or the directory's name).
    #[arg(short = 'p', long = "project-name", env = "COMPOSE_PROJECT_NAME", global = true)]
    pub project: Option<String>,
    /// Profiles to enable (also COMPOSE_PROFILES, comma-separated).
    #[arg(long = "profile", env = "COMPOSE_PROFILES", value_delimiter = ',', global = true)]
    pub profiles: Vec<String>,
    /// Files of variables for interpolation, read instead of the project directory's `.env`.
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// The directory relative paths are read from, and where the default files are looked for
    /// (default: the first file's directory).
    #[arg(long = "project-directory", global = true)]
    pub project_directory: Option<PathBuf>,
    #[command(flatten)]
    pub api: crate::api_client::ApiArgs,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Deploy the project (or apply changes to it) and wait until its services run.
    Up {
        /// Only these services (and what they depend on); the others keep what is deployed of them.
        services: Vec<String>,
        /// Return once the project is accepted, without waiting.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Wait until the services run (or are healthy, where they have a health check): the default without -d.
        #[arg(long, conflicts_with = "detach")]
        wait: bool,
        /// Seconds to wait for the services to run.
        #[arg(long = "wait-timeout", alias = "timeout", default_value_t = 300)]
        wait_timeout: u64,
        /// With SERVICE: not the services it depends on.
        #[arg(long = "no-deps")]
        no_deps: bool,
        /// Restart the services' tasks even where nothing changed.
        #[arg(long = "force-recreate")]
        force_recreate: bool,
        /// SERVICE=N: run N replicas of SERVICE (over the file's `deploy.replicas`). Repeatable.
        #[arg(long, value_name = "SERVICE=N")]
        scale: Vec<String>,
        /// Treat warnings (keys without meaning on Mesos, unset variables) as errors.
        #[arg(long)]
        strict: bool,
        /// When no m3s answers at the API address, start `m3s up` in the background first.
        #[arg(long)]
        start: bool,
        /// For pulls on this machine (with `m3s up` here, `up` pulls the images
        /// the embedded agent lacks first, showing their progress).
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
        #[command(flatten)]
        build: crate::build_cmd::BuildArgs,
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
        /// Accepted for docker compose's sake: `down` removes every task of the
        /// project, including those of services no longer in the file.
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Also remove images from this machine's store: `local` those built without
        /// an `image:` name, `all` every image the services use.
        #[arg(long, value_name = "all|local")]
        rmi: Option<RemoveImages>,
        /// Seconds to wait for the tasks to end.
        #[arg(short = 't', long, default_value_t = 120)]
        timeout: u64,
    },
    /// List the services' tasks (of the project, or of every project).
    Ps {
        /// Only these services.
        services: Vec<String>,
        /// `table` (the default) or `json` (one object per task and line, as docker compose prints).
        #[arg(long, default_value = "table")]
        format: PsFormat,
        /// The project views as m3s's API gives them (JSON).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Also tasks that have ended.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only the services' names.
        #[arg(long = "services")]
        services_only: bool,
        /// Only the task ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print the output of the services' tasks (all services when none is named).
    Logs {
        services: Vec<String>,
        /// Keep printing new output (`-f` after `logs` means this, as in docker compose).
        #[arg(long)]
        follow: bool,
        /// Lines from the end of each task's output to start with (a number, or `all`).
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Only tasks running at or after this time (RFC 3339, or a duration like 10m: that long ago).
        #[arg(long)]
        since: Option<String>,
        /// Only tasks started before this time (RFC 3339, or a duration like 10m: that long ago).
        #[arg(long)]
        until: Option<String>,
        /// Prefix each task's output with the time it started (m3s keeps output without per-line times).
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Lines without the `service-N |` prefix.
        #[arg(long = "no-log-prefix")]
        no_log_prefix: bool,
    },
    /// Set the number of replicas: `web=3 worker=0`.
    Scale {
        #[arg(required = true, value_name = "SERVICE=N")]
        services: Vec<String>,
    },
    /// Stop and start every task of the services (all when none is named).
    Restart { services: Vec<String> },
    /// Stop the services' tasks (all when none is named); `start` brings them back.
    Stop { services: Vec<String> },
    /// Start stopped services again, with the replicas of the file.
    Start { services: Vec<String> },
    /// Stop the services' tasks at once (Mesos kills with TERM, then KILL after the
    /// service's stop grace period); `start` brings them back.
    Kill {
        /// Only KILL (9) is accepted: Mesos sends no other signal on request.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Remove stopped services' tasks. m3s keeps no stopped containers (an ended task's
    /// sandbox is collected by the agent), so this only reports, unless -s stops them first.
    Rm {
        /// Stop the services first.
        #[arg(short = 's', long)]
        stop: bool,
        /// Do not ask (nothing is asked: accepted for docker compose's sake; `-f` after `rm` means this).
        #[arg(long)]
        force: bool,
        services: Vec<String>,
    },
    /// Run a one-off task of a service (its command replaced by COMMAND, if
    /// given), print its output and exit with its status, as `docker compose
    /// run --rm --no-deps` does: a project of its own for the time it runs,
    /// sharing the service's named volumes, with no ports and no dependencies.
    Run {
        /// KEY=VALUE added to the task's environment.
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Accepted for docker compose's sake: the one-off task is always removed.
        #[arg(long)]
        rm: bool,
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
    /// The processes of the services' containers on this machine's embedded agent.
    Top { services: Vec<String> },
    /// Pull the services' images into this machine's image store, which `m3s up` runs
    /// containers from (a real Mesos cluster's agents pull their own).
    Pull {
        services: Vec<String>,
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
    },
    /// Build the images of services with `build:` (all, or those named) into this
    /// machine's image store, which `m3s up` runs containers from.
    Build {
        /// Do not use the builder's layer cache.
        #[arg(long = "no-cache")]
        no_cache: bool,
        /// Pull newer versions of the base images first.
        #[arg(long)]
        pull: bool,
        /// Also push the images to this registry (host[:port][/path]).
        #[arg(long = "push-to", value_name = "REGISTRY")]
        push_to: Option<String>,
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
        #[command(flatten)]
        builder: crate::build_cmd::BuilderArgs,
        services: Vec<String>,
    },
    /// Push the built images of services with `build:` to the registries their `image:` names.
    Push {
        services: Vec<String>,
        #[command(flatten)]
        registry: crate::mini_cmd::RegistryArgs,
        #[command(flatten)]
        builder: crate::build_cmd::BuilderArgs,
    },
    /// The images the services use, as this machine's store has them.
    Images {
        services: Vec<String>,
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: PsFormat,
        /// Only the image ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// The host address a service's container port is published on.
    Port {
        service: String,
        /// The container port.
        private_port: u16,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// Which replica (1 is the first).
        #[arg(long, default_value_t = 1)]
        index: u32,
    },
    /// Follow the project's task events (start, die, health), one line each.
    Events {
        services: Vec<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Check the files and print the normalized project (nothing is sent).
    Config {
        #[arg(long)]
        strict: bool,
        /// Only the services' names.
        #[arg(long)]
        services: bool,
        /// Only the volumes' names.
        #[arg(long)]
        volumes: bool,
        /// Only the images' names.
        #[arg(long)]
        images: bool,
        /// Only the profiles' names.
        #[arg(long = "profiles")]
        list_profiles: bool,
        /// `json` or `yaml` (m3s prints JSON, which is YAML, for both).
        #[arg(long, default_value = "yaml")]
        format: String,
        /// Only check: print nothing.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print m3s's version.
    Version {
        /// Only the version number.
        #[arg(long)]
        short: bool,
        /// `pretty` or `json`.
        #[arg(long, default_value = "pretty")]
        format: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RemoveImages {
    All,
    Local,
}

pub async fn run(args: ComposeArgs) -> anyhow::Result<()> {
    match &args.command {
        ComposeCommand::Config { strict, services, volumes, images, list_profiles, format, quiet } => {
            let loaded = load(&args, *strict)?;
            if *quiet {
                return Ok(());
            }
            let p = &loaded.project;
            let names: Option<Vec<String>> = if *services {
                Some(p.services.keys().cloned().collect())
            } else if *volumes {
                Some(p.volumes.keys().cloned().collect())
            } else if *images {
                Some(p.services.iter().map(|(n, s)| crate::build_cmd::image_name(&loaded.name, n, s)).collect())
            } else if *list_profiles {
                let all: std::collections::BTreeSet<&String> = p.services.values().flat_map(|s| &s.profiles).collect();
                Some(all.into_iter().cloned().collect())
            } else {
                None
            };
            match names {
                Some(names) => names.iter().for_each(|n| println!("{n}")),
                None if format == "json" || format == "yaml" => println!("{}", loaded.normalized),
                None => bail!("--format {format}: expected json or yaml"),
            }
            Ok(())
        }
        ComposeCommand::Version { short, format } => {
            inspect::version(*short, format);
            Ok(())
        }
        ComposeCommand::Pull { services, registry } => {
            let loaded = load(&args, false)?;
            check_services(&loaded, services)?;
            let images: std::collections::BTreeSet<&String> = loaded
                .project
                .services
                .iter()
                .filter(|(n, s)| chosen(services, n) && s.build.is_none())
                .filter_map(|(_, s)| s.image.as_ref())
                .collect();
            let store = crate::images_cmd::store(args.api.work_dir.as_deref())?;
            let client = image::RegistryClient::new(registry.client_config()?)?;
            for name in images {
                crate::images_cmd::pull(&store, &client, name).await?;
            }
            Ok(())
        }
        ComposeCommand::Build { no_cache, pull, push_to, registry, builder, services } => {
            let mut loaded = load(&args, false)?;
            let store = crate::images_cmd::store(args.api.work_dir.as_deref())?;
            let options = crate::build_cmd::BuildOptions {
                force: true,
                no_cache: *no_cache,
                pull: *pull,
                push_to: push_to.clone(),
                services: services.clone(),
                insecure_registries: registry.insecure_registries.clone(),
                docker_config: registry.docker_config.clone(),
                docker: builder.docker_home(None),
                ..Default::default()
            };
            let built =
                tokio::task::block_in_place(|| crate::build_cmd::build_project(&mut loaded, Some(&store), &options))?;
            if built.is_empty() {
                eprintln!("no service of {} has a build section", loaded.name);
            }
            Ok(())
        }
        ComposeCommand::Push { services, registry, builder } => {
            let loaded = load(&args, false)?;
            check_services(&loaded, services)?;
            let docker = builder.docker_home(None);
            tokio::task::block_in_place(|| {
                crate::build_cmd::push_project(&loaded, services, registry, docker.as_deref())
            })
        }
        ComposeCommand::Up {
            services,
            detach,
            wait: _,
            wait_timeout,
            no_deps,
            force_recreate,
            scale,
            strict,
            start,
            registry,
            build,
        } => {
            let mut loaded = load(&args, *strict)?;
            check_services(&loaded, services)?;
            for item in scale {
                let (service, n) = parse_scale(item)?;
                let s = loaded
                    .project
                    .services
                    .get_mut(service)
                    .with_context(|| format!("--scale {item}: no service {service} in project {}", loaded.name))?;
                s.deploy.replicas = Some(n);
            }
            let selected = selection(&loaded.project, services, *no_deps);
            if loaded
                .project
                .services
                .iter()
                .any(|(n, s)| s.build.is_some() && selected.as_ref().is_none_or(|o| o.contains(n)))
            {
                let store = local_store(&args);
                let mut options = build.options(registry, None);
                if let Some(only) = &selected {
                    options.services = loaded
                        .project
                        .services
                        .iter()
                        .filter(|(n, s)| only.contains(*n) && s.build.is_some())
                        .map(|(n, _)| n.clone())
                        .collect();
                }
                tokio::task::block_in_place(|| crate::build_cmd::build_project(&mut loaded, store.as_ref(), &options))?;
            } else {
                loaded.renormalize();
            }
            pull_here_first(&args, registry, &loaded.project).await;
            let api = ensure_running(&args, *start).await?;
            let path = format!("/api/v1/projects/{}", loaded.name);
            let mut query = format!("{path}?strict={strict}");
            if let Some(only) = &selected {
                query.push_str(&format!("&services={}", only.iter().cloned().collect::<Vec<_>>().join(",")));
            }
            let answer = api.put_text(&query, &loaded.normalized).await?;
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
            if *force_recreate {
                for name in answer["unchanged"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    api.post(&format!("{path}/services/{name}/restart")).await?;
                    eprintln!("recreated: {name}");
                }
            }
            if *detach {
                eprintln!("project {} deployed", loaded.name);
                return Ok(());
            }
            wait_up(&api, &path, selected.as_ref(), Duration::from_secs(*wait_timeout)).await
        }
        ComposeCommand::Down { detach, volumes, remove_orphans: _, rmi, timeout } => {
            if *volumes && *detach {
                bail!("-v removes the volumes once the tasks have ended: it cannot be combined with -d");
            }
            // With -v or --rmi, the file says which volumes and images are the project's: read it before anything is removed.
            let loaded = if *volumes || rmi.is_some() { Some(load(&args, false)?) } else { None };
            let (name, volume_dirs) = match &loaded {
                Some(loaded) if *volumes => {
                    (loaded.name.clone(), framework::translate::owned_volume_dirs(&loaded.name, &loaded.project))
                }
                Some(loaded) => (loaded.name.clone(), Vec::new()),
                None => (project_name(&args)?, Vec::new()),
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
            if let (Some(which), Some(loaded)) = (rmi, &loaded) {
                let store = crate::images_cmd::store(args.api.work_dir.as_deref())?;
                for (service, s) in &loaded.project.services {
                    let local = s.build.is_some() && s.image.is_none();
                    if *which == RemoveImages::Local && !local {
                        continue;
                    }
                    let reference: image::Reference = crate::build_cmd::image_name(&loaded.name, service, s).parse()?;
                    if store.remove(&reference).with_context(|| format!("removing {reference}"))? {
                        eprintln!("image {reference} removed");
                    }
                }
            }
            Ok(())
        }
        ComposeCommand::Run { env, rm: _, timeout, service, command } => {
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
            let task = running_task(&api, &name, service, *index).await?;
            let task = task["id"].as_str().context("a task without an id")?.to_owned();
            let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
            let (mut argv, container_env) = container_exec(&work_dir, &task, service)?;
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
        ComposeCommand::Ps { services, format, json, all, services_only, quiet } => {
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
            let options = inspect::PsOptions { services, all: *all, services_only: *services_only, quiet: *quiet };
            if *json {
                println!("{}", serde_json::to_string_pretty(&projects)?);
            } else {
                print!("{}", inspect::ps(&projects, *format, &options));
            }
            Ok(())
        }
        ComposeCommand::Logs { services, follow, tail, since, until, timestamps, no_log_prefix } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            let now_ms = now_ms();
            let options = inspect::LogOptions {
                follow: *follow,
                tail: inspect::parse_tail(tail)?,
                since_ms: since.as_deref().map(|s| inspect::parse_time(s, now_ms).context("--since")).transpose()?,
                until_ms: until.as_deref().map(|s| inspect::parse_time(s, now_ms).context("--until")).transpose()?,
                timestamps: *timestamps,
                prefix: !no_log_prefix,
            };
            inspect::logs(&api, &name, services, &options).await
        }
        ComposeCommand::Scale { services } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            for item in services {
                let (service, n) = parse_scale(item)?;
                set_replicas(&api, &name, service, json!(n)).await?;
                eprintln!("{service}: {n} replica(s)");
            }
            Ok(())
        }
        ComposeCommand::Restart { services } => {
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            for service in services {
                api.post(&format!("/api/v1/projects/{name}/services/{service}/restart")).await?;
                eprintln!("{service}: restarting");
            }
            Ok(())
        }
        ComposeCommand::Stop { services } | ComposeCommand::Rm { stop: true, services, .. } => {
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            for service in &services {
                set_replicas(&api, &name, service, json!(0)).await?;
                eprintln!("{service}: stopping");
            }
            if let ComposeCommand::Rm { .. } = &args.command {
                eprintln!("m3s keeps no stopped containers: the agent collects ended tasks' sandboxes");
            }
            Ok(())
        }
        ComposeCommand::Kill { signal, services } => {
            if !matches!(signal.trim_start_matches("SIG"), "KILL" | "9") {
                bail!("-s {signal}: Mesos kills tasks and sends no other signal on request; only KILL is accepted");
            }
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            for service in &services {
                set_replicas(&api, &name, service, json!(0)).await?;
                eprintln!("{service}: killed");
            }
            Ok(())
        }
        ComposeCommand::Rm { services, .. } => {
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            for service in &services {
                let view = api.get(&format!("/api/v1/projects/{name}/services/{service}")).await?;
                if view["running"].as_u64().unwrap_or(0) > 0 {
                    eprintln!("{service}: running; `m3s compose stop {service}` (or rm -s) stops it");
                }
            }
            eprintln!("m3s keeps no stopped containers: the agent collects ended tasks' sandboxes");
            Ok(())
        }
        ComposeCommand::Start { services } => {
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            for service in &services {
                set_replicas(&api, &name, service, Value::Null).await?;
                eprintln!("{service}: starting");
            }
            Ok(())
        }
        ComposeCommand::Top { services } => {
            let (name, services) = services_of(&args, services).await?;
            let api = ApiClient::new(&args.api)?;
            let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
            inspect::top(&api, &work_dir, &name, &services).await
        }
        ComposeCommand::Images { services, format, quiet } => {
            let loaded = load(&args, false)?;
            check_services(&loaded, services)?;
            let store = crate::images_cmd::store(args.api.work_dir.as_deref())?;
            print!("{}", inspect::images(&loaded, services, &store, *format, *quiet)?);
            Ok(())
        }
        ComposeCommand::Port { service, private_port, protocol, index } => {
            let loaded = load(&args, false)?;
            let api = ApiClient::new(&args.api)?;
            let answer = inspect::port(&api, &loaded, service, *private_port, protocol, *index).await?;
            println!("{answer}");
            Ok(())
        }
        ComposeCommand::Events { services, json } => {
            let name = project_name(&args)?;
            let api = ApiClient::new(&args.api)?;
            inspect::events(&api, &name, services, *json).await
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn parse_scale(item: &str) -> anyhow::Result<(&str, u32)> {
    let Some((service, n)) = item.split_once('=') else { bail!("'{item}': expected SERVICE=N") };
    let n: u32 = n.parse().with_context(|| format!("'{item}': N must be a whole number"))?;
    Ok((service, n))
}

/// `PUT .../scale`: a count, or `null` for the file's.
async fn set_replicas(api: &ApiClient, project: &str, service: &str, replicas: Value) -> anyhow::Result<()> {
    api.put_json(&format!("/api/v1/projects/{project}/services/{service}/scale"), &json!({ "replicas": replicas }))
        .await?;
    Ok(())
}

fn chosen(services: &[String], name: &str) -> bool {
    services.is_empty() || services.iter().any(|s| s == name)
}

fn check_services(loaded: &Loaded, services: &[String]) -> anyhow::Result<()> {
    match services.iter().find(|s| !loaded.project.services.contains_key(*s)) {
        Some(s) => bail!(
            "no such service: {s} (project {} has {})",
            loaded.name,
            loaded.project.services.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => Ok(()),
    }
}

/// The services `up SERVICE...` deploys: those named and, unless `no_deps`,
/// what they depend on, transitively. `None` when none is named: all.
fn selection(
    project: &compose::Project,
    services: &[String],
    no_deps: bool,
) -> Option<std::collections::BTreeSet<String>> {
    if services.is_empty() {
        return None;
    }
    let mut out: std::collections::BTreeSet<String> = services.iter().cloned().collect();
    let mut todo: Vec<String> = services.to_vec();
    while let Some(s) = todo.pop() {
        if no_deps {
            break;
        }
        for dep in project.services.get(&s).map(|s| s.depends_on.keys()).into_iter().flatten() {
            if out.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    Some(out)
}

/// The project's name and the services asked for, or all of the deployed project's.
async fn services_of(args: &ComposeArgs, services: &[String]) -> anyhow::Result<(String, Vec<String>)> {
    let name = project_name(args)?;
    if !services.is_empty() {
        return Ok((name, services.to_vec()));
    }
    let api = ApiClient::new(&args.api)?;
    let view = api.get(&format!("/api/v1/projects/{name}")).await?;
    let all = view["services"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).map(str::to_owned);
    Ok((name, all.collect()))
}

/// The `index`th (from 1) replica's running task, as the API shows it.
pub(super) async fn running_task(api: &ApiClient, project: &str, service: &str, index: u32) -> anyhow::Result<Value> {
    let view = api.get(&format!("/api/v1/projects/{project}/services/{service}")).await?;
    let replica = index.checked_sub(1).context("--index counts from 1")?;
    view["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["replica"] == replica && t["state"] == "TASK_RUNNING")
        .cloned()
        .with_context(|| format!("service {service} of {project} has no running replica {index}"))
}

/// The runtime command that enters a task's container here, and its environment.
fn container_exec(work_dir: &Path, task: &str, service: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    match mini::agent::runtime::exec_target(&crate::paths::mini_dir(work_dir), task) {
        mini::agent::runtime::ExecTarget::Container { exec, env } => Ok((exec, env)),
        mini::agent::runtime::ExecTarget::HostProcess => {
            bail!("{service} runs as a host process (it has no image): there is no container to enter")
        }
        mini::agent::runtime::ExecTarget::NotHere => bail!(
            "task {task} does not run on this machine's embedded agent (work dir {}): this works with \
             `m3s up`; pass --work-dir if it uses another",
            work_dir.display()
        ),
    }
}

/// docker compose's command line in clap's terms: after `compose logs`, `-f`
/// is `--follow`, after `compose rm` `--force` (elsewhere it names a file,
/// before or after the subcommand).
pub fn docker_compose_argv(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    // Flags (of `m3s` and `m3s compose`) that take a value, which is then no subcommand.
    const VALUED: &[&str] = &[
        "-f",
        "--file",
        "-p",
        "--project-name",
        "--profile",
        "--env-file",
        "--project-directory",
        "--api",
        "--api-token",
        "--api-ca-file",
        "--work-dir",
        "--log-level",
    ];
    let word = |a: &std::ffi::OsString| a.to_str().unwrap_or("").to_owned();
    let mut i = 1;
    let mut in_compose = false;
    while i < args.len() {
        let a = word(&args[i]);
        if VALUED.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        if !in_compose && a == "compose" {
            in_compose = true;
            i += 1;
            continue;
        }
        break;
    }
    // The subcommand, what its -f means, and its other value-less short flags with their long names.
    let (f, others): (&str, &[(char, &str)]) = match args.get(i).map(word).as_deref() {
        Some("logs") => ("--follow", &[('t', "--timestamps")]),
        Some("rm") => ("--force", &[('s', "--stop")]),
        _ => return args,
    };
    let mut out: Vec<std::ffi::OsString> = args.drain(..=i).collect();
    for a in args {
        let w = word(&a);
        // `-f`, and clusters of value-less short flags with it (`-ft`, `-sf`).
        let cluster = w.strip_prefix('-').filter(|s| {
            !s.starts_with('-') && s.contains('f') && s.chars().all(|c| c == 'f' || others.iter().any(|(o, _)| *o == c))
        });
        match cluster {
            Some(cluster) => {
                for c in cluster.chars() {
                    let long = if c == 'f' { f } else { others.iter().find(|(o, _)| *o == c).map_or(f, |(_, l)| *l) };
                    out.push(long.into());
                }
            }
            None => out.push(a),
        }
    }
    out
}

/// Checks that an m3s answers at the API address; with `start`, starts `m3s up`
/// in the background when none does, and waits for it.
async fn ensure_running(args: &ComposeArgs, start: bool) -> anyhow::Result<ApiClient> {
    let api = ApiClient::new(&args.api)?;
    if api.get_opt("/api/v1/health").await.is_ok() {
        return Ok(api);
    }
    let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
    if !start {
        bail!(
            "no m3s answers at {}: start the platform with `m3s up --work-dir {}` (or pass --start to \
             `m3s compose up`, which starts it in the background)",
            args.api.url,
            work_dir.display()
        );
    }
    let url = reqwest::Url::parse(&args.api.url).context("--api")?;
    if !crate::config::is_local_master(&args.api.url) {
        bail!("--start starts m3s on this machine, but --api {} is another", args.api.url);
    }
    crate::paths::prepare_work_dir(&work_dir)?;
    let log_path = work_dir.join("up.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding m3s's own binary")?;
    let mut command = std::process::Command::new(exe);
    command.arg("up").arg("--work-dir").arg(&work_dir);
    if let Some(port) = url.port() {
        command.arg("--framework-port").arg(port.to_string());
    }
    // Its own session: it outlives this command and the terminal's signals.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let child = command.spawn().context("starting m3s up")?;
    eprintln!("started m3s up (pid {}, work dir {}, log {})", child.id(), work_dir.display(), log_path.display());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The token is written at start: a client made before it would have none.
        let api = ApiClient::new(&args.api)?;
        if api.get_opt("/api/v1/health").await.is_ok() && api.get("/api/v1/projects").await.is_ok() {
            return Ok(api);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("m3s up did not answer within 60 s; see {}", log_path.display());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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

const DEFAULT_FILES: &[&str] = &["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

fn files(args: &ComposeArgs) -> anyhow::Result<Vec<PathBuf>> {
    if !args.files.is_empty() {
        return Ok(args.files.clone());
    }
    let dir = args.project_directory.clone().unwrap_or_default();
    match DEFAULT_FILES.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
        Some(p) => Ok(vec![p]),
        None => bail!(
            "no compose file: pass -f FILE, or run where {} is{}",
            DEFAULT_FILES.join(" or "),
            if dir.as_os_str().is_empty() { String::new() } else { format!(" (looked in {})", dir.display()) }
        ),
    }
}

fn load(args: &ComposeArgs, strict: bool) -> anyhow::Result<Loaded> {
    let source = ProjectSource {
        files: files(args)?,
        name: args.project.clone(),
        profiles: args.profiles.clone(),
        env_files: args.env_files.clone(),
        project_directory: args.project_directory.clone(),
    };
    load_files(&source, strict)
}

fn project_name_opt(args: &ComposeArgs) -> anyhow::Result<Option<String>> {
    if let Some(p) = &args.project {
        framework::spec::check_project_name(p).map_err(|m| anyhow::anyhow!("-p: {m}"))?;
        return Ok(Some(p.clone()));
    }
    if args.files.is_empty() && files(args).is_err() {
        return Ok(None);
    }
    Ok(Some(load(args, false)?.name))
}

/// With the API on this machine and the embedded agent's image store beside
/// it (`m3s up` here), pulls what the services need and the store lacks (per
/// `pull_policy`: `never` nothing, `always` everything), so that `up` shows the
/// progress. A failed pull is only a warning: the agent pulls and reports too.
async fn pull_here_first(args: &ComposeArgs, registry: &crate::mini_cmd::RegistryArgs, project: &compose::Project) {
    let Some(store) = local_store(args) else { return };
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

/// The embedded agent's image store, when the API is on this machine and the
/// store is beside it (`m3s up` here).
fn local_store(args: &ComposeArgs) -> Option<image::Store> {
    let local = crate::config::is_local_master(&args.api.url);
    let work_dir = args.api.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
    if !local || !crate::paths::mini_dir(&work_dir).join("images").is_dir() {
        return None;
    }
    crate::images_cmd::store(Some(&work_dir)).ok()
}

fn project_name(args: &ComposeArgs) -> anyhow::Result<String> {
    project_name_opt(args)?.context("which project? pass -p NAME or -f FILE")
}

async fn wait_up(
    api: &ApiClient,
    path: &str,
    only: Option<&std::collections::BTreeSet<String>>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let view = api.get(path).await?;
        let mut all_up = true;
        let mut failed = Vec::new();
        for s in view["services"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or("?").to_owned();
            if only.is_some_and(|o| !o.contains(&name)) {
                continue;
            }
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
