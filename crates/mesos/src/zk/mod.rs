//! Leader detection through ZooKeeper for `zk://` master URLs.
//!
//! Mesos masters elect a leader with ZooKeeper: each master creates an
//! ephemeral sequential node `json.info_<10-digit sequence>` under the group
//! path (e.g. `/mesos`) holding its `MasterInfo` as JSON, and the node with
//! the lowest sequence number is the leader. When the leader dies its
//! session ends, its node disappears, and the next-lowest master leads.
//!
//! [`LeaderDetector`] reads that group: [`LeaderDetector::detect`] returns
//! the current leader, waiting for one if there is none, and
//! [`LeaderDetector::next_change`] waits on a ZooKeeper watch (no polling)
//! until the leader changes. It speaks the ZooKeeper protocol itself
//! ([`wire`] encodes, [`client`] drives a socket) because it needs only
//! a handful of read requests.
//!
//! Choices, following Mesos's own detector where it has one:
//! - Only `json.info_*` children count; the protobuf `info_*` nodes that
//!   older masters also write, and anything else, are ignored.
//! - A leader whose data is not a usable `MasterInfo` is an error
//!   ([`ZkError::BadMasterInfo`]), not skipped: skipping would send the
//!   framework to a master that is not the leader. The detector remembers
//!   that node, so [`LeaderDetector::next_change`] then waits for the next
//!   leader instead of failing again at once.
//! - A change means a different leading node. A master that restarts and
//!   leads again with the same address is a change too: its new node tells
//!   the framework it must subscribe again.

pub mod client;
pub mod wire;

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

pub use client::ZkClient;

/// Port used for hosts given without one.
pub const DEFAULT_PORT: u16 = 2181;

/// Prefix of the nodes Mesos masters register with JSON data.
pub const MASTER_INFO_PREFIX: &str = "json.info_";

/// Everything that can go wrong talking to ZooKeeper or reading the leader.
/// Each variant names the server and, where there is one, the path.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The `zk://` URL could not be parsed (the URL is shown without its
    /// password).
    #[error("invalid ZooKeeper URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: UrlProblem,
    },
    /// TCP connection to a server failed.
    #[error("cannot connect to ZooKeeper at {host}: {source}")]
    Connect {
        /// The server.
        host: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading or writing an established connection failed.
    #[error("I/O error with ZooKeeper at {host}: {source}")]
    Io {
        /// The server.
        host: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A server did not answer in time.
    #[error("ZooKeeper at {host} did not complete {during} within {after:?}")]
    Timeout {
        /// The server.
        host: String,
        /// What was being waited for.
        during: &'static str,
        /// The bound.
        after: Duration,
    },
    /// A server sent bytes that are not the expected packet.
    #[error("ZooKeeper at {host} sent a malformed {packet}: {source}")]
    Decode {
        /// The server.
        host: String,
        /// The packet being decoded.
        packet: &'static str,
        /// What was wrong.
        source: wire::DecodeError,
    },
    /// The server reported the session expired.
    #[error("ZooKeeper session with {host} expired")]
    SessionExpired {
        /// The server.
        host: String,
    },
    /// The connection ended; pending requests and watches are lost.
    #[error("connection to ZooKeeper at {host} lost: {reason}")]
    ConnectionLoss {
        /// The server.
        host: String,
        /// Why.
        reason: String,
    },
    /// The server answered a request with an error code.
    #[error("ZooKeeper at {host} failed {op} {path:?}: {name} ({code})")]
    Server {
        /// The server.
        host: String,
        /// The request type.
        op: &'static str,
        /// The path of the request (empty for session-level requests).
        path: String,
        /// The ZooKeeper error code.
        code: i32,
        /// Its name.
        name: &'static str,
    },
    /// No server of the URL could be reached (each was tried once).
    #[error("no ZooKeeper server of {url} is reachable; last error: {last}")]
    NoServerReachable {
        /// The URL, password redacted.
        url: String,
        /// The error from the last server tried.
        last: Box<ZkError>,
    },
    /// The leading node's data is not a usable `MasterInfo`.
    #[error("leading master node {path} holds no usable MasterInfo: {reason}")]
    BadMasterInfo {
        /// Full path of the node.
        path: String,
        /// What is wrong with its data.
        reason: MasterInfoProblem,
    },
}

/// What is wrong with a `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("must start with zk://")]
    Scheme,
    #[error("no znode path after the hosts (e.g. zk://host:2181/mesos)")]
    NoPath,
    #[error("credentials must be user:password before the '@'")]
    Credentials,
    #[error("empty user name in the credentials")]
    EmptyUser,
    #[error("empty host in the host list")]
    EmptyHostEntry,
    #[error("unclosed '[' in host {0:?}")]
    UnclosedBracket(String),
    #[error("unexpected text after ']' in host {0:?}")]
    AfterBracket(String),
    #[error("IPv6 host {0:?} must be written in brackets")]
    UnbracketedIpv6(String),
    #[error("empty host name in {0:?}")]
    EmptyHost(String),
    #[error("invalid port {port:?} in host {host:?}")]
    Port { port: String, host: String },
    #[error("empty segment ('//') in the znode path")]
    EmptySegment,
    #[error("the znode path has '?', '#' or control characters")]
    PathCharacters,
}

