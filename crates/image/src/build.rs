//! Image builds (compose `build:`), delegated to a builder installed on the
//! machine, the result loaded into the [`Store`] under the names asked for.
//!
//! m3s does not interpret Dockerfiles: [`Buildah`] (Debian's `buildah`,
//! daemonless) runs them. The builder writes the image as an OCI layout into a
//! directory of the store's `layers/tmp/`; [`build_into`] loads it from there
//! through the same verified path as `m3s images load`, so a build
//! interrupted halfway leaves nothing that is used.
//!
//! Nothing from the request reaches a shell: every value is one argument.

use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::reference::Reference;
use crate::store::{Image, PullError, Store};

/// Where a build's Dockerfile comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dockerfile {
    /// `Dockerfile` in the context.
    Default,
    /// A file, relative to the context unless absolute.
    Path(PathBuf),
    /// The Dockerfile's text (compose `dockerfile_inline`).
    Inline(String),
}

/// A secret the build may mount (`RUN --mount=type=secret,id=ID`).
#[derive(Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub value: SecretValue,
}

#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    File(PathBuf),
    /// The secret's bytes (from an environment variable or `content`): written
    /// to a private file only for the time of the build.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for BuildSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match &self.value {
            SecretValue::File(p) => format!("file {}", p.display()),
            SecretValue::Bytes(_) => "<redacted>".to_owned(),
        };
        f.debug_struct("BuildSecret").field("id", &self.id).field("value", &value).finish()
    }
}

/// One image to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The context directory (already checked by [`check_context`]).
    pub context: PathBuf,
    pub dockerfile: Dockerfile,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Named contexts: a directory, or `docker-image://REF`.
    pub additional_contexts: Vec<(String, String)>,
    pub secrets: Vec<BuildSecret>,
    /// The network of RUN steps: `host`, `none`, or the builder's default.
    pub network: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    /// The names of the built image; the first is the main one.
    pub tags: Vec<Reference>,
    /// Registries (host[:port]) base images may come from over plain HTTP,
    /// besides loopback ones.
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no image builder: install buildah (Debian and Ubuntu package `buildah`), or run a Docker Engine")]
    NoBuilder,
    #[error("{0}")]
    Refused(String),
    #[error("{builder} failed{}{}", step.as_ref().map(|s| format!(" at {s}")).unwrap_or_default(), code.map(|c| format!(" (exit status {c})")).unwrap_or_default())]
    Failed {
        builder: &'static str,
        /// The failing step, as the builder names it (`STEP 3/5: RUN make`).
        step: Option<String>,
        code: Option<i32>,
        /// The builder's last lines of output (streamed to the caller as they came, so not in the message).
        output: String,
    },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("loading the built image: {0}")]
    Load(#[from] PullError),
}

/// Something that turns a [`BuildRequest`] into an OCI image layout.
pub trait Builder {
    fn name(&self) -> &'static str;
    /// Builds, passing each line of the builder's output to `output`, and
    /// writes the image as an OCI layout in `layout` (an empty directory),
    /// named after the first tag.
    fn build(&self, request: &BuildRequest, layout: &Path, output: &mut dyn FnMut(&str)) -> Result<(), BuildError>;
    /// Pushes the image built as `image` to a registry as `destination`
    /// (over plain HTTP when `plain_http`), with `credentials` (a Docker config.json) if given.
    fn push(
        &self,
        image: &Reference,
        destination: &Reference,
        plain_http: bool,
        credentials: Option<&Path>,
        output: &mut dyn FnMut(&str),
    ) -> Result<(), BuildError>;
}

/// Builds and loads the image into `store` under every tag of the request.
pub fn build_into(
    store: &Store,
    builder: &dyn Builder,
    request: &BuildRequest,
    output: &mut dyn FnMut(&str),
) -> Result<Image, BuildError> {
    let main = request.tags.first().ok_or_else(|| BuildError::Refused("a build needs a name for its image".into()))?;
    let layout = store.tmp_dir()?;
    let result = builder.build(request, &layout, output).and_then(|()| {
        let mut loaded = store.load(&layout, Some(main))?;
        let image = loaded.pop().ok_or_else(|| BuildError::Refused("the builder wrote no image".into()))?;
        for tag in &request.tags[1..] {
            store.load(&layout, Some(tag))?;
        }
        Ok(image)
    });
    let _ = std::fs::remove_dir_all(&layout);
    result
}

