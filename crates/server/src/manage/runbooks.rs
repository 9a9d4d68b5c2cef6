//! Runbook runs: a runbook of the applied commit, its parameters bound (a value
//! that does not fit starts nothing), deployed as a project of one service with
//! a task per targeted agent (`rb-<runbook>-<run id>`), watched until every task
//! ends or the timeout passes, its output read from the sandboxes, then removed.
//!
//! Runs are kept (newest [`RUNS_KEPT`]) under `ext/manage/runs/<id>` in the
//! framework's store: who, when, the commit, the parameters (secret ones as
//! `***`), each task's agent, state, message and output.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use framework::driver::now_ms;
use framework::engine::TaskRecord;
use framework::spec::{CommandSpec, PlacementField, PlacementRule, ProjectSpec, RestartSpec, RestartWhen};
use manage::runbook::{Runbook, Target};
use serde::{Deserialize, Serialize};

use super::{Manage, ManageError, failed};
use crate::error::Diagnostic;

pub const RUNS_KEPT: usize = 100;
const RUN_PREFIX: &str = "ext/manage/runs/";
/// Output kept per task: the last 64 KiB of stdout and of stderr.
const OUTPUT_KEPT: u64 = 64 * 1024;
/// The service every runbook's task runs as.
const SERVICE: &str = "run";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

impl RunState {
    /// As the API writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::TimedOut => "timed_out",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunTask {
    pub task_id: String,
    pub agent_id: String,
    pub host: String,
    /// The Mesos state (`TASK_FINISHED`), or `pending`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub runbook: String,
    pub commit: String,
    pub who: String,
    pub params: BTreeMap<String, String>,
    /// How many agents it runs on.
    pub agents: usize,
    pub project: String,
    pub started_ms: u64,
    pub timeout_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    pub state: RunState,
    pub tasks: Vec<RunTask>,
}

fn invalid(status: StatusCode, message: String, diagnostics: Vec<Diagnostic>) -> ManageError {
    ManageError { status, message, diagnostics }
}

