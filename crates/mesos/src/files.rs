//! Task output, read from the agent's sandbox through the Mesos files API
//! (`/files/read`), as the Mesos UI reads it. Works for the embedded cluster
//! and for agents of a real cluster.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::legacy::{AgentState, FileChunk, FileEntry, MasterState};
use crate::operator::{AgentClient, OperatorClient};
use crate::transport::TransportConfig;

/// Reads sandbox files of this framework's tasks.
pub struct AgentFiles {
    master: OperatorClient,
    transport: TransportConfig,
    tls: bool,
    /// task id -> (agent base URL, sandbox directory): sandboxes do not move.
    sandboxes: Mutex<HashMap<String, (String, String)>>,
}

/// A path inside the sandbox of one task.
pub struct SandboxFile<'a> {
    pub agent_id: &'a str,
    pub framework_id: &'a str,
    pub task_id: &'a str,
    /// Relative to the sandbox; `""` is the sandbox itself.
    pub path: &'a str,
}

/// `path` as plain names joined by `/`, or None if it could leave the directory
/// (`..`, an absolute path, a backslash or a NUL). The agent confines reads
/// to sandboxes too; this keeps a request from naming another task's.
pub fn confined(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains(['\\', '\0']) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    (!parts.contains(&"..")).then(|| parts.join("/"))
}

/// A sandbox file that cannot be read: not there (404 to a client), or the
/// agent's answer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Agent(String),
}

impl AgentFiles {
    pub fn new(master: &str, tls: bool, transport: TransportConfig) -> Result<AgentFiles, crate::error::Error> {
        Ok(AgentFiles {
            master: OperatorClient::new(master, tls, transport.clone())?,
            transport,
            tls,
            sandboxes: Mutex::new(HashMap::new()),
        })
    }

    /// Reads up to `length` bytes of `stream` (`stdout` or `stderr`) of a task
    /// from `offset` (negative: the last `length` bytes).
    pub async fn read(
        &self,
        agent_id: &str,
        framework_id: &str,
        task_id: &str,
        stream: &str,
        offset: i64,
        length: u64,
    ) -> Result<FileChunk, LogError> {
        self.read_path(&SandboxFile { agent_id, framework_id, task_id, path: stream }, offset, length).await
    }

    /// Reads a file of a task's sandbox, as `read` does.
    pub async fn read_path(&self, file: &SandboxFile<'_>, offset: i64, length: u64) -> Result<FileChunk, LogError> {
        let (agent, _, path) = self.locate(file).await?;
        let offset = if offset < 0 {
            let end = agent.read_file(&path, -1, None).await.map_err(|e| LogError::Agent(e.to_string()))?.offset;
            end.saturating_sub(length) as i64
        } else {
            offset
        };
        agent.read_file(&path, offset, Some(length)).await.map_err(|e| LogError::Agent(e.to_string()))
    }

    /// Lists a directory of a task's sandbox; entries' paths come back relative to the sandbox.
    pub async fn browse(&self, dir: &SandboxFile<'_>) -> Result<Vec<FileEntry>, LogError> {
        let (agent, sandbox, path) = self.locate(dir).await?;
        let mut entries = agent.browse(&path).await.map_err(|e| LogError::Agent(e.to_string()))?;
        for e in &mut entries {
            e.path = e.path.strip_prefix(&sandbox).unwrap_or(&e.path).trim_start_matches('/').to_owned();
        }
        entries.sort_by(|a, b| (!a.is_dir(), &a.path).cmp(&(!b.is_dir(), &b.path)));
        Ok(entries)
    }

    /// `/master/state` of the master these files are read through.
    pub async fn master_state(&self) -> Result<MasterState, LogError> {
        self.master.get_json("/master/state").await.map_err(|e| LogError::Agent(format!("master: {e}")))
    }

    /// An endpoint of an agent the master knows (`/monitor/statistics`, `/slave(1)/state`), as JSON.
    pub async fn agent_json(
        &self,
        agent: &crate::legacy::LegacyAgent,
        path: &str,
    ) -> Result<serde_json::Value, LogError> {
        let address = match agent.pid.split_once('@') {
            Some((_, addr)) => addr.to_owned(),
            None => format!("{}:{}", agent.hostname, agent.port),
        };
        let scheme = if self.tls { "https" } else { "http" };
        let client = AgentClient::new(format!("{scheme}://{address}"), self.transport.clone())
            .map_err(|e| LogError::Agent(e.to_string()))?;
        client.get_json(path).await.map_err(|e| LogError::Agent(format!("agent {address}: {e}")))
    }