/// The builder to use: buildah where it is installed, else none.
pub fn default_builder() -> Result<Box<dyn Builder>, BuildError> {
    match find_program("buildah") {
        Some(program) => Ok(Box::new(Buildah { program })),
        None => Err(BuildError::NoBuilder),
    }
}

/// `name` on the PATH (or, with no PATH, in the usual directories), as a shell finds it.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Checks that `context` (as written, relative to `project_dir` unless
/// absolute) does not leave the project directory through a symbolic link:
/// a context written inside the project must resolve inside it. One written
/// outside it on purpose (`../common`) is the user's choice, and allowed.
/// Returns the resolved directory.
pub fn check_context(project_dir: &Path, context: &Path, what: &str) -> Result<PathBuf, BuildError> {
    let written = lexical_join(project_dir, context);
    let resolved = std::fs::canonicalize(&written)
        .map_err(|e| BuildError::Refused(format!("{what} {}: {}", written.display(), io_reason(&e))))?;
    let project =
        std::fs::canonicalize(project_dir).map_err(|source| BuildError::Io { path: project_dir.to_owned(), source })?;
    let written_inside = written.starts_with(lexical_join(project_dir, Path::new(".")));
    if written_inside && !resolved.starts_with(&project) {
        return Err(BuildError::Refused(format!(
            "{what} {} leaves the project directory {} through a symbolic link (it resolves to {}); \
             name the directory itself if that is meant",
            written.display(),
            project.display(),
            resolved.display()
        )));
    }
    if !resolved.is_dir() {
        return Err(BuildError::Refused(format!("{what} {} is not a directory", written.display())));
    }
    Ok(resolved)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such directory".to_owned(),
        _ => e.to_string(),
    }
}

/// `base` joined with `p`, `.` and `..` applied without touching the disk.
fn lexical_join(base: &Path, p: &Path) -> PathBuf {
    let mut out = if p.is_absolute() { PathBuf::new() } else { base.to_path_buf() };
    for part in p.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The base images a Dockerfile names (`FROM image`), its stage names and
/// `scratch` left out, `$ARG`s before the first FROM substituted from `args`
/// and their defaults.
pub fn base_images(dockerfile: &str, args: &[(String, String)]) -> Vec<String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut seen_from = false;
    for line in logical_lines(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else { continue };
        if instruction.eq_ignore_ascii_case("ARG") && !seen_from {
            for decl in words {
                let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
                if name.is_empty() {
                    continue;
                }
                let value = args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or(default.to_owned());
                vars.push((name.to_owned(), value.trim_matches('"').to_owned()));
            }
        } else if instruction.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first() else { continue };
            let image = substitute(image, &vars);
            if image.is_empty() {
                continue;
            }
            if let [_, as_kw, name] = rest[..]
                && as_kw.eq_ignore_ascii_case("AS")
            {
                stages.push(name.to_ascii_lowercase());
            }
            if image != "scratch" && !stages[..stages.len().saturating_sub(1)].contains(&image.to_ascii_lowercase()) {
                out.push(image);
            }
        }
    }
    out
}

/// Lines joined where they end with `\`, comments and blank lines left out.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn substitute(word: &str, vars: &[(String, String)]) -> String {
    let mut out = word.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    out
}

/// buildah (`buildah build`, then `buildah push` to an OCI layout).
pub struct Buildah {
    program: PathBuf,
}

impl Buildah {
    pub fn new(program: PathBuf) -> Buildah {
        Buildah { program }
    }

