//! Writes in order, never lost: a mirror of what the store should hold, and
//! after a failure the whole mirror written again until the store takes it.
//!
//! Lifecycle: one background task per [`StoreWriter`], fed by an unbounded
//! channel. While the store works, each batch is written before the next one
//! is taken, and its caller learns the outcome. After a failure the task goes
//! into recovery: it keeps taking batches (folding them into the mirror and
//! answering at once with the last error, so callers never wait on a dead
//! store) and retries `replace_all(mirror)` with capped exponential backoff.
//! When every handle is dropped, the task still finishes its recovery, then ends.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, Write};

/// First retry delay after a failure: short, so a blip (a Redis failover)
/// costs little.
const MIN_RETRY: Duration = Duration::from_millis(100);
/// Longest delay between retries: a store that is down for minutes is probed
/// every few seconds, so it is caught up soon after it comes back, without
/// hammering it (each retry writes the whole mirror).
const MAX_RETRY: Duration = Duration::from_secs(5);

enum Job {
    Write(Vec<Write>, oneshot::Sender<Result<(), StoreError>>),
    Flush(oneshot::Sender<()>),
}

/// A background writer in front of a [`Store`]. Cheap to clone; every clone
/// feeds the same task, so batches apply in the order they are queued.
#[derive(Clone)]
pub struct StoreWriter {
    jobs: mpsc::UnboundedSender<Job>,
    /// Set by the task: false from a failed write until the mirror is written again.
    healthy: Arc<AtomicBool>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").field("healthy", &self.healthy()).finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Starts the writer on the current tokio runtime; `initial` is what the store holds now.
    pub fn spawn(store: Store, initial: Vec<(String, Vec<u8>)>) -> StoreWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let task = Task {
            store,
            mirror: initial.into_iter().collect(),
            jobs: rx,
            open: true,
            healthy: healthy.clone(),
            flushes: Vec::new(),
        };
        tokio::spawn(task.run());
        StoreWriter { jobs, healthy }
    }

    /// Queues the batch. Resolves once it is durable, or with an error when
    /// the store failed it (or is failing: during recovery the answer comes at
    /// once, with the last error); the batch then stays in the mirror and is
    /// written in the background once the store is back.
    pub async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Write(batch, tx)).is_err() {
            return Ok(()); // the runtime is shutting down
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// Resolves when everything queued so far is durable (after a failure:
    /// once the store took the whole mirror again).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// False while the store refuses writes (they are kept and retried).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

struct Task {
    store: Store,
    /// What the store should hold: `initial` plus every batch taken so far.
    mirror: BTreeMap<String, Vec<u8>>,
    jobs: mpsc::UnboundedReceiver<Job>,
    /// False once every `StoreWriter` is gone.
    open: bool,
    healthy: Arc<AtomicBool>,
    /// Flushes that arrived during recovery, answered when it ends.
    flushes: Vec<oneshot::Sender<()>>,
}

impl Task {
    async fn run(mut self) {
        while let Some(job) = self.jobs.recv().await {
            match job {
                Job::Flush(reply) => {
                    let _ = reply.send(());
                }
                Job::Write(batch, reply) => {
                    apply(&mut self.mirror, &batch);
                    let result = self.store.write(&batch).await;
                    let failed = result.as_ref().err().cloned();
                    let _ = reply.send(result);
                    if let Some(e) = failed {
                        self.recover(e).await;
                    }
                }
            }
        }
    }

    /// Returns once the store holds the whole mirror again.
    async fn recover(&mut self, mut error: StoreError) {
        tracing::warn!(%error, "state store write failed; writes are kept and retried in the background");
        self.healthy.store(false, Ordering::Relaxed);
        let mut delay = MIN_RETRY;
        loop {
            self.taking_jobs(tokio::time::sleep(delay), &error, None).await;
            let store = self.store.clone();
            let all: Vec<(String, Vec<u8>)> = self.mirror.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            // Batches taken while the attempt runs are not in `all`: they are
            // written right after it, in order, as one batch.
            let mut missed = Vec::new();
            let attempt = async move { store.replace_all(&all).await };
            let mut result = self.taking_jobs(attempt, &error, Some(&mut missed)).await;
            if result.is_ok() && !missed.is_empty() {
                result = self.store.write(&missed).await;
            }
            match result {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(error = %e, retry_in = ?delay, "state store still failing");
                    error = e;
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
        tracing::info!(store = %self.store.describe(), "state store back; everything written again");
        self.healthy.store(true, Ordering::Relaxed);
        for reply in self.flushes.drain(..) {
            let _ = reply.send(());
        }
    }

    /// Runs `work` while taking jobs: writes go into the mirror (and `missed`)
    /// and are answered with `error`; flushes wait for the end of recovery.
    async fn taking_jobs<T>(
        &mut self,
        work: impl Future<Output = T>,
        error: &StoreError,
        mut missed: Option<&mut Vec<Write>>,
    ) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                job = self.jobs.recv(), if self.open => match job {
                    None => self.open = false,
                    Some(Job::Flush(reply)) => self.flushes.push(reply),
                    Some(Job::Write(batch, reply)) => {
                        apply(&mut self.mirror, &batch);
                        if let Some(missed) = missed.as_deref_mut() {
                            missed.extend(batch);
                        }
                        let _ = reply.send(Err(error.clone()));
                    }
                },
            }
        }
    }
}

fn apply(mirror: &mut BTreeMap<String, Vec<u8>>, batch: &[Write]) {
    for w in batch {
        match &w.value {
            Some(v) => {
                mirror.insert(w.key.clone(), v.clone());
            }
            None => {
                mirror.remove(&w.key);
            }
        }
    }
}
