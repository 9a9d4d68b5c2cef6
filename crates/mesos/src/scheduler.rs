//! The async scheduler client: a thin tokio driver around
//! [`Subscription`].
//!
//! [`Scheduler::start`] spawns one driver task that owns the subscription
//! connection: it subscribes (following 307 redirects to the leader, backing off
//! on 503 and connection failures), decodes the RecordIO stream into typed
//! events, runs the heartbeat watchdog, resubscribes with the framework id after
//! any break, and sends acknowledgements until the master confirms them.
//!
//! Calls do not go through the driver: a [`SchedulerHandle`] posts them itself on
//! a separate connection with the current `Mesos-Stream-Id`, so a slow consumer
//! of events can never deadlock against its own calls.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mesos::error::Error> {
//! use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
//! use mesos::v1::FrameworkInfo;
//! use mesos::v1::scheduler::{CallKind, Decline, Event};
//!
//! let info = FrameworkInfo { user: "root".into(), name: "demo".into(), ..Default::default() };
//! let mut scheduler = Scheduler::start(SchedulerConfig::new("127.0.0.1:5050", info))?;
//! while let Some(event) = scheduler.next().await {
//!     match event? {
//!         SchedulerEvent::Event(Event::Offers(offers)) => {
//!             let offer_ids = offers.offers.iter().map(|o| o.id.clone()).collect();
//!             scheduler.handle().call(CallKind::Decline(Decline { offer_ids, filters: None })).await?;
//!         }
//!         SchedulerEvent::Event(Event::Update(update)) => scheduler.handle().acknowledge(&update.status)?,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::master::Masters;
use crate::recordio::{DEFAULT_MAX_RECORD_LEN, Decoder};
use crate::subscription::{AckError, Output, Retry, Subscription, SubscriptionConfig};
use crate::transport::TransportConfig;
use crate::v1::scheduler::{Call, CallKind, Event};
use crate::v1::{FrameworkId, FrameworkInfo, MasterInfo, TaskStatus};

/// The scheduler endpoint, relative to a master's base URL.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";

/// Header carrying the subscription's stream id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// How long to wait for ZooKeeper to name a leader before backing off.
const LEADER_DETECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Events buffered for a slow consumer before the driver stops reading the
/// stream (TCP then pushes back on the master).
const EVENT_BUFFER: usize = 256;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// `host:port`, a comma-separated list, `http(s)://...`, or `zk://.../mesos`.
    pub master: String,
    /// Use https for masters given without a scheme (MESOS_SSL).
    pub tls: bool,
    pub transport: TransportConfig,
    pub subscription: SubscriptionConfig,
    pub max_record_len: usize,
}

impl SchedulerConfig {
    pub fn new(master: impl Into<String>, framework_info: FrameworkInfo) -> Self {
        let mut subscription = SubscriptionConfig::new(framework_info);
        subscription.seed = seed();
        SchedulerConfig {
            master: master.into(),
            tls: false,
            transport: TransportConfig::default(),
            subscription,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
        }
    }
}

/// What the scheduler reports to the application.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent {
    /// Subscribed (again, after a failover, when `resubscribed`). Outstanding
    /// offers from before are void; reconcile tasks now.
    Subscribed { framework_id: FrameworkId, master: String, master_info: Option<MasterInfo>, resubscribed: bool },
    /// An event from the master (SUBSCRIBED is reported as `Subscribed`).
    Event(Event),
    /// The subscription broke; a new one is under way.
    Disconnected { reason: String },
}

/// The running client: a stream of events plus a [`SchedulerHandle`] for calls.
/// Dropping it stops the driver (the master keeps the framework for its
/// failover_timeout).
pub struct Scheduler {
    events: mpsc::Receiver<Result<SchedulerEvent>>,
    handle: SchedulerHandle,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Scheduler {
    /// Validates the configuration and starts subscribing in the background.
    /// Must be called inside a tokio runtime.
    pub fn start(config: SchedulerConfig) -> Result<Self> {
        let masters = Masters::parse(&config.master, config.tls)?;
        let stream_client = config.transport.stream_client()?;
        let call_client = config.transport.call_client()?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            context: Mutex::new(CallContext::default()),
            client: call_client,
            transport: config.transport.clone(),
            acks: acks_tx,
        });
        let driver = Driver {
            sub: Subscription::new(config.subscription),
            masters,
            stream_client,
            shared: shared.clone(),
            events: events_tx,
            acks: acks_rx,
            max_record_len: config.max_record_len,
        };
        let driver = tokio::spawn(driver.run());
        Ok(Scheduler { events, handle: SchedulerHandle { shared }, driver })
    }

    /// The next event; `None` once the driver has stopped (after a fatal error,
    /// which is returned first).
    pub async fn next(&mut self) -> Option<Result<SchedulerEvent>> {
        self.events.recv().await
    }

    pub fn handle(&self) -> &SchedulerHandle {
        &self.handle
    }
}