    /// The agent holding a sandbox file, the sandbox directory and the file's full path there.
    async fn locate(&self, file: &SandboxFile<'_>) -> Result<(AgentClient, String, String), LogError> {
        let relative = confined(file.path)
            .ok_or_else(|| LogError::NotFound(format!("{:?} is not a path inside the sandbox", file.path)))?;
        let (agent_url, directory) = self.sandbox(file.agent_id, file.framework_id, file.task_id).await?;
        let agent = AgentClient::new(&agent_url, self.transport.clone()).map_err(|e| LogError::Agent(e.to_string()))?;
        let path = if relative.is_empty() { directory.clone() } else { format!("{directory}/{relative}") };
        Ok((agent, directory, path))
    }

    async fn sandbox(&self, agent_id: &str, framework_id: &str, task_id: &str) -> Result<(String, String), LogError> {
        if let Some(found) = self.sandboxes.lock().expect("sandbox cache").get(task_id) {
            return Ok(found.clone());
        }
        let agents = self.master.get_agents().await.map_err(|e| LogError::Agent(format!("master: {e}")))?;
        let agent = agents
            .agents
            .iter()
            .find(|a| a.agent_info.id.as_ref().is_some_and(|id| id.value == agent_id))
            .ok_or_else(|| LogError::NotFound(format!("agent {agent_id} is not registered with the master")))?;
        let address = match agent.pid.as_deref().and_then(|pid| pid.split_once('@')) {
            Some((_, addr)) => addr.to_owned(),
            None => format!("{}:{}", agent.agent_info.hostname, agent.agent_info.port),
        };
        let scheme = if self.tls { "https" } else { "http" };
        let agent_url = format!("{scheme}://{address}");
        let client =
            AgentClient::new(&agent_url, self.transport.clone()).map_err(|e| LogError::Agent(e.to_string()))?;
        let state: AgentState =
            client.get_json("/slave(1)/state").await.map_err(|e| LogError::Agent(format!("agent {address}: {e}")))?;
        // Command tasks run under an executor named after the task.
        let directory = state
            .executor_directory(framework_id, task_id)
            .map(str::to_owned)
            .or_else(|| {
                state
                    .frameworks
                    .iter()
                    .chain(&state.completed_frameworks)
                    .filter(|f| f.id == framework_id)
                    .flat_map(|f| f.executors.iter().chain(&f.completed_executors))
                    .find(|e| e.tasks.iter().chain(&e.completed_tasks).any(|t| t.id == task_id))
                    .map(|e| e.directory.clone())
            })
            // An agent that does not know its work directory answers an empty one.
            .filter(|d| !d.is_empty())
            .ok_or_else(|| LogError::NotFound(format!("no sandbox for task {task_id} on agent {address}")))?;
        let found = (agent_url, directory);
        self.sandboxes.lock().expect("sandbox cache").insert(task_id.to_owned(), found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Whatever a request names, what reaches the agent is relative and climbs nowhere.
        #[test]
        fn confined_paths_never_climb(path in "[a-z./\\\\\\x00]{0,24}") {
            if let Some(p) = super::confined(&path) {
                prop_assert!(!p.starts_with('/'));
                prop_assert!(p.is_empty() || p.split('/').all(|part| !part.is_empty() && part != ".." && part != "."), "{p:?}");
                prop_assert!(!p.contains(['\\', '\0']));
            }
        }
    }

    #[test]
    fn sandbox_paths_stay_inside() {
        use super::confined;
        assert_eq!(confined("").as_deref(), Some(""));
        assert_eq!(confined("stdout").as_deref(), Some("stdout"));
        assert_eq!(confined("./a//b/").as_deref(), Some("a/b"));
        for bad in ["..", "a/../../b", "/etc/passwd", "a\\..\\b", "a\0b"] {
            assert_eq!(confined(bad), None, "{bad:?}");
        }
    }
}
