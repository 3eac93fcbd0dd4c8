//! SQLite: jobs, stored, read, changed and triggered.

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::SqliteStore;
use crate::model::{Execution, InvalidField, Job};
use crate::store::rows::{ExecutionRow, JobRow};
use crate::store::rules::{change_job, contains_pattern, WaitingFires};
use crate::store::shared::on_sqlite;
use crate::store::sql::{bind_job, CANCEL_WAITING, EXECUTION_COLUMNS, SOFT_DELETE_JOB, WRITE_JOB};
use crate::store::{
    IdempotentInsert, JobChange, JobCursor, JobFilter, JobOrder, Jobs, SealedValues, StoreError,
};

/// Columns of a job as the API shows it, with its last finished run.
const JOB_COLUMNS: &str = "j.id, j.name, j.description, j.cron_expression, j.timezone, \
     j.http_method, j.http_url, j.http_headers, j.http_body, j.execution_type, j.max_retries, \
     j.timeout_seconds, j.is_active, j.next_run_at, j.created_at, j.updated_at, j.deleted_at, \
     j.misfire_policy, j.catch_up_limit, j.concurrency_policy, j.skipped_fires, \
     j.signing_secret, j.previous_signing_secret, j.previous_secret_expires_at, j.tenant, \
     j.starting_deadline_seconds, \
     (SELECT e.started_at FROM executions e WHERE e.job_id = j.id \
         AND e.status IN ('SUCCEEDED', 'FAILED') ORDER BY e.scheduled_at DESC LIMIT 1) \
         AS last_run_at, \
     (SELECT e.status FROM executions e WHERE e.job_id = j.id \
         AND e.status IN ('SUCCEEDED', 'FAILED') ORDER BY e.scheduled_at DESC LIMIT 1) \
         AS last_status";

/// Deletes a job's fires recorded ahead of time and not yet due, with their attempts.
async fn forget_fires_ahead(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    const AHEAD: &str = "SELECT id FROM executions \
         WHERE job_id = $1 AND status = 'QUEUED' AND scheduled_at > $2";
    sqlx::query(&format!(
        "DELETE FROM attempts WHERE execution_id IN ({AHEAD})"
    ))
    .bind(job_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let gone = sqlx::query(&format!("DELETE FROM executions WHERE id IN ({AHEAD})"))
        .bind(job_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(gone)
}

/// Ends a job's QUEUED and RETRYING fires as CANCELLED (deleting those recorded ahead).
async fn cancel_waiting_fires(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    forget_fires_ahead(tx, job_id, now).await?;
    let cancelled = sqlx::query(CANCEL_WAITING)
        .bind(job_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(cancelled)
}

#[async_trait]
impl Jobs for SqliteStore {
    async fn job_insert(&self, job: &Job) -> Result<(), StoreError> {
        bind_job!(sqlx::query(WRITE_JOB), job)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        on_sqlite::job_insert_once(self.write().await?, job, key, fingerprint).await
    }

    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(Job::try_from).transpose()
    }

    async fn job_list(
        &self,
        filter: JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let (position, order) = match filter.order {
            JobOrder::Newest => ("($1 IS NULL OR j.id < $1)", "j.id DESC"),
            JobOrder::Name => ("($1 IS NULL OR (j.name, j.id) > ($8, $1))", "j.name, j.id"),
            JobOrder::NextRun => ("$1 IS NULL", "j.next_run_at IS NULL, j.next_run_at, j.id"),
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             WHERE {position} \
               AND ($3 IS NULL OR j.is_active = $3) \
               AND ($4 OR j.deleted_at IS NULL) AND j.tenant = COALESCE($5, j.tenant) \
               AND ($6 IS NULL \
                   OR j.name LIKE $6 ESCAPE '\\' OR j.description LIKE $6 ESCAPE '\\') \
               AND ($7 IS NULL OR EXISTS (SELECT 1 FROM job_outcomes o \
                   WHERE o.job_id = j.id AND o.status = $7)) \
             ORDER BY {order} LIMIT $2"
        );
        let (after_id, after_name) = JobCursor::bounds(cursor.as_ref());
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(after_id)
            .bind(i64::from(limit))
            .bind(filter.is_active)
            .bind(filter.include_deleted)
            .bind(filter.tenant.as_deref())
            .bind(filter.search.as_deref().map(contains_pattern))
            .bind(filter.last_status.map(<&'static str>::from))
            .bind(after_name)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, InvalidField>>, StoreError> {
        let mut tx = self.write().await?;
        let now = Utc::now();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1");
        let Some(row) = sqlx::query_as::<_, JobRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let (job, waiting) = match change_job(Job::try_from(row)?, change, now) {
            Ok(changed) => changed,
            Err(invalid) => return Ok(Some(Err(invalid))),
        };
        bind_job!(sqlx::query(WRITE_JOB), &job)
            .execute(&mut *tx)
            .await?;
        match waiting {
            WaitingFires::Cancel => {
                cancel_waiting_fires(&mut tx, id, now).await?;
            }
            WaitingFires::ForgetAhead => {
                forget_fires_ahead(&mut tx, id, now).await?;
            }
            WaitingFires::Keep => {}
        }
        tx.commit().await?;
        Ok(Some(Ok(job)))
    }

    async fn job_reseal(
        &self,
        id: Uuid,
        before: &SealedValues,
        after: &SealedValues,
    ) -> Result<bool, StoreError> {
        on_sqlite::job_reseal(&self.writer, id, before, after).await
    }

    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let now = Utc::now();
        let found = sqlx::query(SOFT_DELETE_JOB)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if found {
            cancel_waiting_fires(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn job_trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError> {
        let now = Utc::now();
        let at = now
            .duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now);
        let sql = format!(
            "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, kind) \
             SELECT $1, j.id, $3, 'QUEUED', $4, 'MANUAL' \
             FROM jobs j WHERE j.id = $2 AND j.deleted_at IS NULL \
             ON CONFLICT (job_id, scheduled_at) DO NOTHING \
             RETURNING {EXECUTION_COLUMNS}"
        );
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(crate::store::fire_id(at))
            .bind(job_id)
            .bind(at)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        row.map(Execution::try_from).transpose()
    }
}