/// What is wrong with a leading master's `MasterInfo`.
#[derive(Debug, thiserror::Error)]
pub enum MasterInfoProblem {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("JSON is not an object")]
    NotAnObject,
    #[error("no address.ip, address.hostname, hostname, ip or pid")]
    NoHost,
    #[error("no valid address.port, port or pid")]
    NoPort,
}

impl ZkError {
    /// The ZooKeeper error code, for [`ZkError::Server`].
    pub fn code(&self) -> Option<i32> {
        match self {
            ZkError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the error is about the connection or session (so another
    /// server or a new session may succeed) rather than about the data.
    pub fn is_connection_error(&self) -> bool {
        match self {
            ZkError::Connect { .. }
            | ZkError::Io { .. }
            | ZkError::Timeout { .. }
            | ZkError::Decode { .. }
            | ZkError::SessionExpired { .. }
            | ZkError::ConnectionLoss { .. } => true,
            ZkError::Server { code, .. } => {
                matches!(*code, wire::code::CONNECTION_LOSS | wire::code::SESSION_EXPIRED)
            }
            ZkError::InvalidUrl { .. } | ZkError::NoServerReachable { .. } | ZkError::BadMasterInfo { .. } => false,
        }
    }
}

/// `user:password` for ZooKeeper's `digest` scheme. `Debug` and `Display`
/// never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials for the `digest` scheme.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// A parsed `zk://[user:password@]host[:port][,host[:port]...]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// Servers as `host:port` (IPv6 hosts in brackets), in URL order.
    pub hosts: Vec<String>,
    /// The group's znode path, starting with `/`, without trailing `/`.
    pub path: String,
    /// Credentials for `digest` authentication, if the URL has any.
    pub credentials: Option<Credentials>,
}

impl ZkUrl {
    /// Parses a `zk://` URL. Ports default to 2181; the path is required.
    pub fn parse(url: &str) -> Result<Self, ZkError> {
        let invalid = |reason: UrlProblem| ZkError::InvalidUrl { url: redact(url), reason };
        let rest = url.strip_prefix("zk://").ok_or_else(|| invalid(UrlProblem::Scheme))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => {
                return Err(invalid(UrlProblem::NoPath));
            }
        };
        // The password may contain '@'; the last one ends the credentials.
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                let (user, password) = userinfo.split_once(':').ok_or_else(|| invalid(UrlProblem::Credentials))?;
                if user.is_empty() {
                    return Err(invalid(UrlProblem::EmptyUser));
                }
                (Some(Credentials::new(user, password)), hosts)
            }
            None => (None, authority),
        };
        let hosts = hosts.split(',').map(|h| parse_host(h.trim()).map_err(invalid)).collect::<Result<Vec<_>, _>>()?;
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if path.contains("//") {
            return Err(invalid(UrlProblem::EmptySegment));
        }
        if path.contains(['?', '#']) || path.chars().any(char::is_control) {
            return Err(invalid(UrlProblem::PathCharacters));
        }
        Ok(ZkUrl { hosts, path: path.to_owned(), credentials })
    }
}

