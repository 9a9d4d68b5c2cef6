//! The Mesos fetcher: puts a task's `CommandInfo.uris` into its sandbox
//! before the task starts (Mesos's `docs/fetcher.md`). A failed fetch fails
//! the launch (the agent reports TASK_FAILED with
//! REASON_CONTAINER_LAUNCH_FAILED and the error, which names the URI).
//!
//! For each URI, in order:
//!
//! - **value**: `http://` or `https://` (downloaded with reqwest over rustls;
//!   redirects followed, only a final `200 OK` accepted, aborted when no data
//!   arrives for a minute, as Mesos's stall timeout), `file://` (with an
//!   optional `localhost`) or an absolute path (copied). Other schemes
//!   (`ftp`, `hdfs`, ...) and relative paths (Mesos's frameworks home) are
//!   refused. As in Mesos, the file is named after the last `/`-separated
//!   part of the URI (query strings included: `output_file` helps there).
//! - **output_file**: the file's name in the sandbox instead; it may have
//!   directories, which are created, but must stay inside the sandbox (no
//!   absolute path, no `..`, no symlink on the way).
//! - **executable**: the file is made `rwxr-xr-x` and never extracted.
//! - **extract** (default true): `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2`/`.tbz2`,
//!   `.tar.xz`/`.txz` (the system's `tar`) and `.zip` (`unzip`) are unpacked
//!   into the sandbox, a bare `.gz` decompressed (`gzip`) next to it; the
//!   archive stays there too. The tools run with argument vectors, no shell.
//! - **cache**: the download is kept in `<work_dir>/fetcher-cache/`, keyed by
//!   the task's user and the URI, and later fetches of the same URI (by the
//!   same user) copy or extract it from there without downloading again.
//!   Only the extraction result lands in the sandbox for a cached archive.
//!   Entries stay until removed by hand (Mesos evicts by size; m3s has no
//!   cache size limit).
//!
//! **Users**: when the task runs as another user than m3s (m3s is root),
//! local files are read, and archives extracted, by a child process running
//! as that user, so a task cannot fetch what its user could not read; files
//! m3s writes (downloads, copies) are handed to that user. Progress and
//! errors are appended to the sandbox's `stderr`, where the Mesos fetcher
//! logs too.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesos::v1::CommandUri;
use tokio::io::AsyncWriteExt;

use crate::agent::runtime::{self, RunAs};

/// No data for this long aborts a download (Mesos's `--fetcher_stall_timeout`).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 10;

/// A failed fetch, worded as Mesos's fetcher: `Failed to fetch '<uri>': <reason>`.
#[derive(Debug, thiserror::Error)]
#[error("Failed to fetch '{uri}': {reason}")]
pub struct FetchError {
    pub uri: String,
    pub reason: FetchFailure,
}

