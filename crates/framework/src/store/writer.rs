//! Writes in order, never lost: a mirror of what the store should hold, and
//! after a failure the whole mirror written again until the store takes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, Write};

const MIN_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

enum Job {
    Write(Vec<Write>, oneshot::Sender<Result<(), StoreError>>),
    Flush(oneshot::Sender<()>),
}

/// A background writer in front of a [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct StoreWriter {
    jobs: mpsc::UnboundedSender<Job>,
    healthy: Arc<AtomicBool>,
}

impl StoreWriter {
    /// Starts the writer; `initial` is what the store holds now.
    pub fn spawn(store: Store, initial: Vec<(String, Vec<u8>)>) -> StoreWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(store, initial.into_iter().collect(), rx, healthy.clone()));
        StoreWriter { jobs, healthy }
    }

    /// Queues the batch. Resolves once it is durable, or with the error of the
    /// first failed attempt; the batch then stays queued and is retried in the background.
    pub async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Write(batch, tx)).is_err() {
            return Ok(()); // the runtime is shutting down
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// Resolves when everything queued so far is durable.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// False while the store refuses writes.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

async fn run(
    store: Store,
    mut mirror: BTreeMap<String, Vec<u8>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    healthy: Arc<AtomicBool>,
) {
    // After a failure the store may hold anything (a Redis that restarted
    // empty): the whole mirror is written again before anything else.
    let mut resync = false;
    let mut waiting_flush: Vec<oneshot::Sender<()>> = Vec::new();
    let mut delay = MIN_RETRY;
    loop {
        if resync {
            let all: Vec<(String, Vec<u8>)> = mirror.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            match store.replace_all(&all).await {
                Ok(()) => {
                    tracing::info!(store = %store.describe(), "state store back; everything written again");
                    resync = false;
                    delay = MIN_RETRY;
                    healthy.store(true, Ordering::Relaxed);
                    for f in waiting_flush.drain(..) {
                        let _ = f.send(());
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "state store still failing");
                    // Keep taking jobs while waiting, so writers are never blocked.
                    let sleep = tokio::time::sleep(delay);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            job = jobs.recv() => match job {
                                None => return,
                                Some(Job::Write(batch, reply)) => {
                                    apply(&mut mirror, &batch);
                                    let _ = reply.send(Err(e.clone()));
                                }
                                Some(Job::Flush(reply)) => waiting_flush.push(reply),
                            },
                        }
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                    continue;
                }
            }
        }
        let Some(job) = jobs.recv().await else { return };
        match job {
            Job::Flush(reply) => {
                let _ = reply.send(());
            }
            Job::Write(batch, reply) => {
                apply(&mut mirror, &batch);
                match store.write(&batch).await {
                    Ok(()) => {
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "state store write failed; retrying in the background");
                        healthy.store(false, Ordering::Relaxed);
                        let _ = reply.send(Err(e));
                        resync = true;
                    }
                }
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
