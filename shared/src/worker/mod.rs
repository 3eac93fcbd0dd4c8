//! The worker: take queued executions, call their targets, record how it went.
//!
//! For each item: claim it in the store (QUEUED→RUNNING with a lease, one worker wins),
//! call the target while renewing the lease, record the outcome, and only after that
//! commit settle the item in the queue. [`Worker::run_once`] is one pass over what the
//! queue holds now; [`Worker::reap_once`] takes back fires whose worker died;
//! [`Worker::run`] keeps up to `pool_size` executions going, reaps and runs the
//! maintenance duties ([`crate::maintenance`]) beside them, and on shutdown lets
//! running requests finish within the grace period and hands back the rest.

mod delivery;
mod lease;
mod recorder;
mod retry;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

pub use delivery::{
    call, http_client, parse_retry_after, tickwork_headers, CallResult, RESPONSE_KEPT,
    RESPONSE_READ_LIMIT,
};
pub use lease::Lease;
pub use recorder::{Recorder, RecorderSettings, Written};
pub use retry::{backoff, decide, is_retryable, RetryPolicy, Verdict};

use crate::metrics::METRICS;
use crate::model::{Delivery, ExecutionStatus, Outcome};
use crate::queue::{Queue, QueueError, Settled};
use crate::store::{Reaped, Store, StoreError, Unfinished};
use crate::telemetry::error_chain;

/// Tuning of one worker process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Executions run at once (`WORKER_POOL_SIZE`).
    pub pool_size: usize,
    /// Ceiling on any request's timeout (`WORKER_HTTP_TIMEOUT`).
    pub http_timeout: Duration,
    /// Pause before asking an empty queue again.
    pub idle_poll: Duration,
    /// How long to keep trying to record an outcome while the store is unreachable.
    pub record_patience: Duration,
    /// Backoff between attempts of AT_LEAST_ONCE fires.
    pub retry: RetryPolicy,
    /// How long this worker's fires are its own without renewal (`LEASE_DURATION`); one
    /// statement renews the lease on all of them every third of it.
    pub lease: Duration,
    /// Lost leases after which an AT_LEAST_ONCE fire is FAILED (`CRASH_LIMIT`).
    pub crash_limit: u32,
    /// How long running requests may finish after shutdown starts (`SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// Time between reaper passes.
    pub reap_interval: Duration,
    /// The maintenance duties run beside the pool, once a second.
    pub maintenance: crate::maintenance::MaintenanceSettings,
    /// Most items taken and claimed in one statement.
    pub claim_batch: usize,
    /// Claims that may be in flight at once, so one slow claim does not hold up the next.
    pub claims_in_flight: usize,
    /// Most outcomes written per statement.
    pub record_batch: usize,
    /// How long the recorder waits for more outcomes after the first of a batch.
    pub record_linger: Duration,
    /// Which addresses targets may reach (`TARGET_ALLOW_CIDRS`); checked at every call.
    pub targets: crate::outbound::TargetPolicy,
    /// Opens sealed header values and signing secrets (`ENCRYPTION_KEY`). Without it, a
    /// job with sealed values fails its attempt saying so.
    pub keyring: Option<std::sync::Arc<crate::secrets::Keyring>>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            pool_size: 10_000,
            http_timeout: Duration::from_secs(90),
            idle_poll: Duration::from_millis(10),
            record_patience: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(15),
            crash_limit: 3,
            shutdown_grace: Duration::from_secs(95),
            reap_interval: Duration::from_secs(2),
            maintenance: crate::maintenance::MaintenanceSettings::default(),
            claim_batch: 500,
            claims_in_flight: 2,
            record_batch: 500,
            record_linger: Duration::from_millis(2),
            targets: crate::outbound::TargetPolicy::default(),
            keyring: None,
        }
    }
}