/// Why one URI could not be fetched; Mesos's own wording where it has one.
#[derive(Debug, thiserror::Error)]
pub enum FetchFailure {
    #[error("the URI is empty")]
    EmptyUri,
    #[error("File URI only supports absolute paths")]
    RelativeFileUri,
    #[error("unsupported URI scheme '{0}': m3s fetches http://, https://, file:// URIs and absolute paths")]
    UnsupportedScheme(String),
    #[error("a relative path was given, but m3s has no frameworks home: use an absolute path or a file:// URI")]
    RelativePath,
    #[error("Illegal characters in URI")]
    IllegalCharacters,
    #[error("Malformed URI (missing path): {0}")]
    MissingPath(String),
    #[error("the URI names no file (it ends with '/'): set output_file")]
    NoFileName,
    #[error("URI output file path is empty")]
    EmptyOutputFile,
    #[error("the output file contains a NUL byte")]
    NulInOutputFile,
    #[error("output_file '{0}' must be a relative path within the sandbox directory")]
    AbsoluteOutputFile(String),
    #[error("output_file '{0}' must stay within the sandbox directory (no '..')")]
    OutputFileEscapes(String),
    #[error("output_file '{0}' names no file")]
    OutputFileNamesNoFile(String),
    #[error("the task's user: {0}")]
    User(#[source] runtime::RuntimeError),
    #[error("{} is not a directory in the sandbox", .0.display())]
    NotADirectory(PathBuf),
    #[error("{} is not a regular file", .0.display())]
    NotARegularFile(PathBuf),
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
    #[error("copying {} to {}: {source}", from.display(), to.display())]
    Copy { from: PathBuf, to: PathBuf, source: io::Error },
    #[error("moving {} into the cache: {source}", path.display())]
    IntoCache { path: PathBuf, source: io::Error },
    #[error("Failed to chmod executable '{}': {source}", path.display())]
    Chmod { path: PathBuf, source: io::Error },
    #[error("changing the owner of {}: {source}", path.display())]
    Chown { path: PathBuf, source: rustix::io::Errno },
    #[error("creating the HTTP client: {0}")]
    Client(#[source] mesos::error::Error),
    #[error("invalid URL: {0}")]
    InvalidUrl(#[source] url::ParseError),
    #[error("requesting {url}: {}", mesos::error::chain(source))]
    Request { url: reqwest::Url, source: reqwest::Error },
    #[error("HTTP {status} from {url} without a Location")]
    RedirectWithoutLocation { status: reqwest::StatusCode, url: reqwest::Url },
    #[error("bad redirect to '{location}' from {url}: {source}")]
    BadRedirect { location: String, url: reqwest::Url, source: url::ParseError },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("Error downloading resource, received HTTP return code {status} from {url}")]
    HttpStatus { status: reqwest::StatusCode, url: reqwest::Url },
    #[error("download from {url} stalled: no data for {} s", .stall.as_secs())]
    Stalled { url: reqwest::Url, stall: Duration },
    #[error("downloading {url}: {}", mesos::error::chain(source))]
    Download { url: reqwest::Url, source: reqwest::Error },
    #[error("Failed to extract archive '{}' to '{}': {reason}", archive.display(), sandbox.display())]
    Extract { archive: PathBuf, sandbox: PathBuf, reason: Box<FetchFailure> },
    #[error("no file name left without '.gz'")]
    NoGzipStem,
    #[error("cannot run '{program}': {source}{}", if source.kind() == io::ErrorKind::NotFound { " (is it installed?)" } else { "" })]
    CannotRun { program: &'static str, source: io::Error },
    #[error("'{program}' failed ({status}): {stderr_tail}")]
    HelperFailed { program: &'static str, status: std::process::ExitStatus, stderr_tail: String },
    #[error("internal error: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl FetchFailure {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FetchFailure {
        let path = path.to_path_buf();
        move |source| FetchFailure::Io { op, path, source }
    }
}

/// The fetcher of one agent; cheap to create.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache_dir: PathBuf,
    stall_timeout: Duration,
}

/// What one URI is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Local(PathBuf),
    Http(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    Zip,
    /// A single gzipped file.
    Gzip,
}

impl Fetcher {
    /// A fetcher whose cache is `<work_dir>/fetcher-cache`.
    pub fn new(work_dir: &Path) -> Fetcher {
        Fetcher::with_cache_dir(work_dir.join("fetcher-cache"))
    }

    pub fn with_cache_dir(cache_dir: PathBuf) -> Fetcher {
        Fetcher { cache_dir, stall_timeout: STALL_TIMEOUT }
    }

    /// Fetches `uris` into `sandbox` (which must exist), one after the other,
    /// for a task running as `user` (`None`: as m3s). Returns the paths
    /// fetched (the sandbox itself for an archive extracted from the cache).
    pub async fn fetch(
        &self,
        uris: &[CommandUri],
        sandbox: &Path,
        user: Option<&str>,
    ) -> Result<Vec<PathBuf>, FetchError> {
        let container = sandbox.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let run_as = match user {
            Some(user) => {
                let (container, user_owned) = (container.clone(), user.to_owned());
                tokio::task::spawn_blocking(move || runtime::task_credentials(&container, &user_owned))
                    .await
                    .map_err(FetchFailure::Join)
                    .and_then(|result| result.map_err(FetchFailure::User))
                    .map_err(|reason| FetchError {
                        uri: uris.first().map(|u| u.value.clone()).unwrap_or_default(),
                        reason,
                    })?
            }
            None => None,
        };
        let mut client = None;
        let mut fetched = Vec::with_capacity(uris.len());
        for uri in uris {
            match self.fetch_one(uri, sandbox, user, run_as.as_ref(), &mut client).await {
                Ok(path) => {
                    sandbox_log(sandbox, &format!("Fetched '{}' to '{}'", uri.value, path.display()));
                    fetched.push(path);
                }
                Err(reason) => {
                    let error = FetchError { uri: uri.value.clone(), reason };
                    sandbox_log(sandbox, &error.to_string());
                    return Err(error);
                }
            }
        }
        Ok(fetched)
    }

    async fn fetch_one(
        &self,
        uri: &CommandUri,
        sandbox: &Path,
        user: Option<&str>,
        run_as: Option<&RunAs>,
        client: &mut Option<reqwest::Client>,
    ) -> Result<PathBuf, FetchFailure> {
        let value = uri.value.trim_start();
        let source = parse_source(value)?;
        let name = match &uri.output_file {
            Some(output_file) => validate_output_file(output_file)?,
            None => PathBuf::from(basename(value)?),
        };
        let executable = uri.executable.unwrap_or(false);
        let archive = if executable || !uri.extract { None } else { Archive::of(&name) };
        let retriever = Retriever { source: &source, run_as, stall_timeout: self.stall_timeout };

        if uri.cache == Some(true) {
            let key = match user {
                Some(user) => format!("{user}@{value}"),
                None => value.to_owned(),
            };
            if let Some(cached) = self.cached(&key, value, &retriever, client).await? {
                if let Some(archive) = archive {
                    extract(&cached, archive, &name, sandbox, run_as).await?;
                    return Ok(sandbox.to_path_buf());
                }
                let dest = prepare_destination(sandbox, &name, run_as)?;
                let (cached_path, dest_path, owner) = (cached.clone(), dest.clone(), run_as.cloned());
                blocking(move || {
                    let mut file = create_file(&dest_path)?;
                    let mut source = File::open(&cached_path).map_err(FetchFailure::io("reading", &cached_path))?;
                    io::copy(&mut source, &mut file).map_err(FetchFailure::io("copying", &cached_path))?;
                    finish_file(&file, &dest_path, executable, owner)
                })
                .await?;
                return Ok(dest);
            }
            // The cache could not be used (see `cached`): fetched directly.
        }

        let dest = prepare_destination(sandbox, &name, run_as)?;
        let file = create_file(&dest)?;
        let file = retriever.retrieve(file, &dest, client).await?;
        let dest_path = dest.clone();
        let owner = run_as.cloned();
        blocking(move || finish_file(&file, &dest_path, executable, owner)).await?;
        if let Some(archive) = archive {
            extract(&dest, archive, &name, sandbox, run_as).await?;
        }
        Ok(dest)
    }

    /// The cache entry for `key`, downloaded first if needed. `None` when
    /// the cache cannot serve it (its directory cannot be written, or a
    /// different URI owns the entry's name): the caller fetches directly.
    async fn cached(
        &self,
        key: &str,
        value: &str,
        retriever: &Retriever<'_>,
        client: &mut Option<reqwest::Client>,
    ) -> Result<Option<PathBuf>, FetchFailure> {
        let name = cache_file_name(key, &basename(value)?);
        let path = self.cache_dir.join(&name);
        let key_path = self.cache_dir.join(format!("{name}.uri"));
        match fs::read_to_string(&key_path) {
            Ok(owner) if owner == key && path.is_file() => return Ok(Some(path)),
            Ok(owner) if owner != key => {
                tracing::warn!(uri = value, cache_file = %path.display(), "fetcher cache name collision, bypassing the cache");
                return Ok(None);
            }
            _ => {}
        }
        if let Err(error) = fs::create_dir_all(&self.cache_dir) {
            tracing::warn!(dir = %self.cache_dir.display(), %error, "fetcher cache unusable, bypassing it");
            return Ok(None);
        }
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let tmp = self.cache_dir.join(format!(".{name}.{}.{serial}.tmp", std::process::id()));
        let file = create_file(&tmp)?;
        let result = retriever.retrieve(file, &tmp, client).await.and_then(|file| {
            // The key first: an entry is only used once its data is in place.
            file.sync_all().map_err(FetchFailure::io("writing", &tmp))?;
            fs::write(&key_path, key).map_err(FetchFailure::io("writing", &key_path))?;
            fs::rename(&tmp, &path).map_err(|source| FetchFailure::IntoCache { path: tmp.clone(), source })
        });
        if let Err(error) = result {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        Ok(Some(path))
    }
}

/// Where a URI's bytes come from, and as whom they are read.
struct Retriever<'a> {
    source: &'a Source,
    run_as: Option<&'a RunAs>,
    stall_timeout: Duration,
}

impl Retriever<'_> {
    /// Fills `file` (at `path`) with the source's content.
    async fn retrieve(
        &self,
        file: File,
        path: &Path,
        client: &mut Option<reqwest::Client>,
    ) -> Result<File, FetchFailure> {
        match self.source {
            Source::Http(url) => {
                let client = match client {
                    Some(client) => client.clone(),
                    None => {
                        let config = mesos::transport::TransportConfig {
                            // Downloads may be large: the stall timeout guards them.
                            call_timeout: Duration::from_secs(24 * 3600),
                            ..Default::default()
                        };
                        let built = config.call_client().map_err(FetchFailure::Client)?;
                        client.insert(built).clone()
                    }
                };
                download(&client, url, file, path, self.stall_timeout).await
            }
            Source::Local(source) => match self.run_as {
                // Read as the task's user: what it cannot read, it cannot fetch.
                Some(run_as) => {
                    let mut command = tokio::process::Command::new("cat");
                    command.arg("--").arg(source);
                    let output = file.try_clone().map_err(FetchFailure::io("opening", path))?;
                    run(command, Some(run_as), "cat", Some(output)).await?;
                    Ok(file)
                }
                None => {
                    let (source, path) = (source.clone(), path.to_path_buf());
                    blocking(move || {
                        let metadata = fs::metadata(&source).map_err(FetchFailure::io("reading", &source))?;
                        if !metadata.is_file() {
                            return Err(FetchFailure::NotARegularFile(source));
                        }
                        let mut input = File::open(&source).map_err(FetchFailure::io("reading", &source))?;
                        let mut file = file;
                        io::copy(&mut input, &mut file).map_err(|source_error| FetchFailure::Copy {
                            from: source,
                            to: path,
                            source: source_error,
                        })?;
                        Ok(file)
                    })
                    .await
                }
            },
        }
    }
}

async fn download(
    client: &reqwest::Client,
    url: &str,
    file: File,
    path: &Path,
    stall_timeout: Duration,
) -> Result<File, FetchFailure> {
    let mut url = reqwest::Url::parse(url).map_err(FetchFailure::InvalidUrl)?;
    let mut response = None;
    for _ in 0..=MAX_REDIRECTS {
        let answer = match client.get(url.clone()).send().await {
            Ok(answer) => answer,
            Err(source) => return Err(FetchFailure::Request { url, source }),
        };
        if !answer.status().is_redirection() {
            response = Some(answer);
            break;
        }
        let location = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| FetchFailure::RedirectWithoutLocation { status: answer.status(), url: url.clone() })?;
        url = url.join(location).map_err(|source| FetchFailure::BadRedirect {
            location: location.to_owned(),
            url: url.clone(),
            source,
        })?;
    }
    let mut response = response.ok_or(FetchFailure::TooManyRedirects)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        // Mesos accepts nothing but 200 either.
        return Err(FetchFailure::HttpStatus { status, url });
    }
    let mut out = tokio::fs::File::from_std(file);
    loop {
        let chunk = tokio::time::timeout(stall_timeout, response.chunk())
            .await
            .map_err(|_| FetchFailure::Stalled { url: url.clone(), stall: stall_timeout })?
            .map_err(|source| FetchFailure::Download { url: url.clone(), source })?;
        let Some(chunk) = chunk else { break };
        out.write_all(&chunk).await.map_err(FetchFailure::io("writing", path))?;
    }
    out.flush().await.map_err(FetchFailure::io("writing", path))?;
    Ok(out.into_std().await)
}

