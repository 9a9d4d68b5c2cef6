//! A rules file (anomaly watch rules, alerting rules) read at start and again
//! whenever its modification time moves. A file that cannot be read or parsed
//! keeps the rules in force, and says why until it reads well again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

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
    pub fn load<T>(&self, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, String> {
        let when = modified(&self.path);
        let result = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text))
            .map_err(|e| format!("{}: {e}", self.path.display()));
        let mut state = self.state.lock().expect("rules file");
        state.modified = when;
        state.problem = result.as_ref().err().map(|e| format!("{e} (the rules in force are kept)"));
        result
    }

    /// The rules, when the file changed since the last read and parses.
    pub fn reload_if_changed<T>(&self, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
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

    fn numbers(text: &str) -> Result<Vec<u32>, String> {
        text.split_whitespace().map(|w| w.parse().map_err(|_| format!("{w:?} is not a number"))).collect()
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_says_why_until_fixed() {
        let dir = std::env::temp_dir().join(format!("m3s-rules-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules");
        std::fs::write(&path, "1 2").unwrap();
        let file = RulesFile::new(path.clone());
        assert_eq!(file.load(numbers), Ok(vec![1, 2]));
        assert_eq!(file.reload_if_changed(numbers), None, "unchanged");
        let touch = |text: &str, secs: u64| {
            std::fs::write(&path, text).unwrap();
            let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        };
        touch("1 x", 1_000);
        assert_eq!(file.reload_if_changed(numbers), None);
        let problem = file.problem().unwrap();
        assert!(problem.ends_with("rules: \"x\" is not a number (the rules in force are kept)"), "{problem}");
        assert_eq!(file.reload_if_changed(numbers), None, "read once per change");
        assert!(file.problem().is_some(), "said until fixed");
        touch("3", 2_000);
        assert_eq!(file.reload_if_changed(numbers), Some(vec![3]));
        assert_eq!(file.problem(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
