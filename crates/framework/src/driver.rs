//! The engine at work: Mesos events, user commands and the clock in; store
//! writes, scheduler calls and acknowledgements out, in the engine's order.
//!
//! One mutex guards the engine. Whoever changes it (the event loop, an API
//! command) hands the resulting actions, still under the lock, to one executor
//! task, so actions run in exactly the order the engine produced them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent, SchedulerHandle};
use mesos::v1::scheduler::{CallKind, Event, Suppress};
use tokio::sync::{mpsc, watch};

use crate::engine::{Action, CommandError, DeployOutcome, Engine, Input, Limits};
use crate::spec::ProjectSpec;
use crate::store::{Store, StoreWriter};

/// Milliseconds since the Unix epoch: the engine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the framework state from {store}: {source}")]
    Load { store: String, source: crate::store::StoreError },
    #[error("cannot read the framework state from {store}: {source}")]
    Restore { store: String, source: crate::engine::RestoreError },
    #[error(transparent)]
    Mesos(#[from] mesos::error::Error),
}

/// A running framework. Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Framework {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Mutex<Engine>,
    actions: mpsc::UnboundedSender<Vec<Action>>,
    changed: watch::Sender<u64>,
    /// Asks the event loop to resubscribe (with a new framework id when it was forgotten).
    resubscribe: mpsc::UnboundedSender<()>,
    store: String,
    writer: StoreWriter,
    master: String,
    /// Records under [`EXTRA_PREFIX`] as they were at start.
    extra: Vec<(String, Vec<u8>)>,
}

/// Keys the engine does not read: kept in the same store, in the same order as
/// the engine's writes, for the framework built on the engine (the K3s framework's clusters).
pub const EXTRA_PREFIX: &str = "ext/";

impl Framework {
    /// Restores the engine from the store and starts subscribing. `instance`
    /// (a few random characters) keeps this run's task ids unique.
    pub async fn start(
        mut config: SchedulerConfig,
        store: Store,
        instance: String,
        limits: Limits,
    ) -> Result<Framework, StartError> {
        let describe = store.describe();
        let records = store.load().await.map_err(|source| StartError::Load { store: describe.clone(), source })?;
        let engine = Engine::restore(instance, &records)
            .map_err(|source| StartError::Restore { store: describe.clone(), source })?
            .with_limits(limits);
        config.subscription.framework_info.id = engine.framework_id().cloned();
        let extra = records.iter().filter(|(k, _)| k.starts_with(EXTRA_PREFIX)).cloned().collect();
        let writer = StoreWriter::spawn(store, records);
        let (actions_tx, actions_rx) = mpsc::unbounded_channel();
        let (resubscribe_tx, resubscribe_rx) = mpsc::unbounded_channel();
        let master = config.master.clone();
        let scheduler = Scheduler::start(config.clone())?;
        let inner = Arc::new(Inner {
            engine: Mutex::new(engine),
            actions: actions_tx,
            changed: watch::channel(0).0,
            resubscribe: resubscribe_tx,
            store: describe,
            writer: writer.clone(),
            master,
            extra,
        });
        let framework = Framework { inner };
        let (handle_tx, handle_rx) = watch::channel(scheduler.handle().clone());
        tokio::spawn(execute(actions_rx, writer, handle_rx, framework.clone()));
        tokio::spawn(event_loop(scheduler, config, resubscribe_rx, handle_tx, framework.clone()));
        Ok(framework)
    }

    /// Runs `f` on the engine and queues the actions it produced.
    fn with_engine<R>(&self, f: impl FnOnce(&mut Engine, u64) -> R) -> R {
        let mut engine = self.inner.engine.lock().expect("engine lock");
        let result = f(&mut engine, now_ms());
        let actions = engine.take_actions();
        if !actions.is_empty() {
            let _ = self.inner.actions.send(actions);
        }
        drop(engine);
        self.inner.changed.send_modify(|n| *n += 1);
        result
    }

    /// Reads the engine's state.
    pub fn read<R>(&self, f: impl FnOnce(&Engine) -> R) -> R {
        f(&self.inner.engine.lock().expect("engine lock"))
    }