fn parse_source(value: &str) -> Result<Source, FetchFailure> {
    if value.is_empty() {
        return Err(FetchFailure::EmptyUri);
    }
    if let Some(rest) = value.strip_prefix("file://") {
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(FetchFailure::RelativeFileUri);
        }
        return Ok(Source::Local(PathBuf::from(path)));
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => Ok(Source::Http(value.to_owned())),
            _ => Err(FetchFailure::UnsupportedScheme(scheme.to_owned())),
        };
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    Err(FetchFailure::RelativePath)
}

/// The file name a URI gets in the sandbox: Mesos's `Fetcher::basename`
/// (what follows the last `/`, query strings included).
fn basename(uri: &str) -> Result<String, FetchFailure> {
    if uri.contains(['\\', '\'', '\0']) {
        return Err(FetchFailure::IllegalCharacters);
    }
    let name = match uri.find("://") {
        Some(index) if index > 1 => {
            let path = &uri[index + 3..];
            match path.find('/') {
                Some(slash) if path.len() > slash + 1 => &path[path.rfind('/').unwrap_or(slash) + 1..],
                _ => return Err(FetchFailure::MissingPath(uri.to_owned())),
            }
        }
        _ => Path::new(uri).file_name().and_then(|n| n.to_str()).unwrap_or(""),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(FetchFailure::NoFileName);
    }
    Ok(name.to_owned())
}

