//! A [`Store`] that forwards every call to a real store (the test's PostgreSQL database or
//! embedded file), counting API key lookups, with two hooks for what a test cannot do to a
//! real server: its clock read shifted by a fixed offset, and `record_outcomes` calls that
//! fail on demand (after the write committed, as when only the answer is lost, or before
//! writing anything).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tickwork::model::{ApiKey, Attempt, Execution, Job, Outcome, Recorded};
use tickwork::store::{
    Claimed, FiredBatch, IdempotentInsert, JobChange, JobCursor, JobFilter, Planner, Reaped,
    Released, Requeued, SealedValues, Store, StoreError, TenantCounts, Unfinished,
};
use uuid::Uuid;

/// How one `record_outcomes` call fails.
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

    /// The next `record_outcomes` calls fail, in this order; later ones are forwarded.
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

    /// How many times `record_outcomes` was called.
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
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        self.inner.insert_job(job).await
    }
    async fn insert_job_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        self.inner.insert_job_once(job, key, fingerprint).await
    }
    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.inner.job(id).await
    }
    async fn jobs(
        &self,
        filter: JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.jobs(filter, cursor, limit).await
    }
    async fn update_job(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, tickwork::model::InvalidField>>, StoreError> {
        self.inner.update_job(id, change).await
    }
    async fn reseal_job(
        &self,
        id: Uuid,
        before: &SealedValues,
        after: &SealedValues,
    ) -> Result<bool, StoreError> {
        self.inner.reseal_job(id, before, after).await
    }
    async fn delete_job(&self, id: Uuid) -> Result<bool, StoreError> {
        self.inner.delete_job(id).await
    }
    async fn execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.inner.execution(id).await
    }
    async fn attempts(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        self.inner.attempts(execution_ids).await
    }
    async fn count_retrying(&self) -> Result<u64, StoreError> {
        self.inner.count_retrying().await
    }
    async fn executions(
        &self,
        job_id: Uuid,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.executions(job_id, before, limit).await
    }
    async fn fire_due_jobs(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError> {
        self.inner
            .fire_due_jobs(now, horizon, limit, plan, room)
            .await
    }
    async fn holds_any(&self) -> Result<bool, StoreError> {
        self.inner.holds_any().await
    }
    async fn release_held(&self, limit: u32) -> Result<Released, StoreError> {
        self.inner.release_held(limit).await
    }
    async fn stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        self.inner
            .stale_queued(queued_from, queued_before, due_by, limit)
            .await
    }
    async fn delete_history(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.inner.delete_history(before, limit).await
    }
    async fn keep_history(
        &self,
        before: Option<DateTime<Utc>>,
    ) -> Result<tickwork::store::HistoryKept, StoreError> {
        self.inner.keep_history(before).await
    }
    async fn requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.inner.requeue_retries(ids, now).await
    }
    async fn overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.inner.overdue_retries(due_before, limit).await
    }
    async fn register_worker(&self, lease: std::time::Duration) -> Result<Uuid, StoreError> {
        self.inner.register_worker(lease).await
    }
    async fn renew_worker(
        &self,
        worker: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.inner.renew_worker(worker, lease).await
    }
    async fn retire_worker(&self, worker: Uuid) -> Result<(), StoreError> {
        self.inner.retire_worker(worker).await
    }
    async fn start_executions(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError> {
        self.inner.start_executions(ids, worker).await
    }
    async fn expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        self.inner.expire_overdue(limit).await
    }
    async fn reap_expired(&self, crash_limit: u32, limit: u32) -> Result<Vec<Reaped>, StoreError> {
        self.inner.reap_expired(crash_limit, limit).await
    }
    async fn hand_back(&self, unfinished: &[Unfinished]) -> Result<Vec<Reaped>, StoreError> {
        self.inner.hand_back(unfinished).await
    }
    async fn trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.inner.trigger(job_id).await
    }
    async fn dead_letters(
        &self,
        tenant: Option<&str>,
        job_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.dead_letters(tenant, job_id, before, limit).await
    }
    async fn requeue_dead_letter(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        self.inner.requeue_dead_letter(id, force).await
    }
    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        self.inner.tenant_counts(tenant).await
    }
    async fn insert_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        self.inner.insert_api_key(key, hash).await
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.key_lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.api_key_by_hash(hash).await
    }
    async fn api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.api_keys(tenant).await
    }
    async fn revoke_api_key(
        &self,
        id: Uuid,
        tenant: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(id, tenant, now).await
    }
    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<Vec<Recorded>, StoreError> {
        self.record_calls.fetch_add(1, Ordering::SeqCst);
        let failure = self.failures.lock().unwrap().pop_front();
        match failure {
            None => self.inner.record_outcomes(outcomes).await,
            Some(Failure::AnswerLost) => {
                self.inner.record_outcomes(outcomes).await?;
                Err(lost_answer())
            }
            Some(Failure::NotWritten) => Err(lost_answer()),
        }
    }
}
