//! Errors of the Mesos clients. Each names what it was doing and with whom.

use crate::recordio::RecordIoError;
use crate::zk::ZkError;

/// An error from the scheduler or operator client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The master answered with a non-success status. `message` is the body
    /// Mesos sends, e.g. "Framework cannot be found".
    #[error("{url}: HTTP {status}: {message}")]
    Status { url: String, status: u16, message: String },
    /// 307 from a master that is not the leader, when not followed.
    #[error("{url}: not the leading master (redirect to {location})")]
    NotLeader { url: String, location: String },
    /// Connect, TLS or read failure.
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: {source}")]
    RecordIo {
        url: String,
        #[source]
        source: RecordIoError,
    },
    /// A body or record that is not the JSON the API promises. `snippet` is
    /// the start of the offending bytes, for the log.
    #[error("{what}: invalid JSON: {source} (at {snippet:?})")]
    Json {
        what: String,
        snippet: String,
        #[source]
        source: serde_json::Error,
    },
    /// The master ended the event stream without an error.
    #[error("{0}: the master closed the stream")]
    StreamClosed(String),
    /// A call that needs a subscription while there is none.
    #[error("not subscribed to a master (the subscription is being re-established)")]
    NotSubscribed,
    /// The master refused or removed the framework (ERROR event).
    #[error("the master ended the subscription: {0}")]
    FrameworkRemoved(String),
    #[error("no leading master found: {0}")]
    NoLeader(String),
    #[error(transparent)]
    ZooKeeper(#[from] ZkError),
    /// An acknowledgement that cannot be made (no uuid, no agent id).
    #[error(transparent)]
    Ack(#[from] crate::subscription::AckError),
    /// Bad client configuration: a master URL, a CA file.
    #[error("configuration: {0}")]
    Config(String),
    /// The client's driver task has stopped.
    #[error("the client has shut down")]
    Closed,
}

impl Error {
    /// The HTTP status the master answered, if that is what failed.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn json(what: impl Into<String>, bytes: &[u8], source: serde_json::Error) -> Self {
        let end = bytes.len().min(120);
        Error::Json { what: what.into(), snippet: String::from_utf8_lossy(&bytes[..end]).into_owned(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its sources, `: `-separated: reqwest's own message leaves
/// out the cause (refused, timed out, a TLS failure). A cause whose text is
/// already in the message is not repeated.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