    /// `buildah build`'s arguments for `request`, with secrets in `secret_dir`
    /// (where [`SecretValue::Bytes`] ones are written) and the Dockerfile's
    /// path (an inline one written beside them).
    fn build_args(
        &self,
        request: &BuildRequest,
        dockerfile: &Path,
        iidfile: &Path,
        secret_dir: &Path,
    ) -> Result<Vec<String>, BuildError> {
        let mut a: Vec<String> = vec!["build".into(), "--layers".into()];
        let mut push = |flag: &str, value: String| a.push(format!("{flag}={value}"));
        push("--file", dockerfile.display().to_string());
        push("--iidfile", iidfile.display().to_string());
        for tag in &request.tags {
            push("--tag", tag.to_string());
        }
        for (k, v) in &request.args {
            push("--build-arg", format!("{k}={v}"));
        }
        for (k, v) in &request.labels {
            push("--label", format!("{k}={v}"));
        }
        if let Some(t) = &request.target {
            push("--target", t.clone());
        }
        for (name, value) in &request.additional_contexts {
            push("--build-context", format!("{name}={value}"));
        }
        for secret in &request.secrets {
            if secret.id.contains([',', '=']) {
                return Err(BuildError::Refused(format!(
                    "build secret {:?}: a name with ',' or '=' cannot be passed",
                    secret.id
                )));
            }
            let path = match &secret.value {
                SecretValue::File(p) => p.clone(),
                SecretValue::Bytes(bytes) => {
                    let p = secret_dir.join(&secret.id);
                    write_private(&p, bytes)?;
                    p
                }
            };
            push("--secret", format!("id={},src={}", secret.id, path.display()));
        }
        if let Some(n) = &request.network {
            push("--network", if n == "default" { "private".to_owned() } else { n.clone() });
        }
        // An optional-value flag: its value must be joined to it.
        push("--pull", if request.pull { "always".into() } else { "false".into() });
        if request.no_cache {
            a.push("--no-cache".into());
        }
        // crun refuses cgroups in hybrid mode (v1 and v2 mounted together), where runc works.
        if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            && let Some(runc) = find_program("runc")
        {
            a.push("--runtime".into());
            a.push(runc.display().to_string());
        }
        a.push(request.context.display().to_string());
        Ok(a)
    }

    /// A registries.conf that lets buildah reach the loopback (and named
    /// insecure) registries of the Dockerfile's base images over plain HTTP, as
    /// m3s's own pulls do; `None` when no base image needs one.
    fn registries_conf(&self, request: &BuildRequest, dockerfile_text: &str) -> Option<String> {
        let mut hosts: Vec<String> = base_images(dockerfile_text, &request.args)
            .iter()
            .filter_map(|i| i.parse::<Reference>().ok())
            .filter(|r| r.is_loopback() || request.insecure_registries.contains(&r.registry))
            .map(|r| r.registry.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            return None;
        }
        // The machine's own settings first, so that its mirrors and search list still apply.
        let mut conf = std::fs::read_to_string("/etc/containers/registries.conf").unwrap_or_default();
        conf.push('\n');
        for host in hosts {
            conf.push_str(&format!("[[registry]]\nlocation = {:?}\ninsecure = true\n", host));
        }
        Some(conf)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| BuildError::Io { path: path.to_owned(), source };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)
}

impl Builder for Buildah {
    fn name(&self) -> &'static str {
        "buildah"
    }

    fn build(&self, request: &BuildRequest, layout: &Path, output: &mut dyn FnMut(&str)) -> Result<(), BuildError> {
        let main =
            request.tags.first().ok_or_else(|| BuildError::Refused("a build needs a name for its image".into()))?;
        // Secrets and an inline Dockerfile live in a private directory beside the layout, removed after.
        let work = layout.with_extension("build");
        let io = |source| BuildError::Io { path: work.clone(), source };
        std::fs::create_dir(&work).map_err(io)?;
        std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(io)?;
        let result = (|| {
            let dockerfile = match &request.dockerfile {
                Dockerfile::Default => request.context.join("Dockerfile"),
                Dockerfile::Path(p) => request.context.join(p),
                Dockerfile::Inline(text) => {
                    let p = work.join("Dockerfile");
                    write_private(&p, text.as_bytes())?;
                    p
                }
            };
            let text = std::fs::read_to_string(&dockerfile)
                .map_err(|source| BuildError::Io { path: dockerfile.clone(), source })?;
            let iidfile = work.join("iid");
            let args = self.build_args(request, &dockerfile, &iidfile, &work)?;
            let mut command = Command::new(&self.program);
            command.args(&args);
            if let Some(conf) = self.registries_conf(request, &text) {
                let p = work.join("registries.conf");
                write_private(&p, conf.as_bytes())?;
                command.env("CONTAINERS_REGISTRIES_CONF", &p);
            }
            run_streaming(self.name(), &self.program, command, output)?;
            let id =
                std::fs::read_to_string(&iidfile).map_err(|source| BuildError::Io { path: iidfile.clone(), source })?;
            let id = id.trim().trim_start_matches("sha256:").to_owned();
            let mut push = Command::new(&self.program);
            push.args(["push", "--quiet", &id, &format!("oci:{}:{}", layout.display(), main)]);
            run_streaming(self.name(), &self.program, push, output)
        })();
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    fn push(
        &self,
        image: &Reference,
        destination: &Reference,
        plain_http: bool,
        credentials: Option<&Path>,
        output: &mut dyn FnMut(&str),
    ) -> Result<(), BuildError> {
        let mut push = Command::new(&self.program);
        push.arg("push").arg(format!("--tls-verify={}", !plain_http));
        if let Some(path) = credentials {
            push.arg("--authfile").arg(path);
        }
        push.arg(image.to_string()).arg(format!("docker://{destination}"));
        run_streaming(self.name(), &self.program, push, output)
    }
}

