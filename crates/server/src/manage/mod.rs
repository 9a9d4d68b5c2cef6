//! The management role: the compose projects of a git repository's branch,
//! fetched every interval (and on `POST /api/manage/v1/sync` or the seed's
//! `POST /git/pull/m3sconfig`), planned against what runs and applied through
//! the same engine calls as `m3s compose up` and `down`.
//!
//! What was applied (the commit and the projects it holds) is kept in the
//! compose framework's store (`ext/manage/applied`), so a restart neither
//! re-applies it nor forgets which projects git owns: only those are removed
//! when a commit drops them; a project deployed by hand is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, middleware};
use framework::driver::now_ms;
use framework::spec::ProjectSpec;
use manage::git::Mirror;
use manage::plan::Plan;
use serde::{Deserialize, Serialize};

mod runbooks;

pub use runbooks::{RunRecord, RunState, RunTask};

use crate::ApiState;
use crate::auth::{Auth, require_auth};
use crate::error::{ApiError, Diagnostic};

const APPLIED_KEY: &str = "ext/manage/applied";
const HISTORY_KEPT: usize = 50;

#[derive(Clone, Debug)]
pub struct ManageConfig {
    /// A URL git fetches from (`git://`, `https://`, `ssh://`, `file://` or a path).
    pub url: manage::git::RepoUrl,
    pub branch: String,
    /// The repository directory holding `projects/` (empty: the root).
    pub dir: String,
    pub interval: Duration,
    /// Apply each new commit (otherwise only plan it; `apply` applies).
    pub auto_apply: bool,
    /// Where the mirror lives (`<work-dir>/manage/repo.git`).
    pub mirror_dir: PathBuf,
    /// The secret push webhooks are signed with (GitHub, Gitea) or carry (GitLab); unset: no webhook.
    pub webhook_secret: Option<mesos::secret::Secret>,
    /// Credentials for the repository's server (a token file, an ssh key).
    pub repo_auth: manage::git::RepoAuth,
    /// At each sync, put back what was changed by hand (drift) to the applied commit.
    pub self_heal: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Applied {
    commit: String,
    projects: BTreeSet<String>,
    /// K3s clusters the commit defined (only these are removed when a later commit drops them).
    #[serde(default)]
    clusters: BTreeSet<String>,
}

/// What a commit asks for.
struct Desired {
    projects: BTreeMap<String, ProjectSpec>,
    clusters: BTreeMap<String, k3s::cluster::CreateRequest>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub commit: String,
    pub subject: String,
    pub at_ms: u64,
    /// `applied`, or why not.
    pub result: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    pub repository: String,
    pub branch: String,
    pub auto_apply: bool,
    /// The branch's commit at the last fetch.
    pub head: Option<String>,
    pub applied: Option<String>,
    pub last_fetch_ms: Option<u64>,
    /// Why the last fetch or apply failed (the last applied state keeps running).
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    pub history: Vec<HistoryEntry>,
}

#[derive(Clone)]
pub struct Manage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Manage").field(&self.inner.config).finish()
    }
}

struct Inner {
    api: ApiState,
    mirror: Mirror,
    config: ManageConfig,
    status: Mutex<Status>,
    applied: Mutex<Applied>,
    /// One sync or apply at a time, so two pushes apply in order, each once.
    busy: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    /// Runbook runs, newest first.
    runs: Mutex<Vec<RunRecord>>,
    /// The K3s framework, for the clusters of `<dir>/k3s/` (with `--k3s`).
    k3s: Option<k3s::K3s>,
}

/// A failed plan or apply: the message names the commit and the file, the
/// diagnostics the line and key path.
#[derive(Debug)]
pub struct ManageError {
    pub status: StatusCode,
    pub message: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> ApiError {
        ApiError::new(e.status, e.message).with(e.diagnostics)
    }
}

/// What to do about a fetch the server refused for want of credentials.
fn hint(git_error: &str) -> &'static str {
    let refused = ["could not read Username", "Authentication failed", "Permission denied (publickey"];
    if refused.iter().any(|r| git_error.contains(r)) {
        " (the repository needs credentials: --manage-token-file for https, --manage-ssh-key for ssh)"
    } else {
        ""
    }
}