impl std::str::FromStr for ZkUrl {
    type Err = ZkError;
    fn from_str(s: &str) -> Result<Self, ZkError> {
        ZkUrl::parse(s)
    }
}

/// Shows the URL with the password replaced by `***`.
impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:***@", c.username)?;
        }
        write!(f, "{}{}", self.hosts.join(","), self.path)
    }
}

/// `host[:port]` → `host:port`; IPv6 hosts must be bracketed.
fn parse_host(spec: &str) -> Result<String, UrlProblem> {
    if spec.is_empty() {
        return Err(UrlProblem::EmptyHostEntry);
    }
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| UrlProblem::UnclosedBracket(spec.to_owned()))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(UrlProblem::AfterBracket(spec.to_owned())),
            },
        }
    } else {
        match spec.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(UrlProblem::UnbracketedIpv6(spec.to_owned()));
            }
            Some((host, port)) => (host, Some(port)),
            None => (spec, None),
        }
    };
    if host.is_empty() {
        return Err(UrlProblem::EmptyHost(spec.to_owned()));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(UrlProblem::Port { port: p.to_owned(), host: spec.to_owned() }),
        },
    };
    Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

/// The URL for error messages: any password in it replaced by `***`.
fn redact(url: &str) -> String {
    let Some(rest) = url.strip_prefix("zk://") else {
        // Not our scheme: credentials cannot be located, show nothing.
        return "<not a zk:// URL>".into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let after = &rest[userinfo.len()..];
            format!("zk://{user}:***{after}")
        }
        None => url.to_owned(),
    }
}

/// Where the leading master serves HTTP, and what it said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterAddress {
    /// IP address or host name.
    pub host: String,
    /// HTTP port.
    pub port: u16,
    /// The leader's znode name, e.g. `json.info_0000000003`.
    pub node: String,
    /// The `MasterInfo` JSON as the master wrote it.
    pub info: Value,
}

impl MasterAddress {
    /// `host:port`, with IPv6 hosts in brackets, ready for a URL.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Reads a `MasterInfo` JSON document. The host is the first present of
    /// `address.ip`, `address.hostname`, `hostname`, the packed IPv4 `ip`,
    /// and the host in `pid` (`master@ip:port`); the port likewise comes from
    /// `address.port`, `port`, then `pid`.
    pub fn from_master_info(node: &str, data: &[u8]) -> Result<Self, MasterInfoProblem> {
        let info: Value = serde_json::from_slice(data)?;
        if !info.is_object() {
            return Err(MasterInfoProblem::NotAnObject);
        }
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let port = |v: &Value| v.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0);
        let pid = info["pid"].as_str().and_then(parse_pid);
        let host = text(&info["address"]["ip"])
            .or_else(|| text(&info["address"]["hostname"]))
            .or_else(|| text(&info["hostname"]))
            .or_else(|| {
                // `ip` is an IPv4 address in network byte order read as a
                // little-endian integer: 16777343 is 127.0.0.1.
                let ip = u32::try_from(info["ip"].as_u64()?).ok()?;
                Some(Ipv4Addr::from(ip.to_le_bytes()).to_string())
            })
            .or_else(|| pid.as_ref().map(|(h, _)| h.clone()))
            .ok_or(MasterInfoProblem::NoHost)?;
        let port = port(&info["address"]["port"])
            .or_else(|| port(&info["port"]))
            .or_else(|| pid.as_ref().map(|(_, p)| *p))
            .ok_or(MasterInfoProblem::NoPort)?;
        Ok(MasterAddress { host, port, node: node.to_owned(), info })
    }
}

/// `master@10.0.0.1:5050` → `("10.0.0.1", 5050)`.
fn parse_pid(pid: &str) -> Option<(String, u16)> {
    let (_, addr) = pid.split_once('@')?;
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The leader among a group's children: the `json.info_` node with the
/// lowest sequence number. Other children are ignored.
pub fn leader_node(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let seq = name.strip_prefix(MASTER_INFO_PREFIX)?;
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((seq.parse::<u64>().ok()?, name.as_str()))
        })
        .min()
        .map(|(_, name)| name)
}

