//! `FakeMaster`: a protocol test double of a Mesos 1.11 master's scheduler
//! endpoint, on a real loopback socket. It is not a master: it allocates
//! nothing. It answers SUBSCRIBE from a script (redirect, status, or a chunked
//! RecordIO stream whose bytes the test pushes chunk by chunk) and checks calls
//! the way `src/master/http.cpp` does (Content-Type, `Mesos-Stream-Id`),
//! answering with Mesos's own status codes and messages.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;

/// What the next SUBSCRIBE gets.
pub enum Reply {
    /// 307 with this `Location` (Mesos sends `//host:port/path`).
    Redirect(String),
    /// A plain status with a text body.
    Status(u16, &'static str),
    /// 200 with this stream id; the body is whatever the test pushes.
    Stream(&'static str),
}

/// A call the double received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: serde_json::Value,
    pub stream_id: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    /// Sender of the open stream's body, and its id.
    stream: Option<(String, mpsc::UnboundedSender<Option<Bytes>>)>,
    subscribes: Vec<Received>,
    calls: Vec<Received>,
    /// `Some(status)` to refuse every non-SUBSCRIBE call with it.
    refuse_calls: Option<u16>,
}

#[derive(Clone)]
pub struct FakeMaster {
    inner: Arc<Mutex<Inner>>,
    pub addr: std::net::SocketAddr,
    opened: Arc<tokio::sync::Notify>,
}

impl FakeMaster {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let master = FakeMaster {
            inner: Arc::new(Mutex::new(Inner::default())),
            addr,
            opened: Arc::new(tokio::sync::Notify::new()),
        };
        let app = Router::new()
            .route("/api/v1/scheduler", post(scheduler))
            .route("/master/api/v1/scheduler", post(scheduler))
            .with_state(master.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        master
    }

    /// `host:port` of this double.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn script(&self, reply: Reply) {
        self.inner.lock().unwrap().script.push_back(reply);
    }

    /// Sends raw bytes as one HTTP chunk on the open stream.
    pub fn push(&self, bytes: impl Into<Vec<u8>>) {
        let inner = self.inner.lock().unwrap();
        let (_, tx) = inner.stream.as_ref().expect("no open stream");
        let _ = tx.send(Some(Bytes::from(bytes.into())));
    }

    /// Sends one event as a RecordIO record, in one chunk.
    pub fn push_event(&self, event: &serde_json::Value) {
        self.push(record(event));
    }

    /// Ends the open stream (the chunked body terminates).
    pub fn close_stream(&self) {
        let mut inner = self.inner.lock().unwrap();
        if let Some((_, tx)) = inner.stream.take() {
            let _ = tx.send(None);
        }
    }

    /// Waits until a SUBSCRIBE opened a stream, and returns how many were received.
    pub async fn wait_stream(&self) -> usize {
        loop {
            let notified = self.opened.notified();
            {
                let inner = self.inner.lock().unwrap();
                if inner.stream.is_some() {
                    return inner.subscribes.len();
                }
            }
            tokio::time::timeout(std::time::Duration::from_secs(20), notified)
                .await
                .expect("the client did not subscribe within 20 s");
        }
    }

    pub fn subscribes(&self) -> Vec<Received> {
        self.inner.lock().unwrap().subscribes.clone()
    }

    pub fn calls(&self) -> Vec<Received> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Forgets the open stream's id, as a master does after a newer SUBSCRIBE.
    pub fn rotate_stream_id(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some((sid, _)) = inner.stream.as_mut() {
            *sid = id.to_owned();
        }
    }

    pub fn refuse_calls(&self, status: Option<u16>) {
        self.inner.lock().unwrap().refuse_calls = status;
    }
}

/// One RecordIO record holding `event` as JSON.
pub fn record(event: &serde_json::Value) -> Vec<u8> {
    let json = serde_json::to_vec(event).unwrap();
    let mut out = format!("{}\n", json.len()).into_bytes();
    out.extend_from_slice(&json);
    out
}

pub fn subscribed(framework_id: &str, heartbeat: f64) -> serde_json::Value {
    serde_json::json!({
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": {"value": framework_id},
            "heartbeat_interval_seconds": heartbeat,
            "master_info": {"id": "m1", "ip": 16777343, "port": 5050, "hostname": "localhost", "version": "1.11.0"}
        }
    })
}

async fn scheduler(State(master): State<FakeMaster>, headers: HeaderMap, body: Bytes) -> Response {
    let text = |status: u16, msg: &str| {
        (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.to_owned())
            .into_response()
    };
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => return text(400, "Expecting 'Content-Type' to be present"),
        Some(ct) if !ct.starts_with("application/json") => {
            return text(415, "Expecting 'Content-Type' of application/json or application/x-protobuf");
        }
        _ => {}
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return text(400, "Failed to parse body into Call protobuf");
    };
    let received = Received {
        body: json.clone(),
        stream_id: headers.get("Mesos-Stream-Id").map(|v| v.to_str().unwrap().to_owned()),
        authorization: headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned()),
    };
    let mut inner = master.inner.lock().unwrap();
    if json["type"] == "SUBSCRIBE" {
        if received.stream_id.is_some() {
            return text(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header");
        }
        inner.subscribes.push(received);
        let reply = inner.script.pop_front().unwrap_or(Reply::Status(503, "No script left"));
        match reply {
            Reply::Redirect(location) => {
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
            }
            Reply::Status(status, msg) => text(status, msg),
            Reply::Stream(id) => {
                let (tx, rx) = mpsc::unbounded_channel::<Option<Bytes>>();
                // A new subscription closes the old one, as on a real master.
                if let Some((_, old)) = inner.stream.replace((id.to_owned(), tx)) {
                    let _ = old.send(None);
                }
                master.opened.notify_waiters();
                let body = futures_util::stream::unfold(rx, |mut rx| async move {
                    match rx.recv().await {
                        Some(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), rx)),
                        _ => None,
                    }
                });
                Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("Mesos-Stream-Id", id)
                    .body(Body::from_stream(body))
                    .unwrap()
            }
        }
    } else {
        inner.calls.push(received.clone());
        let Some(stream_id) = received.stream_id else {
            return text(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header");
        };
        match &inner.stream {
            Some((current, _)) if *current == stream_id => {}
            Some((current, _)) => {
                return text(
                    400,
                    &format!(
                        "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {current}"
                    ),
                );
            }
            None => return text(403, "Framework is not subscribed"),
        }
        if let Some(status) = inner.refuse_calls {
            return text(status, "refused by the test");
        }
        StatusCode::ACCEPTED.into_response()
    }
}
