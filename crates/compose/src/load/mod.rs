//! From source files to a typed [`Project`]: parse, merge, interpolate, type, check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Diagnostic, Errors, Pos, Warnings};
use crate::interp::{Env, interpolate};
use crate::model::*;
use crate::node::{self, Node, Value};

mod build;
mod check;
mod extends;
mod keys;
mod merge;
mod scalars;
mod service;
mod short;

pub use keys::parse_constraint;
pub use short::{ShortSyntaxError, parse_bytes, parse_duration, parse_short_port, parse_short_volume};
use short::{check_protocol, parse_port_number, parse_range};

/// One compose file as read by the caller.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Name used in diagnostics (e.g. `compose.yaml`).
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { name: name.into(), text: text.into() }
    }
}

/// Service keys that have no meaning on Mesos: warned about and dropped.
pub const MEANINGLESS_ON_MESOS: &[&str] =
    &["develop", "attach", "isolation", "credential_spec", "external_links", "use_api_socket", "provider", "models"];

/// Service keys of the compose specification (and mesos-compose extensions)
/// not typed yet: kept in [`Service::other`] for translation.
pub const KEPT_SERVICE_KEYS: &[&str] = &[
    "annotations",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "expose",
    "extra_hosts",
    "group_add",
    "init",
    "ipc",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_stop",
    "pull_refresh_after",
    "read_only",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "userns_mode",
    "uts",
    "volumes_from",
];

const DEPLOY_KEYS: &[&str] = &["mode", "labels", "update_config", "rollback_config", "endpoint_mode", "runtime"];

/// How [`load_files`] reads a project from disk.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Relative paths in the files (env_file, extends, include, `.env`) are read from here.
    pub project_dir: PathBuf,
    /// The environment for interpolation (the caller's process environment, usually).
    pub env: BTreeMap<String, String>,
    /// Active profiles; empty means COMPOSE_PROFILES from `env`, if set.
    pub profiles: Vec<String>,
    /// Warnings are errors.
    pub strict: bool,
    /// Read `<project_dir>/.env` for interpolation (below `env`).
    pub dotenv: bool,
    /// Files read instead of `<project_dir>/.env` (`--env-file`), later ones over earlier ones.
    pub env_files: Vec<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            project_dir: PathBuf::from("."),
            env: BTreeMap::new(),
            profiles: Vec::new(),
            strict: false,
            dotenv: true,
            env_files: Vec::new(),
        }
    }
}

/// Reads a file named in a compose file, relative to the project directory.
type Reader<'a> = &'a dyn Fn(&str) -> Result<String, ReadError>;

/// A file named in a compose file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A `.env` line that is not `NAME=value`, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a variable name (expected NAME=value)")]
pub struct DotenvError {
    pub line: u32,
    pub name: String,
}

/// Loads a project from the given texts (later files override earlier ones, by
/// the specification's merge rules). No IO: `extends` with `file`, `include`
/// and `env_file` need [`load_files`]. Services with profiles are enabled when
/// one of them is in COMPOSE_PROFILES of `env`.
///
/// Warnings are returned in [`Project::warnings`].
pub fn load(files: &[SourceFile], env: &Env) -> Result<Project, Errors> {
    load_with(files.to_vec(), env, active_profiles(&[], env), None, 0)
}

/// Loads a project from files on disk, with `.env`, `env_file`, `extends` from
/// other files, `include`, profiles and `strict`.
pub fn load_files(paths: &[PathBuf], options: &LoadOptions) -> Result<Project, Errors> {
    let fail = |file: String, message: String| {
        Errors(vec![Diagnostic { file, pos: Default::default(), path: String::new(), message }])
    };
    let mut sources = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(path.display().to_string(), format!("cannot read: {e}")))?;
        sources.push(SourceFile::new(path.display().to_string(), text));
    }
    let mut dotenv = BTreeMap::new();
    let given = !options.env_files.is_empty();
    let dotenv_files = if given { options.env_files.clone() } else { vec![options.project_dir.join(".env")] };
    for path in dotenv_files.iter().filter(|_| options.dotenv || given) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // `.env` is optional; a file named with --env-file is not.
            Err(e) if given => return Err(fail(path.display().to_string(), format!("cannot read: {e}"))),
            Err(_) => continue,
        };
        let vars = parse_dotenv(&text).map_err(|e| {
            Errors(vec![Diagnostic {
                file: path.display().to_string(),
                pos: Pos { line: e.line, column: 1 },
                path: String::new(),
                message: e.to_string(),
            }])
        })?;
        dotenv.extend(vars);
    }
    let env = Env::layered(options.env.clone(), dotenv);
    let dir = options.project_dir.clone();
    let reader = move |rel: &str| -> Result<String, ReadError> {
        let path = dir.join(rel);
        std::fs::read_to_string(&path).map_err(|source| ReadError { path, source })
    };
    let mut project = load_with(sources, &env, active_profiles(&options.profiles, &env), Some(&reader), 0)?;
    if options.strict && !project.warnings.is_empty() {
        return Err(Errors(project.warnings.0));
    }
    // As `docker compose config` does: what the files name relative to their
    // directory is made absolute here, where that directory is known, so that
    // whoever receives the project (the m3s API) finds the same files.
    let base = if options.project_dir.is_absolute() {
        options.project_dir.clone()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&options.project_dir))
            .unwrap_or_else(|_| options.project_dir.clone())
    };
    project.make_paths_absolute(&base);
    Ok(project)
}

