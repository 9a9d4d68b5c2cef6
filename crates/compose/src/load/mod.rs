//! From source files to a typed [`Project`]: parse, merge, interpolate, type, check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Diagnostic, Errors, Pos, Warnings};
use crate::interp::{Env, interpolate};
use crate::model::*;
use crate::node::{self, Node, Value};

mod extends;
mod keys;
mod merge;

pub use keys::parse_constraint;

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
pub const MEANINGLESS_ON_MESOS: &[&str] = &[
    "build",
    "develop",
    "attach",
    "isolation",
    "credential_spec",
    "links",
    "external_links",
    "use_api_socket",
    "provider",
    "models",
];

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
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            project_dir: PathBuf::from("."),
            env: BTreeMap::new(),
            profiles: Vec::new(),
            strict: false,
            dotenv: true,
        }
    }
}

/// Reads a file named in a compose file, relative to the project directory.
type Reader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

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
    let dotenv_path = options.project_dir.join(".env");
    let dotenv = match std::fs::read_to_string(&dotenv_path) {
        Ok(text) if options.dotenv => parse_dotenv(&text).map_err(|(line, message)| {
            Errors(vec![Diagnostic {
                file: dotenv_path.display().to_string(),
                pos: Pos { line, column: 1 },
                path: String::new(),
                message,
            }])
        })?,
        _ => BTreeMap::new(),
    };
    let env = Env::layered(options.env.clone(), dotenv);
    let dir = options.project_dir.clone();
    let reader = move |rel: &str| -> Result<String, String> {
        std::fs::read_to_string(dir.join(rel)).map_err(|e| format!("cannot read {}: {e}", dir.join(rel).display()))
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
pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, (u32, String)> {
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
            return Err((i as u32 + 1, format!("{k:?} is not a variable name (expected NAME=value)")));
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
    fn diag(&self, n: &Node, path: &str, message: String) -> Diagnostic {
        Diagnostic {
            file: self.files.get(n.file).map(|f| f.name.clone()).unwrap_or_default(),
            pos: n.pos,
            path: path.to_owned(),
            message,
        }
    }

    fn err(&mut self, n: &Node, path: &str, message: impl Into<String>) {
        let d = self.diag(n, path, message.into());
        self.errors.push(d);
    }

    fn warn(&mut self, n: &Node, path: &str, message: impl Into<String>) {
        let d = self.diag(n, path, message.into());
        self.warnings.push(d);
    }

    // ---- interpolation -------------------------------------------------

    fn interpolate(&mut self, n: &mut Node, path: &str, env: &Env) {
        match &mut n.value {
            Value::Str(s) => {
                let mut unset = Vec::new();
                match interpolate(s, env, &mut unset) {
                    Ok(v) => *s = v,
                    Err(e) => {
                        let d = self.diag(n, path, e);
                        self.errors.push(d);
                        return;
                    }
                }
                for name in unset {
                    self.warn(n, path, format!("variable {name} is not set, using the empty string"));
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate(item, &index(path, i), env);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    let key = k.scalar_text().unwrap_or_default();
                    if key.starts_with("x-") {
                        continue;
                    }
                    self.interpolate(v, &join(path, &key), env);
                }
            }
            _ => {}
        }
    }

    // ---- generic readers -------------------------------------------------

    /// Entries of a mapping with their keys as text; errors on anything else.
    fn map<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node, &'n Node)> {
        match &n.value {
            Value::Map(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    match k.scalar_text() {
                        Some(key) => out.push((key, k, v)),
                        None => self.err(k, path, format!("keys must be strings, not {}", k.kind())),
                    }
                }
                out
            }
            _ => {
                self.err(n, path, format!("must be a mapping, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    /// A mapping, or null meaning an empty mapping.
    fn map_or_null<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node, &'n Node)> {
        if n.value == Value::Null { Vec::new() } else { self.map(n, path) }
    }

    fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.value {
            Value::Str(_) | Value::Int(_) | Value::Float(_) => n.scalar_text(),
            _ => {
                self.err(n, path, format!("must be a string, not {}", n.kind()));
                None
            }
        }
    }

    fn opt_string(&mut self, n: &Node, path: &str) -> Option<String> {
        if n.value == Value::Null { None } else { self.string(n, path) }
    }

    fn strings(&mut self, n: &Node, path: &str) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, it)| self.string(it, &index(path, i))).collect()
            }
            Value::Null => Vec::new(),
            _ => {
                self.err(n, path, format!("must be a list of strings, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        match &n.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s == "true" || s == "false" => Some(s == "true"),
            _ => {
                self.err(n, path, format!("must be a boolean, not {}", n.kind()));
                None
            }
        }
    }

    fn float(&mut self, n: &Node, path: &str) -> Option<f64> {
        let v = match &n.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match v {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.err(n, path, format!("must be a non-negative number, not {}", show(n)));
                None
            }
        }
    }

    fn int(&mut self, n: &Node, path: &str) -> Option<i64> {
        let v = match &n.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if v.is_none() {
            self.err(n, path, format!("must be an integer, not {}", show(n)));
        }
        v
    }

    fn u32(&mut self, n: &Node, path: &str) -> Option<u32> {
        let v = self.int(n, path)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(n, path, format!("must be a non-negative integer, not {v}"));
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, path: &str) -> Option<Duration> {
        let text = match &n.value {
            Value::Str(s) => s.clone(),
            _ => {
                self.err(n, path, format!("must be a duration such as \"1m30s\", not {}", show(n)));
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n, path, format!("invalid duration {text:?}: {e}"));
                None
            }
        }
    }

    fn bytes(&mut self, n: &Node, path: &str) -> Option<u64> {
        match &n.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            Value::Str(s) => match parse_bytes(s) {
                Ok(b) => Some(b),
                Err(e) => {
                    self.err(n, path, format!("invalid size {s:?}: {e}"));
                    None
                }
            },
            _ => {
                self.err(n, path, format!("must be a size such as \"512m\", not {}", show(n)));
                None
            }
        }
    }

    /// `KEY=VALUE` list or mapping (environment, labels, driver options).
    fn key_values(&mut self, n: &Node, path: &str, allow_unset: bool) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = index(path, i);
                    let Some(s) = self.string(it, &p) else { continue };
                    match s.split_once('=') {
                        Some((k, v)) => {
                            out.insert(k.to_owned(), Some(v.to_owned()));
                        }
                        None if allow_unset => {
                            out.insert(s, None);
                        }
                        None => {
                            out.insert(s, Some(String::new()));
                        }
                    }
                }
            }
            Value::Map(_) => {
                for (k, _, v) in self.map(n, path) {
                    let p = join(path, &k);
                    let value = match &v.value {
                        Value::Null if allow_unset => None,
                        Value::Null => Some(String::new()),
                        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => v.scalar_text(),
                        _ => {
                            self.err(v, &p, format!("must be a string, number, boolean or null, not {}", v.kind()));
                            continue;
                        }
                    };
                    out.insert(k, value);
                }
            }
            _ => self.err(n, path, format!("must be a list of \"KEY=VALUE\" or a mapping, not {}", n.kind())),
        }
        out
    }

    fn labels(&mut self, n: &Node, path: &str) -> BTreeMap<String, String> {
        self.key_values(n, path, false).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
    }

    /// A key the compose specification does not have: an error, as the
    /// specification's schema makes it (`x-` keys are the place for extensions).
    fn unknown(&mut self, k: &Node, path: &str) {
        self.err(k, path, "unknown key (not in the compose specification; use an x- key for extensions)");
    }

    // ---- project -----------------------------------------------------------

    fn project(&mut self, root: &Node) -> Project {
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

    /// Cross-references between services and top-level objects.
    fn check(&mut self, p: &Project, root: &Node) {
        let Some(services) = root.get("services") else { return };
        for (name, svc) in &p.services {
            let Some(snode) = services.get(name) else { continue };
            let path = join("services", name);
            if let Some(deps) = snode.get("depends_on") {
                for (dep, d) in &svc.depends_on {
                    if let Some(profiles) = self.disabled.get(dep).cloned() {
                        if d.required {
                            let at = deps.get(dep).unwrap_or(deps);
                            self.err(
                                at,
                                &join(&path, "depends_on"),
                                format!(
                                    "depends on service {dep:?}, which is disabled: enable one of its profiles ({})",
                                    profiles.join(", ")
                                ),
                            );
                        }
                    } else if !p.services.contains_key(dep) {
                        let at = match &deps.value {
                            Value::Seq(items) => {
                                items.iter().find(|n| n.scalar_text().as_deref() == Some(dep)).unwrap_or(deps)
                            }
                            _ => deps.get(dep).unwrap_or(deps),
                        };
                        self.err(at, &join(&path, "depends_on"), format!("depends on undefined service {dep:?}"));
                    } else if dep == name {
                        self.err(deps, &join(&path, "depends_on"), "a service cannot depend on itself");
                    }
                }
            }
            if let Some(Value::Seq(items)) = snode.get("volumes").map(|n| &n.value) {
                for (i, m) in svc.volumes.iter().enumerate() {
                    if m.kind == MountType::Volume
                        && let Some(src) = &m.source
                        && !p.volumes.contains_key(src)
                    {
                        let at = items.get(i).unwrap_or(snode);
                        self.err(
                            at,
                            &index(&join(&path, "volumes"), i),
                            format!("refers to undefined volume {src:?} (declare it under the top-level volumes)"),
                        );
                    }
                }
            }
            if let Some(nets) = snode.get("networks") {
                for name in svc.networks.keys() {
                    if name != "default" && !p.networks.contains_key(name) {
                        let at = match &nets.value {
                            Value::Seq(items) => {
                                items.iter().find(|n| n.scalar_text().as_deref() == Some(name)).unwrap_or(nets)
                            }
                            _ => nets.get(name).unwrap_or(nets),
                        };
                        self.err(
                            at,
                            &join(&path, "networks"),
                            format!("refers to undefined network {name:?} (declare it under the top-level networks)"),
                        );
                    }
                }
            }
            for (key, declared) in [("secrets", &p.secrets), ("configs", &p.configs)] {
                let Some(Value::Seq(items)) = snode.get(key).map(|n| &n.value) else { continue };
                for (i, item) in items.iter().enumerate() {
                    let source = match &item.value {
                        Value::Map(_) => item.get("source").and_then(Node::scalar_text),
                        _ => item.scalar_text(),
                    };
                    if let Some(src) = source
                        && !declared.contains_key(&src)
                    {
                        self.err(
                            item,
                            &index(&join(&path, key), i),
                            format!(
                                "refers to undefined {} {src:?} (declare it under the top-level {key})",
                                &key[..key.len() - 1]
                            ),
                        );
                    }
                }
            }
            let port_items = match snode.get("ports").map(|n| &n.value) {
                Some(Value::Seq(items)) => items.as_slice(),
                _ => &[],
            };
            let mut seen: Vec<(u16, &str, Option<&str>)> = Vec::new();
            let mut fixed = false;
            for (i, port) in svc.ports.iter().enumerate() {
                let Some(range) = port.published else { continue };
                fixed = true;
                // A host range with one container port is a choice, not a claim on each port.
                if range.start != range.end {
                    continue;
                }
                let id = (range.start, port.protocol.as_str(), port.host_ip.as_deref());
                if seen.contains(&id) {
                    // Short ranges expand to several ports: name the entry only when they line up.
                    let (at, at_path) = match port_items.get(i) {
                        Some(item) if port_items.len() == svc.ports.len() => (item, index(&join(&path, "ports"), i)),
                        _ => (snode.get("ports").unwrap_or(snode), join(&path, "ports")),
                    };
                    self.err(at, &at_path, format!("host port {}/{} is published twice", range.start, port.protocol));
                }
                seen.push(id);
            }
            if fixed && svc.deploy.replicas.is_some_and(|r| r > 1) {
                let at = snode.get("deploy").and_then(|d| d.get("replicas")).unwrap_or(snode);
                self.warn(
                    at,
                    &join(&path, "deploy.replicas"),
                    "more than one replica with a fixed host port: on a single node only one can run",
                );
            }
        }
        self.dependency_cycles(p, services);
    }

    /// Names the first `depends_on` cycle found, at the service that closes it.
    fn dependency_cycles(&mut self, p: &Project, services: &Node) {
        // 0 unvisited, 1 on the stack, 2 done.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        let mut stack: Vec<&str> = Vec::new();
        fn visit<'p>(
            name: &'p str,
            p: &'p Project,
            state: &mut BTreeMap<&'p str, u8>,
            stack: &mut Vec<&'p str>,
        ) -> Option<Vec<&'p str>> {
            match state.get(name) {
                Some(1) => {
                    let from = stack.iter().position(|s| *s == name).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(name);
                    return Some(cycle);
                }
                Some(_) => return None,
                None => {}
            }
            state.insert(name, 1);
            stack.push(name);
            if let Some(svc) = p.services.get(name) {
                for dep in svc.depends_on.keys() {
                    if dep != name
                        && p.services.contains_key(dep)
                        && let Some(c) = visit(dep, p, state, stack)
                    {
                        return Some(c);
                    }
                }
            }
            stack.pop();
            state.insert(name, 2);
            None
        }
        for name in p.services.keys() {
            if let Some(cycle) = visit(name, p, &mut state, &mut stack) {
                let last = cycle[cycle.len() - 2];
                let path = join(&join("services", last), "depends_on");
                let at = services.get(last).and_then(|s| s.get("depends_on")).unwrap_or(services);
                self.err(at, &path, format!("dependency cycle: {}", cycle.join(" -> ")));
                return;
            }
        }
    }

    fn network(&mut self, n: &Node, path: &str) -> Network {
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
    fn external(&mut self, v: &Node, p: &str, name: &mut Option<String>) -> bool {
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

    fn volume(&mut self, n: &Node, path: &str) -> Volume {
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

    fn file_object(&mut self, n: &Node, path: &str) -> FileObject {
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

    fn service(&mut self, n: &Node, path: &str, name_node: &Node) -> Option<Service> {
        if !matches!(n.value, Value::Map(_)) {
            self.err(n, path, format!("a service must be a mapping, not {}", n.kind()));
            return None;
        }
        let mut s = Service::default();
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "image" => s.image = self.opt_string(v, &p),
                "command" => s.command = self.command(v, &p),
                "entrypoint" => s.entrypoint = self.command(v, &p),
                "environment" => {
                    // `- NAME` without a value takes it from the environment of whoever
                    // reads the file (the user's shell for `m3s compose`), as compose does.
                    let env = self.key_values(v, &p, true);
                    s.environment = env
                        .into_iter()
                        .map(|(k, v)| {
                            let v = v.or_else(|| self.env.get(&k).map(str::to_owned));
                            (k, v)
                        })
                        .collect();
                }
                "env_file" => s.env_file = self.env_file(v, &p),
                "ports" => s.ports = self.ports(v, &p),
                "volumes" => s.volumes = self.mounts(v, &p),
                "depends_on" => s.depends_on = self.depends_on(v, &p),
                "deploy" => s.deploy = self.deploy(v, &p),
                "cpus" => s.cpus = self.float(v, &p),
                "mem_limit" => s.mem_limit = self.bytes(v, &p),
                "mem_reservation" => s.mem_reservation = self.bytes(v, &p),
                "restart" => s.restart = self.restart(v, &p),
                "healthcheck" => s.healthcheck = self.healthcheck(v, &p),
                "working_dir" => s.working_dir = self.opt_string(v, &p),
                "user" => s.user = self.opt_string(v, &p),
                "hostname" => s.hostname = self.opt_string(v, &p),
                "labels" => s.labels = self.labels(v, &p),
                "stop_signal" => s.stop_signal = self.opt_string(v, &p),
                "stop_grace_period" => s.stop_grace_period = self.duration(v, &p),
                "profiles" => s.profiles = self.strings(v, &p),
                "container_type" => s.container_type = self.container_type(v, &p),
                "container_name" => s.container_name = self.opt_string(v, &p),
                "privileged" => s.privileged = self.boolean(v, &p).unwrap_or(false),
                "cap_add" => s.cap_add = self.strings(v, &p),
                "cap_drop" => s.cap_drop = self.strings(v, &p),
                "network_mode" | "network" => {
                    let mode = self.opt_string(v, &p);
                    if s.network_mode.is_some() && mode.is_some() && s.network_mode != mode {
                        self.err(k, &p, "network_mode and network disagree; give one");
                    }
                    s.network_mode = mode.or(s.network_mode.take());
                }
                "networks" => s.networks = self.service_networks(v, &p),
                "ulimits" => s.ulimits = self.ulimits(v, &p),
                "gpus" => s.gpus = self.gpus(v, &p),
                "pull_policy" => s.pull_policy = self.pull_policy(v, &p),
                "arguments" => s.arguments = self.strings(v, &p),
                "shell" => s.shell = self.boolean(v, &p),
                "mesos" => s.mesos = self.mesos_block(v, &p),
                // Applied before typing (extends.rs).
                "extends" => {}
                x if MEANINGLESS_ON_MESOS.contains(&x) => {
                    self.warn(k, &p, "has no meaning on Mesos, ignored");
                }
                x if KEPT_SERVICE_KEYS.contains(&x) => {
                    s.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    s.other.insert(key, v.clone());
                }
            }
        }
        if let Some(files) = n.get("env_file") {
            self.apply_env_files(files, &join(path, "env_file"), &mut s);
        }
        if s.gpus.is_none()
            && let Some(devices) = n
                .get("deploy")
                .and_then(|d| d.get("resources"))
                .and_then(|r| r.get("reservations"))
                .and_then(|r| r.get("devices"))
        {
            s.gpus = self.gpu_devices(devices, &join(path, "deploy.resources.reservations.devices"));
        }
        if s.container_name.is_some() && s.deploy.replicas.is_some_and(|r| r > 1) {
            self.err(
                name_node,
                &join(path, "container_name"),
                "a container_name needs a single replica (deploy.replicas > 1)",
            );
        }
        if s.image.is_none() && s.command.is_none() && s.entrypoint.is_none() && s.mesos.executor_command.is_none() {
            let why = if n.get("extends").is_some() {
                " (extends is not supported yet)"
            } else if n.get("build").is_some() {
                " (build is not supported on Mesos)"
            } else {
                ""
            };
            self.err(name_node, path, format!("no image, command or entrypoint: nothing to run{why}"));
        }
        Some(s)
    }

    /// Reads each `env_file` (relative to the project directory) into `environment`,
    /// below the service's own `environment`.
    fn apply_env_files(&mut self, n: &Node, path: &str, s: &mut Service) {
        let Some(reader) = self.reader else {
            if !s.env_file.is_empty() {
                self.warn(n, path, "env_file is read where the files are (m3s compose -f ...); ignored here");
            }
            return;
        };
        for (i, f) in s.env_file.clone().iter().enumerate() {
            let at = match &n.value {
                Value::Seq(items) => items.get(i).unwrap_or(n),
                _ => n,
            };
            let p = if matches!(n.value, Value::Seq(_)) { index(path, i) } else { path.to_owned() };
            let text = match reader(&f.path) {
                Ok(t) => t,
                Err(_) if !f.required => continue,
                Err(e) => {
                    self.err(at, &p, e);
                    continue;
                }
            };
            match parse_dotenv(&text) {
                Ok(vars) => {
                    for (k, v) in vars {
                        s.environment.entry(k).or_insert(Some(v));
                    }
                }
                Err((line, message)) => self.err(at, &p, format!("{}:{line}: {message}", f.path)),
            }
        }
    }

    fn command(&mut self, n: &Node, path: &str) -> Option<Command> {
        match &n.value {
            Value::Null => None,
            Value::Seq(_) => Some(Command::Exec(self.strings(n, path))),
            _ => self.string(n, path).map(Command::Shell),
        }
    }

    fn env_file(&mut self, n: &Node, path: &str) -> Vec<EnvFile> {
        let one = |path: String| EnvFile { path, required: true };
        match &n.value {
            Value::Null => Vec::new(),
            Value::Str(s) => vec![one(s.clone())],
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = index(path, i);
                    if let Value::Map(_) = it.value {
                        let mut f = EnvFile { path: String::new(), required: true };
                        for (key, k, v) in self.map(it, &p) {
                            match key.as_str() {
                                "path" => f.path = self.string(v, &join(&p, "path")).unwrap_or_default(),
                                "required" => f.required = self.boolean(v, &join(&p, "required")).unwrap_or(true),
                                "format" => {}
                                _ => self.unknown(k, &join(&p, &key)),
                            }
                        }
                        if f.path.is_empty() {
                            self.err(it, &p, "env_file entry needs a path");
                        } else {
                            out.push(f);
                        }
                    } else if let Some(s) = self.string(it, &p) {
                        out.push(one(s));
                    }
                }
                out
            }
            _ => {
                self.err(n, path, format!("must be a path or a list, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    /// The entries of a list with their key paths (`ports[0]`); null is an empty list.
    fn items<'n>(&mut self, n: &'n Node, path: &str) -> Vec<(String, &'n Node)> {
        match &n.value {
            Value::Seq(items) => items.iter().enumerate().map(|(i, it)| (index(path, i), it)).collect(),
            Value::Null => Vec::new(),
            _ => {
                self.err(n, path, format!("must be a list, not {}", n.kind()));
                Vec::new()
            }
        }
    }

    fn ports(&mut self, n: &Node, path: &str) -> Vec<Port> {
        let mut out = Vec::new();
        for (p, it) in self.items(n, path) {
            match &it.value {
                Value::Map(_) => {
                    if let Some(port) = self.long_port(it, &p) {
                        out.push(port);
                    }
                }
                Value::Str(_) | Value::Int(_) => {
                    let text = it.scalar_text().unwrap_or_default();
                    match parse_short_port(&text) {
                        Ok(ports) => out.extend(ports),
                        Err(e) => self.err(it, &p, format!("invalid port {text:?}: {e}")),
                    }
                }
                _ => self.err(it, &p, format!("a port must be a string, a number or a mapping, not {}", it.kind())),
            }
        }
        out
    }

    fn long_port(&mut self, n: &Node, path: &str) -> Option<Port> {
        let mut port = Port {
            target: 0,
            published: None,
            host_ip: None,
            protocol: "tcp".into(),
            mode: None,
            name: None,
            app_protocol: None,
        };
        let mut target = None;
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "target" => {
                    let t = v.scalar_text().unwrap_or_default();
                    match parse_port_number(&t) {
                        Ok(t) => target = Some(t),
                        Err(e) => self.err(v, &p, format!("invalid port {t:?}: {e}")),
                    }
                }
                "published" => {
                    let t = v.scalar_text().unwrap_or_default();
                    if !t.is_empty() {
                        match parse_range(&t) {
                            Ok(r) => port.published = Some(r),
                            Err(e) => self.err(v, &p, format!("invalid port {t:?}: {e}")),
                        }
                    }
                }
                "host_ip" => port.host_ip = self.opt_string(v, &p),
                "protocol" => {
                    if let Some(proto) = self.opt_string(v, &p) {
                        if check_protocol(&proto).is_err() {
                            self.err(v, &p, format!("unknown protocol {proto:?}"));
                        }
                        port.protocol = proto;
                    }
                }
                "mode" => {
                    port.mode = self.opt_string(v, &p);
                    if let Some(m) = &port.mode
                        && m != "host"
                        && m != "ingress"
                    {
                        self.err(v, &p, format!("mode must be host or ingress, not {m:?}"));
                    }
                }
                "name" => port.name = self.opt_string(v, &p),
                "app_protocol" => port.app_protocol = self.opt_string(v, &p),
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        match target {
            Some(t) => {
                port.target = t;
                Some(port)
            }
            None => {
                self.err(n, path, "a port mapping needs a target");
                None
            }
        }
    }

    fn mounts(&mut self, n: &Node, path: &str) -> Vec<Mount> {
        let mut out = Vec::new();
        for (p, it) in self.items(n, path) {
            match &it.value {
                Value::Str(s) => match parse_short_volume(s) {
                    Ok(m) => out.push(m),
                    Err(e) => self.err(it, &p, format!("invalid volume {s:?}: {e}")),
                },
                Value::Map(_) => {
                    if let Some(m) = self.long_mount(it, &p) {
                        out.push(m);
                    }
                }
                _ => self.err(it, &p, format!("a volume must be a string or a mapping, not {}", it.kind())),
            }
        }
        out
    }

    fn long_mount(&mut self, n: &Node, path: &str) -> Option<Mount> {
        let mut kind = None;
        let mut m = Mount {
            kind: MountType::Volume,
            source: None,
            target: String::new(),
            read_only: false,
            options: Vec::new(),
            tmpfs_size: None,
            create_host_path: None,
        };
        for (key, k, v) in self.map(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "type" => {
                    let t = self.string(v, &p).unwrap_or_default();
                    kind = Some(match t.as_str() {
                        "volume" => MountType::Volume,
                        "bind" => MountType::Bind,
                        "tmpfs" => MountType::Tmpfs,
                        "npipe" => MountType::Npipe,
                        "cluster" => MountType::Cluster,
                        "image" => MountType::Image,
                        _ => {
                            self.err(
                                v,
                                &p,
                                format!("unknown volume type {t:?} (volume, bind, tmpfs, npipe, cluster, image)"),
                            );
                            return None;
                        }
                    });
                }
                "source" => m.source = self.opt_string(v, &p),
                "target" => m.target = self.string(v, &p).unwrap_or_default(),
                "read_only" => m.read_only = self.boolean(v, &p).unwrap_or(false),
                "consistency" => {}
                "bind" => {
                    for (bk, bkn, bv) in self.map_or_null(v, &p) {
                        let bp = join(&p, &bk);
                        match bk.as_str() {
                            "propagation" => {
                                if let Some(s) = self.opt_string(bv, &bp) {
                                    m.options.push(s);
                                }
                            }
                            "create_host_path" => m.create_host_path = self.boolean(bv, &bp),
                            "selinux" => {
                                if let Some(s) = self.opt_string(bv, &bp) {
                                    m.options.push(s);
                                }
                            }
                            _ => self.unknown(bkn, &bp),
                        }
                    }
                }
                "volume" => {
                    for (vk, vkn, vv) in self.map_or_null(v, &p) {
                        let vp = join(&p, &vk);
                        match vk.as_str() {
                            "nocopy" => {
                                if self.boolean(vv, &vp) == Some(true) {
                                    m.options.push("nocopy".into());
                                }
                            }
                            "subpath" | "labels" => {}
                            _ => self.unknown(vkn, &vp),
                        }
                    }
                }
                "tmpfs" => {
                    for (tk, tkn, tv) in self.map_or_null(v, &p) {
                        let tp = join(&p, &tk);
                        match tk.as_str() {
                            "size" => m.tmpfs_size = self.bytes(tv, &tp),
                            "mode" => {}
                            _ => self.unknown(tkn, &tp),
                        }
                    }
                }
                "image" => {}
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        let Some(kind) = kind else {
            self.err(n, path, "a volume mapping needs a type");
            return None;
        };
        m.kind = kind;
        if m.target.is_empty() {
            self.err(n, path, "a volume mapping needs a target");
            return None;
        }
        if kind == MountType::Bind && m.source.is_none() {
            self.err(n, path, "a bind mount needs a source");
            return None;
        }
        Some(m)
    }

    fn depends_on(&mut self, n: &Node, path: &str) -> BTreeMap<String, Dependency> {
        let plain = Dependency { condition: Condition::ServiceStarted, restart: false, required: true };
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(name) = self.string(it, &index(path, i)) {
                        out.insert(name, plain.clone());
                    }
                }
            }
            Value::Map(_) => {
                for (name, _, v) in self.map(n, path) {
                    let p = join(path, &name);
                    let mut d = plain.clone();
                    for (key, k, vv) in self.map_or_null(v, &p) {
                        let kp = join(&p, &key);
                        match key.as_str() {
                            "condition" => match self.string(vv, &kp).as_deref() {
                                Some("service_started") => d.condition = Condition::ServiceStarted,
                                Some("service_healthy") => d.condition = Condition::ServiceHealthy,
                                Some("service_completed_successfully") => d.condition = Condition::ServiceCompletedSuccessfully,
                                Some(c) => self.err(vv, &kp, format!("unknown condition {c:?} (service_started, service_healthy, service_completed_successfully)")),
                                None => {}
                            },
                            "restart" => d.restart = self.boolean(vv, &kp).unwrap_or(false),
                            "required" => d.required = self.boolean(vv, &kp).unwrap_or(true),
                            _ => self.unknown(k, &kp),
                        }
                    }
                    out.insert(name, d);
                }
            }
            _ => self.err(n, path, format!("must be a list or a mapping, not {}", n.kind())),
        }
        out
    }

    fn deploy(&mut self, n: &Node, path: &str) -> Deploy {
        let mut d = Deploy::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "replicas" => d.replicas = self.u32(v, &p),
                "resources" => {
                    for (rk, rkn, rv) in self.map_or_null(v, &p) {
                        let rp = join(&p, &rk);
                        match rk.as_str() {
                            "limits" => d.resources.limits = self.resources(rv, &rp),
                            "reservations" => d.resources.reservations = self.resources(rv, &rp),
                            _ => self.unknown(rkn, &rp),
                        }
                    }
                }
                "restart_policy" => d.restart_policy = self.restart_policy(v, &p),
                "placement" => d.placement = self.placement(v, &p),
                x if DEPLOY_KEYS.contains(&x) => {
                    d.other.insert(key, v.clone());
                }
                x if x.starts_with("x-") => {}
                _ => {
                    self.unknown(k, &p);
                    d.other.insert(key, v.clone());
                }
            }
        }
        d
    }

    fn resources(&mut self, n: &Node, path: &str) -> Resources {
        let mut r = Resources::default();
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "cpus" => r.cpus = self.float(v, &p),
                "memory" => r.memory = self.bytes(v, &p),
                "pids" => r.pids = self.int(v, &p),
                "devices" | "generic_resources" => {
                    r.other.insert(key, v.clone());
                }
                _ => {
                    self.unknown(k, &p);
                    r.other.insert(key, v.clone());
                }
            }
        }
        r
    }

    fn restart(&mut self, n: &Node, path: &str) -> Option<Restart> {
        // `restart: no` unquoted is the string "no" in YAML 1.2; a YAML 1.1 reader
        // would see `false`: accept both.
        if n.value == Value::Bool(false) {
            return Some(Restart::No);
        }
        let s = self.string(n, path)?;
        Some(match s.as_str() {
            "no" | "" => Restart::No,
            "always" => Restart::Always,
            "unless-stopped" => Restart::UnlessStopped,
            "on-failure" => Restart::OnFailure { max_retries: None },
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Restart::OnFailure { max_retries: Some(n) },
                _ => {
                    self.err(
                        n,
                        path,
                        format!("invalid restart policy {s:?} (no, always, on-failure[:N], unless-stopped)"),
                    );
                    return None;
                }
            },
        })
    }

    fn healthcheck(&mut self, n: &Node, path: &str) -> Option<Healthcheck> {
        let mut h = Healthcheck {
            test: None,
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
        };
        for (key, k, v) in self.map_or_null(n, path) {
            let p = join(path, &key);
            match key.as_str() {
                "test" => h.test = self.health_test(v, &p),
                "disable" => {
                    if self.boolean(v, &p) == Some(true) {
                        h.test = Some(HealthTest::None);
                    }
                }
                "interval" => h.interval = self.duration(v, &p),
                "timeout" => h.timeout = self.duration(v, &p),
                "start_period" => h.start_period = self.duration(v, &p),
                "start_interval" => h.start_interval = self.duration(v, &p),
                "retries" => h.retries = self.u32(v, &p),
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, &p),
            }
        }
        Some(h)
    }

    fn health_test(&mut self, n: &Node, path: &str) -> Option<HealthTest> {
        match &n.value {
            Value::Seq(_) => {
                let items = self.strings(n, path);
                match items.split_first() {
                    Some((first, rest)) => match first.as_str() {
                        "NONE" => Some(HealthTest::None),
                        "CMD" if !rest.is_empty() => Some(HealthTest::Exec(rest.to_vec())),
                        "CMD-SHELL" if rest.len() == 1 => Some(HealthTest::Shell(rest[0].clone())),
                        "CMD-SHELL" if rest.len() > 1 => Some(HealthTest::Shell(rest.join(" "))),
                        "CMD" | "CMD-SHELL" => {
                            self.err(n, path, format!("{first} needs a command"));
                            None
                        }
                        _ => {
                            self.err(
                                n,
                                path,
                                format!(
                                    "a test list must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", not {first:?}"
                                ),
                            );
                            None
                        }
                    },
                    None => {
                        self.err(n, path, "an empty test list");
                        None
                    }
                }
            }
            _ => self.string(n, path).map(|s| if s == "NONE" { HealthTest::None } else { HealthTest::Shell(s) }),
        }
    }
}

