//! Task output, read from the agent's sandbox through the Mesos files API
//! (`/files/read`), as the Mesos UI reads it. Works for the embedded cluster
//! and for agents of a real cluster.

use std::collections::HashMap;
use std::sync::Mutex;

use mesos::legacy::{AgentState, FileChunk};
use mesos::operator::{AgentClient, OperatorClient};
use mesos::transport::TransportConfig;

/// Reads sandbox files of this framework's tasks.
pub struct AgentFiles {
    master: OperatorClient,
    transport: TransportConfig,
    tls: bool,
    /// task id -> (agent base URL, sandbox directory): sandboxes do not move.
    sandboxes: Mutex<HashMap<String, (String, String)>>,
}

#[derive(Debug)]
pub enum LogError {
    NotFound(String),
    Agent(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::NotFound(m) | LogError::Agent(m) => f.write_str(m),
        }
    }
}

impl AgentFiles {
    pub fn new(master: &str, tls: bool, transport: TransportConfig) -> Result<AgentFiles, mesos::error::Error> {
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
        let (agent_url, directory) = self.sandbox(agent_id, framework_id, task_id).await?;
        let agent = AgentClient::new(&agent_url, self.transport.clone()).map_err(|e| LogError::Agent(e.to_string()))?;
        let path = format!("{directory}/{stream}");
        let offset = if offset < 0 {
            let end = agent.read_file(&path, -1, None).await.map_err(|e| LogError::Agent(e.to_string()))?.offset;
            end.saturating_sub(length) as i64
        } else {
            offset
        };
        agent.read_file(&path, offset, Some(length)).await.map_err(|e| LogError::Agent(e.to_string()))
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