/// Why items could not be taken. The loop logs it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue could not be read.
    #[error("could not take items from the queue")]
    Queue(#[from] QueueError),
    /// The store refused the claim; the items stay QUEUED and the sweeper re-pushes them.
    #[error("could not claim executions")]
    Store(#[from] StoreError),
    /// The worker holds no lease (not yet registered, or the store is unreachable); it
    /// claims nothing until it does.
    #[error("this worker holds no lease yet (is the database reachable?)")]
    NoLease,
    /// The HTTP client could not be built (no TLS roots?).
    #[error("could not build the HTTP client")]
    Http(#[from] reqwest::Error),
}

/// How one execution ended for this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// The target answered 2xx and it is recorded.
    Succeeded,
    /// The attempt failed, the fire is FAILED, and it is recorded.
    Failed,
    /// The attempt failed and the fire waits for another one.
    Retrying,
    /// The store refused the outcome, or the lease was lost mid-request: another attempt
    /// owns the fire now.
    Refused,
    /// The outcome could not be written in time; the fire stays RUNNING in the store.
    Unrecorded,
}

/// What one [`Worker::run_once`] pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerPass {
    /// Items taken from the queue, dropped ones included.
    pub taken: usize,
    /// Items dropped because their execution was not QUEUED (a duplicate delivery).
    pub dropped: usize,
    /// Executions that succeeded.
    pub succeeded: usize,
    /// Executions that failed for good.
    pub failed: usize,
    /// Executions scheduled for another attempt.
    pub retrying: usize,
    /// Outcomes refused or not written.
    pub unsettled: usize,
}

/// Items taken from the queue in one go.
#[derive(Debug, Default)]
pub struct Taken {
    /// Claimed executions, ready to deliver.
    pub deliveries: Vec<Delivery>,
    /// Items dropped because their execution was not QUEUED.
    pub dropped: usize,
}

/// What [`Worker::run`] did until it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRun {
    /// Executions this worker ran to an outcome or handed back.
    pub processed: usize,
    /// Executions that succeeded.
    pub succeeded: usize,
    /// Executions that failed for good (dead letters).
    pub failed: usize,
    /// Executions whose attempt failed and that wait for another one.
    pub retrying: usize,
    /// Executions still running when the grace period ended, handed back.
    pub handed_back: usize,
    /// Executions whose outcome this worker could not write or the store refused (another
    /// attempt owns them now, or they stay leased until the reaper takes them).
    pub unsettled: usize,
}

impl WorkerRun {
    /// Counts a finished execution task (an aborted or panicked one is not counted: what
    /// it held is handed back or reaped).
    fn count_joined(&mut self, done: Result<ExecutionOutcome, tokio::task::JoinError>) {
        if let Ok(outcome) = done {
            self.count(outcome);
        }
    }

    fn count(&mut self, outcome: ExecutionOutcome) {
        self.processed += 1;
        match outcome {
            ExecutionOutcome::Succeeded => self.succeeded += 1,
            ExecutionOutcome::Failed => self.failed += 1,
            ExecutionOutcome::Retrying => self.retrying += 1,
            ExecutionOutcome::Refused | ExecutionOutcome::Unrecorded => self.unsettled += 1,
        }
    }
}

/// What one [`Worker::reap_once`] pass took back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReapPass {
    /// AT_LEAST_ONCE fires queued to run again.
    pub requeued: usize,
    /// AT_LEAST_ONCE fires that reached the crash limit, now FAILED.
    pub failed: usize,
    /// AT_MOST_ONCE fires, now ABANDONED.
    pub abandoned: usize,
}

/// A worker over a store, a queue and a shared HTTP client.
pub struct Worker {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    http: reqwest::Client,
    settings: WorkerSettings,
    recorder: Recorder,
    /// The lease on every fire this worker holds.
    lease: Arc<Lease>,
    /// Fires this worker holds, for handing back at shutdown.
    in_flight: Mutex<HashMap<Uuid, Unfinished>>,
    /// Where this worker's next sweep starts.
    sweep_floor: crate::maintenance::SweepFloor,
}

