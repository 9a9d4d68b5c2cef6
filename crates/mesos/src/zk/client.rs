//! A thin tokio driver for one ZooKeeper session over one TCP connection.
//!
//! [`ZkClient::connect`] performs the handshake, then hands the socket to a
//! background task that writes requests, matches replies to them (the server
//! answers in request order), forwards watch notifications, and pings while
//! idle so the session does not expire between calls. The encoding lives in
//! [`super::wire`]; this file only moves bytes.
//!
//! A session is never resumed on another server: when the connection drops,
//! every pending call and [`ZkClient::next_event`] fail, and the owner starts
//! a new session. Leader detection only reads, so it loses nothing by that,
//! and it keeps this client small.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};

use super::ZkError;
use super::wire::{
    self, ConnectRequest, ConnectResponse, CreateMode, DecodeError, OpCode, ReplyHeader, Request, Stat, WatchedEvent,
    code, xid,
};

/// How long a dropped client's task waits for the server to acknowledge
/// `closeSession` before it gives up and just closes the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// One session with one ZooKeeper server.
///
/// Methods take `&self`, so one client can serve concurrent calls; replies
/// are matched in order. Dropping the client closes the session (best
/// effort), which deletes its ephemeral nodes at once.
pub struct ZkClient {
    host: String,
    session_id: i64,
    timeout: Duration,
    next_xid: AtomicI32,
    calls: mpsc::UnboundedSender<Call>,
    events: mpsc::UnboundedReceiver<Result<WatchedEvent, ZkError>>,
}

impl std::fmt::Debug for ZkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkClient")
            .field("host", &self.host)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A request handed to the driver task.
struct Call {
    xid: i32,
    op: OpCode,
    packet: Vec<u8>,
    reply: oneshot::Sender<Result<(ReplyHeader, BytesMut), ZkError>>,
}

impl ZkClient {
    /// Connects to `host` (`host:port`) and opens a new session asking for
    /// `session_timeout`; the server may grant a different one (see
    /// [`Self::session_timeout`]). The whole handshake is bounded by
    /// `session_timeout`.
    pub async fn connect(host: &str, session_timeout: Duration) -> Result<Self, ZkError> {
        let timeout_ms = i32::try_from(session_timeout.as_millis()).unwrap_or(i32::MAX);
        let handshake = async {
            let mut stream =
                TcpStream::connect(host).await.map_err(|source| ZkError::Connect { host: host.to_owned(), source })?;
            // Requests are small and latency matters more than batching.
            let _ = stream.set_nodelay(true);
            stream.write_all(&ConnectRequest::new_session(timeout_ms).encode()).await.map_err(|e| io_error(host, e))?;
            let mut buf = BytesMut::with_capacity(4096);
            let body = read_frame(&mut stream, &mut buf, host, "ConnectResponse").await?;
            let response = ConnectResponse::decode(&body).map_err(|source| ZkError::Decode {
                host: host.to_owned(),
                packet: "ConnectResponse",
                source,
            })?;
            Ok::<_, ZkError>((stream, buf, response))
        };
        let (stream, buf, response) = timeout(session_timeout, handshake).await.map_err(|_| ZkError::Timeout {
            host: host.to_owned(),
            during: "the session handshake",
            after: session_timeout,
        })??;
        if response.timeout_ms <= 0 {
            return Err(ZkError::SessionExpired { host: host.to_owned() });
        }
        let negotiated = Duration::from_millis(response.timeout_ms as u64);
        tracing::debug!(
            host,
            session = format_args!("{:#x}", response.session_id),
            timeout = ?negotiated,
            "ZooKeeper session established"
        );
        let (calls, calls_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let driver = Driver {
            host: host.to_owned(),
            stream,
            buf,
            timeout: negotiated,
            pending: VecDeque::new(),
            events: events_tx,
            closing: false,
        };
        tokio::spawn(driver.run(calls_rx));
        Ok(ZkClient {
            host: host.to_owned(),
            session_id: response.session_id,
            timeout: negotiated,
            next_xid: AtomicI32::new(1),
            calls,
            events,
        })
    }

    /// The `host:port` this client is connected to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The session id the server assigned.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session timeout the server granted.
    pub fn session_timeout(&self) -> Duration {
        self.timeout
    }

    /// Adds credentials to the session (`addauth`), e.g. scheme `digest`
    /// with `user:password`.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ZkError> {
        self.call(Request::Auth { scheme, auth }).await.map(drop)
    }

    /// The names of `path`'s children. With `watch`, the next change to the
    /// child list is reported once through [`Self::next_event`].
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ZkError> {
        let body = self.call(Request::GetChildren { path, watch }).await?;
        wire::decode_children(&body).map_err(|e| self.decode_error("GetChildrenResponse", e))
    }