    /// Changes whenever the engine's state may have changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    pub fn store(&self) -> &str {
        &self.inner.store
    }

    /// False while the store refuses writes (they are kept and written again once it is back).
    pub fn store_healthy(&self) -> bool {
        self.inner.writer.healthy()
    }

    pub fn master(&self) -> &str {
        &self.inner.master
    }

    pub fn deploy(&self, spec: ProjectSpec) -> Result<DeployOutcome, CommandError> {
        self.with_engine(|e, now| e.deploy(now, spec))
    }

    pub fn remove(&self, project: &str) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.remove(now, project))
    }

    pub fn scale(&self, project: &str, service: &str, replicas: u32) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.scale(now, project, service, replicas))
    }

    pub fn unscale(&self, project: &str, service: &str) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.unscale(now, project, service))
    }

    pub fn restart(&self, project: &str, service: &str) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.restart(now, project, service))
    }

    pub fn kill_task(&self, task_id: &str) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.kill_task(now, task_id))
    }

    /// Forgets the framework id and subscribes anew (mesos-compose's `reregister`).
    pub fn reregister(&self) {
        self.with_engine(|e, _| e.forget_framework());
        let _ = self.inner.resubscribe.send(());
    }

    /// Records under [`EXTRA_PREFIX`] found in the store at start.
    pub fn extra_records(&self) -> &[(String, Vec<u8>)] {
        &self.inner.extra
    }

    /// Writes (or with `None` deletes) a record under [`EXTRA_PREFIX`], queued
    /// behind the engine's actions so far: it is durable before any call that follows.
    pub fn persist_extra(&self, key: &str, value: Option<Vec<u8>>) {
        debug_assert!(key.starts_with(EXTRA_PREFIX));
        let write = crate::store::Write { key: key.to_owned(), value };
        let _ = self.inner.actions.send(vec![Action::Persist(vec![write])]);
    }

    /// Records a task's health as its framework judged it ([`Engine::set_health`]).
    pub fn set_health(&self, task_id: &str, healthy: bool) -> Result<(), CommandError> {
        self.with_engine(|e, now| e.set_health(now, task_id, healthy))
    }

    /// Sends SUPPRESS now (mesos-compose's `framework/suppress`); the engine
    /// revives again when work arrives.
    pub fn suppress(&self) {
        let _ = self.inner.actions.send(vec![Action::Call(CallKind::Suppress(Suppress::default()))]);
    }

    fn input(&self, input: Input) {
        self.with_engine(|e, now| e.handle(now, input));
    }
}

/// What the master says when it refuses a framework id it has removed (torn
/// down, or past its failover timeout): Mesos 1.11's and m3s mini's wording.
const REMOVED: &str = "Framework has been removed";

/// Feeds the engine from the subscription, and starts a new subscription when
/// one ends; every new one's handle goes to the executor through `handles`.
async fn event_loop(
    mut scheduler: Scheduler,
    mut config: SchedulerConfig,
    mut resubscribe: mpsc::UnboundedReceiver<()>,
    handles: watch::Sender<SchedulerHandle>,
    framework: Framework,
) {
    let mut refusals = 0u32;
    loop {
        let wakeup = framework.read(|e| e.next_wakeup());
        let sleep = match wakeup {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            event = scheduler.next() => match event {
                Some(Ok(event)) => {
                    if matches!(event, SchedulerEvent::Subscribed { .. }) {
                        refusals = 0;
                    }
                    if let Some(input) = to_input(event) {
                        framework.input(input);
                    }
                }
                Some(Err(mesos::error::Error::FrameworkRemoved(message))) if message.contains(REMOVED) => {
                    // Torn down (by an operator, or past the failover timeout): the tasks
                    // are gone. Register as a new framework; the engine starts every
                    // replica again.
                    tracing::error!(%message, "the master removed the framework; registering anew and redeploying");
                    framework.input(Input::Error { message });
                    config.subscription.framework_info.id = None;
                    scheduler = restart_scheduler(&config, scheduler, &handles).await;
                }
                Some(Err(e)) => {
                    // Refusals (credentials, principal, a FrameworkInfo the master rejects) may
                    // be fixed by an operator: keep the id, back off from 5 s to 40 s.
                    refusals = refusals.saturating_add(1);
                    let wait = Duration::from_secs(5 << (refusals.min(4) - 1));
                    tracing::error!(error = %e, "the Mesos subscription failed; retrying in {} s", wait.as_secs());
                    framework.input(Input::Disconnected);
                    tokio::time::sleep(wait).await;
                    config.subscription.framework_info.id = framework.read(|e| e.framework_id().cloned());
                    scheduler = restart_scheduler(&config, scheduler, &handles).await;
                }
                None => {
                    config.subscription.framework_info.id = framework.read(|e| e.framework_id().cloned());
                    scheduler = restart_scheduler(&config, scheduler, &handles).await;
                }
            },
            Some(()) = resubscribe.recv() => {
                framework.input(Input::Disconnected);
                config.subscription.framework_info.id = framework.read(|e| e.framework_id().cloned());
                scheduler = restart_scheduler(&config, scheduler, &handles).await;
            }
            _ = tokio::time::sleep(sleep) => framework.input(Input::Tick),
        }
    }
}

