//! ZooKeeper's wire format ("jute"), sans-IO.
//!
//! Only the handful of packets that leader detection (and its tests) need:
//! the session handshake, `create`, `delete`, `exists`, `getData`,
//! `getChildren`, `ping`, `closeSession`, `auth`, and watch notifications.
//!
//! Everything here is a pure function over byte buffers so that it can be
//! unit-tested with hand-built packets and so that bytes from the network can
//! never panic the process: every decoder checks lengths before it reads or
//! allocates, and reports what it was decoding when the bytes ran out.
//!
//! Jute encodes integers big-endian, booleans as one byte, strings and
//! buffers as an `i32` length (`-1` for null) followed by the bytes, and
//! vectors as an `i32` count followed by the items. On a TCP connection every
//! packet is prefixed with its `i32` length.

use bytes::{Buf, BytesMut};

/// Largest packet accepted from (or sent to) a server. ZooKeeper's own
/// default `jute.maxbuffer` is 1 MiB of node data; 16 MiB leaves room for big
/// child lists while stopping a corrupt length prefix from making us
/// allocate gigabytes.
pub const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Reserved transaction ids. Replies carry the xid of their request, except
/// watch notifications which the server pushes unprompted.
pub mod xid {
    /// Watch notification (server push).
    pub const WATCH: i32 = -1;
    /// Ping request and its reply.
    pub const PING: i32 = -2;
    /// Authentication request and its reply.
    pub const AUTH: i32 = -4;
}

/// ZooKeeper error codes that callers branch on (see [`error_name`]).
pub mod code {
    /// The connection was lost (also used by clients locally).
    pub const CONNECTION_LOSS: i32 = -4;
    /// The node does not exist.
    pub const NO_NODE: i32 = -101;
    /// The node already exists.
    pub const NODE_EXISTS: i32 = -110;
    /// The session has expired.
    pub const SESSION_EXPIRED: i32 = -112;
    /// Authentication failed.
    pub const AUTH_FAILED: i32 = -115;
}

/// The request types this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// `create`.
    Create,
    /// `delete`.
    Delete,
    /// `exists`.
    Exists,
    /// `getData`.
    GetData,
    /// `getChildren` (the variant without a `Stat` in the reply).
    GetChildren,
    /// Keep-alive.
    Ping,
    /// End the session (removes its ephemeral nodes at once).
    CloseSession,
    /// `addAuth`.
    Auth,
}

impl OpCode {
    /// The numeric request type on the wire.
    pub fn code(self) -> i32 {
        match self {
            OpCode::Create => 1,
            OpCode::Delete => 2,
            OpCode::Exists => 3,
            OpCode::GetData => 4,
            OpCode::GetChildren => 8,
            OpCode::Ping => 11,
            OpCode::CloseSession => -11,
            OpCode::Auth => 100,
        }
    }

    /// A short name for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::GetChildren => "getChildren",
            OpCode::Ping => "ping",
            OpCode::CloseSession => "closeSession",
            OpCode::Auth => "auth",
        }
    }
}

/// The node flavours of `create`. Mesos masters use `EphemeralSequential`:
/// the node disappears with the master's session and the server-assigned
/// sequence number orders the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, name suffixed with a 10-digit sequence number.
    PersistentSequential,
    /// Ephemeral, name suffixed with a 10-digit sequence number.
    EphemeralSequential,
}

impl CreateMode {
    fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
        }
    }
}

/// Why bytes could not be decoded. The caller adds which server and which
/// packet; this says what inside the packet was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet ended before a field was complete.
    #[error("truncated {what}: needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length or count prefix was negative (other than `-1` for null).
    #[error("invalid length {len} for {what}")]
    BadLength {
        /// The field being read.
        what: &'static str,
        /// The length prefix found.
        len: i32,
    },
    /// A frame's length prefix is above [`MAX_PACKET`].
    #[error("packet of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// A string was not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Builds one length-prefixed packet. The prefix is patched in at the end so
/// the body is written only once.
struct Packet(Vec<u8>);

