//! Operator clients: the master's `/api/v1` (GET_* calls and the SUBSCRIBE
//! event stream), its legacy JSON endpoints, and the agent's endpoints that
//! M3trics and the CLI read (`/monitor/statistics`, `/files/read`).
//!
//! Calls follow 307 redirects to the leading master (at most a few hops, so two
//! confused masters cannot bounce a call forever) and remember the leader.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::master::Masters;
use crate::recordio::{DEFAULT_MAX_RECORD_LEN, Decoder};
use crate::scheduler::check_status;
use crate::transport::TransportConfig;
use crate::v1::operator::{Call, Event, Response, agent, call, response};

/// Redirect hops a call may take before giving up.
const MAX_REDIRECTS: usize = 3;

/// The master operator API.
pub struct OperatorClient {
    masters: Mutex<Masters>,
    transport: TransportConfig,
    client: reqwest::Client,
    stream_client: reqwest::Client,
}

impl OperatorClient {
    /// `master` as in [`Masters::parse`]; `tls` makes https the default scheme.
    pub fn new(master: &str, tls: bool, transport: TransportConfig) -> Result<Self> {
        Ok(OperatorClient {
            masters: Mutex::new(Masters::parse(master, tls)?),
            client: transport.call_client()?,
            stream_client: transport.stream_client()?,
            transport,
        })
    }

    /// Posts an operator call and decodes the response of the same type.
    pub async fn call(&self, call: &Call) -> Result<Response> {
        let body = serde_json::to_vec(call).expect("calls always serialize");
        let response = self.post("/api/v1", body, &self.client).await?;
        let url = response.url().to_string();
        let bytes = response.bytes().await.map_err(|source| Error::Transport { url: url.clone(), source })?;
        let decoded: Response = serde_json::from_slice(&bytes).map_err(|e| Error::json(url.clone(), &bytes, e))?;
        if decoded.type_name() != call.type_name() {
            return Err(Error::Config(format!(
                "{url}: asked {} but the master answered {}",
                call.type_name(),
                decoded.type_name()
            )));
        }
        Ok(decoded)
    }