async fn restart_scheduler(
    config: &SchedulerConfig,
    old: Scheduler,
    handles: &watch::Sender<SchedulerHandle>,
) -> Scheduler {
    drop(old);
    loop {
        match Scheduler::start(config.clone()) {
            Ok(s) => {
                handles.send_replace(s.handle().clone());
                return s;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the Mesos scheduler client; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

fn to_input(event: SchedulerEvent) -> Option<Input> {
    match event {
        SchedulerEvent::Subscribed { framework_id, master, resubscribed, .. } => {
            tracing::info!(%framework_id, %master, resubscribed, "subscribed");
            Some(Input::Subscribed { framework_id })
        }
        SchedulerEvent::Disconnected { reason } => {
            tracing::warn!(%reason, "disconnected from the master");
            Some(Input::Disconnected)
        }
        SchedulerEvent::Event(Event::Offers(offers)) => Some(Input::Offers(offers.offers)),
        SchedulerEvent::Event(Event::Update(update)) => Some(Input::Update(Box::new(update.status))),
        SchedulerEvent::Event(Event::Failure(failure)) => {
            // Lost agents and executors: their tasks' updates (LOST, GONE) follow.
            tracing::warn!(agent = ?failure.agent_id, executor = ?failure.executor_id, status = ?failure.status, "failure");
            None
        }
        SchedulerEvent::Event(Event::Rescind(rescind)) => {
            // Offers are answered in the round they arrive; nothing is held.
            tracing::debug!(offer = %rescind.offer_id, "offer rescinded");
            None
        }
        SchedulerEvent::Event(_) => None,
    }
}

/// Executes actions in order: a persist completes (or is queued for retry)
/// before the calls that follow it.
async fn execute(
    mut rx: mpsc::UnboundedReceiver<Vec<Action>>,
    writer: StoreWriter,
    handles: watch::Receiver<SchedulerHandle>,
    framework: Framework,
) {
    while let Some(batch) = rx.recv().await {
        for action in batch {
            // The current subscription's handle: a new one replaces it after every restart.
            let handle = handles.borrow().clone();
            match action {
                Action::Persist(writes) => {
                    if let Err(e) = writer.write(writes).await {
                        tracing::warn!(error = %e, "state store write failed; kept and retried in the background");
                    }
                }
                Action::Call(kind) => {
                    let launches = launched_task_ids(&kind);
                    if let Err(e) = handle.call(kind).await {
                        tracing::warn!(error = %e, "scheduler call failed");
                        if !launches.is_empty() {
                            framework.input(Input::LaunchFailed { task_ids: launches, message: e.to_string() });
                        }
                    }
                }
                Action::Acknowledge(status) => {
                    if let Err(e) = handle.acknowledge(&status) {
                        tracing::debug!(error = %e, "update not acknowledged");
                    }
                }
            }
        }
    }
}

fn launched_task_ids(kind: &CallKind) -> Vec<String> {
    match kind {
        CallKind::Accept(a) => a
            .operations
            .iter()
            .flat_map(|o| o.launch.iter().flat_map(|l| l.task_infos.iter().map(|t| t.task_id.value.clone())))
            .collect(),
        _ => Vec::new(),
    }
}
