//! The worker: take queued executions, call their targets, record how it went.
//!
//! For each item: claim it in the store (QUEUED→RUNNING with a lease, one worker wins),
//! call the target while renewing the lease, record the outcome, and only after that
//! commit settle the item in the queue. [`Worker::run_once`] is one pass over what the
//! queue holds now; [`Worker::reap_once`] takes back fires whose worker died;
//! [`Worker::run`] keeps up to `pool_size` executions going, reaps and runs the
//! maintenance duties ([`crate::maintenance`]) beside them, and on shutdown lets
//! running requests finish within the grace period and hands back the rest.
//!
//! Rooms: `claiming` fills free slots from the queue, `execute` runs one claimed fire,
//! `call` is the request and its [`CallOutcome`], `delivery` builds the request's
//! headers, `retry` decides what follows a failed attempt, `recorder` batches outcomes
//! into the store, `lease` keeps the worker's lease, `reaping` takes back fires of dead
//! workers, `draining` finishes and hands back at shutdown.

mod call;
mod claiming;
mod delivery;
mod draining;
mod execute;
mod lease;
mod reaping;
mod recorder;
mod retry;
mod tally;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

pub use call::{call, parse_retry_after, CallOutcome};
use claiming::Pool;
pub use delivery::{http_client, tickwork_headers, RESPONSE_KEPT, RESPONSE_READ_LIMIT};
pub use lease::Lease;
pub use recorder::{Recorder, RecorderSettings, Written};
pub use retry::{backoff, decide, is_retryable, RetryPolicy, Verdict};

use crate::model::Delivery;
use crate::queue::{Queue, QueueError};
use crate::store::{Store, StoreError, Unfinished};

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

    /// Writes the outcome rollups tallied so far, rather than at the recorder's next round
    /// (a Lambda invocation's end does; so do tests).
    pub async fn write_rollups(&self) {
        self.recorder.write_rollups().await;
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

    /// Keeps up to `pool_size` executions running beside the upkeep tasks until
    /// `shutdown` completes, then drains: running requests finish by `finish_by` (or
    /// within `shutdown_grace`) and what is still running is handed back.
    async fn run_finishing_by(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()>,
        finish_by: Option<tokio::time::Instant>,
    ) -> WorkerRun {
        // Reaping and the maintenance duties run beside the pool, never holding up a claim.
        let upkeep = tokio::spawn(Arc::clone(&self).upkeep());
        // The history's partitions and the old rollups, in a task of their own: dropping a
        // partition waits for the transactions that may read it.
        let worker = Arc::clone(&self);
        let history = tokio::spawn(async move {
            let store = worker.store.as_ref();
            tokio::join!(
                crate::maintenance::keep_history_every_minute(store, &worker.settings.maintenance),
                crate::maintenance::forget_old_rollups_every_hour(store),
            )
        });
        let mut pool = Pool::new(self.settings.pool_size);
        self.claim_until(&mut pool, shutdown).await;
        upkeep.abort();
        history.abort();
        let finish_by =
            finish_by.unwrap_or_else(|| tokio::time::Instant::now() + self.settings.shutdown_grace);
        let summary = self.drain(pool, finish_by).await;
        self.recorder.write_rollups().await;
        self.lease.retire(self.store.as_ref()).await;
        tracing::info!(?summary, "worker stopped");
        summary
    }
}
