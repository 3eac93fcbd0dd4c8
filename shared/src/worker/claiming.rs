//! Claiming: keep the pool's free slots filled with fires taken from the queue.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{ExecutionOutcome, Taken, Worker, WorkerError, WorkerRun};
use crate::metrics::METRICS;
use crate::queue::Settled;
use crate::telemetry::error_chain;

/// A finished claim: what it took, and the slots held for it.
pub(super) type Claim = (Result<Taken, WorkerError>, Vec<OwnedSemaphorePermit>);

/// The requests one worker has going: a slot per request in flight, the claims that will
/// fill free slots, and the count of what has finished.
pub(super) struct Pool {
    /// One permit per request that may be in flight (`pool_size`).
    pub(super) slots: Arc<Semaphore>,
    /// Requests being sent and their outcomes being recorded.
    pub(super) running: JoinSet<ExecutionOutcome>,
    /// Claims in flight, each holding the slots for what it may take.
    pub(super) claiming: JoinSet<Claim>,
    /// What has finished so far.
    pub(super) summary: WorkerRun,
}

impl Pool {
    pub(super) fn new(size: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(size)),
            running: JoinSet::new(),
            claiming: JoinSet::new(),
            summary: WorkerRun::default(),
        }
    }

    /// The first slot and as many more as are free now (up to `batch`), without waiting.
    fn free_slots(&self, first: OwnedSemaphorePermit, batch: usize) -> Vec<OwnedSemaphorePermit> {
        let want = (1 + self.slots.available_permits()).min(batch.max(1));
        let mut permits = vec![first];
        while permits.len() < want {
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        permits
    }
}

impl Worker {
    /// Claims work whenever slots are free, and starts what each claim took, until
    /// `shutdown` completes. After an empty take (or an error) it pauses before the next.
    pub(super) async fn claim_until(
        self: &Arc<Self>,
        pool: &mut Pool,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut resume_at: Option<tokio::time::Instant> = None;
        loop {
            while let Some(done) = pool.running.try_join_next() {
                pool.summary.count_joined(done);
            }
            let may_claim =
                resume_at.is_none() && pool.claiming.len() < self.settings.claims_in_flight.max(1);
            let pause =
                tokio::time::sleep_until(resume_at.unwrap_or_else(tokio::time::Instant::now));
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = pool.claiming.join_next(), if !pool.claiming.is_empty() => {
                    if let Some(pause_for) = self.start_claimed(done, &mut pool.running) {
                        resume_at = Some(tokio::time::Instant::now() + pause_for);
                    }
                }
                () = pause, if resume_at.is_some() => resume_at = None,
                permit = pool.slots.clone().acquire_owned(), if may_claim => {
                    let Ok(first) = permit else { break };
                    let permits = pool.free_slots(first, self.settings.claim_batch);
                    let worker = Arc::clone(self);
                    pool.claiming.spawn(async move {
                        let taken = worker.take(permits.len()).await;
                        (taken, permits)
                    });
                }
            }
        }
    }

    /// Takes up to `max` items and claims their executions. Items whose execution is not
    /// QUEUED are settled as dropped at once.
    pub async fn take(&self, max: usize) -> Result<Taken, WorkerError> {
        let worker = self
            .lease
            .holder(self.settings.lease)
            .await
            .ok_or(WorkerError::NoLease)?;
        let ids = self.queue.pop(max).await?;
        if ids.is_empty() {
            return Ok(Taken::default());
        }
        let claimed = self.store.execution_start(&ids, worker).await?;
        METRICS
            .fires_skipped_overlap
            .inc_by(claimed.skipped.len() as u64);
        METRICS
            .executions_failed
            .inc_by(claimed.malformed.len() as u64);
        METRICS
            .executions_expired
            .inc_by(claimed.expired.len() as u64);
        METRICS.dead_letters.inc_by(claimed.expired.len() as u64);
        if !claimed.expired.is_empty() {
            // Counted in tickwork_executions_total{status="EXPIRED"}; the expiry pass logs
            // a summary each second.
            tracing::debug!(
                count = claimed.expired.len(),
                "fires not started within their startingDeadlineSeconds expired unsent"
            );
        }
        let deliveries = claimed.deliveries;
        if deliveries.len() < ids.len() {
            let claimed_ids: HashSet<Uuid> = deliveries.iter().map(|d| d.execution_id).collect();
            let expired: HashSet<Uuid> = claimed.expired.into_iter().collect();
            // Expired fires are dead letters; the rest are not ours to run.
            let dropped: Vec<(Uuid, Settled)> = ids
                .iter()
                .filter(|id| !claimed_ids.contains(id))
                .map(|id| {
                    let how = if expired.contains(id) {
                        Settled::Failed
                    } else {
                        Settled::Dropped
                    };
                    (*id, how)
                })
                .collect();
            tracing::debug!(
                count = dropped.len(),
                "dropped items whose execution is not queued"
            );
            if let Err(error) = self.queue.settle(&dropped).await {
                tracing::warn!(error = %error_chain(&error), "could not settle dropped items");
            }
        }
        Ok(Taken {
            dropped: ids.len() - deliveries.len(),
            deliveries,
        })
    }

    /// Starts the executions a finished claim returned, one slot each (slots left over are
    /// freed). Returns how long to wait before the next claim when the queue was empty
    /// or could not be read.
    pub(super) fn start_claimed(
        self: &Arc<Self>,
        done: Result<Claim, tokio::task::JoinError>,
        running: &mut JoinSet<ExecutionOutcome>,
    ) -> Option<Duration> {
        match done {
            Ok((Ok(taken), permits)) => {
                let empty = taken.deliveries.is_empty() && taken.dropped == 0;
                let mut permits = permits.into_iter();
                for delivery in taken.deliveries {
                    let permit = permits.next();
                    let worker = Arc::clone(self);
                    running.spawn(async move { worker.execute_in_slot(delivery, permit).await });
                }
                empty.then_some(self.settings.idle_poll)
            }
            Ok((Err(error), _)) => {
                tracing::error!(error = %error_chain(&error), "could not take work");
                Some(Duration::from_secs(1))
            }
            Err(error) => {
                tracing::error!(%error, "a claim task failed");
                Some(Duration::from_secs(1))
            }
        }
    }
}
