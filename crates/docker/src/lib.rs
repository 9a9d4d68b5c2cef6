//! A small, blocking client of the Docker Engine API, over the daemon's Unix
//! socket: the calls Mesos's Docker containerizer makes (pull, create, start,
//! wait, logs, kill, remove, exec, list) and nothing of Mesos. Each call is
//! one connection; a caller that must not block runs it on a thread of its own.
//!
//! Paths carry no API version: the daemon answers in its own, and every field
//! used here has been stable since API 1.24.

mod http;
mod mux;
mod types;

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

pub use mux::{StreamKind, demux};
pub use types::*;

/// Reads a daemon's HTTP answer from bytes (head, then at most `limit` bytes
/// of body, chunked or not): the client's parser, exposed for its fuzz target.
#[doc(hidden)]
pub fn read_response(bytes: &[u8], limit: usize) -> io::Result<(u16, Vec<u8>)> {
    http::read_response(bytes, limit)
}

/// The socket `dockerd` listens on by default.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long a call that is not a stream may take between two reads.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of an answer that is kept (an error message, an inspect).
const MAX_ANSWER: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Docker daemon answers at {}: {source}", socket.display())]
    Unreachable { socket: PathBuf, source: io::Error },
    #[error("the Docker daemon at {} broke off {what}: {source}", socket.display())]
    Io { socket: PathBuf, what: String, source: io::Error },
    #[error("Docker {what}: {message} (HTTP {status})")]
    Api { what: String, status: u16, message: String },
    #[error("Docker {what}: {detail}")]
    Protocol { what: String, detail: String },
}

impl Error {
    /// The daemon answered 404 (no such container, image or network).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }

    /// The daemon is not there, or went away during the call.
    pub fn is_daemon_gone(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::Io { .. })
    }
}

/// A registry login, sent with a pull as `X-Registry-Auth`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    #[serde(rename = "serveraddress")]
    pub server_address: String,
}

/// A Docker daemon, by its socket.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
}

/// How a command runs in a container (`docker exec -e -u -w`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// `NAME=value`, added to the container's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

impl Engine {
    pub fn new(socket: impl Into<PathBuf>) -> Engine {
        Engine { socket: socket.into() }
    }

    fn send(
        &self,
        what: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
        read_timeout: Option<Duration>,
    ) -> Result<http::Response, Error> {
        self.request(what, &http::Request { method, target, headers, body, upload: None, read_timeout })
    }

    fn request(&self, what: &str, request: &http::Request<'_>) -> Result<http::Response, Error> {
        http::send(&self.socket, request).map_err(|e| match e {
            http::SendError::Connect(source) => Error::Unreachable { socket: self.socket.clone(), source },
            http::SendError::Io(source) => self.io(what, source),
        })
    }

    /// The body of a 2xx answer, to read as a stream; any other status is an
    /// [`Error::Api`] with the daemon's message.
    fn streamed(&self, what: &str, response: http::Response) -> Result<http::Body, Error> {
        if (200..300).contains(&response.status) || response.status == 101 {
            return Ok(response.body);
        }
        let status = response.status;
        let bytes = response.body.read_limited(MAX_ANSWER).map_err(|e| self.io(what, e))?;
        check(what, status, &bytes)?;
        unreachable!("check refuses non-2xx statuses")
    }

    fn io(&self, what: &str, source: io::Error) -> Error {
        Error::Io { socket: self.socket.clone(), what: what.to_owned(), source }
    }

    /// A call whose answer is read whole: non-2xx statuses become [`Error::Api`]
    /// with the daemon's message.
    fn call(&self, what: &str, method: &str, target: &str, json: Option<&[u8]>) -> Result<(u16, Vec<u8>), Error> {
        let body = json.map(|b| ("application/json", b));
        let response = self.send(what, method, target, &[], body, Some(CALL_TIMEOUT))?;
        let status = response.status;
        let bytes = response.body.read_limited(MAX_ANSWER).map_err(|e| self.io(what, e))?;
        check(what, status, &bytes)?;
        Ok((status, bytes))
    }

    fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        method: &str,
        target: &str,
        json: Option<&[u8]>,
    ) -> Result<T, Error> {
        let (_, bytes) = self.call(what, method, target, json)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            what: what.to_owned(),
            detail: format!("an answer that is not the JSON expected: {e}"),
        })
    }

    /// `GET /_ping`: is a daemon there?
    pub fn ping(&self) -> Result<(), Error> {
        self.call("ping", "GET", "/_ping", None).map(drop)
    }

    /// `GET /version`.
    pub fn version(&self) -> Result<Version, Error> {
        self.call_json("version", "GET", "/version", None)
    }

    /// Whether the daemon has the image `reference`.
    pub fn has_image(&self, reference: &str) -> Result<bool, Error> {
        match self.call("image inspect", "GET", &format!("/images/{}/json", encode_path(reference)), None) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `reference` (`:latest` when it names no tag or digest, rather
    /// than every tag). Progress is read and dropped; an error the daemon
    /// reports inside the stream is returned.
    pub fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<(), Error> {
        let what = format!("pull of {reference}");
        let reference = with_tag(reference);
        let auth = registry_auth_header(auth);
        let target = format!("/images/create?fromImage={}", encode_query(&reference));
        let response =
            self.send(&what, "POST", &target, &[("X-Registry-Auth", &auth)], None, Some(Duration::from_secs(600)))?;
        self.progress(&what, response, &mut |_| {})
    }

    /// Imports a root filesystem tarball as image `reference` (`docker import`).
    pub fn import(&self, reference: &str, tar: &[u8]) -> Result<(), Error> {
        let what = format!("import of {reference}");
        let (repo, tag) = split_tag(&with_tag(reference));
        let target = format!("/images/create?fromSrc=-&repo={}&tag={}", encode_query(&repo), encode_query(&tag));
        let response = self.send(&what, "POST", &target, &[], Some(("application/x-tar", tar)), Some(CALL_TIMEOUT))?;
        self.progress(&what, response, &mut |_| {})
    }

    /// `POST /build` (the classic builder): `context` is a tar file of the
    /// build context, `query` the build's parameters (`t`, `dockerfile`,
    /// `buildargs`, ...). Each line of output goes to `output`; an error the
    /// daemon reports in the stream is returned with its message.
    pub fn build(&self, query: &[(&str, String)], context: &Path, output: &mut dyn FnMut(&str)) -> Result<(), Error> {
        let what = "build".to_owned();
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode_query(v))).collect();
        let target = format!("/build?{}", query.join("&"));
        let request = http::Request {
            method: "POST",
            target: &target,
            headers: &[],
            body: None,
            upload: Some(("application/x-tar", context)),
            read_timeout: Some(Duration::from_secs(3600)),
        };
        let response = self.request(&what, &request)?;
        self.progress(&what, response, output)
    }

    /// Reads a stream of JSON progress lines (pull, import, build, push),
    /// showing their text; an error the daemon reports in the stream is returned.
    fn progress(&self, what: &str, response: http::Response, output: &mut dyn FnMut(&str)) -> Result<(), Error> {
        let mut lines = BufReader::new(self.streamed(what, response)?);
        let mut line = Vec::new();
        let mut pending = String::new();
        loop {
            line.clear();
            let n = (&mut lines).take(1 << 20).read_until(b'\n', &mut line).map_err(|e| self.io(what, e))?;
            if n == 0 {
                if !pending.is_empty() {
                    output(&pending);
                }
                return Ok(());
            }
            let Ok(progress) = serde_json::from_slice::<Progress>(&line) else { continue };
            if let Some(message) = progress.error {
                if !pending.is_empty() {
                    output(&pending);
                }
                return Err(Error::Api { what: what.to_owned(), status: 200, message });
            }
            // `stream` carries text in pieces, not always whole lines.
            if let Some(text) = progress.stream.or(progress.status) {
                pending.push_str(&text);
                while let Some(i) = pending.find('\n') {
                    output(pending[..i].trim_end_matches('\r'));
                    pending.drain(..=i);
                }
            }
        }
    }

    /// Tags an image with another name (`docker tag`).
    pub fn tag(&self, image: &str, new_name: &str) -> Result<(), Error> {
        let (repo, tag) = split_tag(&with_tag(new_name));
        let target =
            format!("/images/{}/tag?repo={}&tag={}", encode_path(image), encode_query(&repo), encode_query(&tag));
        self.call(&format!("tag of {image} as {new_name}"), "POST", &target, None).map(drop)
    }

    /// Pushes an image to its registry (`docker push`).
    pub fn push(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        output: &mut dyn FnMut(&str),
    ) -> Result<(), Error> {
        let what = format!("push of {reference}");
        let (repo, tag) = split_tag(&with_tag(reference));
        let auth = registry_auth_header(auth);
        let target = format!("/images/{}/push?tag={}", encode_path(&repo), encode_query(&tag));
        let response =
            self.send(&what, "POST", &target, &[("X-Registry-Auth", &auth)], None, Some(Duration::from_secs(600)))?;
        self.progress(&what, response, output)
    }

    /// Creates container `name`; returns its id.
    pub fn create(&self, name: &str, config: &ContainerCreate) -> Result<String, Error> {
        let body = serde_json::to_vec(config).unwrap_or_default();
        let target = format!("/containers/create?name={}", encode_query(name));
        let created: Created = self.call_json(&format!("create of {name}"), "POST", &target, Some(&body))?;
        Ok(created.id)
    }

    pub fn start(&self, name: &str) -> Result<(), Error> {
        self.call(&format!("start of {name}"), "POST", &format!("/containers/{}/start", encode_path(name)), None)
            .map(drop)
    }

    /// The container's state; `None` if there is no such container.
    pub fn inspect(&self, name: &str) -> Result<Option<ContainerInspect>, Error> {
        let target = format!("/containers/{}/json", encode_path(name));
        match self.call_json(&format!("inspect of {name}"), "GET", &target, None) {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits until the container stops; returns its exit code.
    pub fn wait(&self, name: &str) -> Result<i64, Error> {
        let what = format!("wait for {name}");
        let response = self.send(&what, "POST", &format!("/containers/{}/wait", encode_path(name)), &[], None, None)?;
        let status = response.status;
        let bytes = response.body.read_limited(MAX_ANSWER).map_err(|e| self.io(&what, e))?;
        check(&what, status, &bytes)?;
        let waited: Waited = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Protocol { what: what.clone(), detail: format!("an unreadable answer: {e}") })?;
        Ok(waited.status_code)
    }

    /// Sends `signal` (a name such as `SIGTERM`, or a number) to the container.
    /// A container that is not running, or not there, is no error.
    pub fn kill(&self, name: &str, signal: &str) -> Result<(), Error> {
        let target = format!("/containers/{}/kill?signal={}", encode_path(name), encode_query(signal));
        match self.call(&format!("kill of {name}"), "POST", &target, None) {
            Err(Error::Api { status: 404 | 409, .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Removes the container, killing it if it runs (`docker rm -f`), with its
    /// anonymous volumes. One that is not there is no error.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let target = format!("/containers/{}?force=1&v=1", encode_path(name));
        match self.call(&format!("removal of {name}"), "DELETE", &target, None) {
            Err(e) if e.is_not_found() => Ok(()),
            Err(Error::Api { status: 409, message, .. }) if message.contains("already in progress") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Follows the container's output from `since` (Unix seconds; 0: from
    /// the start) until it stops, handing each piece to `sink`.
    pub fn logs(
        &self,
        name: &str,
        since: i64,
        sink: impl FnMut(StreamKind, &[u8]) -> io::Result<()>,
    ) -> Result<(), Error> {
        let what = format!("logs of {name}");
        let target = format!("/containers/{}/logs?follow=1&stdout=1&stderr=1&since={since}", encode_path(name));
        let response = self.send(&what, "GET", &target, &[], None, Some(CALL_TIMEOUT))?;
        let body = self.streamed(&what, response)?;
        body.without_timeout().map_err(|e| self.io(&what, e))?;
        demux(body, sink).map_err(|e| self.io(&what, e))
    }

    /// Containers (running or not) carrying label `key=value`.
    pub fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerSummary>, Error> {
        let target = format!("/containers/json?all=1&filters={}", label_filter(key, value));
        self.call_json("container list", "GET", &target, None)
    }

    /// Every container of the daemon, running or not.
    pub fn list_all(&self) -> Result<Vec<ContainerSummary>, Error> {
        self.call_json("container list", "GET", "/containers/json?all=1", None)
    }

    /// Runs `argv` in the running container, handing its output to `sink`
    /// as it comes; returns its exit code.
    pub fn exec(
        &self,
        name: &str,
        argv: &[String],
        options: &ExecOptions,
        sink: impl FnMut(StreamKind, &[u8]) -> io::Result<()>,
    ) -> Result<i64, Error> {
        let what = format!("exec in {name}");
        let mut config = serde_json::json!({
            "AttachStdout": true, "AttachStderr": true, "Cmd": argv, "Env": options.env,
        });
        if let Some(user) = &options.user {
            config["User"] = user.as_str().into();
        }
        if let Some(dir) = &options.working_dir {
            config["WorkingDir"] = dir.as_str().into();
        }
        let target = format!("/containers/{}/exec", encode_path(name));
        let body = serde_json::to_vec(&config).unwrap_or_default();
        let created: Created = self.call_json(&what, "POST", &target, Some(&body))?;
        let start = serde_json::json!({ "Detach": false, "Tty": false }).to_string();
        let target = format!("/exec/{}/start", encode_path(&created.id));
        let response = self.send(&what, "POST", &target, &[], Some(("application/json", start.as_bytes())), None)?;
        let body = self.streamed(&what, response)?;
        demux(body, sink).map_err(|e| self.io(&what, e))?;
        let target = format!("/exec/{}/json", encode_path(&created.id));
        let inspected: ExecInspect = self.call_json(&what, "GET", &target, None)?;
        Ok(inspected.exit_code.unwrap_or(-1))
    }

    /// Whether a network of this name exists.
    pub fn has_network(&self, name: &str) -> Result<bool, Error> {
        match self.call("network inspect", "GET", &format!("/networks/{}", encode_path(name)), None) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge network.
    pub fn create_network(&self, network: &NetworkCreate) -> Result<(), Error> {
        let mut ipam = serde_json::Map::new();
        for (key, value) in [("Subnet", &network.subnet), ("Gateway", &network.gateway), ("IPRange", &network.ip_range)]
        {
            if let Some(v) = value {
                ipam.insert(key.to_owned(), v.clone().into());
            }
        }
        let body = serde_json::json!({
            "Name": network.name, "Driver": "bridge", "CheckDuplicate": true, "Internal": network.internal,
            "Labels": network.labels,
            "IPAM": { "Config": if ipam.is_empty() { Vec::new() } else { vec![ipam] } },
        });
        let what = format!("network create of {}", network.name);
        self.call(&what, "POST", "/networks/create", Some(body.to_string().as_bytes())).map(drop)
    }

    /// Connects a (created) container to a network, with these aliases.
    pub fn connect(&self, network: &str, container: &str, aliases: &[String]) -> Result<(), Error> {
        let body = serde_json::json!({ "Container": container, "EndpointConfig": { "Aliases": aliases } });
        let target = format!("/networks/{}/connect", encode_path(network));
        self.call(&format!("connect of {container} to {network}"), "POST", &target, Some(body.to_string().as_bytes()))
            .map(drop)
    }

    /// Networks carrying label `key=value` (`None`: every network), by name.
    pub fn list_networks(&self, label: Option<(&str, &str)>) -> Result<Vec<String>, Error> {
        let target = match label {
            Some((k, v)) => format!("/networks?filters={}", label_filter(k, v)),
            None => "/networks".to_owned(),
        };
        let networks: Vec<NetworkSummary> = self.call_json("network list", "GET", &target, None)?;
        Ok(networks.into_iter().map(|n| n.name).collect())
    }

    /// Removes a network; one that is not there is no error.
    pub fn remove_network(&self, name: &str) -> Result<(), Error> {
        match self.call(
            &format!("network removal of {name}"),
            "DELETE",
            &format!("/networks/{}", encode_path(name)),
            None,
        ) {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }
}

/// Turns a non-2xx answer into an error carrying the daemon's message.
fn check(what: &str, status: u16, body: &[u8]) -> Result<(), Error> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = serde_json::from_slice::<ApiMessage>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(1024)]).trim().to_owned());
    Err(Error::Api { what: what.to_owned(), status, message })
}

/// `X-Registry-Auth`: the login as base64url JSON, or `{}` for none (a push
/// wants the header even for a registry that needs no login).
fn registry_auth_header(auth: Option<&RegistryAuth>) -> String {
    let json = auth.map(|a| serde_json::to_vec(a).unwrap_or_default()).unwrap_or_else(|| b"{}".to_vec());
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The `filters` query value that selects by label `key=value`, encoded.
fn label_filter(key: &str, value: &str) -> String {
    encode_query(&serde_json::json!({ "label": [format!("{key}={value}")] }).to_string())
}

/// `name` with `:latest` when it has no tag or digest (a pull without a tag
/// would fetch every tag).
fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') { reference.to_owned() } else { format!("{reference}:latest") }
}

/// `repo:tag` split at the tag's colon (not a registry's port).
fn split_tag(reference: &str) -> (String, String) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (reference[..slash + i].to_owned(), reference[slash + i + 1..].to_owned()),
        None => (reference.to_owned(), "latest".to_owned()),
    }
}

fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query value, percent-encoded.
fn encode_query(text: &str) -> String {
    encode(text, b"")
}

/// A path segment that may hold slashes and colons (an image reference).
fn encode_path(text: &str) -> String {
    encode(text, b"/:@")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_a_tag_unless_they_have_one() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("localhost:5000/a/b"), "localhost:5000/a/b:latest");
        assert_eq!(with_tag("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(with_tag("a@sha256:00"), "a@sha256:00");
        assert_eq!(split_tag("localhost:5000/a:1"), ("localhost:5000/a".to_owned(), "1".to_owned()));
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a".to_owned(), "latest".to_owned()));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query(r#"{"label":["a=b c"]}"#), "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D");
        assert_eq!(encode_path("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(encode_path("a b?"), "a%20b%3F");
    }

    #[test]
    fn error_answers_carry_the_daemons_message() {
        let e = check("start of x", 500, br#"{"message":"port is already allocated"}"#).unwrap_err();
        assert_eq!(e.to_string(), "Docker start of x: port is already allocated (HTTP 500)");
        let e = check("start of x", 404, b"page not found\n").unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "Docker start of x: page not found (HTTP 404)");
    }

    #[test]
    fn an_absent_daemon_is_named() {
        let engine = Engine::new("/nonexistent/m3s/docker.sock");
        let e = engine.ping().unwrap_err();
        assert!(e.is_daemon_gone());
        assert!(e.to_string().starts_with("no Docker daemon answers at /nonexistent/m3s/docker.sock: "), "{e}");
    }
}
