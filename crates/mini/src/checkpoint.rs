//! The master's checkpoint in the work directory: one small JSON file per
//! framework and per task, replaced atomically (write, then rename), so a
//! change costs one small write whatever the cluster's size.
//!
//! Durability: a rename is atomic with respect to a crash of m3s (kill -9
//! included), because the kernel keeps the written pages; only a power loss
//! can lose the last writes, and then frameworks resubscribe and reconcile as
//! they do after a Mesos master failover. The task runtime keeps its own
//! records (launch spec, exit status), which are the truth about processes.
//!
//! Layout: `<work_dir>/master/frameworks/<framework id>/framework.json` and
//! `.../tasks/<task id>.json`.

use std::path::{Path, PathBuf};

use mesos::v1::{FrameworkId, FrameworkInfo, TaskId};
use serde::{Deserialize, Serialize};

use crate::master::Task;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameworkRecord {
    pub info: FrameworkInfo,
    pub registered_time: f64,
    /// Set once the framework was torn down or timed out: it must not come back.
    #[serde(default)]
    pub removed: bool,
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    root: PathBuf,
}

/// What a restarted master finds.
#[derive(Debug, Default)]
pub struct Recovered {
    pub frameworks: Vec<(FrameworkRecord, Vec<Task>)>,
}

impl Checkpoint {
    pub fn new(work_dir: &Path) -> Self {
        Checkpoint { root: work_dir.join("master").join("frameworks") }
    }

    fn framework_dir(&self, id: &FrameworkId) -> PathBuf {
        self.root.join(safe_name(&id.value))
    }

    pub fn write_framework(&self, id: &FrameworkId, record: &FrameworkRecord) -> std::io::Result<()> {
        write_atomic(&self.framework_dir(id).join("framework.json"), &serde_json::to_vec(record)?)
    }

    /// Writes a task without the values of its command's environment (plain or
    /// SECRET): they may be secrets, and nothing needs them once the task is launched (a
    /// restored task is re-adopted, never launched again).
    pub fn write_task(&self, id: &FrameworkId, task: &Task) -> std::io::Result<()> {
        let path = self.framework_dir(id).join("tasks").join(format!("{}.json", safe_name(&task.id().value)));
        let mut task = task.clone();
        if let Some(env) = task.info.command.as_mut().and_then(|c| c.environment.as_mut()) {
            env.variables.iter_mut().for_each(|v| {
                v.value = None;
                v.secret = None;
            });
        }
        write_atomic(&path, &serde_json::to_vec(&task)?)
    }

    pub fn remove_task(&self, id: &FrameworkId, task_id: &TaskId) -> std::io::Result<()> {
        let path = self.framework_dir(id).join("tasks").join(format!("{}.json", safe_name(&task_id.value)));
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads everything back. Unreadable files are skipped with a warning: a
    /// half-written file cannot exist (renames are atomic), so this only
    /// happens if someone edited the directory.
    pub fn recover(&self) -> Recovered {
        let mut out = Recovered::default();
        let Ok(entries) = std::fs::read_dir(&self.root) else { return out };
        for entry in entries.flatten() {
            let dir = entry.path();
            let record: FrameworkRecord = match read_json(&dir.join("framework.json")) {
                Some(r) => r,
                None => continue,
            };
            let mut tasks = Vec::new();
            if let Ok(files) = std::fs::read_dir(dir.join("tasks")) {
                for file in files.flatten() {
                    if let Some(task) = read_json::<Task>(&file.path()) {
                        tasks.push(task);
                    }
                }
            }
            out.frameworks.push((record, tasks));
        }
        out
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable checkpoint file skipped");
            None
        }
    }
}

/// Framework and task ids come from frameworks: keep them from naming paths
/// outside the checkpoint directory.
fn safe_name(id: &str) -> String {
    let name: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() { "_".to_owned() } else { name.to_owned() }
}

/// Writes `bytes` to `path` through a temporary file and a rename (the
/// runtime's atomic write, without fsync: see the module doc), creating the
/// directories on the way.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("checkpoint paths have a parent"))?;
    crate::agent::runtime::write_atomic(path, bytes, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_checkpoints_hold_no_environment_values_or_secrets() {
        use mesos::v1::{CommandInfo, Environment, EnvironmentVariable, TaskId, TaskInfo, VariableType};
        let dir = std::env::temp_dir().join(format!("m3s-checkpoint-env-{}", std::process::id()));
        let checkpoint = Checkpoint::new(&dir);
        let info = TaskInfo {
            task_id: TaskId::new("t1"),
            command: Some(CommandInfo {
                environment: Some(Environment {
                    variables: vec![
                        EnvironmentVariable { name: "PLAIN".into(), value: Some("pl41n".into()), ..Default::default() },
                        EnvironmentVariable {
                            name: "TOKEN".into(),
                            kind: Some(VariableType::Secret),
                            value: None,
                            secret: Some(serde_json::json!({"type": "VALUE", "value": {"data": "czNjcjN0"}})),
                        },
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let fid = FrameworkId::new("f1");
        let task = crate::master::Task::new(info, fid.clone(), "*".into(), Default::default());
        checkpoint.write_task(&fid, &task).unwrap();
        let written = std::fs::read_to_string(checkpoint.framework_dir(&fid).join("tasks/t1.json")).unwrap();
        assert!(written.contains("TOKEN") && written.contains("PLAIN"), "the names stay: {written}");
        assert!(!written.contains("pl41n") && !written.contains("czNjcjN0"), "{written}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_cannot_escape_the_checkpoint_directory() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("m1-0000"), "m1-0000");
        assert_eq!(safe_name(".."), "_");
    }
}