/// Posts calls for the subscribed framework. Cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    shared: Arc<Shared>,
}

struct Shared {
    context: Mutex<CallContext>,
    client: reqwest::Client,
    transport: TransportConfig,
    acks: mpsc::UnboundedSender<TaskStatus>,
}

/// What every call needs from the current subscription.
#[derive(Debug, Clone, Default)]
struct CallContext {
    master: Option<String>,
    stream_id: Option<String>,
    framework_id: Option<FrameworkId>,
}

impl SchedulerHandle {
    /// Posts a call for the subscribed framework. Fails with
    /// [`Error::NotSubscribed`] between subscriptions, [`Error::Status`] with
    /// the master's status and message when refused.
    pub async fn call(&self, kind: CallKind) -> Result<()> {
        let context = self.shared.context.lock().expect("call context lock").clone();
        let (Some(master), Some(stream_id), Some(framework_id)) =
            (context.master, context.stream_id, context.framework_id)
        else {
            return Err(Error::NotSubscribed);
        };
        post_call(&self.shared.client, &self.shared.transport, &master, &stream_id, &Call::new(framework_id, kind))
            .await
    }

    /// Acknowledges a status update. Updates without a uuid need none (the
    /// call is then refused with the reason); acknowledgements are retried
    /// across resubscriptions until the master confirms them.
    pub fn acknowledge(&self, status: &TaskStatus) -> Result<(), AckError> {
        if status.uuid.is_none() {
            return Err(AckError::NoUuid(status.task_id.value.clone()));
        }
        if status.agent_id.is_none() {
            return Err(AckError::NoAgentId(status.task_id.value.clone()));
        }
        // The driver owns the pending acks; if it has stopped there is no
        // subscription to acknowledge on, and the agent will resend anyway.
        let _ = self.shared.acks.send(status.clone());
        Ok(())
    }

    /// The framework id, once subscribed.
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared.context.lock().expect("call context lock").framework_id.clone()
    }
}

async fn post_call(
    client: &reqwest::Client,
    transport: &TransportConfig,
    master: &str,
    stream_id: &str,
    call: &Call,
) -> Result<()> {
    let url = format!("{master}{SCHEDULER_PATH}");
    let body = serde_json::to_vec(call).expect("calls always serialize");
    let request = client
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .header(STREAM_ID_HEADER, stream_id)
        .body(body);
    let response =
        transport.authorize(request).send().await.map_err(|source| Error::Transport { url: url.clone(), source })?;
    check_status(&url, response).await.map(drop)
}

/// Turns a non-success response into [`Error::Status`] (or `NotLeader`),
/// keeping the master's message.
pub(crate) async fn check_status(url: &str, response: reqwest::Response) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::TEMPORARY_REDIRECT {
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        return Err(Error::NotLeader { url: url.to_owned(), location });
    }
    let message = response.text().await.unwrap_or_default().trim().to_owned();
    Err(Error::Status { url: url.to_owned(), status: status.as_u16(), message })
}

struct Driver {
    sub: Subscription,
    masters: Masters,
    stream_client: reqwest::Client,
    shared: Arc<Shared>,
    events: mpsc::Sender<Result<SchedulerEvent>>,
    acks: mpsc::UnboundedReceiver<TaskStatus>,
    max_record_len: usize,
}

/// An open subscription stream.
struct Stream {
    response: reqwest::Response,
    decoder: Decoder,
    url: String,
}