impl Worker {
    /// Builds a worker; the HTTP client is made once here and shared by every call, and
    /// the outcome recorder and lease tasks are started (the lease task registers the
    /// worker). Must be called inside a Tokio runtime.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        settings: WorkerSettings,
    ) -> Result<Self, WorkerError> {
        let recorder = Recorder::start(
            store.clone(),
            queue.clone(),
            RecorderSettings {
                max_batch: settings.record_batch.max(1),
                linger: settings.record_linger,
                patience: settings.record_patience,
            },
        );
        let lease = Lease::new(settings.lease);
        lease.start(store.clone());
        Ok(Self {
            store,
            queue,
            http: http_client(&settings.targets)?,
            settings,
            recorder,
            lease,
            in_flight: Mutex::new(HashMap::new()),
            sweep_floor: crate::maintenance::SweepFloor::default(),
        })
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
        let claimed = self.store.start_executions(&ids, worker).await?;
        METRICS
            .fires_skipped_overlap
            .add(claimed.skipped.len() as u64);
        METRICS
            .executions_failed
            .add(claimed.malformed.len() as u64);
        METRICS.executions_expired.add(claimed.expired.len() as u64);
        METRICS.dead_letters.add(claimed.expired.len() as u64);
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

    /// Calls the target of one claimed execution, records the outcome, then settles the
    /// queue item.
    pub async fn execute(&self, delivery: Delivery) -> ExecutionOutcome {
        self.execute_in_slot(delivery, None).await
    }

    /// As [`Worker::execute`], holding `slot` only while the request is being sent: the
    /// pool bounds requests in flight, not outcomes waiting to be written.
    async fn execute_in_slot(
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
        if !delivery.wait.is_zero() {
            // Claimed just ahead of its time: send it at the second it is scheduled for.
            tokio::time::sleep(delivery.wait).await;
        }
        if !self.lease.holds(delivery.worker_id) {
            tracing::warn!("lease lost before sending: the fire is taken back, not sent from here");
            self.settle(delivery.execution_id, Settled::Dropped).await;
            return ExecutionOutcome::Refused;
        }
        if let Ok(lag) = (chrono::Utc::now() - delivery.scheduled_at).to_std() {
            METRICS.fire_lag.observe_duration(lag);
        }
        let result = tokio::select! {
            biased;
            result = call(&self.http, &self.settings, &delivery) => result,
            () = self.lease.lost(delivery.worker_id) => {
                tracing::warn!("lease lost mid-request: another attempt owns this fire; abandoning this one");
                self.settle(delivery.execution_id, Settled::Dropped).await;
                return ExecutionOutcome::Refused;
            }
        };
        drop(slot);
        METRICS.attempt_latency.observe_duration(result.duration);
        let verdict = decide(
            &result,
            &delivery,
            self.settings.retry,
            rand::random::<f64>(),
        );
        let (status, retry_in) = match verdict {
            Verdict::Succeeded => (ExecutionStatus::Succeeded, None),
            Verdict::Retry(delay) => (ExecutionStatus::Retrying, Some(delay)),
            Verdict::Failed => (ExecutionStatus::Failed, None),
        };
        let outcome = Outcome {
            execution_id: delivery.execution_id,
            scheduled_at: delivery.scheduled_at,
            attempt: delivery.attempt,
            status,
            retry_in,
            duration_ms: i64::try_from(result.duration.as_millis()).unwrap_or(i64::MAX),
            http_status: result.status,
            error: result.error.clone(),
            response_body: result.body.clone(),
        };
        // The worker's lease still covers the fire while its outcome waits in the recorder's
        // batch (or for the store to come back), so the reaper leaves it alone.
        let recorded = match self.recorder.record(outcome).await {
            Written::Recorded(recorded) => recorded,
            Written::Refused => {
                tracing::warn!("outcome refused: another attempt owns this fire");
                return ExecutionOutcome::Refused;
            }
            Written::Unrecorded => return ExecutionOutcome::Unrecorded,
        };
        match recorded.status {
            ExecutionStatus::Succeeded => {
                METRICS.executions_succeeded.add(1);
                tracing::debug!(http_status = ?result.status, duration_ms = i64::try_from(result.duration.as_millis()).unwrap_or(i64::MAX), "execution succeeded");
                ExecutionOutcome::Succeeded
            }
            ExecutionStatus::Retrying => {
                METRICS.retries.add(1);
                tracing::warn!(http_status = ?result.status, error = result.error.as_deref().unwrap_or(""), next_attempt_at = ?recorded.next_attempt_at, "attempt failed; retrying");
                ExecutionOutcome::Retrying
            }
            _ => {
                METRICS.executions_failed.add(1);
                METRICS.dead_letters.add(1);
                tracing::warn!(http_status = ?result.status, error = result.error.as_deref().unwrap_or(""), "execution failed");
                ExecutionOutcome::Failed
            }
        }
    }

    async fn settle(&self, id: Uuid, how: Settled) {
        if let Err(error) = self.queue.settle(&[(id, how)]).await {
            // The outcome is committed; a stale processing entry is only cosmetic.
            tracing::warn!(error = %error_chain(&error), "could not settle queue item");
        }
    }

    /// Starts the executions a finished claim returned, one slot each (slots left over are
    /// freed). Returns how long to wait before the next claim when the queue was empty
    /// or could not be read.
    fn start_claimed(
        self: &Arc<Self>,
        done: Result<
            (Result<Taken, WorkerError>, Vec<OwnedSemaphorePermit>),
            tokio::task::JoinError,
        >,
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

    /// Takes back fires whose lease ran out (their worker died or stalled) and settles
    /// their queue items: AT_LEAST_ONCE ones are queued again (or FAILED into the
    /// dead-letter list at the crash limit), AT_MOST_ONCE ones are ABANDONED.
    pub async fn reap_once(&self) -> Result<ReapPass, WorkerError> {
        let reaped = self
            .store
            .reap_expired(self.settings.crash_limit, 1000)
            .await?;
        let pass = self.settle_taken_back(&reaped).await?;
        METRICS.reaped.add(reaped.len() as u64);
        METRICS.dead_letters.add(pass.failed as u64);
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

    async fn settle_taken_back(&self, fires: &[Reaped]) -> Result<ReapPass, WorkerError> {
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
    async fn upkeep(self: Arc<Self>) {
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
        let back = self.store.hand_back(&unfinished).await?;
        self.settle_taken_back(&back).await
    }

    /// One pass: takes up to `max` items, runs them all at once, and waits for them.
    pub async fn run_once(&self, max: usize) -> Result<WorkerPass, WorkerError> {
        let Taken {
            deliveries,
            dropped,
        } = self.take(max).await?;
        let mut pass = WorkerPass {
            taken: deliveries.len() + dropped,
            dropped,
            ..WorkerPass::default()
        };
        let outcomes =
            futures_util::future::join_all(deliveries.into_iter().map(|d| self.execute(d))).await;
        for outcome in outcomes {
            match outcome {
                ExecutionOutcome::Succeeded => pass.succeeded += 1,
                ExecutionOutcome::Failed => pass.failed += 1,
                ExecutionOutcome::Retrying => pass.retrying += 1,
                ExecutionOutcome::Refused | ExecutionOutcome::Unrecorded => pass.unsettled += 1,
            }
        }
        Ok(pass)
    }

    /// Keeps up to `pool_size` executions running, and reaps expired leases, until
    /// `shutdown` completes. Then stops taking work, lets running requests finish within
    /// `shutdown_grace`, and hands back what is still running.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> WorkerRun {
        self.run_finishing_by(shutdown, None).await
    }

    /// As [`Worker::run`], but running requests must finish by `finish_by` (a Lambda
    /// invocation passes its deadline less a margin) rather than within `shutdown_grace`.
    pub async fn run_until(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()>,
        finish_by: tokio::time::Instant,
    ) -> WorkerRun {
        self.run_finishing_by(shutdown, Some(finish_by)).await
    }

    async fn run_finishing_by(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()>,
        finish_by: Option<tokio::time::Instant>,
    ) -> WorkerRun {
        tokio::pin!(shutdown);
        let mut summary = WorkerRun::default();
        let slots = Arc::new(Semaphore::new(self.settings.pool_size));
        let mut running = JoinSet::new();
        // Claims in flight, each holding the slots for what it may take.
        let mut claiming: JoinSet<(Result<Taken, WorkerError>, Vec<OwnedSemaphorePermit>)> =
            JoinSet::new();
        // Reaping and the maintenance duties run beside the pool, never holding up a claim.
        let upkeep = tokio::spawn(Arc::clone(&self).upkeep());
        // The history's partitions, in a task of their own: dropping one waits for the
        // transactions that may read it.
        let worker = Arc::clone(&self);
        let history = tokio::spawn(async move {
            crate::maintenance::keep_history_every_minute(
                worker.store.as_ref(),
                &worker.settings.maintenance,
            )
            .await
        });
        // After an empty take (or an error), no new claim starts before this.
        let mut resume_at: Option<tokio::time::Instant> = None;
        loop {
            while let Some(done) = running.try_join_next() {
                summary.count_joined(done);
            }
            let may_claim =
                resume_at.is_none() && claiming.len() < self.settings.claims_in_flight.max(1);
            let pause =
                tokio::time::sleep_until(resume_at.unwrap_or_else(tokio::time::Instant::now));
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = claiming.join_next(), if !claiming.is_empty() => {
                    if let Some(pause_for) = self.start_claimed(done, &mut running) {
                        resume_at = Some(tokio::time::Instant::now() + pause_for);
                    }
                }
                () = pause, if resume_at.is_some() => resume_at = None,
                permit = slots.clone().acquire_owned(), if may_claim => {
                    let Ok(first) = permit else { break };
                    // Take as many slots as are free now (up to a claim batch) without waiting.
                    let want = (1 + slots.available_permits()).min(self.settings.claim_batch.max(1));
                    let mut permits = vec![first];
                    while permits.len() < want {
                        match slots.clone().try_acquire_owned() {
                            Ok(permit) => permits.push(permit),
                            Err(_) => break,
                        }
                    }
                    let worker = Arc::clone(&self);
                    claiming.spawn(async move {
                        let taken = worker.take(permits.len()).await;
                        (taken, permits)
                    });
                }
            }
        }
        upkeep.abort();
        history.abort();
        let finish_by =
            finish_by.unwrap_or_else(|| tokio::time::Instant::now() + self.settings.shutdown_grace);
        let grace = finish_by.saturating_duration_since(tokio::time::Instant::now());
        // Fires already claimed are RUNNING: run them (within the grace period) too.
        let _ = tokio::time::timeout_at(finish_by, async {
            while let Some(done) = claiming.join_next().await {
                self.start_claimed(done, &mut running);
            }
        })
        .await;
        claiming.abort_all();

        tracing::info!(
            in_flight = running.len(),
            grace_secs = grace.as_secs(),
            "worker stopping: no new work; letting running requests finish"
        );
        let drained = tokio::time::timeout_at(finish_by, async {
            while let Some(done) = running.join_next().await {
                summary.count_joined(done);
            }
        })
        .await;
        if drained.is_err() {
            running.abort_all();
            while let Some(done) = running.join_next().await {
                // Finished between the end of the grace period and the abort.
                summary.count_joined(done);
            }
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
        self.lease.retire(self.store.as_ref()).await;
        tracing::info!(?summary, "worker stopped");
        summary
    }
}