fn failed(status: StatusCode, message: impl Into<String>) -> ManageError {
    ManageError { status, message: message.into(), diagnostics: Vec::new() }
}

impl Manage {
    /// Starts the role: the applied record from the store, a first sync at once,
    /// then one every interval.
    pub fn start(api: ApiState, config: ManageConfig, k3s: Option<k3s::K3s>) -> Result<Manage, manage::git::GitError> {
        let mirror = Mirror::new(&config.mirror_dir, config.url.as_str(), &config.branch)
            .and_then(|m| m.with_auth(config.repo_auth.clone()))?;
        let applied = api
            .framework()
            .extra_records()
            .iter()
            .find(|(k, _)| k == APPLIED_KEY)
            .and_then(|(_, v)| serde_json::from_slice::<Applied>(v).ok())
            .unwrap_or_default();
        let status = Status {
            repository: config.url.to_string(),
            branch: config.branch.clone(),
            auto_apply: config.auto_apply,
            applied: (!applied.commit.is_empty()).then(|| applied.commit.clone()),
            ..Default::default()
        };
        let runs = Manage::restored_runs(api.framework());
        let manage = Manage {
            inner: Arc::new(Inner {
                api,
                mirror,
                config,
                status: Mutex::new(status),
                applied: Mutex::new(applied),
                busy: tokio::sync::Mutex::new(()),
                wake: tokio::sync::Notify::new(),
                runs: Mutex::new(runs),
                k3s,
            }),
        };
        for run in manage.runs().iter().filter(|r| r.state == RunState::Running) {
            manage.follow(run);
        }
        let looping = manage.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = looping.sync().await {
                    tracing::warn!(error = %e.message, "management sync");
                }
                tokio::select! {
                    _ = tokio::time::sleep(looping.inner.config.interval) => {}
                    _ = looping.inner.wake.notified() => {}
                }
            }
        });
        Ok(manage)
    }

    pub fn status(&self) -> Status {
        self.inner.status.lock().expect("status").clone()
    }

    /// Writes what the role did to the audit log.
    fn audit(&self, who: &str, via: &str, action: String, result: &str) {
        self.inner.api.inner.auth.audit().note(who, via, action, result);
    }

    async fn git<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Mirror) -> Result<T, manage::git::GitError> + Send + 'static,
    ) -> Result<T, ManageError> {
        let mirror = self.inner.mirror.clone();
        tokio::task::spawn_blocking(move || f(&mirror))
            .await
            .map_err(|e| failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| failed(StatusCode::BAD_GATEWAY, e.to_string()))
    }

    /// Fetches; applies the branch's commit when it is new and auto-apply is on.
    pub async fn sync(&self) -> Result<Status, ManageError> {
        self.sync_via("git").await
    }

    async fn sync_via(&self, via: &str) -> Result<Status, ManageError> {
        let _busy = self.inner.busy.lock().await;
        let fetched = self.git(|m| m.fetch()).await;
        let head = match fetched {
            Ok(head) => head,
            Err(e) => {
                let mut s = self.inner.status.lock().expect("status");
                let (branch, why) = (&self.inner.config.branch, hint(&e.message));
                s.error = Some(format!("fetching {} ({branch}): {}{why}", s.repository, e.message));
                return Err(e);
            }
        };
        let new = {
            let mut s = self.inner.status.lock().expect("status");
            let new = s.head.as_deref() != Some(head.as_str());
            s.head = Some(head.clone());
            s.last_fetch_ms = Some(now_ms());
            if new {
                s.error = None;
            }
            new
        };
        // Only a commit the branch moved to is applied by itself: one that failed stays
        // failed, and a rollback (`apply` of an earlier commit) stays, until the next push.
        let applied = self.inner.applied.lock().expect("applied").clone();
        if self.inner.config.auto_apply && new && head != applied.commit {
            let desired = self.desired(&head).await;
            let _ = self.apply_locked(&head, via, desired).await;
        } else if self.inner.config.self_heal && !applied.commit.is_empty() {
            // What was changed by hand goes back to the applied commit.
            let desired = self.desired(&applied.commit).await;
            let drifted = desired.as_ref().is_ok_and(|desired| !self.plan_of(desired, &applied).is_empty());
            if drifted {
                let _ = self.apply_locked(&applied.commit, "self-heal", desired).await;
            }
        }
        Ok(self.status())
    }

    /// The commit's projects as specs, or the first file that is not valid.
    async fn desired(&self, commit: &str) -> Result<Desired, ManageError> {
        let (commit_owned, dir) = (commit.to_owned(), self.inner.config.dir.clone());
        let (files, cluster_files) = self
            .git(move |m| {
                Ok((manage::git::projects(m, &commit_owned, &dir)?, manage::git::clusters(m, &commit_owned, &dir)?))
            })
            .await?;
        let short = &commit[..commit.len().min(12)];
        let mut out = BTreeMap::new();
        for (name, (path, bytes)) in files {
            let invalid = |message: String, diagnostics: Vec<Diagnostic>| ManageError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("commit {short}: {path}: {message}"),
                diagnostics,
            };
            let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into(), Vec::new()))?;
            framework::spec::check_project_name(&name).map_err(|m| invalid(m.to_string(), Vec::new()))?;
            let env = compose::Env::new(Default::default());
            let project = compose::load(&[compose::SourceFile::new(&path, &text)], &env).map_err(|e| {
                invalid("the compose file is invalid".into(), e.0.iter().map(Diagnostic::from).collect())
            })?;
            let translated = framework::translate::translate(&name, &project, &self.inner.api.inner.translate)
                .map_err(|p| {
                    invalid("the project cannot run on Mesos".into(), p.iter().map(Diagnostic::from).collect())
                })?;
            out.insert(name, translated.spec);
        }
        let mut clusters = BTreeMap::new();
        for (name, (path, bytes)) in cluster_files {
            let invalid = |message: String| {
                failed(StatusCode::UNPROCESSABLE_ENTITY, format!("commit {short}: {path}: {message}"))
            };
            if self.inner.k3s.is_none() {
                return Err(invalid("the commit defines a K3s cluster, but the K3s framework is not running here (start m3s with --k3s)".into()));
            }
            let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into()))?;
            clusters.insert(
                name.clone(),
                k3s::cluster::CreateRequest::from_yaml(&name, &text).map_err(|e| invalid(e.to_string()))?,
            );
        }
        Ok(Desired { projects: out, clusters })
    }

    /// The running K3s clusters' sizes (a hibernated one: the size it wakes up to).
    fn current_clusters(&self) -> BTreeMap<String, manage::plan::ClusterSize> {
        let Some(k3s) = &self.inner.k3s else { return BTreeMap::new() };
        k3s.names()
            .into_iter()
            .filter_map(|name| {
                let spec = k3s.spec(&name).ok()?;
                let (servers, agents) = spec.hibernated.unwrap_or((spec.servers, spec.agents));
                Some((name, manage::plan::ClusterSize { servers, agents }))
            })
            .collect()
    }

    /// The plan of `desired` against what runs, removing only what `applied` made.
    fn plan_of(&self, desired: &Desired, applied: &Applied) -> Plan {
        let mut plan = manage::plan::plan(&desired.projects, &self.current(), &applied.projects);
        let sizes = desired
            .clusters
            .iter()
            .map(|(name, r)| {
                let size = manage::plan::ClusterSize {
                    servers: r.servers.unwrap_or(k3s::cluster::DEFAULT_SERVERS),
                    agents: r.agents.unwrap_or(k3s::cluster::DEFAULT_AGENTS),
                };
                (name.clone(), size)
            })
            .collect();
        plan.clusters = manage::plan::plan_clusters(&sizes, &self.current_clusters(), &applied.clusters);
        plan
    }

    /// What runs: each project's spec with the counts `scale` set on top of it.
    fn current(&self) -> BTreeMap<String, ProjectSpec> {
        self.inner.api.framework().read(|e| {
            e.projects()
                .iter()
                .filter(|(_, p)| !p.removing)
                .map(|(n, p)| {
                    let mut spec = p.spec.clone();
                    for (service, s) in &mut spec.services {
                        s.replicas = p.replicas(service);
                    }
                    (n.clone(), spec)
                })
                .collect()
        })
    }

    /// The commit a revision names, or the fetched head.
    async fn commit_of(&self, revision: Option<&str>) -> Result<String, ManageError> {
        match revision {
            Some(r) => {
                let r = r.to_owned();
                self.git(move |m| m.commit_of(&r)).await
            }
            None => self.status().head.ok_or_else(|| failed(StatusCode::CONFLICT, "nothing fetched yet")),
        }
    }

    /// The plan of a revision (default: the fetched head) against what runs.
    pub async fn plan(&self, revision: Option<&str>) -> Result<(String, String, Plan), ManageError> {
        let commit = self.commit_of(revision).await?;
        let desired = self.desired(&commit).await?;
        let applied = self.inner.applied.lock().expect("applied").clone();
        let plan = self.plan_of(&desired, &applied);
        let c = commit.clone();
        let subject = self.git(move |m| m.describe(&c)).await.unwrap_or_default();
        Ok((commit, subject, plan))
    }

    /// Where what runs differs from the applied commit (changed by hand).
    pub async fn drift(&self) -> Result<(String, Plan), ManageError> {
        let applied = self.inner.applied.lock().expect("applied").clone();
        if applied.commit.is_empty() {
            return Err(failed(StatusCode::CONFLICT, "nothing applied yet"));
        }
        let desired = self.desired(&applied.commit).await?;
        Ok((applied.commit.clone(), self.plan_of(&desired, &applied)))
    }

    /// Applies a revision (an earlier commit rolls back).
    pub async fn apply(&self, revision: Option<&str>) -> Result<(String, Plan), ManageError> {
        let _busy = self.inner.busy.lock().await;
        let commit = self.commit_of(revision).await?;
        let desired = self.desired(&commit).await;
        self.apply_locked(&commit, "api", desired).await.map(|plan| (commit, plan))
    }

    /// Applies `commit`, whose desired state the caller read (or failed to:
    /// that failure is audited and kept in the history like any other).
    async fn apply_locked(
        &self,
        commit: &str,
        via: &str,
        desired: Result<Desired, ManageError>,
    ) -> Result<Plan, ManageError> {
        let c = commit.to_owned();
        let subject = self.git(move |m| m.describe(&c)).await.unwrap_or_default();
        let result = match desired {
            Ok(desired) => self.apply_desired(commit, desired).await,
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(plan) if plan.is_empty() => "applied (no change)".to_owned(),
            Ok(_) => "applied".to_owned(),
            Err(e) => format!("not applied: {}", e.message),
        };
        self.audit("git", via, format!("apply {commit} {subject}").trim_end().to_owned(), &outcome);
        let mut s = self.inner.status.lock().expect("status");
        let entry = HistoryEntry {
            commit: commit.to_owned(),
            subject,
            at_ms: now_ms(),
            result: match &result {
                Ok(_) => "applied".into(),
                Err(e) => format!("not applied: {}", e.message),
            },
        };
        s.history.insert(0, entry);
        s.history.truncate(HISTORY_KEPT);
        match &result {
            Ok(_) => {
                s.applied = Some(commit.to_owned());
                s.error = None;
                s.diagnostics.clear();
            }
            Err(e) => {
                s.error = Some(e.message.clone());
                s.diagnostics = e.diagnostics.clone();
            }
        }
        result
    }

    async fn apply_desired(&self, commit: &str, mut desired: Desired) -> Result<Plan, ManageError> {
        let before = self.inner.applied.lock().expect("applied").clone();
        let plan = self.plan_of(&desired, &before);
        let framework = self.inner.api.framework();
        for name in plan.add.iter().chain(plan.change.iter().map(|c| &c.project)) {
            framework
                .deploy(desired.projects[name].clone())
                .map_err(|e| failed(StatusCode::UNPROCESSABLE_ENTITY, format!("deploying {name}: {e}")))?;
        }
        for name in &plan.remove {
            if let Err(e) = framework.remove(name) {
                tracing::warn!(project = %name, "removing: {e}");
            }
        }
        if let Some(k3s) = &self.inner.k3s {
            let c = &plan.clusters;
            for (name, _) in &c.add {
                let request = desired.clusters.remove(name).expect("planned from desired");
                k3s.create(request).map_err(|e| {
                    failed(StatusCode::UNPROCESSABLE_ENTITY, format!("creating K3s cluster {name}: {e}"))
                })?;
            }
            for (name, from, to) in &c.scale {
                for (role, have, want) in
                    [(k3s::Role::Server, from.servers, to.servers), (k3s::Role::Agent, from.agents, to.agents)]
                {
                    if have != want {
                        k3s.scale(name, role, want).await.map_err(|e| {
                            failed(StatusCode::UNPROCESSABLE_ENTITY, format!("scaling K3s cluster {name}: {e}"))
                        })?;
                    }
                }
            }
            for name in &c.remove {
                if let Err(e) = k3s.delete(name, false) {
                    tracing::warn!(cluster = %name, "removing: {e}");
                }
            }
        }
        let applied = Applied {
            commit: commit.to_owned(),
            projects: desired.projects.keys().cloned().collect(),
            clusters: plan_cluster_names(&plan, &before),
        };
        framework.persist_extra(APPLIED_KEY, Some(serde_json::to_vec(&applied).expect("serialises")));
        *self.inner.applied.lock().expect("applied") = applied;
        Ok(plan)
    }
}

