//! The runtime's bookkeeping on disk: one directory per container under
//! `<runtime_dir>/containers/<container_id>/` (`runtime_dir` defaults to
//! `<work_dir>/meta/runtime`), holding small JSON
//! records that the agent (m3s) and the container's supervisor write:
//!
//! | file              | written by | when                                    |
//! |-------------------|------------|-----------------------------------------|
//! | `launch.json`     | m3s        | before the supervisor starts            |
//! | `supervisor.json` | supervisor | first thing after it starts             |
//! | `task.json`       | supervisor | right after the task process is spawned |
//! | `status.json`     | supervisor | after the task exited, before exiting   |
//!
//! `status.json` is also written by m3s when it finds a supervisor gone
//! without one (outcome `lost`), so that a later recovery reports the same.
//! Every record is written atomically (temporary file + rename), and
//! `status.json` is also fsynced, as it is the only record of a real outcome.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cgroups::TaskCgroups;
use super::{LaunchSpec, TaskExit};

pub(crate) const LAUNCH: &str = "launch.json";
pub(crate) const SUPERVISOR: &str = "supervisor.json";
pub(crate) const TASK: &str = "task.json";
pub(crate) const STATUS: &str = "status.json";

/// What the supervisor needs to start the task, as m3s resolved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchRecord {
    pub spec: LaunchSpec,
    pub sandbox: PathBuf,
    /// Credentials to switch to, resolved by m3s (the supervisor does no
    /// user database lookups). `None`: run as the supervisor's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<RunAs>,
    /// The cgroups m3s created for the task (which joins them before
    /// `exec`). `None`: no limits, or cgroups unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<TaskCgroups>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including `gid`).
    pub groups: Vec<u32>,
}

/// A process identity that survives pid reuse: the pid plus its start time
/// (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatusRecord {
    pub outcome: Outcome,
    /// Seconds since the Unix epoch.
    pub finished_at: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    ExitCode(i32),
    Signal(i32),
    /// The supervisor could not start the task (exec failed, bad working
    /// directory, user switch refused, ...).
    LaunchError(String),
    /// The supervisor vanished without recording the task's status.
    Lost(String),
    /// The OOM killer struck in the task's memory cgroup.
    MemoryLimit {
        limit_bytes: u64,
        max_used_bytes: Option<u64>,
        stats: Option<String>,
    },
}

impl Outcome {
    pub(crate) fn into_exit(self) -> TaskExit {
        match self {
            Outcome::ExitCode(code) => TaskExit::Code(code),
            Outcome::Signal(signal) => TaskExit::Signal(signal),
            Outcome::LaunchError(message) => TaskExit::Lost(format!("task launch failed: {message}")),
            Outcome::Lost(message) => TaskExit::Lost(message),
            Outcome::MemoryLimit { limit_bytes, max_used_bytes, stats } => {
                TaskExit::MemoryLimit { limit_bytes, max_used_bytes, stats }
            }
        }
    }
}

pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes `bytes` to `path` atomically: a reader (or a recovery after a
/// crash) sees either the old content or the new, never a torn file. With
/// `durable`, the file and the rename are fsynced too.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes, durable)
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_record_round_trips() {
        let record = StatusRecord { outcome: Outcome::ExitCode(3), finished_at: 12.5 };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"outcome":{"exit_code":3},"finished_at":12.5}"#);
        assert_eq!(serde_json::from_str::<StatusRecord>(&json).unwrap(), record);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_json(&path, &ProcId { pid: 1, start_time: 2 }, true).unwrap();
        write_json(&path, &ProcId { pid: 3, start_time: 4 }, false).unwrap();
        assert_eq!(read_json::<ProcId>(&path).unwrap(), Some(ProcId { pid: 3, start_time: 4 }));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(read_json::<ProcId>(&dir.path().join("missing")).unwrap(), None);
    }
}