    /// The data and stat of `path`.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), ZkError> {
        let body = self.call(Request::GetData { path, watch }).await?;
        wire::decode_data(&body).map_err(|e| self.decode_error("GetDataResponse", e))
    }

    /// The stat of `path`, or `None` if it does not exist. With `watch`, the
    /// watch is left either way, so this can wait for a node to appear.
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, ZkError> {
        match self.call(Request::Exists { path, watch }).await {
            Ok(body) => Stat::decode(&body).map(Some).map_err(|e| self.decode_error("ExistsResponse", e)),
            Err(e) if e.code() == Some(code::NO_NODE) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `path` with `data`, readable and writable by anyone, and
    /// returns the actual path (with the sequence suffix for sequential
    /// modes). Used by tests to play a Mesos master.
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, ZkError> {
        let body = self.call(Request::Create { path, data, mode }).await?;
        wire::decode_created_path(&body).map_err(|e| self.decode_error("CreateResponse", e))
    }

    /// Deletes `path` if its version is `version` (any version if `None`).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<(), ZkError> {
        let version = version.unwrap_or(-1);
        self.call(Request::Delete { path, version }).await.map(drop)
    }

    /// The next watch notification. Fails once the connection is gone;
    /// watches do not survive that, so the caller must reconnect and re-read.
    pub async fn next_event(&mut self) -> Result<WatchedEvent, ZkError> {
        match self.events.recv().await {
            Some(event) => event,
            None => Err(ZkError::ConnectionLoss {
                host: self.host.clone(),
                reason: "the connection task has stopped".into(),
            }),
        }
    }

    /// Ends the session and waits for the server to confirm, so that its
    /// ephemeral nodes are gone when this returns (as when a master exits).
    pub async fn close(self) -> Result<(), ZkError> {
        self.call(Request::CloseSession).await.map(drop)
    }

    /// Sends one request and waits for its reply; a non-zero error code in
    /// the reply becomes [`ZkError::Server`].
    async fn call(&self, request: Request<'_>) -> Result<BytesMut, ZkError> {
        let xid = request.reserved_xid().unwrap_or_else(|| self.next_xid.fetch_add(1, Ordering::Relaxed));
        let (reply, rx) = oneshot::channel();
        let call = Call { xid, op: request.op(), packet: request.encode(xid), reply };
        let lost =
            || ZkError::ConnectionLoss { host: self.host.clone(), reason: "the connection task has stopped".into() };
        self.calls.send(call).map_err(|_| lost())?;
        let (header, body) = rx.await.map_err(|_| lost())??;
        if header.err != 0 {
            return Err(ZkError::Server {
                host: self.host.clone(),
                op: request.op().name(),
                path: request.path().to_owned(),
                code: header.err,
                name: wire::error_name(header.err),
            });
        }
        Ok(body)
    }

    fn decode_error(&self, packet: &'static str, source: DecodeError) -> ZkError {
        ZkError::Decode { host: self.host.clone(), packet, source }
    }
}

/// Reads until `buf` holds a whole frame and returns its body.
async fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    host: &str,
    packet: &'static str,
) -> Result<BytesMut, ZkError> {
    loop {
        if let Some(frame) =
            wire::take_frame(buf).map_err(|source| ZkError::Decode { host: host.to_owned(), packet, source })?
        {
            return Ok(frame);
        }
        if stream.read_buf(buf).await.map_err(|e| io_error(host, e))? == 0 {
            return Err(ZkError::ConnectionLoss {
                host: host.to_owned(),
                reason: format!("server closed the connection before sending a {packet}"),
            });
        }
    }
}

fn io_error(host: &str, source: std::io::Error) -> ZkError {
    ZkError::Io { host: host.to_owned(), source }
}

/// The background task that owns the socket.
struct Driver {
    host: String,
    stream: TcpStream,
    buf: BytesMut,
    timeout: Duration,
    /// Calls written and not yet answered, in the order they were written.
    pending: VecDeque<Call>,
    events: mpsc::UnboundedSender<Result<WatchedEvent, ZkError>>,
    /// A `closeSession` was written: the server closing the socket is the
    /// expected end, not a failure.
    closing: bool,
}

impl Driver {
    async fn run(mut self, calls: mpsc::UnboundedReceiver<Call>) {
        let end = self.serve(calls).await;
        let reason = match &end {
            Ok(()) => "the session was closed".to_owned(),
            Err(e) => e.to_string(),
        };
        if let Err(e) = end {
            tracing::debug!(host = %self.host, error = %e, "ZooKeeper connection ended");
            let _ = self.events.send(Err(e));
        }
        for call in self.pending.drain(..) {
            let _ = call.reply.send(Err(ZkError::ConnectionLoss { host: self.host.clone(), reason: reason.clone() }));
        }
    }

