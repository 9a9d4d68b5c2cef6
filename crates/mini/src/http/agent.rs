//! The agent's endpoints: `/slave(1)/state`, `/monitor/statistics`, the
//! sandbox file browser (`/files/browse|read|download`, confined to task
//! sandboxes: no path escapes, symlinks included) and the agent operator API.

use std::collections::HashMap;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesos::legacy::{FileChunk, FileEntry, MonitorEntry};
use mesos::v1::operator::agent::{Call as AgentCall, Response as AgentResponse, response as agent_response};
use mesos::v1::{ContainerId, ExecutorId};

use super::views;
use super::{AppState, HttpError, authenticate, json, parse_json, require_json, require_post, text};
use crate::agent::sandbox::{self, OpenError, Opened};
use crate::master::{Master, operator_framework, operator_task};

type Params = Query<HashMap<String, String>>;

/// Largest `/files/read` answer: Mesos pages its reads the same way.
const MAX_READ: u64 = 16 * 4096 * 16;

pub(crate) async fn state(State(state): State<AppState>, Query(q): Params) -> Response {
    let flags = views::Flags(state.config.flags.clone());
    state.cluster.read(|m| json(&views::agent_state(m, &flags), q.get("jsonp").map(String::as_str)))
}

/// Usage of every running task's container.
pub(crate) async fn statistics(State(state): State<AppState>) -> Response {
    let runtime = state.cluster.runtime();
    let entries: Vec<MonitorEntry> = state.cluster.read(|m| {
        m.frameworks()
            .flat_map(|f| f.tasks.values())
            .filter(|t| !t.state.is_terminal())
            .filter_map(|t| {
                let container = t.container_id.as_ref()?;
                let statistics = runtime.usage(container)?;
                Some(MonitorEntry {
                    framework_id: t.framework_id.value.clone(),
                    executor_id: t.id().value.clone(),
                    executor_name: views::executor_name(&t.info),
                    source: t.id().value.clone(),
                    statistics,
                })
            })
            .collect()
    });
    json(&entries, None)
}

/// Opens `path` inside the agent's sandboxes (see [`sandbox::open_beneath`]:
/// no symbolic link is followed, so a task cannot swap one in), after the
/// caller proved who it is when the cluster has credentials.
fn open(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>) -> Result<(String, Opened), HttpError> {
    authenticate(state, headers, "mesos-agent-readonly")?;
    let path = path_param(q)?;
    if !Path::new(path).is_absolute() {
        return Err(HttpError::new(StatusCode::BAD_REQUEST, "Expecting an absolute 'path' inside a task sandbox"));
    }
    let root = state.cluster.config().work_dir.join("slaves");
    let opened = sandbox::open_beneath(&root, Path::new(path)).map_err(|e| match e {
        OpenError::NotFound(_) => HttpError::new(StatusCode::NOT_FOUND, "File not found"),
        OpenError::Outside(_) => HttpError::new(StatusCode::FORBIDDEN, "Path is outside the task sandboxes"),
        OpenError::Symlink(_) => HttpError::new(StatusCode::FORBIDDEN, "Symbolic links in sandboxes are not followed"),
        OpenError::NotRegular(_) => HttpError::new(StatusCode::BAD_REQUEST, "Not a regular file or directory"),
        OpenError::Io { .. } => {
            tracing::warn!(error = %e, "files API");
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "Cannot open the file")
        }
    })?;
    Ok((path.trim_end_matches('/').to_owned(), opened))
}

fn path_param(q: &HashMap<String, String>) -> Result<&str, HttpError> {
    q.get("path")
        .map(String::as_str)
        .ok_or_else(|| HttpError::new(StatusCode::BAD_REQUEST, "Expecting 'path' query parameter"))
}

pub(crate) async fn read(State(state): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    match read_inner(&state, &headers, &q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn read_inner(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>) -> Result<Response, HttpError> {
    let offset: i64 = match q.get("offset") {
        None => -1,
        Some(o) => {
            o.parse().map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to parse offset: {o:?}")))?
        }
    };
    let length: Option<u64> = match q.get("length") {
        None => None,
        Some(l) => Some(
            l.parse().map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to parse length: {l:?}")))?,
        ),
    };
    let file = match open(state, headers, q)?.1 {
        Opened::File(file) => file,
        Opened::Dir(_) => return Err(HttpError::new(StatusCode::BAD_REQUEST, "Cannot read a directory")),
    };
    let internal = |e: std::io::Error| {
        tracing::warn!(error = %e, "files API read");
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "Cannot read the file")
    };
    let size = file.metadata().map_err(internal)?.len();
    if offset < 0 {
        return Ok(json(&FileChunk { data: String::new(), offset: size }, q.get("jsonp").map(String::as_str)));
    }
    let offset = (offset as u64).min(size);
    let want = length.unwrap_or(MAX_READ).min(MAX_READ).min(size - offset);
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::from_std(file);
    file.seek(std::io::SeekFrom::Start(offset)).await.map_err(internal)?;
    // The file may have shrunk since its size was read: take what is there.
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf).await.map_err(internal)?;
    let data = String::from_utf8_lossy(&buf).into_owned();
    Ok(json(&FileChunk { data, offset }, q.get("jsonp").map(String::as_str)))
}

