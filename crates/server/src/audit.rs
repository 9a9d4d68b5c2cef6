//! One audit log of every change: who, when, what, the commit or request, the
//! result. Requests are recorded by the access check ([`crate::auth`]) from
//! their method and path only (never a body, and query values that could be
//! secrets are masked); the management role records what git applied.
//!
//! Kept as JSON lines in `<work-dir>/audit.jsonl` (mode 0600, one rotation to
//! `audit.jsonl.1` past [`ROTATE_BYTES`]), so it survives restarts; the newest
//! [`KEPT_IN_MEMORY`] entries answer queries.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub const KEPT_IN_MEMORY: usize = 2000;
pub const ROTATE_BYTES: u64 = 8 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// The credential's name (`anonymous` on an open API; `git` for what the
    /// management role applied by itself).
    pub who: String,
    /// `api`, `dashboard`, `git` or `webhook`.
    pub via: String,
    /// `PUT /api/v1/projects/web`, or `apply <commit>`.
    pub action: String,
    /// The HTTP status, or `applied` / `not applied: why`.
    pub result: String,
}

pub struct AuditLog {
    file: Option<PathBuf>,
    recent: Mutex<VecDeque<AuditEntry>>,
}

/// What a query asks for: newest first.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub who: Option<String>,
    pub since_ms: Option<u64>,
    /// Entries whose action contains this text.
    pub contains: Option<String>,
    pub limit: Option<usize>,
}

impl AuditLog {
    pub fn in_memory() -> AuditLog {
        AuditLog { file: None, recent: Mutex::new(VecDeque::new()) }
    }

    /// Opens the log, reading back its newest entries. Unreadable lines (a
    /// crash mid-line) are skipped with a warning: the log only ever appends.
    pub fn open(file: PathBuf) -> AuditLog {
        let mut recent = VecDeque::new();
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut skipped = 0;
            for line in text.lines() {
                match serde_json::from_str::<AuditEntry>(line) {
                    Ok(e) => {
                        if recent.len() == KEPT_IN_MEMORY {
                            recent.pop_front();
                        }
                        recent.push_back(e);
                    }
                    Err(_) => skipped += 1,
                }
            }
            if skipped > 0 {
                tracing::warn!(file = %file.display(), skipped, "audit log: unreadable lines skipped");
            }
        }
        AuditLog { file: Some(file), recent: Mutex::new(recent) }
    }

    pub fn record(&self, entry: AuditEntry) {
        tracing::info!(who = %entry.who, via = %entry.via, action = %entry.action, result = %entry.result, "audit");
        let mut recent = self.recent.lock().expect("audit");
        if let Some(file) = &self.file
            && let Err(e) = append(file, &entry)
        {
            // The entry still reaches the process log above and the API below.
            tracing::error!(file = %file.display(), "audit log not written: {e}");
        }
        if recent.len() == KEPT_IN_MEMORY {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    /// Records an entry stamped with the time now.
    pub fn note(&self, who: &str, via: &str, action: String, result: &str) {
        let at_ms = framework::driver::now_ms();
        self.record(AuditEntry { at_ms, who: who.to_owned(), via: via.to_owned(), action, result: result.to_owned() });
    }

    pub fn query(&self, q: &AuditQuery) -> Vec<AuditEntry> {
        let recent = self.recent.lock().expect("audit");
        recent
            .iter()
            .rev()
            .filter(|e| q.who.as_ref().is_none_or(|w| &e.who == w))
            .filter(|e| q.since_ms.is_none_or(|s| e.at_ms >= s))
            .filter(|e| q.contains.as_ref().is_none_or(|c| e.action.contains(c.as_str())))
            .take(q.limit.unwrap_or(100).min(KEPT_IN_MEMORY))
            .cloned()
            .collect()
    }
}

fn append(file: &std::path::Path, entry: &AuditEntry) -> std::io::Result<()> {
    mesos::private_file::append_line(file, &serde_json::to_vec(entry).expect("serialises"), ROTATE_BYTES)
}

/// A request's target for the log: the path, and the query with the values of
/// keys that may carry secrets masked.
pub fn describe(method: &str, path: &str, query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else { return format!("{method} {path}") };
    let shown: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let secret = matches!(&*k, "p" | "password" | "token" | "secret" | "u");
            format!("{k}={}", if secret { "***" } else { &v })
        })
        .collect();
    format!("{method} {path}?{}", shown.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, who: &str, action: &str) -> AuditEntry {
        AuditEntry { at_ms, who: who.into(), via: "api".into(), action: action.into(), result: "200".into() }
    }

    #[test]
    fn entries_survive_a_reopen_and_are_queried_newest_first() {
        let dir = std::env::temp_dir().join(format!("m3s-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("audit.jsonl");
        let log = AuditLog::open(file.clone());
        log.record(entry(1, "ci", "PUT /api/v1/projects/web"));
        log.record(entry(2, "admin", "DELETE /api/v1/projects/web"));
        std::io::Write::write_all(&mut std::fs::OpenOptions::new().append(true).open(&file).unwrap(), b"{\"cut off")
            .unwrap();
        let again = AuditLog::open(file.clone());
        let all = again.query(&AuditQuery::default());
        assert_eq!(all.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [2, 1]);
        let ci = again.query(&AuditQuery { who: Some("ci".into()), ..Default::default() });
        assert_eq!(ci, [entry(1, "ci", "PUT /api/v1/projects/web")]);
        let since = again.query(&AuditQuery { since_ms: Some(2), ..Default::default() });
        assert_eq!(since.len(), 1);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_query_values_are_masked() {
        assert_eq!(describe("POST", "/write", Some("db=x&u=admin&p=s3cret")), "POST /write?db=x&u=***&p=***");
        assert_eq!(describe("PUT", "/api/v1/projects/web", None), "PUT /api/v1/projects/web");
    }
}