/// The clusters git owns after an apply: those it had, plus added, minus removed.
fn plan_cluster_names(plan: &Plan, before: &Applied) -> BTreeSet<String> {
    let mut names = before.clusters.clone();
    names.extend(plan.clusters.add.iter().map(|(n, _)| n.clone()));
    names.extend(plan.clusters.scale.iter().map(|(n, _, _)| n.clone()));
    for n in &plan.clusters.remove {
        names.remove(n);
    }
    names
}

pub fn router(manage: Manage, auth: Auth) -> Router {
    // The webhook is not behind the API's credentials: its signature is checked instead.
    let webhook = Router::new()
        .route("/api/manage/v1/webhook", post(webhook))
        .layer(axum::extract::DefaultBodyLimit::max(WEBHOOK_MAX_BODY))
        .with_state(manage.clone());
    Router::new()
        .route("/api/manage/v1/status", get(status))
        .route("/api/manage/v1/plan", get(plan))
        .route("/api/manage/v1/drift", get(drift))
        .route("/api/manage/v1/sync", post(sync))
        .route("/api/manage/v1/apply", post(apply))
        .route("/api/manage/v1/runbooks", get(list_runbooks))
        .route("/api/manage/v1/runbooks/{name}/run", post(start_run))
        .route("/api/manage/v1/runs", get(list_runs))
        .route("/api/manage/v1/runs/{id}", get(get_run))
        // The seed's endpoints: pull the configuration repository (and apply it); run a runbook.
        .route("/git/pull/m3sconfig", post(sync))
        .route("/executor/runit/{name}", get(runit).post(runit))
        .layer(middleware::from_fn_with_state(auth, require_auth))
        .with_state(manage)
        .merge(webhook)
        .layer(middleware::from_fn(crate::error::answer_panics))
}