pub(crate) async fn browse(State(state): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    let (dir, entries) = match open(&state, &headers, &q) {
        Ok((dir, Opened::Dir(entries))) => (dir, entries),
        Ok((_, Opened::File(_))) => return text(StatusCode::NOT_FOUND, "Directory not found"),
        Err(e) => return e.into_response(),
    };
    let out: Vec<FileEntry> = entries
        .into_iter()
        .map(|e| FileEntry {
            path: format!("{dir}/{}", e.name),
            size: e.size,
            mtime: e.mtime as f64,
            mode: mode_string(e.mode, e.is_dir),
            nlink: e.nlink as i64,
            uid: e.uid.to_string(),
            gid: e.gid.to_string(),
        })
        .collect();
    json(&out, q.get("jsonp").map(String::as_str))
}

pub(crate) async fn download(State(state): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    let (path, file) = match open(&state, &headers, &q) {
        Ok((path, Opened::File(file))) => (path, file),
        Ok((_, Opened::Dir(_))) => return text(StatusCode::BAD_REQUEST, "Cannot download a directory"),
        Err(e) => return e.into_response(),
    };
    let name = Path::new(&path).file_name().and_then(|n| n.to_str()).unwrap_or("file").replace('"', "");
    let body = Body::from_stream(tokio_util_stream(tokio::fs::File::from_std(file)));
    let mut res = Response::builder().status(StatusCode::OK).body(body).expect("static response");
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// Streams a file in 64 KiB pieces without loading it whole.
fn tokio_util_stream(file: tokio::fs::File) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

fn mode_string(mode: u32, dir: bool) -> String {
    let mut s = String::with_capacity(10);
    s.push(if dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// The agent operator API (`POST /slave(1)/api/v1`): the read calls.
pub(crate) async fn agent_api(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        require_post(&method)?;
        require_json(&headers)?;
        let value = parse_json(&body)?;
        let call: AgentCall = serde_json::from_value(value)
            .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("Failed to validate agent::Call: {e}")))?;
        let flags = views::Flags(state.config.flags.clone());
        let runtime = state.cluster.runtime();
        let response = match call {
            AgentCall::GetHealth => AgentResponse::GetHealth(views::get_health()),
            AgentCall::GetFlags => AgentResponse::GetFlags(views::get_flags(&flags)),
            AgentCall::GetVersion => state.cluster.read(|m| AgentResponse::GetVersion(views::get_version(m))),
            AgentCall::GetState => state.cluster.read(|m| {
                AgentResponse::GetState(agent_response::GetState {
                    get_tasks: Some(agent_tasks(m)),
                    get_executors: Some(agent_executors(m)),
                    get_frameworks: Some(agent_frameworks(m)),
                })
            }),
            AgentCall::GetTasks => state.cluster.read(|m| AgentResponse::GetTasks(agent_tasks(m))),
            AgentCall::GetFrameworks => state.cluster.read(|m| AgentResponse::GetFrameworks(agent_frameworks(m))),
            AgentCall::GetExecutors => state.cluster.read(|m| AgentResponse::GetExecutors(agent_executors(m))),
            AgentCall::GetAgent => state.cluster.read(|m| {
                AgentResponse::GetAgent(agent_response::GetAgent {
                    agent_info: views::get_agents(m).agents.into_iter().next().map(|a| a.agent_info),
                    ..Default::default()
                })
            }),
            AgentCall::GetContainers(_) => state.cluster.read(|m| {
                let containers = m
                    .frameworks()
                    .flat_map(|f| f.tasks.values())
                    .filter(|t| !t.state.is_terminal())
                    .filter_map(|t| {
                        let id = t.container_id.clone()?;
                        Some(agent_response::Container {
                            framework_id: Some(t.framework_id.clone()),
                            executor_id: Some(ExecutorId::new(t.id().value.clone())),
                            executor_name: Some(views::executor_name(&t.info)),
                            resource_statistics: runtime.usage(&id),
                            container_id: ContainerId { value: id, parent: None },
                            container_status: None,
                        })
                    })
                    .collect();
                AgentResponse::GetContainers(agent_response::GetContainers { containers })
            }),
            other => {
                return Err(HttpError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    format!("m3s mini does not implement the agent call {}", other.type_name()),
                ));
            }
        };
        Ok(json(&response, None))
    })();
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn agent_tasks(m: &Master) -> agent_response::GetTasks {
    let agent = m.agent_id();
    let all = m.frameworks().chain(m.completed_frameworks());
    let mut out = agent_response::GetTasks::default();
    for f in all {
        for t in f.tasks.values() {
            if t.state.is_terminal() {
                out.terminated_tasks.push(operator_task(t, agent));
            } else {
                out.launched_tasks.push(operator_task(t, agent));
            }
        }
        out.completed_tasks.extend(f.completed_tasks.iter().map(|t| operator_task(t, agent)));
    }
    out
}

fn agent_frameworks(m: &Master) -> agent_response::GetFrameworks {
    let with = |f: &crate::master::Framework| agent_response::Framework {
        framework_info: operator_framework(f).framework_info,
    };
    agent_response::GetFrameworks {
        frameworks: m.frameworks().map(with).collect(),
        completed_frameworks: m.completed_frameworks().map(with).collect(),
    }
}

fn agent_executors(m: &Master) -> agent_response::GetExecutors {
    let executors = views::get_executors(m);
    agent_response::GetExecutors {
        executors: executors
            .executors
            .into_iter()
            .map(|e| agent_response::Executor { executor_info: e.executor_info })
            .collect(),
        completed_executors: Vec::new(),
    }
}