fn show(n: &Node) -> String {
    match n.scalar_text() {
        Some(t) => format!("{t:?}"),
        None => n.kind().to_owned(),
    }
}

/// Go-style duration as compose uses it: `1m30s`, `10s`, `1.5h`, `500ms`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err("expected a number".into());
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| format!("bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err("missing unit (ns, us, ms, s, m, h)".into()),
            u => return Err(format!("unknown unit {u:?} (ns, us, ms, s, m, h)")),
        };
        total += num * secs;
    }
    Duration::try_from_secs_f64(total).map_err(|e| e.to_string())
}

/// Docker-style size: `1024`, `512m`, `1g`, `1.5GB`, `100kib` (binary multiples).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let num_len = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    if num_len == 0 {
        return Err("expected a number".into());
    }
    let num: f64 = t[..num_len].parse().map_err(|_| "bad number".to_string())?;
    let unit = t[num_len..].trim();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(unit);
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        u => return Err(format!("unknown unit {u:?} (b, k, m, g, t, p)")),
    };
    Ok((num * mult as f64) as u64)
}

fn parse_port_number(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(format!("port {p} out of range 1-65535")),
        Err(_) => Err(format!("{s:?} is not a port number")),
    }
}

fn parse_range(s: &str) -> Result<PortRange, String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (start, end) = (parse_port_number(a)?, parse_port_number(b)?);
            if end < start {
                return Err(format!("range {s:?} ends before it starts"));
            }
            Ok(PortRange { start, end })
        }
        None => {
            let p = parse_port_number(s)?;
            Ok(PortRange { start: p, end: p })
        }
    }
}

