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
}

/// The mirror under `dir` of `branch` of the repository at `url`.
#[derive(Clone, Debug)]
pub struct Mirror {
    dir: PathBuf,
    url: String,
    branch: String,
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
        Ok(Mirror { dir: dir.to_owned(), url: url.to_owned(), branch: branch.to_owned() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let describe = args.join(" ");
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(args)
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
        self.git(&["fetch", "--quiet", "--prune", "--no-tags", "--", &self.url, &refspec])?;
        self.commit_of(&self.branch)
    }

    /// The commit a revision names (a branch, a tag, a commit id or a prefix of one).
    pub fn commit_of(&self, revision: &str) -> Result<String, GitError> {
        if !safe_name(revision) {
            return Err(GitError::BadName(revision.to_owned()));
        }
        let out = self.git(&["rev-parse", "--verify", "--quiet", &format!("{revision}^{{commit}}")])?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
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
    fn options_cannot_be_smuggled_in() {
        assert!(matches!(Mirror::new(Path::new("/x"), "--upload-pack=touch /tmp/p", "main"), Err(GitError::BadUrl(_))));
        assert!(matches!(Mirror::new(Path::new("/x"), "file:///r", "-b"), Err(GitError::BadName(_))));
        assert!(matches!(Mirror::new(Path::new("/x"), "file:///r", "a..b"), Err(GitError::BadName(_))));
        let m = Mirror::new(Path::new("/x"), "file:///r", "main").unwrap();
        assert!(matches!(m.commit_of("--all"), Err(GitError::BadName(_))));
    }
}
