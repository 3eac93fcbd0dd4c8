//! A [`Store`] that forwards every call to a real store (the test's PostgreSQL database or
//! embedded file), counting API key lookups, with two hooks for what a test cannot do to a
//! real server: its clock read shifted by a fixed offset, and `execution_record_outcomes` calls that
//! fail on demand (after the write committed, as when only the answer is lost, or before
//! writing anything).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tickwork::model::{
    ApiKey, Attempt, Execution, Job, LastOutcome, MinuteRollup, Outcome, Recorded,
};
use tickwork::store::{
    ApiKeys, Claimed, DeadLetterListing, Deliveries, ExecutionListing, FiredBatch, Fires, History,
    IdempotentInsert, JobChange, JobCursor, JobFilter, Jobs, Planner, Reaped, RecentOutcome,
    Released, Requeued, Rollups, SealedValues, Store, StoreError, TenantCounts, Unfinished,
};
use uuid::Uuid;

/// How one `execution_record_outcomes` call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The outcomes are written and committed, then the caller gets an error, as when the
    /// connection drops before the answer arrives.
    AnswerLost,
    /// The caller gets an error and nothing is written.
    NotWritten,
}

/// Forwards to `inner`; see the module documentation.
pub struct Forwarding {
    inner: Arc<dyn Store>,
    clock_offset: chrono::Duration,
    failures: Mutex<VecDeque<Failure>>,
    record_calls: AtomicUsize,
    key_lookups: AtomicUsize,
}

impl Forwarding {
    /// Forwards everything unchanged.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            clock_offset: chrono::Duration::zero(),
            failures: Mutex::new(VecDeque::new()),
            record_calls: AtomicUsize::new(0),
            key_lookups: AtomicUsize::new(0),
        }
    }

    /// Its `clock()` reads the real store's clock plus `offset`.
    pub fn with_clock_offset(mut self, offset: chrono::Duration) -> Self {
        self.clock_offset = offset;
        self
    }

    /// The next `execution_record_outcomes` calls fail, in this order; later ones are forwarded.
    pub fn fail_record_outcomes(&self, failures: &[Failure]) {
        self.failures
            .lock()
            .unwrap()
            .extend(failures.iter().copied());
    }

    /// How many times an API key was looked up (`api_key_by_hash`).
    pub fn key_lookups(&self) -> usize {
        self.key_lookups.load(Ordering::SeqCst)
    }

    /// How many times `execution_record_outcomes` was called.
    pub fn record_calls(&self) -> usize {
        self.record_calls.load(Ordering::SeqCst)
    }
}

fn lost_answer() -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset before the answer arrived (test)",
    )))
}

#[async_trait]
impl ApiKeys for Forwarding {
    async fn api_key_insert(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        self.inner.api_key_insert(key, hash).await
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.key_lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.api_key_by_hash(hash).await
    }
    async fn api_key_list(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.api_key_list(tenant).await
    }
    async fn api_key_revoke(
        &self,
        id: Uuid,
        tenant: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.api_key_revoke(id, tenant, now).await
    }
}

#[async_trait]
impl Store for Forwarding {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn clock(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.inner.clock().await? + self.clock_offset)
    }
}

#[async_trait]
impl Jobs for Forwarding {
    async fn job_insert(&self, job: &Job) -> Result<(), StoreError> {
        self.inner.job_insert(job).await
    }
    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        self.inner.job_insert_once(job, key, fingerprint).await
    }
    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.inner.job_get(id).await
    }
    async fn job_list(
        &self,
        filter: JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.job_list(filter, cursor, limit).await
    }
    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, tickwork::model::InvalidField>>, StoreError> {
        self.inner.job_update(id, change).await
    }
    async fn job_reseal(
        &self,
        id: Uuid,
        before: &SealedValues,
        after: &SealedValues,
    ) -> Result<bool, StoreError> {
        self.inner.job_reseal(id, before, after).await
    }
    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        self.inner.job_delete(id).await
    }
    async fn job_trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.inner.job_trigger(job_id).await
    }
}

