//! A rules file (anomaly watch rules, alerting rules) read at start and again
//! whenever its modification time moves. A file that cannot be read or parsed
//! keeps the rules in force, and says why until it reads well again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A rules file that cannot be used, named.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
}

/// What is wrong with a rule, as the rules parsers say it: the rule's place
/// (`watch[0] (load1)`), the field, and the problem.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("{at}: {field}: {problem}")]
    Field { at: String, field: &'static str, problem: FieldProblem },
}

#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    #[error("{0:?} cannot be watched")]
    NotWatchable(String),
    #[error("{value} is not {range}")]
    OutOfRange { value: f64, range: &'static str },
    #[error("{0:?} is not a duration")]
    NotADuration(String),
    #[error("recording rules are not supported (write the expression in the alert)")]
    RecordingRule,
    #[error("missing (the alert's name)")]
    Missing,
    #[error("give either expr (PromQL) or anomaly ({{metric, threshold}})")]
    ExprOrAnomaly,
    #[error("{0}")]
    Expr(#[from] crate::promql::ParseError),
    #[error("not supported")]
    Unsupported,
}

pub struct RulesFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The modification time of the last read.
    modified: Option<SystemTime>,
    /// Why the last read could not be used.
    problem: Option<String>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl RulesFile {
    pub fn new(path: PathBuf) -> RulesFile {
        RulesFile { path, state: Mutex::new(State::default()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file now; the error names the file.
    pub fn load<T, E>(&self, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, RulesFileError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let when = modified(&self.path);
        let path = || self.path.clone();
        let result = std::fs::read_to_string(&self.path)
            .map_err(|source| RulesFileError::Read { path: path(), source })
            .and_then(|text| parse(&text).map_err(|e| RulesFileError::Invalid { path: path(), source: Box::new(e) }));
        let mut state = self.state.lock().expect("rules file");
        state.modified = when;
        state.problem = result.as_ref().err().map(|e| format!("{e} (the rules in force are kept)"));
        result
    }

    /// The rules, when the file changed since the last read and parses.
    pub fn reload_if_changed<T, E>(&self, parse: impl FnOnce(&str) -> Result<T, E>) -> Option<T>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if modified(&self.path) == self.state.lock().expect("rules file").modified {
            return None;
        }
        let rules = self.load(parse).ok();
        if rules.is_some() {
            tracing::info!(file = %self.path.display(), "rules reloaded");
        }
        rules
    }

    /// Why the file's current content is not in force, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.state.lock().expect("rules file").problem.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> Result<Vec<u32>, std::num::ParseIntError> {
        text.split_whitespace().map(str::parse).collect()
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_says_why_until_fixed() {
        let dir = std::env::temp_dir().join(format!("m3s-rules-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules");
        std::fs::write(&path, "1 2").unwrap();
        let file = RulesFile::new(path.clone());
        assert_eq!(file.load(numbers).unwrap(), vec![1, 2]);
        assert_eq!(file.reload_if_changed(numbers), None, "unchanged");
        let touch = |text: &str, secs: u64| {
            std::fs::write(&path, text).unwrap();
            let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        };
        touch("1 x", 1_000);
        assert_eq!(file.reload_if_changed(numbers), None);
        let problem = file.problem().unwrap();
        assert!(problem.ends_with("rules: invalid digit found in string (the rules in force are kept)"), "{problem}");
        assert_eq!(file.reload_if_changed(numbers), None, "read once per change");
        assert!(file.problem().is_some(), "said until fixed");
        touch("3", 2_000);
        assert_eq!(file.reload_if_changed(numbers), Some(vec![3]));
        assert_eq!(file.problem(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