impl Packet {
    fn new() -> Self {
        Packet(vec![0; 4])
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }
    fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.i32(len_i32(v.len()));
        self.0.extend_from_slice(v);
        self
    }
    fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }
    fn finish(mut self) -> Vec<u8> {
        let len = len_i32(self.0.len() - 4);
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

/// Lengths we encode come from paths and node data the caller chose; a
/// value beyond `i32::MAX` would be rejected by any server, so saturate
/// rather than wrap into a negative (null) length.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The session handshake, the first packet on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// Highest zxid this client has seen (0 for a new session).
    pub last_zxid_seen: i64,
    /// Requested session timeout; the server clamps it to its own bounds.
    pub timeout_ms: i32,
    /// 0 asks for a new session.
    pub session_id: i64,
    /// Session password (16 zero bytes for a new session).
    pub passwd: Vec<u8>,
    /// Whether a read-only server is acceptable.
    pub read_only: bool,
}

impl ConnectRequest {
    /// A request for a brand-new session.
    pub fn new_session(timeout_ms: i32) -> Self {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        }
    }

    /// The length-prefixed packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Packet::new();
        p.i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.passwd)
            .bool(self.read_only);
        p.finish()
    }
}

/// The server's answer to [`ConnectRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// The server's protocol version.
    pub protocol_version: i32,
    /// Negotiated session timeout; 0 means the session has expired.
    pub timeout_ms: i32,
    /// The session id.
    pub session_id: i64,
    /// Session password, needed only to resume the session elsewhere.
    pub passwd: Vec<u8>,
    /// Whether the server is read-only (absent from pre-3.4 servers).
    pub read_only: bool,
}

impl ConnectResponse {
    /// Decodes the body of the handshake reply (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        Ok(ConnectResponse {
            protocol_version: r.i32("protocolVersion")?,
            timeout_ms: r.i32("timeOut")?,
            session_id: r.i64("sessionId")?,
            passwd: r.buffer("passwd")?,
            // Older servers omit the flag; it is optional on the wire.
            read_only: if r.remaining() > 0 { r.bool("readOnly")? } else { false },
        })
    }
}

/// One request after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// List the children of `path`, optionally leaving a child watch.
    GetChildren {
        /// Node path.
        path: &'a str,
        /// Leave a one-shot watch for child changes.
        watch: bool,
    },
    /// Read the data of `path`, optionally leaving a data watch.
    GetData {
        /// Node path.
        path: &'a str,
        /// Leave a one-shot watch for data changes and deletion.
        watch: bool,
    },
    /// Stat `path`; with `watch` the watch is left even if the node is
    /// absent, which is how one waits for a node to be created.
    Exists {
        /// Node path.
        path: &'a str,
        /// Leave a one-shot watch for creation, deletion or data changes.
        watch: bool,
    },
    /// Create a node readable and writable by anyone (`world:anyone`).
    Create {
        /// Node path (the prefix, for sequential nodes).
        path: &'a str,
        /// Node data.
        data: &'a [u8],
        /// Node flavour.
        mode: CreateMode,
    },
    /// Delete `path` if its version matches (`-1` matches any version).
    Delete {
        /// Node path.
        path: &'a str,
        /// Expected version, `-1` for any.
        version: i32,
    },
    /// Keep-alive; uses the reserved xid [`xid::PING`].
    Ping,
    /// End the session.
    CloseSession,
    /// Add credentials to the session; uses the reserved xid [`xid::AUTH`].
    Auth {
        /// Auth scheme, e.g. `digest`.
        scheme: &'a str,
        /// Scheme-specific bytes, e.g. `user:password` for `digest`.
        auth: &'a [u8],
    },
}

/// `perms` of an ACL entry granting everything (READ|WRITE|CREATE|DELETE|ADMIN).
const PERMS_ALL: i32 = 31;