/// Joins a group path and a child name.
fn child_path(group: &str, child: &str) -> String {
    if group.ends_with('/') { format!("{group}{child}") } else { format!("{group}/{child}") }
}

/// What one look at the group found.
enum Look {
    /// A leader other than the one to skip.
    Leader(String, Vec<u8>),
    /// Nothing new yet: a watch is set, wait for it.
    Wait,
    /// Things moved under us: look again now.
    Again,
}

/// Finds the leading Mesos master of a `zk://` URL and follows changes.
///
/// Holds at most one ZooKeeper session, opened on first use and replaced
/// (trying each server in turn) when the connection is lost.
#[derive(Debug)]
pub struct LeaderDetector {
    url: ZkUrl,
    session_timeout: Duration,
    client: Option<ZkClient>,
    /// Index of the server to try first on the next connection.
    next_host: usize,
    /// The leading node last reported (as a leader or as an error).
    last_leader: Option<String>,
}

impl LeaderDetector {
    /// A detector for `url`; nothing is contacted until the first call.
    /// `session_timeout` is asked of the server (which may clamp it) and also
    /// bounds each connection attempt.
    pub fn new(url: ZkUrl, session_timeout: Duration) -> Self {
        LeaderDetector { url, session_timeout, client: None, next_host: 0, last_leader: None }
    }

    /// The URL this detector reads.
    pub fn url(&self) -> &ZkUrl {
        &self.url
    }

    /// The current leader. If there is none (no master registered, or the
    /// group path does not exist yet), waits on a watch until one appears;
    /// bound the wait with `tokio::time::timeout` if needed.
    ///
    /// A lost connection is replaced by a session with the next server and
    /// the group is read again, so no change is missed; servers are retried
    /// for up to one session timeout before the error is returned. Only if
    /// no server is reachable at the first connection does this fail at
    /// once ([`ZkError::NoServerReachable`]). Cancelling the future (e.g. on
    /// a timeout) leaves the detector usable.
    pub async fn detect(&mut self) -> Result<MasterAddress, ZkError> {
        self.leader_other_than(None).await
    }

    /// Waits until the leader differs from the one last returned by
    /// [`Self::detect`] or [`Self::next_change`] (or last reported as
    /// [`ZkError::BadMasterInfo`]), and returns the new one. Child changes
    /// that keep the same leader are absorbed; while there is no leader at
    /// all, keeps waiting. Without a previous leader, behaves as `detect`.
    pub async fn next_change(&mut self) -> Result<MasterAddress, ZkError> {
        let last = self.last_leader.clone();
        self.leader_other_than(last.as_deref()).await
    }