/// Push payloads are a few kilobytes; GitHub caps them at 25 MB, for pushes of thousands of commits.
const WEBHOOK_MAX_BODY: usize = 1 << 20;

/// A push from GitHub, Gitea (and Forgejo, Gogs) or GitLab: verified, then a
/// sync runs (in the background: forges time out after ten seconds). A bad or
/// missing signature gets 401 and changes nothing; another branch, or another
/// event, is acknowledged and ignored.
async fn webhook(State(m): State<Manage>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(secret) = m.inner.config.webhook_secret.as_ref().map(mesos::secret::Secret::expose) else {
        return ApiError::new(StatusCode::NOT_FOUND, "no webhook here: start m3s with --manage-webhook-secret")
            .into_response();
    };
    let push = match manage::webhook::verify(&headers_of(&headers), &body, secret) {
        Ok(push) => push,
        Err(e) => {
            tracing::warn!("management webhook refused: {e}");
            let status = match e {
                manage::webhook::WebhookError::Unsigned | manage::webhook::WebhookError::BadSignature => {
                    StatusCode::UNAUTHORIZED
                }
                _ => StatusCode::BAD_REQUEST,
            };
            return ApiError::new(status, e.to_string()).into_response();
        }
    };
    let record = |result: &str| {
        let action = format!("{} {} {}", push.event, push.reference, push.after).trim_end().to_owned();
        m.audit(&format!("webhook:{}", push.forge), "webhook", action, result)
    };
    let wanted = format!("refs/heads/{}", m.inner.config.branch);
    if !push.is_push() || push.reference != wanted {
        let why = format!("ignored: not a push to {wanted}");
        record(&why);
        return (StatusCode::ACCEPTED, Json(serde_json::json!({"accepted": false, "why": why}))).into_response();
    }
    record("202: syncing");
    let syncing = m.clone();
    tokio::spawn(async move {
        if let Err(e) = syncing.sync_via("webhook").await {
            tracing::warn!(error = %e.message, "management sync after a webhook");
        }
    });
    (StatusCode::ACCEPTED, Json(serde_json::json!({"accepted": true, "after": push.after}))).into_response()
}