impl Driver {
    async fn run(mut self) {
        let mut stream: Option<Stream> = None;
        let mut in_flight = FuturesUnordered::new();
        loop {
            let now = Instant::now().into_std();
            while let Some(output) = self.sub.poll(now) {
                match output {
                    Output::Subscribe(call) => {
                        // Close any old stream before opening the new one.
                        drop(stream.take());
                        match self.subscribe(&call).await {
                            Ok(s) => stream = s,
                            Err(fatal) => {
                                let _ = self.events.send(Err(fatal)).await;
                                return;
                            }
                        }
                    }
                    Output::CloseStream { reason } => {
                        tracing::warn!(%reason, "closing the subscription stream");
                        stream = None;
                    }
                    Output::Send(call) => {
                        let CallKind::Acknowledge(ack) = &call.kind else { continue };
                        let uuid = ack.uuid.0.clone();
                        let context = self.context();
                        let shared = self.shared.clone();
                        in_flight.push(async move {
                            let (Some(master), Some(stream_id)) = (context.master, context.stream_id) else {
                                return (uuid, false, true);
                            };
                            match post_call(&shared.client, &shared.transport, &master, &stream_id, &call).await {
                                Ok(()) => (uuid, true, false),
                                // 4xx: the master will never accept this ack (unknown uuid, task gone).
                                Err(Error::Status { status, ref message, .. }) if (400..500).contains(&status) => {
                                    tracing::warn!(status, %message, "acknowledgement refused; dropping it");
                                    (uuid, false, false)
                                }
                                Err(_) => (uuid, false, true),
                            }
                        });
                    }
                    Output::Subscribed { framework_id, master_info, resubscribed } => {
                        let master = self.masters.peek().unwrap_or_default().to_owned();
                        tracing::info!(%framework_id, %master, resubscribed, "subscribed");
                        let event = SchedulerEvent::Subscribed { framework_id, master, master_info, resubscribed };
                        if self.events.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    Output::Disconnected { reason, retry_in } => {
                        tracing::warn!(%reason, ?retry_in, "subscription lost; resubscribing");
                        self.set_context(None);
                        if self.events.send(Ok(SchedulerEvent::Disconnected { reason })).await.is_err() {
                            return;
                        }
                    }
                    Output::Failed { message } => {
                        self.set_context(None);
                        let _ = self.events.send(Err(Error::FrameworkRemoved(message))).await;
                        return;
                    }
                }
            }

            let deadline = self.sub.poll_timeout().map(Instant::from_std);
            tokio::select! {
                biased;
                chunk = next_chunk(&mut stream) => {
                    let url = stream.as_ref().map(|s| s.url.clone()).unwrap_or_default();
                    if let Err(reason) = self.on_chunk(&mut stream, chunk, &url).await {
                        stream = None;
                        self.sub.handle_stream_ended(Instant::now().into_std(), reason.to_string());
                    }
                }
                Some((uuid, accepted, retry)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.sub.handle_ack_result(&uuid, accepted, retry);
                }
                status = self.acks.recv() => {
                    let Some(status) = status else { continue };
                    if let Err(e) = self.sub.acknowledge(&status) {
                        tracing::debug!(error = %e, "acknowledgement not needed");
                    }
                }
                _ = sleep_until(deadline) => {
                    self.sub.handle_timeout(Instant::now().into_std());
                }
                _ = self.events.closed() => return,
            }
        }
    }

    /// Feeds one read of the stream; an `Err` is why the stream must end.
    async fn on_chunk(
        &mut self,
        stream: &mut Option<Stream>,
        chunk: reqwest::Result<Option<bytes::Bytes>>,
        url: &str,
    ) -> Result<(), Error> {
        let Some(s) = stream.as_mut() else { return Ok(()) };
        let url = url.to_owned();
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(match s.decoder.finish() {
                    Ok(()) => Error::StreamClosed(url),
                    Err(source) => Error::RecordIo { url, source },
                });
            }
            Err(source) => return Err(Error::Transport { url, source }),
        };
        s.decoder.feed(&bytes);
        loop {
            let record = match s.decoder.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(()),
                Err(source) => return Err(Error::RecordIo { url, source }),
            };
            let event: Event = match serde_json::from_slice(&record) {
                Ok(event) => event,
                Err(e) => return Err(Error::json(format!("{url}: event"), &record, e)),
            };
            let now = Instant::now().into_std();
            self.sub.handle_event(now, &event);
            match &event {
                Event::Subscribed(_) => {
                    self.set_context(Some(s.response.headers().get(STREAM_ID_HEADER).and_then(|v| v.to_str().ok())));
                    // Reported through Output::Subscribed, in order.
                    continue;
                }
                Event::Unknown { type_name } => {
                    tracing::warn!(%type_name, "event type unknown to this build; passing it on");
                }
                _ => {}
            }
            if !self.sub.is_subscribed() {
                // ERROR or a protocol violation: the state machine has decided.
                return Ok(());
            }
            if self.events.send(Ok(SchedulerEvent::Event(event))).await.is_err() {
                return Ok(());
            }
        }
    }

    /// One SUBSCRIBE attempt: `Ok(Some)` with the stream, `Ok(None)` when it
    /// failed in a way worth retrying (the state machine has the deadline), `Err`
    /// when no retry can help (4xx: bad credentials, invalid FrameworkInfo).
    async fn subscribe(&mut self, call: &Call) -> Result<Option<Stream>> {
        let now = || Instant::now().into_std();
        let master = match tokio::time::timeout(LEADER_DETECTION_TIMEOUT, self.masters.current()).await {
            Ok(Ok(master)) => master,
            Ok(Err(e)) => return self.retry(now(), format!("finding the leading master: {e}"), Retry::AfterBackoff),
            Err(_) => return self.retry(now(), "no leading master elected yet".into(), Retry::AfterBackoff),
        };
        let url = format!("{master}{SCHEDULER_PATH}");
        let body = serde_json::to_vec(call).expect("calls always serialize");
        let request = self
            .stream_client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        let response = match self.shared.transport.authorize(request).send().await {
            Ok(r) => r,
            Err(e) => {
                self.masters.failed();
                return self.retry(now(), format!("{url}: {e}"), Retry::AfterBackoff);
            }
        };
        match response.status() {
            StatusCode::OK => {}
            StatusCode::TEMPORARY_REDIRECT => {
                let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
                return match self.masters.redirect(location) {
                    Ok(leader) => {
                        tracing::info!(from = %master, to = %leader, "following the leader redirect");
                        self.retry(now(), format!("{url}: redirected to {leader}"), Retry::Immediately)
                    }
                    Err(e) => {
                        self.masters.failed();
                        self.retry(now(), e.to_string(), Retry::AfterBackoff)
                    }
                };
            }
            status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                let message = response.text().await.unwrap_or_default();
                self.masters.failed();
                return self.retry(now(), format!("{url}: HTTP {status}: {}", message.trim()), Retry::AfterBackoff);
            }
            _ => return Err(check_status(&url, response).await.err().unwrap_or(Error::Closed)),
        }
        let Some(stream_id) = response.headers().get(STREAM_ID_HEADER).and_then(|v| v.to_str().ok()) else {
            let reason = format!("{url}: SUBSCRIBE answered without a {STREAM_ID_HEADER} header");
            return self.retry(now(), reason, Retry::AfterBackoff);
        };
        let stream_id = stream_id.to_owned();
        self.sub.handle_subscribe_accepted(now(), stream_id);
        Ok(Some(Stream { response, decoder: Decoder::new(self.max_record_len), url }))
    }

    /// Reports a failed attempt to the state machine; the driver loop then
    /// waits for its retry deadline.
    fn retry(&mut self, now: std::time::Instant, reason: String, retry: Retry) -> Result<Option<Stream>> {
        tracing::warn!(%reason, "subscribe failed");
        self.sub.handle_subscribe_failed(now, reason, retry);
        Ok(None)
    }

    fn context(&self) -> CallContext {
        self.shared.context.lock().expect("call context lock").clone()
    }

    fn set_context(&self, stream_id: Option<Option<&str>>) {
        let mut ctx = self.shared.context.lock().expect("call context lock");
        match stream_id {
            Some(id) => {
                ctx.master = self.masters.peek().map(str::to_owned);
                ctx.stream_id = id.map(str::to_owned);
                ctx.framework_id = self.sub.framework_id().cloned();
            }
            None => ctx.stream_id = None,
        }
    }
}

async fn next_chunk(stream: &mut Option<Stream>) -> reqwest::Result<Option<bytes::Bytes>> {
    match stream {
        Some(s) => s.response.chunk().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A jitter seed that differs between processes started at the same time.
fn seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
