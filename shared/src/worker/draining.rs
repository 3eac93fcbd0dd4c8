//! Draining: after shutdown, let running requests finish by a deadline and hand back
//! what is still running.

use std::sync::Arc;

use super::claiming::Pool;
use super::{ReapPass, Worker, WorkerError, WorkerRun};
use crate::store::Unfinished;
use crate::telemetry::error_chain;

impl Worker {
    /// Starts what claims in flight took (those fires are RUNNING already), waits for
    /// running requests until `finish_by`, then aborts the rest and hands them back.
    pub(super) async fn drain(
        self: &Arc<Self>,
        mut pool: Pool,
        finish_by: tokio::time::Instant,
    ) -> WorkerRun {
        let grace = finish_by.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout_at(finish_by, async {
            while let Some(done) = pool.claiming.join_next().await {
                self.start_claimed(done, &mut pool.running);
            }
        })
        .await;
        pool.claiming.abort_all();
        tracing::info!(
            in_flight = pool.running.len(),
            grace_secs = grace.as_secs(),
            "worker stopping: no new work; letting running requests finish"
        );
        let drained = tokio::time::timeout_at(finish_by, async {
            while let Some(done) = pool.running.join_next().await {
                pool.summary.count_joined(done);
            }
        })
        .await;
        if drained.is_err() {
            pool.running.abort_all();
            while let Some(done) = pool.running.join_next().await {
                // Finished between the end of the grace period and the abort.
                pool.summary.count_joined(done);
            }
            self.hand_back_counted(&mut pool.summary).await;
        }
        pool.summary
    }

    /// Hands back what is still held and counts it in `summary`.
    async fn hand_back_counted(&self, summary: &mut WorkerRun) {
        match self.hand_back_unfinished().await {
            Ok(back) => {
                let handed_back = back.requeued + back.failed + back.abandoned;
                summary.processed += handed_back;
                summary.handed_back += handed_back;
                // At the crash limit a handed-back AT_LEAST_ONCE fire is FAILED.
                summary.failed += back.failed;
                tracing::warn!(
                    requeued = back.requeued,
                    abandoned = back.abandoned,
                    "grace period over: handed back unfinished fires"
                );
            }
            Err(error) => tracing::error!(
                error = %error_chain(&error),
                "could not hand back unfinished fires; a reaper takes them back once this worker is retired"
            ),
        }
    }

    /// Hands back every fire this worker still holds: AT_LEAST_ONCE to QUEUED (pushed for
    /// another worker), AT_MOST_ONCE to ABANDONED.
    pub async fn hand_back_unfinished(&self) -> Result<ReapPass, WorkerError> {
        let unfinished: Vec<Unfinished> = match self.in_flight.lock() {
            Ok(mut held) => held.drain().map(|(_, u)| u).collect(),
            Err(_) => Vec::new(),
        };
        if unfinished.is_empty() {
            return Ok(ReapPass::default());
        }
        let back = self.store.execution_hand_back(&unfinished).await?;
        self.settle_taken_back(&back).await
    }
}
