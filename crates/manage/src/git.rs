//! A bare mirror of one branch of a repository, kept with the git CLI. Files are
//! read from a commit's tree (`git ls-tree`, `git cat-file`), so nothing on disk
//! can be edited into the desired state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("the repository URL {0:?} is not accepted (it must not start with '-')")]
    BadUrl(String),
    #[error("the branch or path {0:?} is not accepted")]
    BadName(String),
    #[error("running git {args}: {source}")]
    Spawn { args: String, source: std::io::Error },
    #[error("git {args}: {message}")]
    Failed { args: String, message: String },
    #[error("the access token file {path}: {source}")]
    Token { path: PathBuf, source: std::io::Error },
}

/// How m3s proves itself to the repository's server.
#[derive(Clone, Debug, Default)]
pub struct RepoAuth {
    /// A file holding an access token, sent over https as HTTP Basic
    /// (`x-access-token:<token>`, which GitHub, Gitea and GitLab take). Read at
    /// each fetch, so it can be rotated; it reaches git through its environment,
    /// never its command line.
    pub token_file: Option<PathBuf>,
    /// A private key for ssh URLs.
    pub ssh_key: Option<PathBuf>,
    /// The known_hosts the ssh server must be in (default: the user's).
    pub known_hosts: Option<PathBuf>,
}

/// A repository URL as git is given it. `Debug` and `Display` show it
/// without the user and password it may hold, so whatever holds one (flags,
/// configuration, the mirror) can derive `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoUrl(String);

impl RepoUrl {
    pub fn new(url: impl Into<String>) -> RepoUrl {
        RepoUrl(url.into())
    }

    /// The URL itself, for git.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl std::fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

/// From a command-line flag or an environment variable.
impl std::str::FromStr for RepoUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<RepoUrl, Self::Err> {
        Ok(RepoUrl::new(s))
    }
}

/// `url` without the user and password it may hold (`https://user:token@host/...`), for showing.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
        None => url.to_owned(),
    }
}

/// A path that can go into `GIT_SSH_COMMAND` (which git runs through a shell) as it is.
fn shell_plain(path: &Path) -> bool {
    let text = path.to_string_lossy();
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+@".contains(&b))
}

/// The mirror under `dir` of `branch` of the repository at `url`.
#[derive(Clone, Debug)]
pub struct Mirror {
    dir: PathBuf,
    url: RepoUrl,
    branch: String,
    auth: RepoAuth,
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

impl Mirror {
    pub fn new(dir: &Path, url: &str, branch: &str) -> Result<Mirror, GitError> {
        if url.starts_with('-') || url.is_empty() {
            return Err(GitError::BadUrl(url.to_owned()));
        }
        if !safe_name(branch) {
            return Err(GitError::BadName(branch.to_owned()));
        }
        Ok(Mirror { dir: dir.to_owned(), url: RepoUrl::new(url), branch: branch.to_owned(), auth: RepoAuth::default() })
    }

    /// Fetches with these credentials. Paths that a shell would read as more than
    /// a word are refused, since git runs `GIT_SSH_COMMAND` through one.
    pub fn with_auth(mut self, auth: RepoAuth) -> Result<Mirror, GitError> {
        for path in [&auth.ssh_key, &auth.known_hosts].into_iter().flatten() {
            if !shell_plain(path) {
                return Err(GitError::BadName(path.display().to_string()));
            }
        }
        self.auth = auth;
        Ok(self)
    }

