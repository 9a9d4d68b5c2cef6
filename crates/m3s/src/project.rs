//! A compose project read from its files: the flags that say where from
//! (`ProjectSource`), the loading with `.env` and the checks, and the result
//! (`Loaded`) that `compose`, `build` and `serve` send. A leaf: the commands
//! import it, it imports no command.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// A project read from its files, checked, and ready to send.
pub struct Loaded {
    pub name: String,
    pub project: compose::Project,
    /// The directory relative paths in the files are read from (absolute).
    pub project_dir: PathBuf,
    /// The normalized project as one compose document (JSON, which is YAML).
    pub normalized: String,
}

/// Where a project comes from: its files and the flags that change how they read.
#[derive(Clone, Debug, Default)]
pub struct ProjectSource {
    pub files: Vec<PathBuf>,
    pub name: Option<String>,
    pub profiles: Vec<String>,
    /// `--env-file`: read instead of the project directory's `.env`.
    pub env_files: Vec<PathBuf>,
    /// `--project-directory`: instead of the first file's directory.
    pub project_directory: Option<PathBuf>,
}

/// Loads the files with the environment and the project directory's `.env`, checks them, and names the project.
pub fn load_files(source: &ProjectSource, strict: bool) -> anyhow::Result<Loaded> {
    let explicit_name = source.name.as_deref();
    let project_dir = match &source.project_directory {
        Some(dir) => dir.clone(),
        None => source.files[0].parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let project = read_project(source, &project_dir, strict)?;
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
    let project_dir =
        std::path::absolute(if project_dir.as_os_str().is_empty() { Path::new(".") } else { &project_dir })
            .context("the current directory")?;
    Ok(Loaded { name, project, project_dir, normalized })
}

impl Loaded {
    /// `normalized` again, after the project was changed (images of built services).
    pub fn renormalize(&mut self) {
        self.normalized =
            serde_json::to_string_pretty(&compose::normalize(&self.project)).expect("JSON values serialize");
    }
}

/// Reads the files from disk: the process environment over the project directory's
/// `.env`, env_file, extends, include, profiles, and strict.
fn read_project(source: &ProjectSource, project_dir: &Path, strict: bool) -> anyhow::Result<compose::Project> {
    let options = compose::LoadOptions {
        project_dir: if project_dir.as_os_str().is_empty() { PathBuf::from(".") } else { project_dir.to_owned() },
        env: std::env::vars().collect(),
        profiles: source.profiles.clone(),
        strict,
        dotenv: true,
        env_files: source.env_files.clone(),
    };
    compose::load_files(&source.files, &options).map_err(|e| anyhow::anyhow!("{e}"))
}