impl Request<'_> {
    /// The request type.
    pub fn op(&self) -> OpCode {
        match self {
            Request::GetChildren { .. } => OpCode::GetChildren,
            Request::GetData { .. } => OpCode::GetData,
            Request::Exists { .. } => OpCode::Exists,
            Request::Create { .. } => OpCode::Create,
            Request::Delete { .. } => OpCode::Delete,
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
            Request::Auth { .. } => OpCode::Auth,
        }
    }

    /// The path the request is about, for error messages.
    pub fn path(&self) -> &str {
        match self {
            Request::GetChildren { path, .. }
            | Request::GetData { path, .. }
            | Request::Exists { path, .. }
            | Request::Create { path, .. }
            | Request::Delete { path, .. } => path,
            Request::Ping | Request::CloseSession | Request::Auth { .. } => "",
        }
    }

    /// The xid this request must use, if the protocol reserves one.
    pub fn reserved_xid(&self) -> Option<i32> {
        match self {
            Request::Ping => Some(xid::PING),
            Request::Auth { .. } => Some(xid::AUTH),
            _ => None,
        }
    }

    /// The length-prefixed packet: `RequestHeader { xid, type }` then the
    /// body. `xid` is ignored for requests with a [`Self::reserved_xid`].
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let mut p = Packet::new();
        p.i32(self.reserved_xid().unwrap_or(xid)).i32(self.op().code());
        match *self {
            Request::GetChildren { path, watch }
            | Request::GetData { path, watch }
            | Request::Exists { path, watch } => {
                p.string(path).bool(watch);
            }
            Request::Create { path, data, mode } => {
                p.string(path).buffer(data);
                // vector<ACL> with one entry: world:anyone, all permissions.
                p.i32(1).i32(PERMS_ALL).string("world").string("anyone");
                p.i32(mode.flags());
            }
            Request::Delete { path, version } => {
                p.string(path).i32(version);
            }
            Request::Ping | Request::CloseSession => {}
            Request::Auth { scheme, auth } => {
                p.i32(0).string(scheme).buffer(auth);
            }
        }
        p.finish()
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Splits one complete frame off the front of `buf`, if it holds one.
///
/// Returns `Ok(None)` when more bytes are needed; the caller reads more and
/// calls again. A negative or oversized length prefix is an error, reported
/// before anything is allocated for the body.
pub fn take_frame(buf: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::try_from(len).map_err(|_| DecodeError::BadLength { what: "packet length", len })?;
    if len > MAX_PACKET {
        return Err(DecodeError::TooLarge { len: len as i64, max: MAX_PACKET });
    }
    if buf.len() < 4 + len {
        // Reserve once so a large frame is not read in many small growths.
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len)))
}

/// Header of every reply after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid, or one of the reserved [`xid`]s.
    pub xid: i32,
    /// The zxid the server had when it answered.
    pub zxid: i64,
    /// 0 on success, else a ZooKeeper error code (see [`error_name`]).
    pub err: i32,
}

/// Size of an encoded [`ReplyHeader`].
const REPLY_HEADER_LEN: usize = 16;

impl ReplyHeader {
    /// Decodes the header at the start of a reply body and returns it with
    /// the rest of the body.
    pub fn decode(body: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let mut r = Reader::new(body);
        let header = ReplyHeader {
            xid: r.i32("ReplyHeader.xid")?,
            zxid: r.i64("ReplyHeader.zxid")?,
            err: r.i32("ReplyHeader.err")?,
        };
        Ok((header, &body[REPLY_HEADER_LEN..]))
    }
}

/// A node's metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// zxid of the creation.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time (ms since the epoch).
    pub ctime: i64,
    /// Last modification time (ms since the epoch).
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Session owning the node if ephemeral, else 0.
    pub ephemeral_owner: i64,
    /// Length of the data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child change.
    pub pzxid: i64,
}

impl Stat {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.i64("Stat.czxid")?,
            mzxid: r.i64("Stat.mzxid")?,
            ctime: r.i64("Stat.ctime")?,
            mtime: r.i64("Stat.mtime")?,
            version: r.i32("Stat.version")?,
            cversion: r.i32("Stat.cversion")?,
            aversion: r.i32("Stat.aversion")?,
            ephemeral_owner: r.i64("Stat.ephemeralOwner")?,
            data_length: r.i32("Stat.dataLength")?,
            num_children: r.i32("Stat.numChildren")?,
            pzxid: r.i64("Stat.pzxid")?,
        })
    }

    /// Decodes an `exists` (or `setData`) reply body.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Stat::read(&mut Reader::new(body))
    }
}