fn headers_of(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect()
}

#[derive(Deserialize)]
struct CommitQuery {
    commit: Option<String>,
}

async fn status(State(m): State<Manage>) -> Json<Status> {
    Json(m.status())
}

fn plan_body(commit: &str, subject: &str, plan: &Plan) -> serde_json::Value {
    serde_json::json!({"commit": commit, "subject": subject, "plan": plan, "text": plan.render()})
}

async fn plan(State(m): State<Manage>, Query(q): Query<CommitQuery>) -> Result<Response, ApiError> {
    let (commit, subject, plan) = m.plan(q.commit.as_deref()).await?;
    Ok(Json(plan_body(&commit, &subject, &plan)).into_response())
}

async fn drift(State(m): State<Manage>) -> Result<Response, ApiError> {
    let (commit, plan) = m.drift().await?;
    let mut body = plan_body(&commit, "", &plan);
    body["drifted"] = serde_json::Value::Bool(!plan.is_empty());
    Ok(Json(body).into_response())
}

async fn sync(State(m): State<Manage>) -> Result<Json<Status>, ApiError> {
    Ok(Json(m.sync().await?))
}

async fn apply(State(m): State<Manage>, Query(q): Query<CommitQuery>) -> Result<Response, ApiError> {
    let (commit, plan) = m.apply(q.commit.as_deref()).await?;
    Ok(Json(plan_body(&commit, "", &plan)).into_response())
}

