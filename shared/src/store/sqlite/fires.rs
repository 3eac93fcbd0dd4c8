//! SQLite: fires recorded by the tick, released when the queue has room, found again when
//! a push or a retry may be lost, and expired when they waited too long.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{
    push_ids, SqliteStore, EXPIRE_FIRES_AT, IN_LIST_CHUNK, PAST_DEADLINE_AT, ROWS_PER_STATEMENT,
};
use crate::store::rows::DueRow;
use crate::store::rules::{self, ClaimWrites};
use crate::store::shared::on_sqlite;
use crate::store::sql::{DUE_COLUMNS, EXPIRED_ERROR, HOLDS_ANY};
use crate::store::{DueJob, FiredBatch, Fires, Planner, Released, StoreError};

#[async_trait]
impl Fires for SqliteStore {
    async fn execution_count_retrying(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'RETRYING'")
                .fetch_one(&self.reader)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn job_fire_due(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT {DUE_COLUMNS} FROM jobs WHERE is_active AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2"
        );
        let due: Vec<DueRow> = sqlx::query_as(&sql)
            .bind(horizon)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(FiredBatch::default());
        }
        let due: Vec<DueJob> = due
            .into_iter()
            .map(DueJob::try_from)
            .collect::<Result<_, _>>()?;
        let writes = ClaimWrites::plan(&due, plan).hold_past(room);
        let mut created = Vec::with_capacity(writes.fires.len());
        let rows: Vec<_> = writes.fires.iter().zip(&writes.held).collect();
        for fires in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, held) ",
            );
            insert.push_values(fires, |mut row, ((id, job_id, at), held)| {
                row.push_bind(*id)
                    .push_bind(*job_id)
                    .push_bind(*at)
                    .push("'QUEUED'")
                    .push_bind(now)
                    .push_bind(**held);
            });
            insert.push(
                " ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING id, scheduled_at, held",
            );
            let inserted: Vec<(Uuid, DateTime<Utc>, bool)> =
                insert.build_query_as().fetch_all(&mut *tx).await?;
            created.extend(inserted);
        }
        for jobs in writes.jobs.chunks(ROWS_PER_STATEMENT) {
            let mut update = QueryBuilder::new("WITH n(id, next_run_at, skipped) AS (");
            update.push_values(jobs, |mut row, (job_id, next_run_at, skipped)| {
                row.push_bind(*job_id)
                    .push_bind(*next_run_at)
                    .push_bind(*skipped);
            });
            update.push(
                ") UPDATE jobs SET next_run_at = n.next_run_at, \
                 skipped_fires = skipped_fires + n.skipped FROM n WHERE jobs.id = n.id",
            );
            update.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let (held, executions) = rules::split_held(created);
        Ok(FiredBatch {
            jobs: writes.jobs.len(),
            executions,
            held,
            skipped_fires: writes.skipped_fires,
        })
    }

    async fn execution_any_held(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(HOLDS_ANY)
            .fetch_one(&self.reader)
            .await?)
    }

    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError> {
        let mut tx = self.write().await?;
        let released: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE executions SET held = 0 WHERE id IN ( \
                 SELECT id FROM executions WHERE held AND status = 'QUEUED' \
                 ORDER BY scheduled_at, id LIMIT $1) \
             RETURNING id, scheduled_at",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Released {
            fires: released,
            expired: Vec::new(),
        })
    }

    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        on_sqlite::execution_list_stale_queued(
            &self.reader,
            queued_from,
            queued_before,
            due_by,
            limit,
        )
        .await
    }

    async fn execution_requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.write().await?;
        let mut queued = Vec::new();
        for ids in ids.chunks(IN_LIST_CHUNK) {
            let mut query = QueryBuilder::new(
                "UPDATE executions SET \
                     status = CASE WHEN j.is_active THEN 'QUEUED' ELSE 'CANCELLED' END, \
                     queued_at = ",
            );
            query
                .push_bind(now)
                .push(
                    ", next_attempt_at = NULL, \
                     finished_at = CASE WHEN j.is_active THEN NULL ELSE ",
                )
                .push_bind(now)
                .push(
                    " END FROM jobs j WHERE j.id = executions.job_id \
                     AND executions.status = 'RETRYING' \
                     AND (executions.next_attempt_at IS NULL OR executions.next_attempt_at <= ",
                )
                .push_bind(now)
                .push(") AND executions.id IN ");
            push_ids(&mut query, ids);
            query.push(" RETURNING id, status");
            let rows: Vec<(Uuid, String)> = query.build_query_as().fetch_all(&mut *tx).await?;
            queued.extend(
                rows.into_iter()
                    .filter(|(_, status)| status == "QUEUED")
                    .map(|(id, _)| id),
            );
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_sqlite::execution_list_overdue_retries(&self.reader, due_before, limit).await
    }

    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now();
        let cutoff = now - TimeDelta::seconds(1);
        // As in PostgreSQL: QUEUED rows through their two partial indexes, from a second
        // before now (no deadline is shorter), those pushed to the queue by when they were
        // queued and those held back by their time, each joined to its job by key.
        let mut expire = QueryBuilder::new(EXPIRE_FIRES_AT);
        expire.push_bind(now).push(format!(
            ", error = (SELECT {EXPIRED_ERROR} FROM jobs j WHERE j.id = executions.job_id) \
             WHERE status = 'QUEUED' AND id IN (SELECT id FROM ( \
                 SELECT id FROM (SELECT x.id FROM executions x JOIN jobs j ON j.id = x.job_id \
                     WHERE x.status = 'QUEUED' AND NOT x.held AND x.queued_at < "
        ));
        expire
            .push_bind(cutoff)
            .push(" AND ")
            .push(PAST_DEADLINE_AT)
            .push_bind(now)
            .push("), 0) ORDER BY x.queued_at LIMIT ")
            .push_bind(i64::from(limit))
            .push(
                ") UNION ALL \
                 SELECT id FROM (SELECT x.id FROM executions x JOIN jobs j ON j.id = x.job_id \
                     WHERE x.status = 'QUEUED' AND x.held AND x.scheduled_at < ",
            )
            .push_bind(cutoff)
            .push(" AND ")
            .push(PAST_DEADLINE_AT)
            .push_bind(now)
            .push("), 0) ORDER BY x.scheduled_at, x.id LIMIT ")
            .push_bind(i64::from(limit))
            .push(")) LIMIT ")
            .push_bind(i64::from(limit))
            .push(") RETURNING id");
        let ids: Vec<Uuid> = expire.build_query_scalar().fetch_all(&self.writer).await?;
        Ok(ids)
    }
}