/// Decodes a `getChildren` reply body: the children's names (not paths).
pub fn decode_children(body: &[u8]) -> Result<Vec<String>, DecodeError> {
    let mut r = Reader::new(body);
    let count = r.count("children")?;
    // Every name takes at least its 4-byte length, so the remaining bytes
    // bound the count: a lying count cannot make us allocate more.
    let mut children = Vec::with_capacity(count.min(r.remaining() / 4));
    for _ in 0..count {
        children.push(r.string("child name")?);
    }
    Ok(children)
}

/// Decodes a `getData` reply body.
pub fn decode_data(body: &[u8]) -> Result<(Vec<u8>, Stat), DecodeError> {
    let mut r = Reader::new(body);
    let data = r.buffer("data")?;
    Ok((data, Stat::read(&mut r)?))
}

/// Decodes a `create` reply body: the created path (with the sequence
/// suffix for sequential nodes).
pub fn decode_created_path(body: &[u8]) -> Result<String, DecodeError> {
    Reader::new(body).string("created path")
}

/// What a watch notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A session state change, not about a node.
    None,
    /// The watched node was created.
    NodeCreated,
    /// The watched node was deleted.
    NodeDeleted,
    /// The watched node's data changed.
    NodeDataChanged,
    /// The watched node's children changed.
    NodeChildrenChanged,
    /// A type this client does not know (newer servers).
    Other(i32),
}

impl EventType {
    fn from_code(code: i32) -> Self {
        match code {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            other => EventType::Other(other),
        }
    }
}

/// A watch notification (a reply with xid [`xid::WATCH`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub kind: EventType,
    /// Session state (3 = connected) when it happened.
    pub state: i32,
    /// The watched path.
    pub path: String,
}

impl WatchedEvent {
    /// Decodes the body of a watch notification (after the reply header).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        Ok(WatchedEvent {
            kind: EventType::from_code(r.i32("WatcherEvent.type")?),
            state: r.i32("WatcherEvent.state")?,
            path: r.string("WatcherEvent.path")?,
        })
    }
}

/// The name of a ZooKeeper error code, for messages.
pub fn error_name(code: i32) -> &'static str {
    match code {
        0 => "Ok",
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -124 => "SessionClosedRequireSaslAuth",
        -125 => "QuotaExceeded",
        -127 => "Throttled",
        _ => "Unknown",
    }
}

