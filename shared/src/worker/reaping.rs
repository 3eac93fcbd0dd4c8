//! Reaping and upkeep: take back fires whose worker lost its lease, and run the
//! maintenance duties beside the pool.

use std::sync::Arc;
use std::time::Duration;

use super::{ReapPass, Worker, WorkerError};
use crate::metrics::METRICS;
use crate::model::ExecutionStatus;
use crate::queue::Settled;
use crate::store::Reaped;
use crate::telemetry::error_chain;

impl Worker {
    /// Takes back fires whose lease ran out (their worker died or stalled) and settles
    /// their queue items: AT_LEAST_ONCE ones are queued again (or FAILED into the
    /// dead-letter list at the crash limit), AT_MOST_ONCE ones are ABANDONED.
    pub async fn reap_once(&self) -> Result<ReapPass, WorkerError> {
        let reaped = self
            .store
            .execution_reap_expired(self.settings.crash_limit, 1000)
            .await?;
        let pass = self.settle_taken_back(&reaped).await?;
        METRICS.reaped.inc_by(reaped.len() as u64);
        METRICS.dead_letters.inc_by(pass.failed as u64);
        if !reaped.is_empty() {
            tracing::warn!(
                requeued = pass.requeued,
                failed = pass.failed,
                abandoned = pass.abandoned,
                "took back fires whose worker lost its lease"
            );
        }
        Ok(pass)
    }

    pub(super) async fn settle_taken_back(
        &self,
        fires: &[Reaped],
    ) -> Result<ReapPass, WorkerError> {
        let mut pass = ReapPass::default();
        let mut settled = Vec::with_capacity(fires.len());
        let mut queued = Vec::new();
        for fire in fires {
            let how = match fire.status {
                ExecutionStatus::Queued => {
                    pass.requeued += 1;
                    queued.push(fire.execution_id);
                    Settled::Dropped
                }
                ExecutionStatus::Failed => {
                    pass.failed += 1;
                    Settled::Failed
                }
                _ => {
                    pass.abandoned += 1;
                    Settled::Dropped
                }
            };
            settled.push((fire.execution_id, how));
        }
        self.queue.settle(&settled).await?;
        self.queue.push(&queued).await?;
        Ok(pass)
    }

    /// Reaps every `reap_interval` and runs the maintenance duties every second, until
    /// aborted.
    pub(super) async fn upkeep(self: Arc<Self>) {
        let mut reap = tokio::time::interval(self.settings.reap_interval);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut duties = tokio::time::interval(Duration::from_secs(1));
        duties.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = reap.tick() => {
                    if let Err(error) = self.reap_once().await {
                        tracing::error!(error = %error_chain(&error), "reaper pass failed");
                    }
                }
                _ = duties.tick() => {
                    crate::maintenance::run_duties(
                        self.store.as_ref(),
                        self.queue.as_ref(),
                        &self.settings.maintenance,
                        &self.sweep_floor,
                    )
                    .await;
                }
            }
        }
    }
}
