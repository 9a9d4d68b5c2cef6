//! A scheduler's subscription to a Mesos master, as a sans-IO state machine.
//!
//! [`Subscription`] decides *when* to (re)subscribe, *what* to send and *when*
//! a stream is dead; the driver ([`crate::scheduler`]) does the HTTP. Its
//! methods fall in the groups quinn's `Connection` uses:
//!
//! - inputs: `handle_subscribe_accepted`, `handle_subscribe_failed`,
//!   `handle_event`, `handle_stream_ended`, `handle_ack_result`, `handle_timeout`;
//! - application commands: [`Subscription::acknowledge`];
//! - outputs: [`Subscription::poll`] (what to transmit or report) and
//!   [`Subscription::poll_timeout`] (when to call `handle_timeout` next).
//!
//! Time only ever arrives as a `now` argument and must not go backwards, so a
//! test drives failover, heartbeat loss and backoff on a virtual clock.
//!
//! Lifecycle: `Idle` (waiting until a retry deadline) → `Subscribing` (a
//! SUBSCRIBE is in flight) → `Streaming` (200 received, waiting for SUBSCRIBED)
//! → `Subscribed` → back to `Idle` when the stream breaks, or `Failed` when the
//! master sends ERROR (the framework was removed or refused; resubscribing
//! with the same id would be refused again).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, BackoffConfig};
use crate::v1::scheduler::{Acknowledge, Call, CallKind, Event, Subscribe};
use crate::v1::{AgentId, Bytes, FrameworkId, FrameworkInfo, MasterInfo, TaskId, TaskStatus};

/// Mesos 1.11's heartbeat interval, used until SUBSCRIBED says otherwise.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Immediate retries (after a leader redirect) allowed before backing off, so
/// two masters that each point at the other cannot make us spin.
const MAX_IMMEDIATE_RETRIES: u32 = 3;

#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// Sent in every SUBSCRIBE; its `id` is filled in after the first
    /// SUBSCRIBED so that later subscriptions are failovers of the same framework.
    pub framework_info: FrameworkInfo,
    pub suppressed_roles: Vec<String>,
    /// Heartbeats missed before the stream counts as dead. Mesos's own
    /// guidance is "a few"; five tolerates a stalled master GC pause or a slow
    /// link without keeping a dead connection for long (75 s at 15 s).
    pub missed_heartbeats: u32,
    pub backoff: BackoffConfig,
    /// Seed for the backoff jitter.
    pub seed: u64,
}

impl SubscriptionConfig {
    pub fn new(framework_info: FrameworkInfo) -> Self {
        SubscriptionConfig {
            framework_info,
            suppressed_roles: Vec::new(),
            missed_heartbeats: 5,
            backoff: BackoffConfig::default(),
            seed: 0,
        }
    }
}

/// Something for the driver to do or report, in the order it arose.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a new subscription connection and post this SUBSCRIBE on it.
    Subscribe(Call),
    /// Drop the current subscription connection (the watchdog fired, or the
    /// stream broke the protocol).
    CloseStream { reason: String },
    /// Post this call (an acknowledgement) with the current stream id.
    Send(Call),
    /// The framework is subscribed; `resubscribed` is true after a failover.
    Subscribed { framework_id: FrameworkId, master_info: Option<MasterInfo>, resubscribed: bool },
    /// The subscription broke; offers are void, a new one is scheduled.
    Disconnected { reason: String, retry_in: Duration },
    /// The master refused or removed the framework; nothing more will happen.
    Failed { message: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle { retry_at: Option<Instant> },
    Subscribing,
    Streaming { stream_id: String, watchdog: Instant },
    Subscribed { stream_id: String, heartbeat: Duration, watchdog: Instant },
    Failed,
}

/// Why a SUBSCRIBE attempt failed, as far as retry timing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Another master should be tried at once (307 to the leader).
    Immediately,
    /// Wait before the next attempt (503, connection refused, timeouts).
    AfterBackoff,
}

/// An acknowledgement the application asked for and the master has not
/// confirmed yet.
#[derive(Debug, Clone, PartialEq)]
struct PendingAck {
    agent_id: AgentId,
    task_id: TaskId,
    in_flight: bool,
}