/// A cursor over one packet that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated { what, needed: n, available: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let b = self.take(what, 4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let b = self.take(what, 8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.take(what, 1)?[0] != 0)
    }

    /// A length or count prefix; `-1` (null) reads as 0.
    fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        match self.i32(what)? {
            -1 => Ok(0),
            len => usize::try_from(len).map_err(|_| DecodeError::BadLength { what, len }),
        }
    }

    /// A buffer; null reads as empty.
    fn buffer(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.count(what)?;
        Ok(self.take(what, len)?.to_vec())
    }

    /// A ustring; null reads as empty.
    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = self.count(what)?;
        let bytes = self.take(what, len)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8 { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-encodes jute values for reply fixtures.
    fn be32(v: i32) -> [u8; 4] {
        v.to_be_bytes()
    }

    fn ustring(s: &str) -> Vec<u8> {
        let mut v = be32(s.len() as i32).to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn reply_header(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
        let mut v = be32(xid).to_vec();
        v.extend_from_slice(&zxid.to_be_bytes());
        v.extend_from_slice(&be32(err));
        v
    }

    fn stat_bytes() -> Vec<u8> {
        let mut v = Vec::new();
        for x in [1i64, 2, 3, 4] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for x in [5i32, 6, 7] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&8i64.to_be_bytes());
        for x in [9i32, 10] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&11i64.to_be_bytes());
        v
    }

    #[test]
    fn connect_request_layout() {
        let bytes = ConnectRequest::new_session(10_000).encode();
        // 4 len + 4 version + 8 zxid + 4 timeout + 8 session + 4+16 passwd + 1 ro
        assert_eq!(bytes.len(), 4 + 44 + 1);
        assert_eq!(&bytes[..4], &be32(45));
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(&bytes[16..20], &be32(10_000));
        assert_eq!(&bytes[28..32], &be32(16));
        assert_eq!(&bytes[32..48], &[0; 16]);
        assert_eq!(bytes[48], 0);
    }

    #[test]
    fn connect_response_with_and_without_read_only_flag() {
        let mut body = be32(0).to_vec();
        body.extend_from_slice(&be32(6000));
        body.extend_from_slice(&0x0123_4567_89ab_cdefi64.to_be_bytes());
        body.extend_from_slice(&be32(2));
        body.extend_from_slice(&[7, 8]);
        let old = ConnectResponse::decode(&body).unwrap();
        assert_eq!(old.timeout_ms, 6000);
        assert_eq!(old.session_id, 0x0123_4567_89ab_cdef);
        assert_eq!(old.passwd, vec![7, 8]);
        assert!(!old.read_only);
        body.push(1);
        assert!(ConnectResponse::decode(&body).unwrap().read_only);
        // Cut inside the password.
        assert!(matches!(
            ConnectResponse::decode(&body[..body.len() - 2]),
            Err(DecodeError::Truncated { what: "passwd", .. })
        ));
    }

    #[test]
    fn get_children_request_layout() {
        let bytes = Request::GetChildren { path: "/mesos", watch: true }.encode(7);
        let mut want = be32(4 + 4 + 4 + 6 + 1).to_vec();
        want.extend_from_slice(&be32(7));
        want.extend_from_slice(&be32(8));
        want.extend_from_slice(&ustring("/mesos"));
        want.push(1);
        assert_eq!(bytes, want);
    }

    #[test]
    fn create_request_layout() {
        let bytes =
            Request::Create { path: "/m/json.info_", data: b"{}", mode: CreateMode::EphemeralSequential }.encode(3);
        let mut want = Vec::new();
        want.extend_from_slice(&be32(3));
        want.extend_from_slice(&be32(1));
        want.extend_from_slice(&ustring("/m/json.info_"));
        want.extend_from_slice(&be32(2));
        want.extend_from_slice(b"{}");
        want.extend_from_slice(&be32(1));
        want.extend_from_slice(&be32(31));
        want.extend_from_slice(&ustring("world"));
        want.extend_from_slice(&ustring("anyone"));
        want.extend_from_slice(&be32(3));
        assert_eq!(&bytes[..4], &be32(want.len() as i32));
        assert_eq!(&bytes[4..], &want[..]);
    }

    #[test]
    fn reserved_xids_override_the_given_one() {
        let ping = Request::Ping.encode(42);
        assert_eq!(ping, [be32(8), be32(-2), be32(11)].concat());
        let auth = Request::Auth { scheme: "digest", auth: b"u:p" }.encode(42);
        let mut want = [be32(-4), be32(100), be32(0)].concat();
        want.extend_from_slice(&ustring("digest"));
        want.extend_from_slice(&ustring("u:p"));
        assert_eq!(&auth[4..], &want[..]);
        let close = Request::CloseSession.encode(9);
        assert_eq!(close, [be32(8), be32(9), be32(-11)].concat());
        let delete = Request::Delete { path: "/a", version: -1 }.encode(5);
        let mut want = [be32(5), be32(2)].concat();
        want.extend_from_slice(&ustring("/a"));
        want.extend_from_slice(&be32(-1));
        assert_eq!(&delete[4..], &want[..]);
    }

    #[test]
    fn decode_get_children_reply() {
        let mut body = reply_header(7, 99, 0);
        body.extend_from_slice(&be32(3));
        for name in ["info_0000000000", "json.info_0000000001", "log_replicas"] {
            body.extend_from_slice(&ustring(name));
        }
        let (header, rest) = ReplyHeader::decode(&body).unwrap();
        assert_eq!(header, ReplyHeader { xid: 7, zxid: 99, err: 0 });
        assert_eq!(decode_children(rest).unwrap(), vec!["info_0000000000", "json.info_0000000001", "log_replicas"]);
    }

    #[test]
    fn decode_get_data_and_exists_replies() {
        let mut body = be32(5).to_vec();
        body.extend_from_slice(b"hello");
        body.extend_from_slice(&stat_bytes());
        let (data, stat) = decode_data(&body).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(stat.czxid, 1);
        assert_eq!(stat.version, 5);
        assert_eq!(stat.ephemeral_owner, 8);
        assert_eq!(stat.num_children, 10);
        assert_eq!(stat.pzxid, 11);
        assert_eq!(Stat::decode(&stat_bytes()).unwrap(), stat);
        // Null data reads as empty.
        let mut null = be32(-1).to_vec();
        null.extend_from_slice(&stat_bytes());
        assert_eq!(decode_data(&null).unwrap().0, b"");
        // The stat cut short.
        assert!(matches!(decode_data(&body[..body.len() - 3]), Err(DecodeError::Truncated { what: "Stat.pzxid", .. })));
    }

    #[test]
    fn decode_watch_event() {
        let mut body = reply_header(xid::WATCH, -1, 0);
        body.extend_from_slice(&be32(4));
        body.extend_from_slice(&be32(3));
        body.extend_from_slice(&ustring("/mesos"));
        let (header, rest) = ReplyHeader::decode(&body).unwrap();
        assert_eq!(header.xid, xid::WATCH);
        assert_eq!(
            WatchedEvent::decode(rest).unwrap(),
            WatchedEvent { kind: EventType::NodeChildrenChanged, state: 3, path: "/mesos".into() }
        );
    }

    #[test]
    fn decode_created_path_reply() {
        assert_eq!(decode_created_path(&ustring("/m/json.info_0000000004")).unwrap(), "/m/json.info_0000000004");
    }

    #[test]
    fn truncated_and_lying_inputs_are_errors() {
        assert!(matches!(
            ReplyHeader::decode(&[0, 0, 0, 1, 0]),
            Err(DecodeError::Truncated { what: "ReplyHeader.zxid", .. })
        ));
        // A count of two billion children with 4 bytes behind it.
        let mut lying = be32(i32::MAX).to_vec();
        lying.extend_from_slice(&be32(0));
        assert!(matches!(decode_children(&lying), Err(DecodeError::Truncated { .. })));
        // A string length longer than the packet.
        assert!(matches!(
            decode_created_path(&[0, 0, 1, 0, b'/']),
            Err(DecodeError::Truncated { what: "created path", needed: 256, available: 1 })
        ));
        // Negative lengths other than -1.
        assert_eq!(decode_created_path(&be32(-7)), Err(DecodeError::BadLength { what: "created path", len: -7 }));
        // Invalid UTF-8.
        assert!(matches!(decode_created_path(&[0, 0, 0, 1, 0xff]), Err(DecodeError::InvalidUtf8 { .. })));
        assert!(decode_children(&[]).is_err());
        assert!(WatchedEvent::decode(&be32(4)).is_err());
    }

    #[test]
    fn frames_split_incrementally_and_reject_bad_lengths() {
        let mut buf = BytesMut::new();
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[0, 0, 0, 3, b'a']);
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"bc");
        buf.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        assert_eq!(&take_frame(&mut buf).unwrap().unwrap()[..], b"abc");
        assert_eq!(&take_frame(&mut buf).unwrap().unwrap()[..], b"");
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 2);

        let mut huge = BytesMut::from(&be32(MAX_PACKET as i32 + 1)[..]);
        assert!(matches!(take_frame(&mut huge), Err(DecodeError::TooLarge { .. })));
        let mut negative = BytesMut::from(&be32(-1)[..]);
        assert!(matches!(take_frame(&mut negative), Err(DecodeError::BadLength { .. })));
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(code::NO_NODE), "NoNode");
        assert_eq!(error_name(code::SESSION_EXPIRED), "SessionExpired");
        assert_eq!(error_name(-9999), "Unknown");
    }
}