/// `output_file`: a relative path inside the sandbox.
fn validate_output_file(output_file: &str) -> Result<PathBuf, FetchFailure> {
    if output_file.is_empty() {
        return Err(FetchFailure::EmptyOutputFile);
    }
    if output_file.contains('\0') {
        return Err(FetchFailure::NulInOutputFile);
    }
    let path = Path::new(output_file);
    if path.is_absolute() {
        return Err(FetchFailure::AbsoluteOutputFile(output_file.to_owned()));
    }
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(FetchFailure::OutputFileEscapes(output_file.to_owned()));
            }
        }
    }
    if clean.as_os_str().is_empty() || output_file.ends_with('/') {
        return Err(FetchFailure::OutputFileNamesNoFile(output_file.to_owned()));
    }
    Ok(clean)
}

impl Archive {
    /// Mesos's recognized extensions.
    fn of(name: &Path) -> Option<Archive> {
        let name = name.file_name()?.to_str()?;
        const TAR: [&str; 7] = [".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz"];
        if TAR.iter().any(|ext| name.ends_with(ext)) {
            Some(Archive::Tar)
        } else if name.ends_with(".zip") {
            Some(Archive::Zip)
        } else if name.ends_with(".gz") {
            Some(Archive::Gzip)
        } else {
            None
        }
    }
}

