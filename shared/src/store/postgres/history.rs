//! PostgreSQL: executions and their attempts, the dead letters, and the history's upkeep.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgStore;
use crate::model::{Attempt, Execution};
use crate::store::fire_id::first_uuid_at;
use crate::store::partitions;
use crate::store::rows::{AttemptRow, DeadRow, ExecutionRow};
use crate::store::rules::may_requeue;
use crate::store::rules::recent_outcomes;
use crate::store::shared::on_postgres;
use crate::store::sql::{EXECUTION_COLUMNS, REQUEUE_DEAD_LETTER, SUCCEEDED_ATTEMPT};
use crate::store::{
    DeadLetterListing, ExecutionListing, History, HistoryKept, RecentOutcome, Requeued, StoreError,
    TenantCounts,
};

#[async_trait]
impl History for PgStore {
    async fn execution_get(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        let times = self.fire_times(&[id]).await?;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE id = $1 AND scheduled_at >= $2 AND scheduled_at < $3"
        );
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(times.from)
            .bind(times.until)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        if execution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let times = self.fire_times(execution_ids).await?;
        let rows: Vec<AttemptRow> = sqlx::query_as(&format!(
            "SELECT execution_id, attempt, started_at, finished_at, duration_ms, http_status, \
             error, response_body FROM attempts WHERE execution_id = ANY($1) \
             AND scheduled_at >= $2 AND scheduled_at < $3 \
             UNION ALL {SUCCEEDED_ATTEMPT} e.id = ANY($1) \
             AND e.scheduled_at >= $2 AND e.scheduled_at < $3 \
             ORDER BY execution_id, attempt"
        ))
        .bind(execution_ids)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }

    async fn execution_list_recent(
        &self,
        job_ids: &[Uuid],
        per_job: u32,
    ) -> Result<Vec<RecentOutcome>, StoreError> {
        // Each job's latest fires by the (job, time) key, newest first, finished ones only.
        let rows = sqlx::query_as(
            "SELECT k.id, r.scheduled_at, r.status \
             FROM UNNEST($1::uuid[]) AS k(id) CROSS JOIN LATERAL ( \
                 SELECT e.scheduled_at, e.status FROM executions e \
                 WHERE e.job_id = k.id AND e.finished_at IS NOT NULL \
                 ORDER BY e.scheduled_at DESC LIMIT $2) r",
        )
        .bind(job_ids)
        .bind(i64::from(per_job))
        .fetch_all(&self.pool)
        .await?;
        recent_outcomes(rows)
    }

    async fn execution_list(
        &self,
        listing: ExecutionListing,
    ) -> Result<Vec<Execution>, StoreError> {
        on_postgres::execution_list(&self.pool, listing).await
    }

    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        if self.history_partitioned().await? {
            return Ok(0);
        }
        // Execution ids are UUID v7: ordered by creation time, so the primary key serves
        // "created before" and the deletion walks the oldest rows first.
        let deleted: i64 = sqlx::query_scalar(
            "WITH gone AS ( \
                 DELETE FROM executions WHERE id IN ( \
                     SELECT id FROM executions WHERE id < $1 \
                     AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', \
                         'EXPIRED') \
                     ORDER BY id LIMIT $2) \
                 RETURNING id), \
             gone_attempts AS ( \
                 DELETE FROM attempts WHERE execution_id IN (SELECT id FROM gone)) \
             SELECT count(*) FROM gone",
        )
        .bind(first_uuid_at(before))
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn history_keep(&self, before: Option<DateTime<Utc>>) -> Result<HistoryKept, StoreError> {
        partitions::keep_history(&self.pool, before).await
    }

    async fn dead_letter_list(
        &self,
        listing: DeadLetterListing<'_>,
    ) -> Result<Vec<Execution>, StoreError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED') \
               AND finished_at IS NOT NULL AND error IS NOT NULL \
               AND ($1::uuid IS NULL OR job_id = $1) AND ($2::uuid IS NULL OR id < $2) \
               AND job_id IN (SELECT id FROM jobs WHERE tenant = COALESCE($4, tenant)) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ExecutionRow> = sqlx::query_as(&sql)
            .bind(listing.job_id)
            .bind(listing.before)
            .bind(i64::from(listing.limit))
            .bind(listing.tenant)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        let times = self.fire_times(&[id]).await?;
        let mut tx = self.pool.begin().await?;
        let row: Option<DeadRow> = sqlx::query_as(
            "SELECT e.status, COALESCE(e.execution_type, j.execution_type) AS execution_type, \
                 j.deleted_at IS NOT NULL AS job_deleted \
             FROM executions e JOIN jobs j ON j.id = e.job_id \
             WHERE e.id = $1 AND e.scheduled_at >= $2 AND e.scheduled_at < $3 \
             FOR NO KEY UPDATE OF e",
        )
        .bind(id)
        .bind(times.from)
        .bind(times.until)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Requeued::NoExecution);
        };
        if let Some(refused) = may_requeue(&row, force)? {
            return Ok(refused);
        }
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "{REQUEUE_DEAD_LETTER} AND scheduled_at >= $3 AND scheduled_at < $4"
        ))
        .bind(id)
        .bind(now)
        .bind(times.from)
        .bind(times.until)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE id = $1 AND scheduled_at >= $2 AND scheduled_at < $3"
        );
        let row: ExecutionRow = sqlx::query_as(&sql)
            .bind(id)
            .bind(times.from)
            .bind(times.until)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Requeued::Queued(Execution::try_from(row)?))
    }

    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        on_postgres::tenant_counts(&self.pool, tenant).await
    }
}