/// Why [`Subscription::acknowledge`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("status update for task {0} has no uuid: it needs no acknowledgement")]
    NoUuid(String),
    #[error("status update for task {0} has no agent_id: it cannot be acknowledged")]
    NoAgentId(String),
}

#[derive(Debug)]
pub struct Subscription {
    config: SubscriptionConfig,
    phase: Phase,
    framework_id: Option<FrameworkId>,
    backoff: Backoff,
    immediate_retries: u32,
    subscriptions: u64,
    /// Acks keyed by update uuid: kept until the master answers 202, re-sent
    /// after a resubscription (the old stream id is void).
    acks: BTreeMap<Vec<u8>, PendingAck>,
    outputs: VecDeque<Output>,
}

impl Subscription {
    pub fn new(config: SubscriptionConfig) -> Self {
        let backoff = Backoff::new(config.backoff, config.seed);
        let framework_id = config.framework_info.id.clone();
        Subscription {
            config,
            phase: Phase::Idle { retry_at: None },
            framework_id,
            backoff,
            immediate_retries: 0,
            subscriptions: 0,
            acks: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    // ------------------------------------------------------------ getters

    /// The framework id, once a master has assigned one (or it was configured).
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    /// The `Mesos-Stream-Id` of the current stream, for every non-SUBSCRIBE call.
    pub fn stream_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Subscribed { stream_id, .. } => Some(stream_id),
            _ => None,
        }
    }

    pub fn is_subscribed(&self) -> bool {
        matches!(self.phase, Phase::Subscribed { .. })
    }

    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// Successful subscriptions after the first one.
    pub fn resubscriptions(&self) -> u64 {
        self.subscriptions.saturating_sub(1)
    }

    /// Acknowledgements not yet confirmed by the master.
    pub fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    /// The SUBSCRIBE call for the current framework id.
    pub fn subscribe_call(&self) -> Call {
        let mut framework_info = self.config.framework_info.clone();
        framework_info.id = self.framework_id.clone();
        Call::subscribe(Subscribe {
            framework_info,
            suppressed_roles: self.config.suppressed_roles.clone(),
            offer_constraints: None,
        })
    }

    // ------------------------------------------------------------ inputs

    /// The master answered SUBSCRIBE with 200 and this `Mesos-Stream-Id`.
    pub fn handle_subscribe_accepted(&mut self, now: Instant, stream_id: String) {
        if self.phase != Phase::Subscribing {
            return;
        }
        self.phase = Phase::Streaming { stream_id, watchdog: now + self.watchdog_span(DEFAULT_HEARTBEAT_INTERVAL) };
    }

    /// A SUBSCRIBE attempt failed before a stream was established.
    pub fn handle_subscribe_failed(&mut self, now: Instant, reason: String, retry: Retry) {
        if self.phase != Phase::Subscribing {
            return;
        }
        let delay = if retry == Retry::Immediately && self.immediate_retries < MAX_IMMEDIATE_RETRIES {
            self.immediate_retries += 1;
            Duration::ZERO
        } else {
            self.backoff.next_delay()
        };
        self.phase = Phase::Idle { retry_at: Some(now + delay) };
        tracing::debug!(%reason, ?delay, "subscribe attempt failed");
    }

    /// An event arrived on the current stream.
    pub fn handle_event(&mut self, now: Instant, event: &Event) {
        match (&self.phase, event) {
            (Phase::Streaming { .. } | Phase::Subscribed { .. }, Event::Error(err)) => {
                self.phase = Phase::Failed;
                self.outputs.push_back(Output::Failed { message: err.message.clone() });
            }
            (Phase::Streaming { stream_id, .. }, Event::Subscribed(sub)) => {
                let heartbeat = sub
                    .heartbeat_interval_seconds
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
                self.phase = Phase::Subscribed {
                    stream_id: stream_id.clone(),
                    heartbeat,
                    watchdog: now + self.watchdog_span(heartbeat),
                };
                self.framework_id = Some(sub.framework_id.clone());
                self.backoff.reset();
                self.immediate_retries = 0;
                self.subscriptions += 1;
                self.outputs.push_back(Output::Subscribed {
                    framework_id: sub.framework_id.clone(),
                    master_info: sub.master_info.clone(),
                    resubscribed: self.subscriptions > 1,
                });
                // Acks that were in flight on the old stream are void: send again.
                for ack in self.acks.values_mut() {
                    ack.in_flight = false;
                }
            }
            (Phase::Streaming { .. }, other) => {
                self.break_stream(now, format!("protocol error: {} event before SUBSCRIBED", other.type_name()));
            }
            (Phase::Subscribed { heartbeat, .. }, _) => {
                let next = now + self.watchdog_span(*heartbeat);
                if let Phase::Subscribed { watchdog, .. } = &mut self.phase {
                    *watchdog = next;
                }
            }
            _ => {}
        }
    }

