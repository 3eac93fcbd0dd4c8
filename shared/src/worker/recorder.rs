//! Outcomes are written in batches: each execution hands its outcome to one recorder task
//! per worker, which writes everything that arrived within a short linger (or up to a batch
//! size) with one statement, settles the queue items with one script call, and answers each
//! execution. A fire whose outcome is waiting here is still RUNNING and leased; its queue
//! item leaves `processing` only after the batch is committed.
//!
//! What it recorded is also added up in a [`Tally`] and written to the per-minute rollups
//! every [`ROLLUP_EVERY`] and when the worker stops: a few rows per write, never a row per
//! fire, and never in the statement that records outcomes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::model::{ExecutionStatus, Outcome, Recorded};
use crate::queue::{Queue, Settled};
use crate::store::Store;
use crate::telemetry::error_chain;

use super::tally::Tally;

/// How often the rollups are written.
pub const ROLLUP_EVERY: Duration = Duration::from_secs(5);

/// What became of one outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Committed, and its queue item settled.
    Recorded(Recorded),
    /// Refused by the fence: another attempt owns the fire. Its item was dropped.
    Refused,
    /// The store stayed unreachable; the fire stays RUNNING until its lease expires.
    Unrecorded,
}

/// Batching limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderSettings {
    /// Most outcomes per statement.
    pub max_batch: usize,
    /// How long to wait for more outcomes after the first of a batch.
    pub linger: Duration,
    /// How long to keep retrying a batch while the store is unreachable.
    pub patience: Duration,
}

struct Pending {
    outcome: Outcome,
    reply: oneshot::Sender<Written>,
}

/// A handle on the recorder task; the task ends when every handle is gone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Pending>,
    rollups: Rollups,
}

/// The tally of what was recorded, and where it is written.
#[derive(Clone)]
struct Rollups {
    tally: Arc<Mutex<Tally>>,
    store: Arc<dyn Store>,
}

impl Rollups {
    fn count(&self, counted: impl FnOnce(&mut Tally)) {
        counted(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Writes what was tallied; on failure keeps it for the next write.
    async fn write(&self) {
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(PoisonError::into_inner));
        if let Err((error, unwritten)) = tally.write(self.store.as_ref()).await {
            tracing::warn!(error = %error_chain(&error), "could not write the outcome rollups; keeping them for the next try");
            self.count(|tally| tally.merge(unwritten));
        }
    }
}

impl Recorder {
    /// Starts the recorder task. Must be called inside a Tokio runtime.
    pub fn start(store: Arc<dyn Store>, queue: Arc<dyn Queue>, settings: RecorderSettings) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rollups = Rollups {
            tally: Arc::default(),
            store: store.clone(),
        };
        tokio::spawn(run(rx, store, queue, settings, rollups.clone()));
        tokio::spawn(write_every(rollups.clone(), tx.downgrade()));
        Self { tx, rollups }
    }

    /// Writes the rollups tallied so far (a stopping worker's last word).
    pub async fn write_rollups(&self) {
        self.rollups.write().await;
    }

    /// Hands over an outcome and waits until it is written (or refused, or given up on).
    pub async fn record(&self, outcome: Outcome) -> Written {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Pending { outcome, reply }).is_err() {
            return Written::Unrecorded;
        }
        answer.await.unwrap_or(Written::Unrecorded)
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Pending>,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    settings: RecorderSettings,
    rollups: Rollups,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + settings.linger;
        while batch.len() < settings.max_batch {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(more)) => batch.push(more),
                    _ => break,
                },
            }
        }
        flush(
            batch,
            store.as_ref(),
            queue.as_ref(),
            settings.patience,
            &rollups,
        )
        .await;
    }
    rollups.write().await;
}

/// Writes the rollups every [`ROLLUP_EVERY`], beside the recorder (a slow write never holds
/// up outcomes), until the recorder's last handle is gone.
async fn write_every(rollups: Rollups, recorder: mpsc::WeakUnboundedSender<Pending>) {
    let mut every = tokio::time::interval(ROLLUP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        if recorder.upgrade().is_none() {
            return;
        }
        rollups.write().await;
    }
}

async fn flush(
    batch: Vec<Pending>,
    store: &dyn Store,
    queue: &dyn Queue,
    patience: Duration,
    rollups: &Rollups,
) {
    let outcomes: Vec<Outcome> = batch.iter().map(|p| p.outcome.clone()).collect();
    let Some((mut written, retried)) = write(store, &outcomes, patience).await else {
        for pending in batch {
            let _ = pending.reply.send(Written::Unrecorded);
        }
        return;
    };
    if retried && written.len() < outcomes.len() {
        // A retried write can be refused because an earlier try committed and only its
        // answer was lost: read those rows back and keep what this attempt wrote.
        for outcome in &outcomes {
            if written
                .iter()
                .any(|r| r.execution_id == outcome.execution_id)
            {
                continue;
            }
            if let Ok(Some(row)) = store.execution_get(outcome.execution_id).await {
                if row.attempt == outcome.attempt && row.status == outcome.status {
                    written.push(Recorded {
                        execution_id: row.id,
                        status: row.status,
                        next_attempt_at: row.next_attempt_at,
                    });
                }
            }
        }
    }
    let now = chrono::Utc::now();
    let by_id: std::collections::HashMap<uuid::Uuid, &Outcome> =
        outcomes.iter().map(|o| (o.execution_id, o)).collect();
    rollups.count(|tally| {
        for recorded in &written {
            if let Some(outcome) = by_id.get(&recorded.execution_id) {
                tally.count(outcome, recorded, now);
            }
        }
    });
    let mut settled = Vec::with_capacity(batch.len());
    let mut answers = Vec::with_capacity(batch.len());
    for pending in batch {
        let id = pending.outcome.execution_id;
        match written.iter().find(|r| r.execution_id == id) {
            Some(recorded) => {
                let how = match recorded.status {
                    ExecutionStatus::Succeeded => Settled::Completed,
                    ExecutionStatus::Retrying => Settled::Retry {
                        due: recorded.next_attempt_at.unwrap_or_else(chrono::Utc::now),
                    },
                    _ => Settled::Failed,
                };
                settled.push((id, how));
                answers.push((pending.reply, Written::Recorded(recorded.clone())));
            }
            None => {
                settled.push((id, Settled::Dropped));
                answers.push((pending.reply, Written::Refused));
            }
        }
    }
    if let Err(error) = queue.settle(&settled).await {
        // The outcomes are committed; stale processing entries are only cosmetic, and a
        // lost retry item is rebuilt by the sweeper from the RETRYING row.
        tracing::warn!(error = %error_chain(&error), "could not settle queue items");
    }
    for (reply, answer) in answers {
        let _ = reply.send(answer);
    }
}

/// Writes a batch, retrying while the store is unreachable; `None` after `patience`. The
/// flag says whether it took more than one try.
async fn write(
    store: &dyn Store,
    outcomes: &[Outcome],
    patience: Duration,
) -> Option<(Vec<Recorded>, bool)> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        tries += 1;
        match store.execution_record_outcomes(outcomes).await {
            Ok(written) => return Some((written, tries > 1)),
            Err(error) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %error_chain(&error), count = outcomes.len(), "could not record outcomes; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), count = outcomes.len(), "could not record outcomes; the fires stay RUNNING until their leases expire");
                return None;
            }
        }
    }
}