    /// The environment that carries the credentials to a fetch.
    fn auth_env(&self) -> Result<Vec<(&'static str, String)>, GitError> {
        let mut env = Vec::new();
        if let Some(path) = &self.auth.token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|source| GitError::Token { path: path.clone(), source })?
                .trim()
                .to_owned();
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            env.push(("GIT_CONFIG_COUNT", "1".to_owned()));
            env.push(("GIT_CONFIG_KEY_0", "http.extraHeader".to_owned()));
            env.push(("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}")));
        }
        if let Some(key) = &self.auth.ssh_key {
            let mut command =
                format!("ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes", key.display());
            if let Some(known) = &self.auth.known_hosts {
                command.push_str(&format!(" -o UserKnownHostsFile={}", known.display()));
            }
            env.push(("GIT_SSH_COMMAND", command));
        }
        Ok(env)
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.git_with(args, &[])
    }

    fn git_with(&self, args: &[&str], env: &[(&'static str, String)]) -> Result<Vec<u8>, GitError> {
        let describe = args.iter().map(|a| redact(a)).collect::<Vec<_>>().join(" ");
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            // Never ask: a repository that needs credentials m3s does not have fails.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| GitError::Spawn { args: describe.clone(), source })?;
        if !out.status.success() {
            let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(GitError::Failed { args: describe, message });
        }
        Ok(out.stdout)
    }

    /// Fetches the branch (creating the mirror the first time) and returns its commit.
    pub fn fetch(&self) -> Result<String, GitError> {
        if !self.dir.join("HEAD").exists() {
            std::fs::create_dir_all(&self.dir).map_err(|source| GitError::Spawn { args: "init".into(), source })?;
            self.git(&["init", "--bare", "--quiet"])?;
        }
        let refspec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        let env = self.auth_env()?;
        self.git_with(&["fetch", "--quiet", "--prune", "--no-tags", "--", self.url.as_str(), &refspec], &env)?;
        self.commit_of(&self.branch)
    }

    /// The commit a revision names (a branch, a tag, a commit id or a prefix of one).
    pub fn commit_of(&self, revision: &str) -> Result<String, GitError> {
        if !safe_name(revision) {
            return Err(GitError::BadName(revision.to_owned()));
        }
        match self.git(&["rev-parse", "--verify", "--quiet", &format!("{revision}^{{commit}}")]) {
            Ok(out) => Ok(String::from_utf8_lossy(&out).trim().to_owned()),
            // `--quiet` says nothing: say which revision is missing.
            Err(GitError::Failed { args, message }) if message.is_empty() => {
                Err(GitError::Failed { args, message: format!("no commit {revision:?} in what was fetched") })
            }
            Err(e) => Err(e),
        }
    }

    /// Files under `dir` in a commit's tree, relative to the repository's root.
    pub fn files(&self, commit: &str, dir: &str) -> Result<Vec<String>, GitError> {
        let dir = dir.trim_matches('/');
        if !dir.is_empty() && !safe_name(dir) {
            return Err(GitError::BadName(dir.to_owned()));
        }
        let mut args = vec!["ls-tree", "-r", "-z", "--name-only", commit];
        if !dir.is_empty() {
            args.extend(["--", dir]);
        }
        let out = self.git(&args)?;
        Ok(out.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect())
    }

    /// A file of a commit's tree.
    pub fn read(&self, commit: &str, path: &str) -> Result<Vec<u8>, GitError> {
        self.git(&["cat-file", "blob", &format!("{commit}:{path}")])
    }

    /// The commit's subject line and author, for plans and history.
    pub fn describe(&self, commit: &str) -> Result<String, GitError> {
        let out = self.git(&["log", "-1", "--format=%h %s (%an)", commit])?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }
}

/// The compose projects of a commit: `<dir>/projects/<name>/compose.yaml`, by name.
pub fn projects(mirror: &Mirror, commit: &str, dir: &str) -> Result<BTreeMap<String, (String, Vec<u8>)>, GitError> {
    compose_files(mirror, commit, dir, crate::PROJECTS_DIR)
}

/// The runbooks of a commit: `<dir>/runbooks/<name>/compose.yaml`, by name.
pub fn runbooks(mirror: &Mirror, commit: &str, dir: &str) -> Result<BTreeMap<String, (String, Vec<u8>)>, GitError> {
    compose_files(mirror, commit, dir, crate::runbook::RUNBOOKS_DIR)
}

/// The K3s clusters of a commit: `<dir>/k3s/<name>.yaml`, by name.
pub fn clusters(mirror: &Mirror, commit: &str, dir: &str) -> Result<BTreeMap<String, (String, Vec<u8>)>, GitError> {
    let base = dir.trim_matches('/');
    let prefix = if base.is_empty() { format!("{}/", crate::K3S_DIR) } else { format!("{base}/{}/", crate::K3S_DIR) };
    let mut out = BTreeMap::new();
    for path in mirror.files(commit, prefix.trim_end_matches('/'))? {
        let Some(name) = path.strip_prefix(&prefix).and_then(|f| f.strip_suffix(".yaml")) else { continue };
        if !name.contains('/') {
            let text = mirror.read(commit, &path)?;
            out.insert(name.to_owned(), (path.clone(), text));
        }
    }
    Ok(out)
}

/// `<dir>/<kind>/<name>/compose.yaml` of a commit: name to (path, content).
fn compose_files(
    mirror: &Mirror,
    commit: &str,
    dir: &str,
    kind: &str,
) -> Result<BTreeMap<String, (String, Vec<u8>)>, GitError> {
    let base = dir.trim_matches('/');
    let prefix = if base.is_empty() { format!("{kind}/") } else { format!("{base}/{kind}/") };
    let mut out = BTreeMap::new();
    for path in mirror.files(commit, prefix.trim_end_matches('/'))? {
        let Some(rest) = path.strip_prefix(&prefix) else { continue };
        if let Some((name, file)) = rest.split_once('/')
            && file == crate::COMPOSE_FILE
        {
            let text = mirror.read(commit, &path)?;
            out.insert(name.to_owned(), (path.clone(), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_not_shown() {
        assert_eq!(redact("https://bot:s3cret@git.example/ops/estate.git"), "https://***@git.example/ops/estate.git");
        assert_eq!(redact("ssh://git@host:22/r.git"), "ssh://***@host:22/r.git");
        assert_eq!(redact("https://git.example/a@b"), "https://git.example/a@b");
        assert_eq!(redact("/srv/git/r.git"), "/srv/git/r.git");
    }

    #[test]
    fn key_paths_that_a_shell_would_split_are_refused() {
        let m = || Mirror::new(Path::new("/x"), "ssh://git@h/r", "main").unwrap();
        let auth = |key: &str| RepoAuth { ssh_key: Some(key.into()), ..Default::default() };
        assert!(m().with_auth(auth("/etc/m3s/deploy_key")).is_ok());
        for bad in ["/k; touch /tmp/p", "/k $(id)", "/k'", "/a b"] {
            assert!(matches!(m().with_auth(auth(bad)), Err(GitError::BadName(_))), "{bad}");
        }
    }

    #[test]
    fn options_cannot_be_smuggled_in() {
        assert!(matches!(Mirror::new(Path::new("/x"), "--upload-pack=touch /tmp/p", "main"), Err(GitError::BadUrl(_))));
        assert!(matches!(Mirror::new(Path::new("/x"), "file:///r", "-b"), Err(GitError::BadName(_))));
        assert!(matches!(Mirror::new(Path::new("/x"), "file:///r", "a..b"), Err(GitError::BadName(_))));
        let m = Mirror::new(Path::new("/x"), "file:///r", "main").unwrap();
        assert!(matches!(m.commit_of("--all"), Err(GitError::BadName(_))));
    }
}