fn check_protocol(p: &str) -> Result<(), String> {
    match p {
        "tcp" | "udp" | "sctp" | "http" | "https" | "h2c" | "wss" => Ok(()),
        _ => Err(format!("unknown protocol {p:?}")),
    }
}

/// Short port syntax: `[[ip:][host[-range]]:]container[-range][/protocol]`.
/// A container range expands to one [`Port`] per port.
pub fn parse_short_port(s: &str) -> Result<Vec<Port>, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => {
            check_protocol(proto)?;
            (spec, proto.to_owned())
        }
        None => (s, "tcp".to_owned()),
    };
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after.split_once(']').ok_or("unclosed '[' in an IPv6 address")?;
        let rest = rest.strip_prefix(':').ok_or("expected ':' after the IPv6 address")?;
        (Some(ip.to_owned()), rest)
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [c, h]) => (None, Some(*h), *c),
        (None, [c, h, ip]) => (Some(ip.to_string()), Some(*h), *c),
        (Some(ip), [c, h]) => (Some(ip), Some(*h), *c),
        (Some(ip), [c]) => (Some(ip), None, *c),
        _ => return Err("too many ':'".into()),
    };
    let target = parse_range(container)?;
    let published = match host {
        Some("") | None => None,
        Some(h) => Some(parse_range(h)?),
    };
    let count = target.end - target.start + 1;
    if let Some(p) = published
        && count > 1
        && p.end - p.start + 1 != count
    {
        return Err("host and container port ranges differ in length".into());
    }
    Ok((0..count)
        .map(|i| Port {
            target: target.start + i,
            published: match published {
                Some(p) if count > 1 => Some(PortRange { start: p.start + i, end: p.start + i }),
                other => other,
            },
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
            protocol: protocol.clone(),
            mode: None,
            name: None,
            app_protocol: None,
        })
        .collect())
}

/// Short volume syntax: `target`, `source:target` or `source:target:mode`.
pub fn parse_short_volume(s: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return Err("expected [source:]target[:mode]".into()),
    };
    if !target.starts_with('/') {
        return Err(format!("target {target:?} is not an absolute path"));
    }
    let source = source.filter(|s| !s.is_empty());
    let kind = match source {
        Some(src) if src.starts_with(['/', '.', '~']) => MountType::Bind,
        _ => MountType::Volume,
    };
    let mut read_only = false;
    let mut options = Vec::new();
    for flag in mode.into_iter().flat_map(|m| m.split(',')) {
        match flag {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "nocopy" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "cached"
            | "delegated" | "consistent" => options.push(flag.to_owned()),
            other => return Err(format!("unknown mode {other:?}")),
        }
    }
    Ok(Mount {
        kind,
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only,
        options,
        tmpfs_size: None,
        create_host_path: None,
    })
}