    /// The stream ended: closed by the master, a transport error, or bytes that
    /// are not RecordIO/JSON. Schedules a resubscription.
    pub fn handle_stream_ended(&mut self, now: Instant, reason: String) {
        if matches!(self.phase, Phase::Streaming { .. } | Phase::Subscribed { .. }) {
            self.disconnect(now, reason);
        }
    }

    /// The master answered an acknowledgement: `accepted` for 202; otherwise
    /// `retry` says whether it is worth sending again on the next stream
    /// (transport errors) or must be dropped (400: unknown uuid or task).
    pub fn handle_ack_result(&mut self, uuid: &[u8], accepted: bool, retry: bool) {
        if accepted || !retry {
            self.acks.remove(uuid);
        } else if let Some(ack) = self.acks.get_mut(uuid) {
            ack.in_flight = false;
        }
    }

    /// Fires the heartbeat watchdog and retry deadlines that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Streaming { watchdog, .. } if now >= watchdog => {
                self.break_stream(now, "no SUBSCRIBED event from the master in time".to_owned());
            }
            Phase::Subscribed { watchdog, heartbeat, .. } if now >= watchdog => {
                let missed = self.config.missed_heartbeats;
                self.break_stream(
                    now,
                    format!("no event from the master for {missed} heartbeat intervals ({heartbeat:?} each)"),
                );
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------ commands

    /// Asks for a status update to be acknowledged. Updates without a uuid
    /// (reconciliation answers, master-generated updates) need none.
    pub fn acknowledge(&mut self, status: &TaskStatus) -> Result<(), AckError> {
        let Some(uuid) = &status.uuid else {
            return Err(AckError::NoUuid(status.task_id.value.clone()));
        };
        let Some(agent_id) = &status.agent_id else {
            return Err(AckError::NoAgentId(status.task_id.value.clone()));
        };
        self.acks.entry(uuid.0.clone()).or_insert_with(|| PendingAck {
            agent_id: agent_id.clone(),
            task_id: status.task_id.clone(),
            in_flight: false,
        });
        Ok(())
    }

    // ------------------------------------------------------------ outputs

    /// The next thing to do. Call until `None` after every input.
    pub fn poll(&mut self, now: Instant) -> Option<Output> {
        if let Some(out) = self.outputs.pop_front() {
            return Some(out);
        }
        match &self.phase {
            Phase::Idle { retry_at } if retry_at.is_none_or(|t| now >= t) => {
                self.phase = Phase::Subscribing;
                Some(Output::Subscribe(self.subscribe_call()))
            }
            Phase::Subscribed { .. } => {
                let framework_id = self.framework_id.clone()?;
                let (uuid, ack) = self.acks.iter_mut().find(|(_, a)| !a.in_flight)?;
                ack.in_flight = true;
                Some(Output::Send(Call::new(
                    framework_id,
                    CallKind::Acknowledge(Acknowledge {
                        agent_id: ack.agent_id.clone(),
                        task_id: ack.task_id.clone(),
                        uuid: Bytes(uuid.clone()),
                    }),
                )))
            }
            _ => None,
        }
    }

    /// When `handle_timeout` must next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Idle { retry_at } => *retry_at,
            Phase::Streaming { watchdog, .. } | Phase::Subscribed { watchdog, .. } => Some(*watchdog),
            Phase::Subscribing | Phase::Failed => None,
        }
    }

    // ------------------------------------------------------------ internals

    fn watchdog_span(&self, heartbeat: Duration) -> Duration {
        heartbeat * self.config.missed_heartbeats.max(1)
    }

    fn break_stream(&mut self, now: Instant, reason: String) {
        self.outputs.push_back(Output::CloseStream { reason: reason.clone() });
        self.disconnect(now, reason);
    }

    fn disconnect(&mut self, now: Instant, reason: String) {
        let retry_in = self.backoff.next_delay();
        self.phase = Phase::Idle { retry_at: Some(now + retry_in) };
        for ack in self.acks.values_mut() {
            ack.in_flight = false;
        }
        self.outputs.push_back(Output::Disconnected { reason, retry_in });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::TaskState;
    use crate::v1::scheduler::{Error as ErrorEvent, Subscribed};

    struct Check {
        sub: Subscription,
        now: Instant,
    }

    fn check() -> Check {
        let info = FrameworkInfo {
            name: "test".into(),
            user: "root".into(),
            failover_timeout: 604800.0,
            ..Default::default()
        };
        Check { sub: Subscription::new(SubscriptionConfig::new(info)), now: Instant::now() }
    }

    impl Check {
        fn advance(&mut self, d: Duration) {
            self.now += d;
            if self.sub.poll_timeout().is_some_and(|t| self.now >= t) {
                self.sub.handle_timeout(self.now);
            }
        }
        fn drain(&mut self) -> Vec<Output> {
            std::iter::from_fn(|| self.sub.poll(self.now)).collect()
        }
        fn subscribed(&mut self, id: &str, stream: &str, interval: f64) {
            self.sub.handle_subscribe_accepted(self.now, stream.into());
            self.sub.handle_event(
                self.now,
                &Event::Subscribed(Subscribed {
                    framework_id: FrameworkId::new(id),
                    heartbeat_interval_seconds: Some(interval),
                    master_info: None,
                }),
            );
        }
    }

    fn update(uuid: u8) -> TaskStatus {
        TaskStatus {
            task_id: TaskId::new("t1"),
            state: TaskState::Running,
            agent_id: Some(AgentId::new("a1")),
            uuid: Some(Bytes(vec![uuid; 16])),
            ..Default::default()
        }
    }

    #[test]
    fn first_subscribe_has_no_framework_id_and_resubscribe_has_it() {
        let mut c = check();
        let out = c.drain();
        let [Output::Subscribe(call)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(call.framework_id, None);
        c.subscribed("fw-1", "s1", 15.0);
        assert!(matches!(c.drain().as_slice(), [Output::Subscribed { resubscribed: false, .. }]));
        assert_eq!(c.sub.stream_id(), Some("s1"));

        c.sub.handle_stream_ended(c.now, "closed".into());
        assert_eq!(c.sub.stream_id(), None);
        let out = c.drain();
        let [Output::Disconnected { retry_in, .. }] = out.as_slice() else { panic!("{out:?}") };
        let retry_in = *retry_in;
        assert!(c.drain().is_empty(), "no subscribe before the backoff has passed");
        c.advance(retry_in);
        let out = c.drain();
        let [Output::Subscribe(call)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(call.framework_id, Some(FrameworkId::new("fw-1")));
        let CallKind::Subscribe(s) = &call.kind else { panic!() };
        assert_eq!(s.framework_info.id, Some(FrameworkId::new("fw-1")));
        assert_eq!(s.framework_info.failover_timeout, 604800.0);
        c.subscribed("fw-1", "s2", 15.0);
        assert!(matches!(c.drain().as_slice(), [Output::Subscribed { resubscribed: true, .. }]));
        assert_eq!(c.sub.resubscriptions(), 1);
    }

    #[test]
    fn watchdog_fires_after_five_missed_heartbeats_and_events_reset_it() {
        let mut c = check();
        c.drain();
        c.subscribed("fw", "s", 10.0);
        c.drain();
        c.advance(Duration::from_secs(45));
        c.sub.handle_event(c.now, &Event::Heartbeat);
        c.advance(Duration::from_secs(49));
        assert!(c.sub.is_subscribed(), "an event 49 s ago is within 5 x 10 s");
        c.advance(Duration::from_secs(1));
        let out = c.drain();
        assert!(matches!(out.as_slice(), [Output::CloseStream { .. }, Output::Disconnected { .. }]), "{out:?}");
    }

    #[test]
    fn stream_without_subscribed_event_is_a_protocol_error() {
        let mut c = check();
        c.drain();
        c.sub.handle_subscribe_accepted(c.now, "s".into());
        c.sub.handle_event(c.now, &Event::Heartbeat);
        let out = c.drain();
        assert!(matches!(&out[0], Output::CloseStream { reason } if reason.contains("before SUBSCRIBED")), "{out:?}");
    }

    #[test]
    fn error_event_is_terminal() {
        let mut c = check();
        c.drain();
        c.subscribed("fw", "s", 15.0);
        c.drain();
        c.sub.handle_event(c.now, &Event::Error(ErrorEvent { message: "Framework has been removed".into() }));
        assert_eq!(c.drain(), vec![Output::Failed { message: "Framework has been removed".into() }]);
        c.advance(Duration::from_secs(3600));
        assert!(c.drain().is_empty());
        assert_eq!(c.sub.poll_timeout(), None);
    }

    #[test]
    fn redirects_retry_at_once_but_not_forever() {
        let mut c = check();
        // The first attempt, then MAX_IMMEDIATE_RETRIES immediate retries.
        for _ in 0..=MAX_IMMEDIATE_RETRIES {
            assert!(matches!(c.drain().as_slice(), [Output::Subscribe(_)]));
            c.sub.handle_subscribe_failed(c.now, "307".into(), Retry::Immediately);
        }
        assert!(c.drain().is_empty(), "after {MAX_IMMEDIATE_RETRIES} immediate retries in a row, back off");
        c.advance(Duration::from_secs(1));
        assert!(matches!(c.drain().as_slice(), [Output::Subscribe(_)]));
    }

    #[test]
    fn backoff_grows_across_failures_and_resets_on_success() {
        let mut c = check();
        let mut waits = Vec::new();
        for _ in 0..5 {
            assert!(matches!(c.drain().as_slice(), [Output::Subscribe(_)]));
            c.sub.handle_subscribe_failed(c.now, "503".into(), Retry::AfterBackoff);
            let wait = c.sub.poll_timeout().unwrap() - c.now;
            waits.push(wait);
            c.advance(wait);
        }
        assert!(waits[4] > waits[0] * 4, "{waits:?}");
        c.drain();
        c.subscribed("fw", "s", 15.0);
        c.sub.handle_stream_ended(c.now, "eof".into());
        let out = c.drain();
        let Output::Disconnected { retry_in, .. } = &out[1] else { panic!("{out:?}") };
        assert!(*retry_in <= Duration::from_millis(500), "reset after success: {retry_in:?}");
    }

    #[test]
    fn acks_are_sent_when_subscribed_and_resent_after_failover() {
        let mut c = check();
        c.drain();
        c.sub.acknowledge(&update(1)).unwrap();
        assert!(c.drain().is_empty(), "no ack without a stream");
        c.subscribed("fw", "s1", 15.0);
        let out = c.drain();
        assert!(
            matches!(&out[1], Output::Send(Call { kind: CallKind::Acknowledge(a), .. }) if a.uuid.0 == vec![1; 16])
        );
        assert!(c.drain().is_empty(), "in flight: not sent twice");
        // The stream breaks before the master answered: the ack goes out again.
        c.sub.handle_stream_ended(c.now, "eof".into());
        c.sub.handle_ack_result(&[1; 16], false, true);
        c.advance(Duration::from_secs(1));
        c.drain();
        c.subscribed("fw", "s2", 15.0);
        let out = c.drain();
        assert!(matches!(&out[1], Output::Send(_)), "{out:?}");
        c.sub.handle_ack_result(&[1; 16], true, false);
        assert_eq!(c.sub.pending_acks(), 0);
    }

    #[test]
    fn updates_without_uuid_or_agent_need_no_ack() {
        let mut c = check();
        let mut s = update(2);
        s.uuid = None;
        assert_eq!(c.sub.acknowledge(&s), Err(AckError::NoUuid("t1".into())));
        let mut s = update(2);
        s.agent_id = None;
        assert_eq!(c.sub.acknowledge(&s), Err(AckError::NoAgentId("t1".into())));
    }
}