    /// Moves packets until the session ends: `Ok` for a clean close.
    async fn serve(&mut self, mut calls: mpsc::UnboundedReceiver<Call>) -> Result<(), ZkError> {
        // Ping when nothing was sent for a third of the session timeout, and
        // give up when nothing was received for two thirds of it (as the Java
        // client does): with pings answered, silence that long means the
        // server or the network is gone, and the session is about to expire.
        let ping_every = self.timeout / 3;
        let dead_after = self.timeout * 2 / 3;
        let mut last_sent = Instant::now();
        let mut last_received = Instant::now();
        loop {
            tokio::select! {
                call = calls.recv(), if !self.closing => match call {
                    Some(call) => {
                        self.write(&call.packet).await?;
                        self.closing = call.op == OpCode::CloseSession;
                        self.pending.push_back(call);
                        last_sent = Instant::now();
                    }
                    None => {
                        // The client was dropped: end the session politely
                        // so its ephemeral nodes go now, not at expiry.
                        self.write(&Request::CloseSession.encode(0)).await?;
                        self.closing = true;
                        let _ = timeout(CLOSE_GRACE, self.drain()).await;
                        return Ok(());
                    }
                },
                read = self.stream.read_buf(&mut self.buf) => {
                    if read.map_err(|e| io_error(&self.host, e))? == 0 {
                        if self.closing {
                            return Ok(());
                        }
                        return Err(ZkError::ConnectionLoss {
                            host: self.host.clone(),
                            reason: "server closed the connection".into(),
                        });
                    }
                    last_received = Instant::now();
                    while let Some(frame) = self.take_frame()? {
                        if self.dispatch(frame)? {
                            return Ok(());
                        }
                    }
                },
                _ = sleep_until((last_sent + ping_every).min(last_received + dead_after)) => {
                    let now = Instant::now();
                    if now >= last_received + dead_after {
                        return Err(ZkError::ConnectionLoss {
                            host: self.host.clone(),
                            reason: format!("no reply from the server for {dead_after:?}"),
                        });
                    }
                    if now >= last_sent + ping_every {
                        self.write(&Request::Ping.encode(xid::PING)).await?;
                        last_sent = now;
                    }
                },
            }
        }
    }

    /// Reads and discards until the server closes the socket (after
    /// `closeSession`).
    async fn drain(&mut self) {
        while let Ok(n) = self.stream.read_buf(&mut self.buf).await {
            if n == 0 {
                break;
            }
            self.buf.clear();
        }
    }

    async fn write(&mut self, packet: &[u8]) -> Result<(), ZkError> {
        self.stream.write_all(packet).await.map_err(|e| io_error(&self.host, e))
    }

    fn take_frame(&mut self) -> Result<Option<BytesMut>, ZkError> {
        wire::take_frame(&mut self.buf).map_err(|source| ZkError::Decode {
            host: self.host.clone(),
            packet: "reply",
            source,
        })
    }

    /// Routes one reply. Returns `true` when it confirms `closeSession`.
    fn dispatch(&mut self, frame: BytesMut) -> Result<bool, ZkError> {
        let (header, body) = ReplyHeader::decode(&frame).map_err(|source| ZkError::Decode {
            host: self.host.clone(),
            packet: "ReplyHeader",
            source,
        })?;
        match header.xid {
            xid::PING => return Ok(false),
            xid::WATCH => {
                let event = WatchedEvent::decode(body).map_err(|source| ZkError::Decode {
                    host: self.host.clone(),
                    packet: "WatcherEvent",
                    source,
                })?;
                tracing::trace!(host = %self.host, ?event, "ZooKeeper watch fired");
                let _ = self.events.send(Ok(event));
                return Ok(false);
            }
            _ => {}
        }
        let Some(call) = self.pending.pop_front() else {
            return Err(self.protocol_error(format!("reply with xid {} to no request", header.xid)));
        };
        if call.xid != header.xid {
            let reason = format!("reply with xid {} while expecting xid {} ({})", header.xid, call.xid, call.op.name());
            self.pending.push_front(call);
            return Err(self.protocol_error(reason));
        }
        let done = call.op == OpCode::CloseSession;
        let body = BytesMut::from(body);
        let _ = call.reply.send(Ok((header, body)));
        Ok(done)
    }

    fn protocol_error(&self, reason: String) -> ZkError {
        ZkError::ConnectionLoss { host: self.host.clone(), reason: format!("protocol error: {reason}") }
    }
}

#[cfg(test)]
mod tests {
    //! The driver against scripted fake servers: what a real server would
    //! not do (fall silent, send garbage) and what must happen meanwhile
    //! (pings). The real server is exercised by `tests/zk_leader.rs`.

    use super::*;
    use tokio::net::TcpListener;