fn active_profiles(given: &[String], env: &Env) -> BTreeSet<String> {
    if !given.is_empty() {
        return given.iter().cloned().collect();
    }
    env.get("COMPOSE_PROFILES")
        .map(|p| p.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `NAME=value` lines (`export` allowed, `#` comments, quotes removed): a `.env`
/// or `env_file`. Errors give the 1-based line.
pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            return Err(DotenvError { line: i as u32 + 1, name: k.to_owned() });
        }
        let v = match (
            v.strip_prefix('"').and_then(|v| v.strip_suffix('"')),
            v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')),
        ) {
            (Some(q), _) => q.replace("\\n", "\n").replace("\\\"", "\""),
            (_, Some(q)) => q.to_owned(),
            _ => v.split(" #").next().unwrap_or("").trim_end().to_owned(),
        };
        out.insert(k.to_owned(), v);
    }
    Ok(out)
}

/// Includes nested deeper than this are refused (a cycle, most likely).
const MAX_INCLUDE_DEPTH: u32 = 8;

fn load_with(
    files: Vec<SourceFile>,
    env: &Env,
    profiles: BTreeSet<String>,
    reader: Option<Reader<'_>>,
    depth: u32,
) -> Result<Project, Errors> {
    let mut cx =
        Cx { files, errors: Vec::new(), warnings: Vec::new(), env, profiles, reader, depth, disabled: BTreeMap::new() };
    let mut merged: Option<Node> = None;
    for i in 0..cx.files.len() {
        match node::parse(&cx.files[i].text) {
            Ok(mut n) => {
                n.set_file(i);
                cx.interpolate(&mut n, "", env);
                merged = Some(match merged {
                    None => n,
                    Some(base) => merge::merge(base, n, ""),
                });
            }
            Err((pos, msg)) => {
                let file = cx.files[i].name.clone();
                cx.errors.push(Diagnostic { file, pos, path: String::new(), message: format!("invalid YAML: {msg}") })
            }
        }
    }
    if !cx.errors.is_empty() {
        return Err(Errors(cx.errors));
    }
    let Some(root) = merged else {
        return Err(Errors(vec![Diagnostic {
            file: String::new(),
            pos: Default::default(),
            path: String::new(),
            message: "no compose file given".into(),
        }]));
    };
    let mut project = cx.project(&root);
    if cx.errors.is_empty() {
        project.warnings = Warnings(cx.warnings);
        Ok(project)
    } else {
        Err(Errors(cx.errors))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

struct Cx<'a> {
    /// The files read so far; `Node::file` indexes it (extends may add files).
    files: Vec<SourceFile>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    env: &'a Env,
    profiles: BTreeSet<String>,
    reader: Option<Reader<'a>>,
    depth: u32,
    /// Services left out because none of their profiles is active, with those profiles.
    disabled: BTreeMap<String, Vec<String>>,
}

impl Cx<'_> {
    pub(super) fn project(&mut self, root: &Node) -> Project {
        let mut p = Project::default();
        if root.value == Value::Null {
            self.err(root, "", "empty compose file");
            return p;
        }
        let mut services_node = None;
        let mut include_node = None;
        for (key, k, v) in self.map(root, "") {
            match key.as_str() {
                "version" => {
                    let version = self.opt_string(v, "version");
                    if let Some(ver) = &version
                        && !(ver.starts_with('2') || ver.starts_with('3'))
                    {
                        self.warn(v, "version", format!("unsupported version {ver:?} (2.x, 3.x or none are understood); read as the compose specification"));
                    }
                    p.version = version;
                }
                "name" => p.name = self.opt_string(v, "name"),
                "services" => services_node = Some(v),
                "networks" => {
                    for (name, _, n) in self.map_or_null(v, "networks") {
                        let net = self.network(n, &join("networks", &name));
                        p.networks.insert(name, net);
                    }
                }
                "volumes" => {
                    for (name, _, n) in self.map_or_null(v, "volumes") {
                        let vol = self.volume(n, &join("volumes", &name));
                        p.volumes.insert(name, vol);
                    }
                }
                "configs" | "secrets" => {
                    for (name, _, n) in self.map_or_null(v, &key) {
                        let obj = self.file_object(n, &join(&key, &name));
                        if key == "configs" {
                            p.configs.insert(name, obj);
                        } else {
                            p.secrets.insert(name, obj);
                        }
                    }
                }
                "include" => include_node = Some(v),
                "models" => self.warn(k, "models", "has no meaning on Mesos, ignored"),
                x if x.starts_with("x-") => {}
                _ => self.err(k, &key, "unknown top-level key (expected version, name, services, networks, volumes, configs, secrets or x-*)"),
            }
        }
        if let Some(v) = services_node {
            let resolved = self.resolve_extends(v);
            for (name, k, s) in self.map_or_null(&resolved, "services") {
                let path = join("services", &name);
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    self.err(k, &path, "invalid service name (allowed: letters, digits, '.', '_', '-')");
                    continue;
                }
                if name.chars().all(|c| c == '.') {
                    // They would name directories: `.` and `..` are the directories themselves.
                    self.err(k, &path, "invalid service name: '.' and '..' are not names");
                    continue;
                }
                let profiles: Vec<String> = s
                    .get("profiles")
                    .and_then(|n| match &n.value {
                        Value::Seq(items) => Some(items.iter().filter_map(Node::scalar_text).collect()),
                        _ => None,
                    })
                    .unwrap_or_default();
                if !profiles.is_empty() && !profiles.iter().any(|p| self.profiles.contains(p)) {
                    self.disabled.insert(name, profiles);
                    continue;
                }
                if let Some(svc) = self.service(s, &path, k) {
                    p.services.insert(name, svc);
                }
            }
        }
        if let Some(n) = include_node {
            self.include(n, &mut p);
        }
        self.check(&p, root);
        p
    }

    pub(super) fn network(&mut self, n: &Node, path: &str) -> Network {
        let mut net = Network::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "name" => net.name = self.opt_string(v, &p),
                "driver" => net.driver = self.opt_string(v, &p),
                "external" => net.external = self.external(v, &p, &mut net.name),
                "internal" => net.internal = self.boolean(v, &p).unwrap_or(false),
                "labels" => net.labels = self.labels(v, &p),
                "driver_opts" | "attachable" | "ipam" | "enable_ipv4" | "enable_ipv6" => {
                    net.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    net.other.insert(key, v.clone());
                }
            }
        }
        net
    }

    /// `external: true` or the legacy `external: {name: x}`.
    pub(super) fn external(&mut self, v: &Node, p: &str, name: &mut Option<String>) -> bool {
        if let Value::Map(_) = v.value {
            for (key, k, vv) in self.map(v, p) {
                if key == "name" {
                    *name = self.opt_string(vv, &join(p, "name"));
                } else {
                    self.unknown(k, &join(p, &key));
                }
            }
            return true;
        }
        self.boolean(v, p).unwrap_or(false)
    }

    pub(super) fn volume(&mut self, n: &Node, path: &str) -> Volume {
        let mut vol = Volume::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "name" => vol.name = self.opt_string(v, &p),
                "driver" => vol.driver = self.opt_string(v, &p),
                "driver_opts" => vol.driver_opts = self.labels(v, &p),
                "external" => vol.external = self.external(v, &p, &mut vol.name),
                "labels" => vol.labels = self.labels(v, &p),
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    vol.other.insert(key, v.clone());
                }
            }
        }
        vol
    }

    pub(super) fn file_object(&mut self, n: &Node, path: &str) -> FileObject {
        let mut o = FileObject::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "name" => o.name = self.opt_string(v, &p),
                "file" => o.file = self.opt_string(v, &p),
                "environment" => o.environment = self.opt_string(v, &p),
                "content" => o.content = self.opt_string(v, &p),
                "external" => o.external = self.external(v, &p, &mut o.name),
                "labels" => o.labels = self.labels(v, &p),
                "driver" | "driver_opts" | "template_driver" => {
                    o.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    o.other.insert(key, v.clone());
                }
            }
        }
        let sources =
            [o.file.is_some(), o.environment.is_some(), o.content.is_some(), o.external].iter().filter(|b| **b).count();
        if sources > 1 {
            self.err(n, path, "only one of file, environment, content and external may be given");
        }
        o
    }

    // ---- services ------------------------------------------------------------
}