/// Unpacks `archive` into the sandbox (a bare `.gz` into the sandbox file
/// named as `name` without `.gz`).
async fn extract(
    archive: &Path,
    kind: Archive,
    name: &Path,
    sandbox: &Path,
    run_as: Option<&RunAs>,
) -> Result<(), FetchFailure> {
    let failed = |reason: FetchFailure| FetchFailure::Extract {
        archive: archive.to_path_buf(),
        sandbox: sandbox.to_path_buf(),
        reason: Box::new(reason),
    };
    let mut output = None;
    let (mut command, program) = match kind {
        Archive::Tar => {
            let mut command = tokio::process::Command::new("tar");
            // GNU tar detects the compression itself; no owners or set-id
            // bits from the archive, and the sandbox's own mode stays.
            command
                .args(["--no-same-owner", "--no-same-permissions", "--no-overwrite-dir", "-x", "-f"])
                .arg(archive)
                .arg("-C")
                .arg(sandbox);
            (command, "tar")
        }
        Archive::Zip => {
            let mut command = tokio::process::Command::new("unzip");
            command.args(["-q", "-o"]).arg(archive).arg("-d").arg(sandbox);
            (command, "unzip")
        }
        Archive::Gzip => {
            let stem = name.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".gz")).unwrap_or("");
            if stem.is_empty() {
                return Err(failed(FetchFailure::NoGzipStem));
            }
            let dest = prepare_destination(sandbox, Path::new(stem), run_as).map_err(&failed)?;
            let file = create_file(&dest).map_err(&failed)?;
            if let Some(run_as) = run_as {
                chown(&file, &dest, run_as).map_err(&failed)?;
            }
            let mut command = tokio::process::Command::new("gzip");
            command.args(["-d", "-c", "--"]).arg(archive);
            output = Some(file);
            (command, "gzip")
        }
    };
    command.current_dir(sandbox);
    run(command, run_as, program, output).await.map_err(failed)
}