    pub async fn get_health(&self) -> Result<response::GetHealth> {
        match self.call(&Call::GetHealth).await? {
            Response::GetHealth(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_version(&self) -> Result<response::GetVersion> {
        match self.call(&Call::GetVersion).await? {
            Response::GetVersion(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_metrics(&self, timeout: Option<Duration>) -> Result<response::GetMetrics> {
        let body =
            call::GetMetrics { timeout: timeout.map(|t| crate::v1::DurationInfo::from_secs_f64(t.as_secs_f64())) };
        match self.call(&Call::GetMetrics(body)).await? {
            Response::GetMetrics(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_state(&self) -> Result<response::GetState> {
        match self.call(&Call::GetState).await? {
            Response::GetState(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_agents(&self) -> Result<response::GetAgents> {
        match self.call(&Call::GetAgents).await? {
            Response::GetAgents(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_frameworks(&self) -> Result<response::GetFrameworks> {
        match self.call(&Call::GetFrameworks).await? {
            Response::GetFrameworks(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    pub async fn get_tasks(&self) -> Result<response::GetTasks> {
        match self.call(&Call::GetTasks).await? {
            Response::GetTasks(r) => Ok(r),
            _ => unreachable!("call() checks the response type"),
        }
    }

    /// Opens the operator event stream (SUBSCRIBED with the whole state first,
    /// then TASK_ADDED, TASK_UPDATED, AGENT_ADDED, ... and HEARTBEATs).
    pub async fn subscribe(&self) -> Result<OperatorStream> {
        let body = serde_json::to_vec(&Call::Subscribe).expect("calls always serialize");
        let response = self.post("/api/v1", body, &self.stream_client).await?;
        let url = response.url().to_string();
        Ok(OperatorStream {
            response,
            decoder: Decoder::new(DEFAULT_MAX_RECORD_LEN),
            url,
            heartbeat: None,
            last_event: Instant::now(),
            done: false,
        })
    }

    /// GETs a legacy JSON endpoint of the master (`/master/state`, `/slaves`,
    /// `/tasks?...`, `/metrics/snapshot`, `/version`) into `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let mut hops = 0;
        loop {
            let base = self.masters.lock().await.current().await?;
            let url = format!("{base}{path_and_query}");
            let request = self.transport.authorize(self.client.get(&url));
            let response = match request.send().await {
                Ok(r) => r,
                Err(source) => {
                    self.masters.lock().await.failed();
                    return Err(Error::Transport { url, source });
                }
            };
            match check_status(&url, response).await {
                Ok(response) => return decode_json(&url, response).await,
                Err(Error::NotLeader { location, .. }) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    self.masters.lock().await.redirect(&location)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn post(&self, path: &str, body: Vec<u8>, client: &reqwest::Client) -> Result<reqwest::Response> {
        let mut hops = 0;
        loop {
            let base = self.masters.lock().await.current().await?;
            let url = format!("{base}{path}");
            let request = client
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(body.clone());
            let response = match self.transport.authorize(request).send().await {
                Ok(r) => r,
                Err(source) => {
                    self.masters.lock().await.failed();
                    return Err(Error::Transport { url, source });
                }
            };
            match check_status(&url, response).await {
                Err(Error::NotLeader { location, .. }) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    self.masters.lock().await.redirect(&location)?;
                }
                other => return other,
            }
        }
    }
}

async fn decode_json<T: DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T> {
    let bytes = response.bytes().await.map_err(|source| Error::Transport { url: url.to_owned(), source })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(url, &bytes, e))
}

/// The operator event stream. Ends with an error when no event (heartbeats
/// included) arrives for five heartbeat intervals.
pub struct OperatorStream {
    response: reqwest::Response,
    decoder: Decoder,
    url: String,
    heartbeat: Option<Duration>,
    last_event: Instant,
    done: bool,
}

impl OperatorStream {
    /// The next event; `None` when the master closed the stream cleanly.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        if self.done {
            return None;
        }
        let result = self.next_inner().await;
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }

    async fn next_inner(&mut self) -> Option<Result<Event>> {
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => {
                    self.last_event = Instant::now();
                    let event: Event = match serde_json::from_slice(&record) {
                        Ok(e) => e,
                        Err(e) => return Some(Err(Error::json(format!("{}: event", self.url), &record, e))),
                    };
                    if let Event::Subscribed(s) = &event {
                        self.heartbeat = s
                            .heartbeat_interval_seconds
                            .filter(|s| s.is_finite() && *s > 0.0)
                            .map(Duration::from_secs_f64);
                    }
                    return Some(Ok(event));
                }
                Ok(None) => {}
                Err(source) => return Some(Err(Error::RecordIo { url: self.url.clone(), source })),
            }
            let interval = self.heartbeat.unwrap_or(crate::subscription::DEFAULT_HEARTBEAT_INTERVAL);
            let deadline = self.last_event + interval * 5;
            let chunk = match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(chunk) => chunk,
                Err(_) => {
                    return Some(Err(Error::NoLeader(format!(
                        "{}: no event for 5 heartbeat intervals ({interval:?} each)",
                        self.url
                    ))));
                }
            };
            match chunk {
                Ok(Some(bytes)) => self.decoder.feed(&bytes),
                Ok(None) => {
                    return match self.decoder.finish() {
                        Ok(()) => None,
                        Err(source) => Some(Err(Error::RecordIo { url: self.url.clone(), source })),
                    };
                }
                Err(source) => return Some(Err(Error::Transport { url: self.url.clone(), source })),
            }
        }
    }
}

/// An agent's HTTP endpoints (`http://host:5051`).
pub struct AgentClient {
    base: String,
    transport: TransportConfig,
    client: reqwest::Client,
}

impl AgentClient {
    pub fn new(base_url: impl Into<String>, transport: TransportConfig) -> Result<Self> {
        Ok(AgentClient {
            base: base_url.into().trim_end_matches('/').to_owned(),
            client: transport.call_client()?,
            transport,
        })
    }

    /// GETs one of the agent's JSON endpoints into `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let url = format!("{}{path_and_query}", self.base);
        let request = self.transport.authorize(self.client.get(&url));
        let response = request.send().await.map_err(|source| Error::Transport { url: url.clone(), source })?;
        let response = check_status(&url, response).await?;
        decode_json(&url, response).await
    }

    /// `/monitor/statistics`: resource usage per running executor.
    pub async fn monitor_statistics(&self) -> Result<Vec<crate::legacy::MonitorEntry>> {
        self.get_json("/monitor/statistics").await
    }

    /// `/files/read`: up to `length` bytes of a sandbox file from `offset`
    /// (`offset: -1` asks only for the file's size).
    pub async fn read_file(&self, path: &str, offset: i64, length: Option<u64>) -> Result<crate::legacy::FileChunk> {
        let mut query = format!("/files/read?path={}&offset={offset}", percent_encode(path));
        if let Some(length) = length {
            query.push_str(&format!("&length={length}"));
        }
        self.get_json(&query).await
    }

    /// `/files/browse`: the entries of a sandbox directory.
    pub async fn browse(&self, path: &str) -> Result<Vec<crate::legacy::FileEntry>> {
        self.get_json(&format!("/files/browse?path={}", percent_encode(path))).await
    }

    /// Posts an agent operator call (`/api/v1`) and decodes its response.
    pub async fn call(&self, call: &agent::Call) -> Result<agent::Response> {
        let url = format!("{}/api/v1", self.base);
        let body = serde_json::to_vec(call).expect("calls always serialize");
        let request = self
            .client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        let response = self
            .transport
            .authorize(request)
            .send()
            .await
            .map_err(|source| Error::Transport { url: url.clone(), source })?;
        let response = check_status(&url, response).await?;
        decode_json(&url, response).await
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters and `/` kept).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encodes_sandbox_paths() {
        assert_eq!(super::percent_encode("/var/lib/m3s/a b&c=d"), "/var/lib/m3s/a%20b%26c%3Dd");
    }
}