fn run_id() -> String {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute_matches(value: &mesos::legacy::AttributeValue, wanted: &str) -> bool {
    match value {
        mesos::legacy::AttributeValue::Text(t) => t == wanted,
        mesos::legacy::AttributeValue::Scalar(f) => wanted.parse::<f64>().is_ok_and(|w| w == *f),
    }
}

impl Manage {
    /// Runs kept from earlier processes, newest first.
    pub(super) fn restored_runs(framework: &framework::driver::Framework) -> Vec<RunRecord> {
        let mut runs: Vec<RunRecord> = framework
            .extra_records()
            .iter()
            .filter(|(k, _)| k.starts_with(RUN_PREFIX))
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        runs
    }

    /// The runbooks of the applied commit; one that cannot be read is an error naming its file and line.
    pub async fn runbooks(&self) -> Result<(String, Vec<Runbook>), ManageError> {
        let commit = self.inner.applied.lock().expect("applied").commit.clone();
        if commit.is_empty() {
            return Err(failed(StatusCode::CONFLICT, "nothing applied yet: runbooks come from the applied commit"));
        }
        let (c, dir) = (commit.clone(), self.inner.config.dir.clone());
        let files = self.git(move |m| manage::git::runbooks(m, &c, &dir)).await?;
        let mut out = Vec::new();
        for (name, (path, bytes)) in files {
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(StatusCode::UNPROCESSABLE_ENTITY, format!("{path}: not UTF-8"), Vec::new()))?;
            let runbook = manage::runbook::parse(&name, &path, &text)
                .map_err(|e| invalid(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), Vec::new()))?;
            out.push(runbook);
        }
        Ok((commit, out))
    }

    /// Starts a run of `name` as `who`. Nothing starts unless every parameter fits.
    pub async fn start_run(
        &self,
        name: &str,
        given: &BTreeMap<String, String>,
        who: &str,
    ) -> Result<RunRecord, ManageError> {
        let (commit, runbooks) = self.runbooks().await?;
        let runbook = runbooks.into_iter().find(|r| r.name == name).ok_or_else(|| {
            failed(
                StatusCode::NOT_FOUND,
                format!("no runbook named {name:?} in the applied commit {}", &commit[..12.min(commit.len())]),
            )
        })?;
        let values = runbook.bind(given).map_err(|e| failed(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let id = run_id();
        let project = format!("rb-{}-{id}", runbook.name);
        framework::spec::check_project_name(&project).map_err(|_| {
            failed(StatusCode::UNPROCESSABLE_ENTITY, format!("runbook name {name:?} is too long for a project name"))
        })?;
        let agents = self.target_agents(&runbook.target).await?;
        let spec = self.run_spec(&runbook, &project, &values, agents)?;
        self.inner
            .api
            .framework()
            .deploy(spec)
            .map_err(|e| failed(StatusCode::UNPROCESSABLE_ENTITY, format!("starting {name}: {e}")))?;
        let record = RunRecord {
            id: id.clone(),
            runbook: runbook.name.clone(),
            commit,
            who: who.to_owned(),
            params: runbook.shown(&values),
            agents,
            project,
            started_ms: now_ms(),
            timeout_s: runbook.timeout_s,
            finished_ms: None,
            state: RunState::Running,
            tasks: Vec::new(),
        };
        self.keep_run(record.clone());
        self.follow(&record);
        Ok(record)
    }

    /// Watches a running run in the background (also those a restart interrupted).
    pub(super) fn follow(&self, record: &RunRecord) {
        let left = (record.started_ms + record.timeout_s * 1000).saturating_sub(now_ms());
        let (watching, id) = (self.clone(), record.id.clone());
        tokio::spawn(async move { watching.watch_run(&id, std::time::Duration::from_millis(left)).await });
    }

    /// How many agents the target names (one task each); none is an error.
    async fn target_agents(&self, target: &Target) -> Result<usize, ManageError> {
        if *target == Target::One {
            return Ok(1);
        }
        let files = self.inner.api.inner.files.as_ref().ok_or_else(|| {
            failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "the agents are unknown here (no master to ask): a runbook can only target one agent",
            )
        })?;
        let state = files
            .master_state()
            .await
            .map_err(|e| failed(StatusCode::BAD_GATEWAY, format!("asking the master for its agents: {e}")))?;
        let count = state
            .slaves
            .iter()
            .filter(|a| match target {
                Target::Attributes(wanted) => {
                    wanted.iter().all(|(k, v)| a.attributes.get(k).is_some_and(|have| attribute_matches(have, v)))
                }
                _ => true,
            })
            .count();
        if count == 0 {
            return Err(failed(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("no agent matches the runbook's target {target:?}"),
            ));
        }
        Ok(count)
    }

    /// The runbook's compose file loaded and translated as any project, then
    /// made a run: a task per agent, never restarted, parameters as variables
    /// and whole arguments.
    fn run_spec(
        &self,
        runbook: &Runbook,
        project: &str,
        values: &BTreeMap<String, String>,
        agents: usize,
    ) -> Result<ProjectSpec, ManageError> {
        let bad = |message: &str, diagnostics: Vec<Diagnostic>| {
            invalid(StatusCode::UNPROCESSABLE_ENTITY, format!("{}: {message}", runbook.path), diagnostics)
        };
        let env = compose::Env::new(Default::default());
        let loaded = compose::load(&[compose::SourceFile::new(&runbook.path, &runbook.compose)], &env)
            .map_err(|e| bad("the compose file is invalid", e.0.iter().map(Diagnostic::from).collect()))?;
        let translated = framework::translate::translate(project, &loaded, &self.inner.api.inner.translate)
            .map_err(|p| bad("the runbook cannot run on Mesos", p.iter().map(Diagnostic::from).collect()))?;
        let mut spec = translated.spec;
        let Some(only) = spec.services.keys().next().cloned() else { return Err(bad("no service", Vec::new())) };
        let mut service = spec.services.remove(&only).expect("present");
        service.replicas = u32::try_from(agents).unwrap_or(u32::MAX);
        service.task_name = project.to_owned();
        service.restart = RestartSpec { when: RestartWhen::Never, delay_ms: 0, max_attempts: None, window_ms: None };
        if runbook.target != Target::One {
            service.max_per_node = Some(1);
        }
        if let Target::Attributes(wanted) = &runbook.target {
            for (k, v) in wanted {
                service.placement.push(PlacementRule {
                    field: PlacementField::Attribute(k.clone()),
                    equal: true,
                    value: v.clone(),
                });
            }
        }
        for (k, v) in values {
            let secret = runbook.params.get(k).is_some_and(|p| p.secret);
            let env = if secret { &mut service.run.secret_env } else { &mut service.run.env };
            env.insert(Runbook::env_name(k), v.clone());
        }
        if let Some(CommandSpec::Exec(argv)) = &service.run.command {
            service.run.command = Some(CommandSpec::Exec(runbook.substitute(argv, values)));
        }
        if let Some(argv) = &service.run.entrypoint {
            service.run.entrypoint = Some(runbook.substitute(argv, values));
        }
        spec.services.insert(SERVICE.to_owned(), service);
        Ok(spec)
    }

    fn keep_run(&self, record: RunRecord) {
        let key = format!("{RUN_PREFIX}{}", record.id);
        let framework = self.inner.api.framework();
        framework.persist_extra(&key, Some(serde_json::to_vec(&record).expect("serialises")));
        let mut runs = self.inner.runs.lock().expect("runs");
        runs.retain(|r| r.id != record.id);
        runs.insert(0, record);
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        while runs.len() > RUNS_KEPT {
            let old = runs.pop().expect("non-empty");
            framework.persist_extra(&format!("{RUN_PREFIX}{}", old.id), None);
        }
    }

    pub fn runs(&self) -> Vec<RunRecord> {
        self.inner.runs.lock().expect("runs").clone()
    }

    pub fn run(&self, id: &str) -> Option<RunRecord> {
        self.inner.runs.lock().expect("runs").iter().find(|r| r.id == id).cloned()
    }

    /// A run with its tasks' output so far, read now while it runs.
    pub async fn run_now(&self, id: &str) -> Option<RunRecord> {
        let mut record = self.run(id)?;
        if record.state == RunState::Running {
            record.tasks = self.read_tasks(&self.run_tasks(&record.project)).await;
        }
        Some(record)
    }

    /// The tasks as a run shows them, with their output read from the sandboxes.
    async fn read_tasks(&self, tasks: &[TaskRecord]) -> Vec<RunTask> {
        let framework_id =
            self.inner.api.framework().read(|e| e.framework_id().map(|f| f.value.clone())).unwrap_or_default();
        let mut out = Vec::new();
        for t in tasks {
            let (stdout, stderr) =
                if t.state.is_some() { self.output(&framework_id, t).await } else { Default::default() };
            out.push(RunTask {
                task_id: t.task_id.clone(),
                agent_id: t.agent_id.value.clone(),
                host: t.hostname.clone(),
                state: t.state.as_ref().map_or("pending".to_owned(), |s| s.as_str().to_owned()),
                message: t.message.clone(),
                stdout,
                stderr,
            });
        }
        out
    }

    /// The run's tasks as the engine has them now.
    fn run_tasks(&self, project: &str) -> Vec<TaskRecord> {
        self.inner.api.framework().read(|e| e.tasks().values().filter(|t| t.project == project).cloned().collect())
    }

    /// Follows a run until every task ended or the timeout, on engine changes.
    async fn watch_run(&self, id: &str, timeout: std::time::Duration) {
        let Some(mut record) = self.run(id) else { return };
        let mut changes = self.inner.api.framework().changes();
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = loop {
            let tasks = self.run_tasks(&record.project);
            let ended = tasks.iter().filter(|t| t.state.as_ref().is_some_and(|s| s.is_terminal())).count();
            if ended >= record.agents {
                break false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break true,
                changed = changes.changed() => if changed.is_err() { break true },
            }
        };
        let tasks = self.run_tasks(&record.project);
        record.tasks = self.read_tasks(&tasks).await;
        let all_finished =
            tasks.len() >= record.agents && tasks.iter().all(|t| t.state == Some(mesos::v1::TaskState::Finished));
        record.state = if timed_out {
            RunState::TimedOut
        } else if all_finished {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
        record.finished_ms = Some(now_ms());
        if let Err(e) = self.inner.api.framework().remove(&record.project) {
            tracing::warn!(project = %record.project, "removing a finished run: {e}");
        }
        let action = format!("run {} {} on {} agent(s)", record.runbook, record.id, record.agents);
        self.audit(&record.who, "runbook", action, record.state.as_str());
        self.keep_run(record);
    }

    /// The last [`OUTPUT_KEPT`] bytes of a task's stdout and stderr, or why they could not be read.
    async fn output(&self, framework_id: &str, t: &TaskRecord) -> (String, String) {
        let Some(files) = self.inner.api.inner.files.as_ref() else {
            return (String::new(), "(output unavailable: no master to read sandboxes through)".into());
        };
        let mut out = Vec::new();
        for stream in ["stdout", "stderr"] {
            let read = files
                .read(&t.agent_id.value, framework_id, &t.task_id, stream, -(OUTPUT_KEPT as i64), OUTPUT_KEPT)
                .await;
            out.push(match read {
                Ok(chunk) => chunk.data,
                Err(e) => format!("(not readable: {e})"),
            });
        }
        let stderr = out.pop().unwrap_or_default();
        (out.pop().unwrap_or_default(), stderr)
    }
}