/// Runs a helper (as `run_as` when given), stdin from /dev/null, stdout to
/// `output` (else /dev/null), and fails with the end of its stderr unless
/// it exits 0.
async fn run(
    mut command: tokio::process::Command,
    run_as: Option<&RunAs>,
    program: &'static str,
    output: Option<File>,
) -> Result<(), FetchFailure> {
    let stdout = output.map_or_else(Stdio::null, Stdio::from);
    command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped()).kill_on_drop(true);
    if let Some(run_as) = run_as.cloned() {
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (setgroups, setgid, setuid).
        unsafe {
            command.pre_exec(move || runtime::switch_user(&run_as));
        }
    }
    let cannot_run = |source: io::Error| FetchFailure::CannotRun { program, source };
    // Not `output()`, which would capture stdout too.
    let child = command.spawn().map_err(cannot_run)?;
    drop(command);
    let output = child.wait_with_output().await.map_err(cannot_run)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(FetchFailure::HelperFailed { program, status: output.status, stderr_tail: tail.join(" / ") })
}

/// Creates the directories of `name` inside the sandbox (owned by
/// `run_as`), refusing any that is not a real directory (a symlink left by
/// an earlier archive could lead out of the sandbox); returns the file's path.
fn prepare_destination(sandbox: &Path, name: &Path, run_as: Option<&RunAs>) -> Result<PathBuf, FetchFailure> {
    let mut dir = sandbox.to_path_buf();
    let parts: Vec<_> = name.components().collect();
    let Some((file, parents)) = parts.split_last() else { return Err(FetchFailure::NoFileName) };
    for part in parents {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(FetchFailure::NotADirectory(dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(FetchFailure::io("creating", &dir))?;
                if let Some(run_as) = run_as {
                    let (uid, gid) = (rustix::fs::Uid::from_raw(run_as.uid), rustix::fs::Gid::from_raw(run_as.gid));
                    rustix::fs::chown(&dir, Some(uid), Some(gid))
                        .map_err(|source| FetchFailure::Chown { path: dir.clone(), source })?;
                }
            }
            Err(e) => return Err(FetchFailure::io("inspecting", &dir)(e)),
        }
    }
    Ok(dir.join(file))
}

/// Creates (or truncates) a file to fill, never through a symlink.
fn create_file(path: &Path) -> Result<File, FetchFailure> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(FetchFailure::io("creating", path))
}

/// Makes a fetched file executable (`rwxr-xr-x`) if asked, and hands it to
/// the task's user.
fn finish_file(file: &File, path: &Path, executable: bool, owner: Option<RunAs>) -> Result<(), FetchFailure> {
    if executable {
        file.set_permissions(fs::Permissions::from_mode(0o755))
            .map_err(|source| FetchFailure::Chmod { path: path.to_path_buf(), source })?;
    }
    if let Some(run_as) = &owner {
        chown(file, path, run_as)?;
    }
    Ok(())
}

fn chown(file: &File, path: &Path, run_as: &RunAs) -> Result<(), FetchFailure> {
    let (uid, gid) = (rustix::fs::Uid::from_raw(run_as.uid), rustix::fs::Gid::from_raw(run_as.gid));
    rustix::fs::fchown(file, Some(uid), Some(gid))
        .map_err(|source| FetchFailure::Chown { path: path.to_path_buf(), source })
}

/// The cache file of `key`: a stable hash (FNV-1a) of it, and a little of
/// the URI's file name (for people looking, and to keep its extension), as
/// Mesos names its cache files.
fn cache_file_name(key: &str, basename: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let chars: Vec<char> = basename.chars().collect();
    let short: String = if chars.len() > 20 {
        chars[..10].iter().chain(std::iter::once(&'_')).chain(&chars[chars.len() - 10..]).collect()
    } else {
        basename.to_owned()
    };
    format!("c{hash:016x}-{short}")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FetchFailure> + Send + 'static,
) -> Result<T, FetchFailure> {
    tokio::task::spawn_blocking(f).await?
}