    /// A framed `ConnectResponse` granting `timeout_ms`.
    fn connect_response(timeout_ms: i32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&timeout_ms.to_be_bytes());
        body.extend_from_slice(&0x42i64.to_be_bytes());
        body.extend_from_slice(&16i32.to_be_bytes());
        body.extend_from_slice(&[0; 16]);
        body.push(0);
        framed(&body)
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// Accepts one connection, answers the handshake, then runs `script`
    /// with the socket.
    async fn fake_server<F, Fut>(timeout_ms: i32, script: F) -> String
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            while wire::take_frame(&mut buf).unwrap().is_none() {
                socket.read_buf(&mut buf).await.unwrap();
            }
            socket.write_all(&connect_response(timeout_ms)).await.unwrap();
            script(socket).await;
        });
        addr
    }

    /// Reads frames and returns their request types (xid, type).
    async fn read_requests(socket: &mut TcpStream, buf: &mut BytesMut) -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        while out.is_empty() {
            if socket.read_buf(buf).await.unwrap_or(0) == 0 {
                break;
            }
            while let Some(frame) = wire::take_frame(buf).unwrap() {
                let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                let op = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                out.push((xid, op));
            }
        }
        out
    }

    #[tokio::test]
    async fn pings_while_idle_and_matches_replies() {
        let addr = fake_server(600, |mut socket| async move {
            let mut buf = BytesMut::new();
            let mut pings = 0;
            loop {
                for (xid, op) in read_requests(&mut socket, &mut buf).await {
                    let mut reply = Vec::new();
                    reply.extend_from_slice(&xid.to_be_bytes());
                    reply.extend_from_slice(&7i64.to_be_bytes());
                    reply.extend_from_slice(&0i32.to_be_bytes());
                    if op == OpCode::Ping.code() {
                        pings += 1;
                    } else {
                        // getChildren: one child named after the ping count.
                        let name = format!("pings-{pings}");
                        reply.extend_from_slice(&1i32.to_be_bytes());
                        reply.extend_from_slice(&(name.len() as i32).to_be_bytes());
                        reply.extend_from_slice(name.as_bytes());
                    }
                    if socket.write_all(&framed(&reply)).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await;
        let client = ZkClient::connect(&addr, Duration::from_secs(5)).await.unwrap();
        assert_eq!(client.session_timeout(), Duration::from_millis(600));
        assert_eq!(client.session_id(), 0x42);
        // Idle for 3.5 ping intervals (200 ms each): the session survives
        // because the driver pinged.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let children = client.get_children("/x", false).await.unwrap();
        let pings: u32 = children[0].strip_prefix("pings-").unwrap().parse().unwrap();
        assert!(pings >= 2, "only {pings} pings in 700 ms");
    }

    #[tokio::test]
    async fn silent_server_is_a_connection_loss() {
        let addr = fake_server(300, |mut socket| async move {
            let mut sink = BytesMut::new();
            while socket.read_buf(&mut sink).await.unwrap_or(0) > 0 {
                sink.clear();
            }
        })
        .await;
        let mut client = ZkClient::connect(&addr, Duration::from_secs(5)).await.unwrap();
        let err = timeout(Duration::from_secs(5), client.get_children("/x", true))
            .await
            .expect("the driver must give up on a silent server")
            .unwrap_err();
        assert!(err.is_connection_error(), "{err}");
        assert!(err.to_string().contains("no reply"), "{err}");
        assert!(client.next_event().await.is_err());
    }

    #[tokio::test]
    async fn garbage_from_the_server_is_an_error_not_a_panic() {
        for garbage in [
            framed(&[1, 2, 3]),                                         // reply header cut short
            i32::MAX.to_be_bytes().to_vec(),                            // absurd frame length
            (-5i32).to_be_bytes().to_vec(),                             // negative frame length
            framed(&[0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // unknown xid
        ] {
            let addr = fake_server(10_000, move |mut socket| async move {
                let mut buf = BytesMut::new();
                read_requests(&mut socket, &mut buf).await;
                let _ = socket.write_all(&garbage).await;
                let mut sink = [0; 64];
                while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
            })
            .await;
            let mut client = ZkClient::connect(&addr, Duration::from_secs(5)).await.unwrap();
            let err = client.get_data("/x", false).await.unwrap_err();
            assert!(err.is_connection_error(), "{err}");
            let event = client.next_event().await.unwrap_err();
            assert!(matches!(event, ZkError::Decode { .. } | ZkError::ConnectionLoss { .. }), "{event}");
        }
    }

    #[tokio::test]
    async fn expired_session_at_handshake() {
        let addr = fake_server(0, |_socket| async move {}).await;
        let err = ZkClient::connect(&addr, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ZkError::SessionExpired { .. }), "{err}");
    }
}