async fn list_runbooks(State(m): State<Manage>) -> Result<Response, ApiError> {
    let (commit, runbooks) = m.runbooks().await?;
    Ok(Json(serde_json::json!({"commit": commit, "runbooks": runbooks})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
}

/// Parameters as text: numbers and booleans as JSON writes them.
fn param_text(params: BTreeMap<String, serde_json::Value>) -> Result<BTreeMap<String, String>, ApiError> {
    params
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("params.{k}: expected a string, number or boolean, found {other}"),
            )),
        })
        .collect()
}

fn who(principal: Option<axum::Extension<crate::access::Principal>>) -> String {
    principal.map_or_else(|| crate::auth::ANONYMOUS.to_owned(), |p| p.0.name)
}

async fn start_run(
    State(m): State<Manage>,
    axum::extract::Path(name): axum::extract::Path<String>,
    principal: Option<axum::Extension<crate::access::Principal>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?
    };
    let record = m.start_run(&name, &param_text(request.params)?, &who(principal)).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

/// The seed's `executor/runit/<name>`: the query's parameters, then the run.
async fn runit(
    State(m): State<Manage>,
    axum::extract::Path(name): axum::extract::Path<String>,
    principal: Option<axum::Extension<crate::access::Principal>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let record = m.start_run(&name, &params, &who(principal)).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn list_runs(State(m): State<Manage>) -> Json<Vec<serde_json::Value>> {
    // The list leaves out output: `runs/{id}` has it.
    Json(
        m.runs()
            .into_iter()
            .map(|mut r| {
                for t in &mut r.tasks {
                    t.stdout.clear();
                    t.stderr.clear();
                }
                serde_json::to_value(r).expect("serialises")
            })
            .collect(),
    )
}

async fn get_run(
    State(m): State<Manage>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RunRecord>, ApiError> {
    m.run_now(&id).await.map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no run {id:?}")))
}
