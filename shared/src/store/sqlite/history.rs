//! SQLite: executions and their attempts, the dead letters, and the history's upkeep.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{push_ids, SqliteStore, IN_LIST_CHUNK};
use crate::model::{Attempt, Execution};
use crate::store::fire_id::first_uuid_at;
use crate::store::rows::{AttemptRow, DeadRow, ExecutionRow};
use crate::store::rules::may_requeue;
use crate::store::rules::recent_outcomes;
use crate::store::shared::on_sqlite;
use crate::store::sql::{EXECUTION_COLUMNS, REQUEUE_DEAD_LETTER, SUCCEEDED_ATTEMPT};
use crate::store::{
    DeadLetterListing, ExecutionListing, History, RecentOutcome, Requeued, StoreError, TenantCounts,
};

/// Finished states: what retention may delete.
const FINISHED: &str = "('SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', 'EXPIRED')";

#[async_trait]
impl History for SqliteStore {
    async fn execution_get(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        let mut attempts = Vec::new();
        for ids in execution_ids.chunks(IN_LIST_CHUNK) {
            let mut query = QueryBuilder::new(
                "SELECT execution_id, attempt, started_at, finished_at, duration_ms, \
                 http_status, error, response_body FROM attempts WHERE execution_id IN ",
            );
            push_ids(&mut query, ids);
            query
                .push(" UNION ALL ")
                .push(SUCCEEDED_ATTEMPT)
                .push(" e.id IN ");
            push_ids(&mut query, ids);
            query.push(" ORDER BY execution_id, attempt");
            let rows: Vec<AttemptRow> = query.build_query_as().fetch_all(&self.reader).await?;
            attempts.extend(rows.into_iter().map(Attempt::from));
        }
        attempts.sort_by_key(|a| (a.execution_id, a.attempt));
        Ok(attempts)
    }

    async fn execution_list_recent(
        &self,
        job_ids: &[Uuid],
        per_job: u32,
    ) -> Result<Vec<RecentOutcome>, StoreError> {
        let mut rows = Vec::new();
        for chunk in job_ids.chunks(IN_LIST_CHUNK) {
            let mut query = QueryBuilder::new(
                "SELECT job_id, scheduled_at, status FROM ( \
                     SELECT job_id, scheduled_at, status, row_number() OVER ( \
                         PARTITION BY job_id ORDER BY scheduled_at DESC) AS n \
                     FROM executions WHERE finished_at IS NOT NULL AND job_id IN ",
            );
            push_ids(&mut query, chunk);
            query
                .push(") WHERE n <= ")
                .push_bind(i64::from(per_job))
                .push(" ORDER BY job_id, scheduled_at DESC");
            rows.extend(query.build_query_as().fetch_all(&self.reader).await?);
        }
        recent_outcomes(rows)
    }

    async fn execution_list(
        &self,
        listing: ExecutionListing,
    ) -> Result<Vec<Execution>, StoreError> {
        on_sqlite::execution_list(&self.reader, listing).await
    }

    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        // Execution ids are UUID v7, so the oldest rows come first by id; inside one write
        // transaction both statements see the same rows.
        let oldest = format!(
            "SELECT id FROM executions WHERE id < $1 AND status IN {FINISHED} \
             ORDER BY id LIMIT $2"
        );
        let mut tx = self.write().await?;
        let cutoff = first_uuid_at(before);
        sqlx::query(&format!(
            "DELETE FROM attempts WHERE execution_id IN ({oldest})"
        ))
        .bind(cutoff)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(&format!("DELETE FROM executions WHERE id IN ({oldest})"))
            .bind(cutoff)
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn dead_letter_list(
        &self,
        listing: DeadLetterListing<'_>,
    ) -> Result<Vec<Execution>, StoreError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED') \
               AND ($1 IS NULL OR job_id = $1) AND ($2 IS NULL OR id < $2) \
               AND job_id IN (SELECT id FROM jobs WHERE tenant = COALESCE($4, tenant)) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ExecutionRow> = sqlx::query_as(&sql)
            .bind(listing.job_id)
            .bind(listing.before)
            .bind(i64::from(listing.limit))
            .bind(listing.tenant)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<DeadRow> = sqlx::query_as(
            "SELECT e.status, COALESCE(e.execution_type, j.execution_type) AS execution_type, \
                 j.deleted_at IS NOT NULL AS job_deleted \
             FROM executions e JOIN jobs j ON j.id = e.job_id WHERE e.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Requeued::NoExecution);
        };
        if let Some(refused) = may_requeue(&row, force)? {
            return Ok(refused);
        }
        sqlx::query(REQUEUE_DEAD_LETTER)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row: ExecutionRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Requeued::Queued(Execution::try_from(row)?))
    }

    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        on_sqlite::tenant_counts(&self.reader, tenant).await
    }
}
