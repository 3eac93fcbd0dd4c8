//! Executing one claimed fire: call its target while the lease holds, record the
//! outcome, settle the queue item.

use std::time::Duration;

use chrono::{DateTime, Utc};

use tracing::Instrument;
use uuid::Uuid;

use super::{call, decide, CallOutcome, ExecutionOutcome, Verdict, Worker, Written};
use crate::metrics::METRICS;
use crate::model::{Delivery, ExecutionStatus, Outcome, Recorded};
use crate::queue::Settled;
use crate::store::Unfinished;
use crate::telemetry::error_chain;

impl Worker {
    /// Calls the target of one claimed execution, records the outcome, then settles the
    /// queue item.
    pub async fn execute(&self, delivery: Delivery) -> ExecutionOutcome {
        self.execute_in_slot(delivery, None).await
    }

    /// As [`Worker::execute`], holding `slot` only while the request is being sent: the
    /// pool bounds requests in flight, not outcomes waiting to be written.
    pub(super) async fn execute_in_slot(
        &self,
        delivery: Delivery,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> ExecutionOutcome {
        let span = tracing::info_span!(
            "execution",
            execution_id = %delivery.execution_id,
            job_id = %delivery.job_id,
            attempt = delivery.attempt,
        );
        let id = delivery.execution_id;
        self.hold(&delivery);
        let outcome = self.execute_inner(delivery, slot).instrument(span).await;
        self.release(id);
        outcome
    }

    fn hold(&self, delivery: &Delivery) {
        if let Ok(mut held) = self.in_flight.lock() {
            held.insert(
                delivery.execution_id,
                Unfinished {
                    execution_id: delivery.execution_id,
                    attempt: delivery.attempt,
                    execution_type: delivery.execution_type,
                },
            );
        }
    }

    fn release(&self, id: Uuid) {
        if let Ok(mut held) = self.in_flight.lock() {
            held.remove(&id);
        }
    }

    async fn execute_inner(
        &self,
        delivery: Delivery,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> ExecutionOutcome {
        let Some((call, sent_at)) = self.send(&delivery).await else {
            return ExecutionOutcome::Refused;
        };
        drop(slot);
        METRICS.attempt_latency.observe_duration(call.duration());
        // The worker's lease still covers the fire while its outcome waits in the recorder's
        // batch (or for the store to come back), so the reaper leaves it alone.
        let recorded = match self
            .recorder
            .record(self.outcome_of(&call, &delivery, sent_at))
            .await
        {
            Written::Recorded(recorded) => recorded,
            Written::Refused => {
                tracing::warn!("outcome refused: another attempt owns this fire");
                return ExecutionOutcome::Refused;
            }
            Written::Unrecorded => return ExecutionOutcome::Unrecorded,
        };
        counted(&recorded, &call)
    }

    /// Waits for the fire's second, then calls its target while the lease holds; what came
    /// of it and when it was sent. `None` when the lease was lost first: another attempt
    /// owns the fire, and its queue item is settled as dropped.
    async fn send(&self, delivery: &Delivery) -> Option<(CallOutcome, DateTime<Utc>)> {
        if !delivery.wait.is_zero() {
            // Claimed just ahead of its time: send it at the second it is scheduled for.
            tokio::time::sleep(delivery.wait).await;
        }
        if !self.lease.holds(delivery.worker_id) {
            tracing::warn!("lease lost before sending: the fire is taken back, not sent from here");
            self.settle(delivery.execution_id, Settled::Dropped).await;
            return None;
        }
        let sent_at = Utc::now();
        if let Ok(lag) = (sent_at - delivery.scheduled_at).to_std() {
            METRICS.fire_lag.observe_duration(lag);
        }
        tokio::select! {
            biased;
            call = call(&self.http, &self.settings, delivery) => Some((call, sent_at)),
            () = self.lease.lost(delivery.worker_id) => {
                tracing::warn!("lease lost mid-request: another attempt owns this fire; abandoning this one");
                self.settle(delivery.execution_id, Settled::Dropped).await;
                None
            }
        }
    }

    /// The outcome to record for `call`: succeeded, retrying after a delay, or failed.
    fn outcome_of(
        &self,
        call: &CallOutcome,
        delivery: &Delivery,
        sent_at: DateTime<Utc>,
    ) -> Outcome {
        let verdict = decide(call, delivery, self.settings.retry, rand::random::<f64>());
        let (status, retry_in) = match verdict {
            Verdict::Succeeded => (ExecutionStatus::Succeeded, None),
            Verdict::Retry(delay) => (ExecutionStatus::Retrying, Some(delay)),
            Verdict::Failed => (ExecutionStatus::Failed, None),
        };
        Outcome {
            execution_id: delivery.execution_id,
            job_id: delivery.job_id,
            tenant: delivery.tenant.clone(),
            scheduled_at: delivery.scheduled_at,
            attempt: delivery.attempt,
            status,
            retry_in,
            duration_ms: millis(call.duration()),
            http_status: call.status(),
            error: call.error(),
            response_body: call.body().map(str::to_string),
            sent_at,
        }
    }

    pub(super) async fn settle(&self, id: Uuid, how: Settled) {
        if let Err(error) = self.queue.settle(&[(id, how)]).await {
            // The outcome is committed; a stale processing entry is only cosmetic.
            tracing::warn!(error = %error_chain(&error), "could not settle queue item");
        }
    }
}

/// Counts and logs a recorded outcome; what this worker makes of it.
fn counted(recorded: &Recorded, call: &CallOutcome) -> ExecutionOutcome {
    let http_status = call.status();
    let error = call.error().unwrap_or_default();
    match recorded.status {
        ExecutionStatus::Succeeded => {
            METRICS.executions_succeeded.inc();
            tracing::debug!(
                ?http_status,
                duration_ms = millis(call.duration()),
                "execution succeeded"
            );
            ExecutionOutcome::Succeeded
        }
        ExecutionStatus::Retrying => {
            METRICS.retries.inc();
            tracing::warn!(?http_status, error, next_attempt_at = ?recorded.next_attempt_at, "attempt failed; retrying");
            ExecutionOutcome::Retrying
        }
        _ => {
            METRICS.executions_failed.inc();
            METRICS.dead_letters.inc();
            tracing::warn!(?http_status, error, "execution failed");
            ExecutionOutcome::Failed
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