/// Runs `command` with stdout and stderr passed line by line to `output`; a
/// failure names the last step the builder announced and keeps its last lines.
fn run_streaming(
    builder: &'static str,
    program: &Path,
    mut command: Command,
    output: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let spawn_err = |source| BuildError::Spawn { program: program.display().to_string(), source };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    let writer2 = writer.try_clone().map_err(spawn_err)?;
    command.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = command.spawn().map_err(spawn_err)?;
    // The parent's copies of the pipe's writing end go with `command`.
    drop(command);
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut step = None;
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if line.starts_with("STEP ") {
            step = Some(line.trim_end().to_owned());
        }
        output(&line);
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        return Ok(());
    }
    Err(BuildError::Failed { builder, step, code: status.code(), output: Vec::from(tail).join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_skip_stages_scratch_and_substitute_args() {
        let text = "# syntax=docker/dockerfile:1\nARG BASE=127.0.0.1:5000/base\nARG TAG\nFROM ${BASE}:$TAG AS build\nRUN make \\\n  all\nFROM build AS test\nFROM --platform=linux/amd64 scratch\nCOPY --from=build /a /a\nfrom debian:12\n";
        let args = vec![("TAG".to_owned(), "1".to_owned())];
        assert_eq!(base_images(text, &args), vec!["127.0.0.1:5000/base:1".to_owned(), "debian:12".to_owned()]);
    }

    #[test]
    fn lexical_join_applies_dots_without_the_disk() {
        assert_eq!(lexical_join(Path::new("/p/q"), Path::new("./a/../b")), PathBuf::from("/p/q/b"));
        assert_eq!(lexical_join(Path::new("/p/q"), Path::new("../c")), PathBuf::from("/p/c"));
        assert_eq!(lexical_join(Path::new("/p/q"), Path::new("/abs")), PathBuf::from("/abs"));
    }

    #[test]
    fn a_context_escaping_through_a_symlink_is_refused_and_an_explicit_one_allowed() {
        let root = std::env::temp_dir().join(format!("m3s-ctx-{}", uuid::Uuid::new_v4().simple()));
        let project = root.join("project");
        std::fs::create_dir_all(project.join("app")).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::os::unix::fs::symlink(root.join("outside"), project.join("sneaky")).unwrap();
        assert!(check_context(&project, Path::new("app"), "build.context").is_ok());
        let e = check_context(&project, Path::new("sneaky"), "services.web.build.context").unwrap_err().to_string();
        assert!(e.contains("services.web.build.context") && e.contains("through a symbolic link"), "{e}");
        assert!(check_context(&project, Path::new("../outside"), "build.context").is_ok());
        let e = check_context(&project, Path::new("missing"), "build.context").unwrap_err().to_string();
        assert!(e.contains("no such directory"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = BuildSecret { id: "token".into(), value: SecretValue::Bytes(b"hunter2".to_vec()) };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