/// Appends a line to the sandbox's `stderr` (created by the runtime).
fn sandbox_log(sandbox: &Path, line: &str) {
    if let Ok(mut file) = OpenOptions::new().append(true).open(sandbox.join("stderr")) {
        let _ = writeln!(file, "m3s fetcher: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_mesos() {
        assert_eq!(basename("http://host/a/b/tool.tgz").unwrap(), "tool.tgz");
        assert_eq!(basename("https://host/x.zip?token=1").unwrap(), "x.zip?token=1");
        assert_eq!(basename("/opt/data/file.txt").unwrap(), "file.txt");
        assert_eq!(basename("file:///opt/data/file.txt").unwrap(), "file.txt");
        assert!(basename("http://host").unwrap_err().to_string().contains("missing path"));
        assert!(basename("http://host/").unwrap_err().to_string().contains("missing path"));
        assert!(basename("http://host/dir/").unwrap_err().to_string().contains("output_file"));
        assert!(basename("http://host/it's").unwrap_err().to_string().contains("Illegal"));
    }

    #[test]
    fn sources() {
        assert_eq!(parse_source("file:///a/b").unwrap(), Source::Local("/a/b".into()));
        assert_eq!(parse_source("file://localhost/a/b").unwrap(), Source::Local("/a/b".into()));
        assert_eq!(parse_source("/a/b").unwrap(), Source::Local("/a/b".into()));
        assert_eq!(parse_source("HTTPS://h/x").unwrap(), Source::Http("HTTPS://h/x".into()));
        assert!(parse_source("file://a/b").unwrap_err().to_string().contains("absolute"));
        assert!(parse_source("hdfs://nn/x").unwrap_err().to_string().contains("unsupported URI scheme 'hdfs'"));
        assert!(parse_source("relative/x").unwrap_err().to_string().contains("relative path"));
        assert!(parse_source("").is_err());
    }

    #[test]
    fn output_files_stay_in_the_sandbox() {
        assert_eq!(validate_output_file("a/b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(validate_output_file("./b.txt").unwrap(), PathBuf::from("b.txt"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/..", ".", "dir/"] {
            assert!(validate_output_file(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn archives_by_extension() {
        for (name, kind) in [
            ("a.tar", Some(Archive::Tar)),
            ("a.tar.gz", Some(Archive::Tar)),
            ("a.tgz", Some(Archive::Tar)),
            ("a.tar.bz2", Some(Archive::Tar)),
            ("a.tbz2", Some(Archive::Tar)),
            ("a.tar.xz", Some(Archive::Tar)),
            ("a.txz", Some(Archive::Tar)),
            ("a.zip", Some(Archive::Zip)),
            ("a.gz", Some(Archive::Gzip)),
            ("a.txt", None),
            ("a.zip?x=1", None),
        ] {
            assert_eq!(Archive::of(Path::new(name)), kind, "{name}");
        }
    }

    #[test]
    fn cache_names_are_stable_and_keep_the_extension() {
        let a = cache_file_name("http://h/x.tgz", "x.tgz");
        assert_eq!(a, cache_file_name("http://h/x.tgz", "x.tgz"));
        assert_ne!(a, cache_file_name("nobody@http://h/x.tgz", "x.tgz"));
        assert!(a.ends_with("-x.tgz"), "{a}");
        let long = cache_file_name("k", "a-very-long-artifact-name-1.2.3.tar.gz");
        assert!(long.ends_with("-a-very-lon_2.3.tar.gz"), "{long}");
    }

    #[test]
    fn destinations_refuse_symlinked_directories() {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), sandbox.path().join("link")).unwrap();
        let error = prepare_destination(sandbox.path(), Path::new("link/x"), None).unwrap_err();
        assert!(matches!(&error, FetchFailure::NotADirectory(dir) if dir.ends_with("link")), "{error}");
        let dest = prepare_destination(sandbox.path(), Path::new("a/b/x"), None).unwrap();
        assert_eq!(dest, sandbox.path().join("a/b/x"));
        assert!(sandbox.path().join("a/b").is_dir());
        // A symlink as the file itself is not written through either.
        std::os::unix::fs::symlink(outside.path().join("f"), sandbox.path().join("f")).unwrap();
        assert!(create_file(&sandbox.path().join("f")).is_err());
        assert!(!outside.path().join("f").exists());
    }
}
