//! PostgreSQL: jobs, stored, read, changed and triggered.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgStore;
use crate::model::{Execution, InvalidField, Job};
use crate::store::fire_id::fire_id;
use crate::store::partitions;
use crate::store::rows::{ExecutionRow, JobRow};
use crate::store::rules::{change_job, contains_pattern, WaitingFires};
use crate::store::shared::on_postgres;
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
     j.starting_deadline_seconds, l.started_at AS last_run_at, l.status AS last_status";

/// The last finished fire of job `j`, read from the history instead of being written on
/// every outcome, so workers never lock job rows the tick is claiming.
const LAST_RUN_JOIN: &str = "LEFT JOIN LATERAL ( \
         SELECT e.started_at, e.status FROM executions e \
         WHERE e.job_id = j.id AND e.status IN ('SUCCEEDED', 'FAILED') \
         ORDER BY e.scheduled_at DESC LIMIT 1 \
     ) l ON true";

/// Writes every column of a job (see [`WRITE_JOB`]).
async fn write_job<'e>(executor: impl sqlx::PgExecutor<'e>, job: &Job) -> Result<(), StoreError> {
    bind_job!(sqlx::query(WRITE_JOB), job)
        .execute(executor)
        .await?;
    Ok(())
}

#[async_trait]
impl Jobs for PgStore {
    async fn job_insert(&self, job: &Job) -> Result<(), StoreError> {
        write_job(&self.pool, job).await
    }

    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        on_postgres::job_insert_once(self.pool.begin().await?, job, key, fingerprint).await
    }

    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} WHERE j.id = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
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
            JobOrder::Newest => ("($1::uuid IS NULL OR j.id < $1)", "j.id DESC"),
            JobOrder::Name => (
                "($1::uuid IS NULL OR (j.name, j.id) > ($2::text, $1))",
                "j.name, j.id",
            ),
            JobOrder::NextRun => ("$1::uuid IS NULL", "j.next_run_at NULLS LAST, j.id"),
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} \
             WHERE {position} \
               AND ($4::boolean IS NULL OR j.is_active = $4) \
               AND ($5 OR j.deleted_at IS NULL) AND j.tenant = COALESCE($6, j.tenant) \
               AND ($7::text IS NULL \
                   OR j.name ILIKE $7 ESCAPE '\\' OR j.description ILIKE $7 ESCAPE '\\') \
               AND ($8::text IS NULL OR EXISTS (SELECT 1 FROM job_outcomes o \
                   WHERE o.job_id = j.id AND o.status = $8)) \
             ORDER BY {order} LIMIT $3"
        );
        let (after_id, after_name) = JobCursor::bounds(cursor.as_ref());
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(after_id)
            .bind(after_name)
            .bind(i64::from(limit))
            .bind(filter.is_active)
            .bind(filter.include_deleted)
            .bind(filter.tenant.as_deref())
            .bind(filter.search.as_deref().map(contains_pattern))
            .bind(filter.last_status.map(<&'static str>::from))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, InvalidField>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} WHERE j.id = $1 FOR UPDATE OF j"
        );
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
        write_job(&mut *tx, &job).await?;
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
        on_postgres::job_reseal(&self.pool, id, before, after).await
    }

    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
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
        // The fire is due now by the storage clock, to the millisecond its id names.
        let now: DateTime<Utc> =
            sqlx::query_scalar("SELECT date_trunc('milliseconds', clock_timestamp())")
                .fetch_one(&self.pool)
                .await?;
        let sql = format!(
            "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, kind) \
             SELECT $1, j.id, $3, 'QUEUED', clock_timestamp(), 'MANUAL' \
             FROM jobs j WHERE j.id = $2 AND j.deleted_at IS NULL \
             ON CONFLICT ON CONSTRAINT executions_one_per_fire DO NOTHING \
             RETURNING {EXECUTION_COLUMNS}"
        );
        let insert = || {
            sqlx::query_as::<_, ExecutionRow>(&sql)
                .bind(fire_id(now))
                .bind(job_id)
                .bind(now)
                .fetch_optional(&self.pool)
        };
        let row = match insert().await {
            Err(e) if partitions::is_missing_partition(&e) => {
                // Today's partition is made ahead of time; if it is missing after all
                // (a new deployment whose upkeep has not run), make it and write again.
                let mut conn = self.pool.acquire().await?;
                partitions::ensure_days(&mut conn, &[now.date_naive()]).await?;
                insert().await?
            }
            other => other?,
        };
        row.map(Execution::try_from).transpose()
    }
}

/// Deletes a job's fires recorded ahead of time and not yet due (they never came due),
/// inside the caller's transaction.
async fn forget_fires_ahead(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let forgotten: i64 = sqlx::query_scalar(
        "WITH gone AS ( \
             DELETE FROM executions WHERE job_id = $1 AND status = 'QUEUED' AND scheduled_at > $2 \
             RETURNING id, scheduled_at), \
         gone_attempts AS ( \
             DELETE FROM attempts a USING gone g \
             WHERE a.execution_id = g.id AND a.scheduled_at = g.scheduled_at \
                 AND a.scheduled_at > $2) \
         SELECT count(*) FROM gone",
    )
    .bind(job_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(u64::try_from(forgotten).unwrap_or(0))
}

/// Ends a job's QUEUED and RETRYING fires as CANCELLED (deleting those recorded ahead and
/// not yet due), inside the caller's transaction.
async fn cancel_waiting_fires(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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