    async fn leader_other_than(&mut self, skip: Option<&str>) -> Result<MasterAddress, ZkError> {
        // Consecutive connection losses, and when the first of them happened.
        // A successful read resets both. After a loss the servers are retried
        // (with a growing pause) for one session timeout, the time ZooKeeper
        // itself gives a client to come back, before the error is returned.
        // With no loss yet (the very first connection), failing to reach any
        // server is returned at once: that is more likely a wrong URL.
        let mut failures: u32 = 0;
        let mut lost_since: Option<Instant> = None;
        loop {
            if failures > 1 {
                let pause = Duration::from_millis(100 * u64::from(failures.min(20)));
                tokio::time::sleep(pause).await;
            }
            if let Err(e) = self.connect_if_needed().await {
                match lost_since {
                    Some(t) if t.elapsed() < self.session_timeout => {
                        failures += 1;
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            let client = self.client.as_ref().expect("connected above");
            let outcome = look(client, &self.url.path, skip).await;
            if outcome.is_ok() {
                failures = 0;
                lost_since = None;
            }
            let result = match outcome {
                Ok(Look::Leader(node, data)) => {
                    let path = child_path(&self.url.path, &node);
                    let leader = MasterAddress::from_master_info(&node, &data)
                        .map_err(|reason| ZkError::BadMasterInfo { path, reason });
                    self.last_leader = Some(node);
                    return leader;
                }
                Ok(Look::Again) => continue,
                Ok(Look::Wait) => {
                    let client = self.client.as_mut().expect("connected above");
                    client.next_event().await.map(|event| {
                        tracing::debug!(?event, "ZooKeeper group changed");
                    })
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {}
                Err(e) if e.is_connection_error() => {
                    tracing::warn!(url = %self.url, error = %e, "ZooKeeper connection lost, reconnecting");
                    self.client = None;
                    failures += 1;
                    lost_since.get_or_insert_with(Instant::now);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The open session, or a new one with the first server (starting after
    /// the last one used) that accepts it.
    async fn connect_if_needed(&mut self) -> Result<(), ZkError> {
        if self.client.is_none() {
            let mut last = None;
            for i in 0..self.url.hosts.len() {
                let index = (self.next_host + i) % self.url.hosts.len();
                let host = &self.url.hosts[index];
                match self.open(host).await {
                    Ok(client) => {
                        tracing::info!(url = %self.url, host, "connected to ZooKeeper");
                        self.next_host = index + 1;
                        self.client = Some(client);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(host, error = %e, "ZooKeeper server unusable");
                        last = Some(e);
                    }
                }
            }
            if self.client.is_none() {
                return Err(ZkError::NoServerReachable {
                    url: self.url.to_string(),
                    last: Box::new(last.unwrap_or_else(|| ZkError::InvalidUrl {
                        url: self.url.to_string(),
                        reason: UrlProblem::EmptyHostEntry,
                    })),
                });
            }
        }
        Ok(())
    }

    async fn open(&self, host: &str) -> Result<ZkClient, ZkError> {
        let client = ZkClient::connect(host, self.session_timeout).await?;
        if let Some(c) = &self.url.credentials {
            let auth = format!("{}:{}", c.username, c.password);
            client.add_auth("digest", auth.as_bytes()).await?;
        }
        Ok(client)
    }
}

/// Reads the group once, leaving a watch whenever the answer is "wait".
async fn look(client: &ZkClient, group: &str, skip: Option<&str>) -> Result<Look, ZkError> {
    let children = match client.get_children(group, true).await {
        Ok(children) => children,
        Err(e) if e.code() == Some(wire::code::NO_NODE) => {
            // No master ever ran here. A child watch cannot be set on a
            // missing node, but an `exists` watch fires when it is created.
            return Ok(match client.exists(group, true).await? {
                Some(_) => Look::Again,
                None => Look::Wait,
            });
        }
        Err(e) => return Err(e),
    };
    let Some(node) = leader_node(&children) else {
        return Ok(Look::Wait);
    };
    if Some(node) == skip {
        return Ok(Look::Wait);
    }
    match client.get_data(&child_path(group, node), false).await {
        Ok((data, _)) => Ok(Look::Leader(node.to_owned(), data)),
        // The leader vanished between the two reads.
        Err(e) if e.code() == Some(wire::code::NO_NODE) => Ok(Look::Again),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_path() {
        let url = ZkUrl::parse("zk://h1:2182,h2,10.0.0.3:1/mesos").unwrap();
        assert_eq!(url.hosts, ["h1:2182", "h2:2181", "10.0.0.3:1"]);
        assert_eq!(url.path, "/mesos");
        assert_eq!(url.credentials, None);
        let url = ZkUrl::parse("zk://[::1]:2190,[fe80::1]/a/b/").unwrap();
        assert_eq!(url.hosts, ["[::1]:2190", "[fe80::1]:2181"]);
        assert_eq!(url.path, "/a/b");
        assert_eq!(ZkUrl::parse("zk://h/").unwrap().path, "/");
        assert_eq!(url.to_string(), "zk://[::1]:2190,[fe80::1]:2181/a/b");
    }

    #[test]
    fn parses_and_redacts_credentials() {
        let url: ZkUrl = "zk://alice:s3cr@t@h1:2181/mesos".parse().unwrap();
        let creds = url.credentials.as_ref().unwrap();
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password(), "s3cr@t");
        assert_eq!(url.hosts, ["h1:2181"]);
        assert!(!format!("{url:?}").contains("s3cr"));
        assert!(!url.to_string().contains("s3cr"));
        assert_eq!(url.to_string(), "zk://alice:***@h1:2181/mesos");
    }

    #[test]
    fn rejects_bad_urls_with_reasons() {
        let reason = |s: &str| match ZkUrl::parse(s) {
            Err(ZkError::InvalidUrl { url, reason }) => format!("{url}: {reason}"),
            other => panic!("{s}: expected an error, got {other:?}"),
        };
        assert!(reason("http://h/mesos").contains("must start with zk://"));
        assert!(reason("zk://h1:2181").contains("no znode path"));
        assert!(reason("zk:///mesos").contains("empty host"));
        assert!(reason("zk://h1,,h2/mesos").contains("empty host"));
        assert!(reason("zk://h1:99999/mesos").contains("invalid port \"99999\""));
        assert!(reason("zk://h1:0/mesos").contains("invalid port"));
        assert!(reason("zk://::1/mesos").contains("brackets"));
        assert!(reason("zk://[::1/mesos").contains("unclosed"));
        assert!(reason("zk://h//mesos").contains("'//'"));
        let no_colon = reason("zk://alice@h/mesos");
        assert!(no_colon.contains("user:password"), "{no_colon}");
        // The password never shows in an error.
        let bad = reason("zk://alice:hunter2@h:x/mesos");
        assert!(!bad.contains("hunter2"), "{bad}");
        assert!(bad.contains("zk://alice:***@h:x/mesos"), "{bad}");
    }

    #[test]
    fn leader_is_lowest_json_child() {
        let children: Vec<String> = [
            "info_0000000000",
            "json.info_0000000012",
            "json.info_0000000003",
            "json.info_garbage",
            "json.info_",
            "log_replicas",
            "json.info_0000000007",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(leader_node(&children), Some("json.info_0000000003"));
        assert_eq!(leader_node(&children[..1]), None);
        assert_eq!(leader_node(&[]), None);
    }

    #[test]
    fn master_info_address_and_fallbacks() {
        let full = br#"{"id":"x","ip":16777343,"port":5050,"pid":"master@127.0.0.1:5050",
            "hostname":"localhost","version":"1.11.0",
            "address":{"hostname":"localhost","ip":"10.1.2.3","port":5051}}"#;
        let m = MasterAddress::from_master_info("json.info_1", full).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("10.1.2.3", 5051));
        assert_eq!(m.node, "json.info_1");
        assert_eq!(m.info["version"], "1.11.0");

        let hostname = br#"{"address":{"hostname":"m1","port":5050}}"#;
        let m = MasterAddress::from_master_info("n", hostname).unwrap();
        assert_eq!(m.authority(), "m1:5050");

        let top = br#"{"hostname":"m2","port":5052,"ip":16777343}"#;
        let m = MasterAddress::from_master_info("n", top).unwrap();
        assert_eq!(m.authority(), "m2:5052");

        let packed = br#"{"ip":16777343,"port":5053}"#;
        let m = MasterAddress::from_master_info("n", packed).unwrap();
        assert_eq!(m.authority(), "127.0.0.1:5053");

        let pid = br#"{"pid":"master@192.168.0.9:5054"}"#;
        let m = MasterAddress::from_master_info("n", pid).unwrap();
        assert_eq!(m.authority(), "192.168.0.9:5054");

        let v6 = br#"{"address":{"ip":"::1","port":5050}}"#;
        let m = MasterAddress::from_master_info("n", v6).unwrap();
        assert_eq!(m.authority(), "[::1]:5050");
    }

    #[test]
    fn unusable_master_info_is_an_error() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"{}",
            br#"{"hostname":"m"}"#,
            br#"{"hostname":"m","port":70000}"#,
            br#"{"pid":"master@:5050"}"#,
        ] {
            assert!(MasterAddress::from_master_info("n", bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn child_paths() {
        assert_eq!(child_path("/mesos", "a"), "/mesos/a");
        assert_eq!(child_path("/", "a"), "/a");
    }
}