#[async_trait]
impl Fires for Forwarding {
    async fn execution_count_retrying(&self) -> Result<u64, StoreError> {
        self.inner.execution_count_retrying().await
    }
    async fn job_fire_due(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError> {
        self.inner
            .job_fire_due(now, horizon, limit, plan, room)
            .await
    }
    async fn execution_any_held(&self) -> Result<bool, StoreError> {
        self.inner.execution_any_held().await
    }
    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError> {
        self.inner.execution_release_held(limit).await
    }
    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        self.inner
            .execution_list_stale_queued(queued_from, queued_before, due_by, limit)
            .await
    }
    async fn execution_requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.inner.execution_requeue_retries(ids, now).await
    }
    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.inner
            .execution_list_overdue_retries(due_before, limit)
            .await
    }
    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        self.inner.execution_expire_overdue(limit).await
    }
}

#[async_trait]
impl Deliveries for Forwarding {
    async fn worker_register(&self, lease: std::time::Duration) -> Result<Uuid, StoreError> {
        self.inner.worker_register(lease).await
    }
    async fn worker_renew(
        &self,
        worker: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.inner.worker_renew(worker, lease).await
    }
    async fn worker_retire(&self, worker: Uuid) -> Result<(), StoreError> {
        self.inner.worker_retire(worker).await
    }
    async fn execution_start(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError> {
        self.inner.execution_start(ids, worker).await
    }
    async fn execution_reap_expired(
        &self,
        crash_limit: u32,
        limit: u32,
    ) -> Result<Vec<Reaped>, StoreError> {
        self.inner.execution_reap_expired(crash_limit, limit).await
    }
    async fn execution_hand_back(
        &self,
        unfinished: &[Unfinished],
    ) -> Result<Vec<Reaped>, StoreError> {
        self.inner.execution_hand_back(unfinished).await
    }
    async fn execution_record_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, StoreError> {
        self.record_calls.fetch_add(1, Ordering::SeqCst);
        let failure = self.failures.lock().unwrap().pop_front();
        match failure {
            None => self.inner.execution_record_outcomes(outcomes).await,
            Some(Failure::AnswerLost) => {
                self.inner.execution_record_outcomes(outcomes).await?;
                Err(lost_answer())
            }
            Some(Failure::NotWritten) => Err(lost_answer()),
        }
    }
}

#[async_trait]
impl History for Forwarding {
    async fn execution_get(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.inner.execution_get(id).await
    }
    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        self.inner.attempt_list(execution_ids).await
    }
    async fn execution_list_recent(
        &self,
        job_ids: &[Uuid],
        per_job: u32,
    ) -> Result<Vec<RecentOutcome>, StoreError> {
        self.inner.execution_list_recent(job_ids, per_job).await
    }
    async fn execution_list(
        &self,
        listing: ExecutionListing,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.execution_list(listing).await
    }
    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.inner.history_delete(before, limit).await
    }
    async fn history_keep(
        &self,
        before: Option<DateTime<Utc>>,
    ) -> Result<tickwork::store::HistoryKept, StoreError> {
        self.inner.history_keep(before).await
    }
    async fn dead_letter_list(
        &self,
        listing: DeadLetterListing<'_>,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.dead_letter_list(listing).await
    }
    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        self.inner.dead_letter_requeue(id, force).await
    }
    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        self.inner.tenant_counts(tenant).await
    }
}

#[async_trait]
impl Rollups for Forwarding {
    async fn rollup_add(
        &self,
        minutes: &[MinuteRollup],
        latest: &[LastOutcome],
    ) -> Result<(), StoreError> {
        self.inner.rollup_add(minutes, latest).await
    }
    async fn rollup_list(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        self.inner.rollup_list(tenant, since).await
    }
    async fn rollup_forget(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.rollup_forget(before).await
    }
}
