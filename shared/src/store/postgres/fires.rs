//! PostgreSQL: fires recorded by the tick, released when the queue has room, found again
//! when a push or a retry may be lost, and expired when they waited too long.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgStore, PAST_DEADLINE};
use crate::store::partitions;
use crate::store::rows::DueRow;
use crate::store::rules::ClaimWrites;
use crate::store::shared::on_postgres;
use crate::store::sql::{DUE_COLUMNS, EXPIRED_ERROR, HOLDS_ANY};
use crate::store::{DueJob, FiredBatch, Fires, Planner, Released, StoreError};

/// How long the expiry pass trusts that no job sets a deadline.
const NO_DEADLINES_FOR: Duration = Duration::from_secs(10);

#[async_trait]
impl Fires for PgStore {
    async fn execution_count_retrying(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions WHERE finished_at IS NULL AND status = 'RETRYING'",
        )
        .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // NO KEY UPDATE: enough to keep other ticks off the row, without blocking the
        // key-share locks that inserting executions takes on it.
        let sql = format!(
            "SELECT {DUE_COLUMNS} FROM jobs WHERE is_active AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"
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
        let exec_times: Vec<DateTime<Utc>> = writes.fires.iter().map(|f| f.2).collect();
        // The partitions of the fires' days, the first time this process writes to each.
        let days = self.days.unknown(&exec_times);
        partitions::ensure_days(&mut tx, &days).await?;
        let created = self.insert_fires(&mut tx, &writes, now).await?;
        advance_jobs(&mut tx, &writes).await?;
        tx.commit().await?;
        self.days.learn(&days);

        let (held, executions) = crate::store::rules::split_held(created);
        Ok(FiredBatch {
            jobs: writes.jobs.len(),
            executions,
            held,
            skipped_fires: writes.skipped_fires,
        })
    }

    async fn execution_any_held(&self) -> Result<bool, StoreError> {
        if !self.history_partitioned().await? {
            return Ok(sqlx::query_scalar(HOLDS_ANY).fetch_one(&self.pool).await?);
        }
        Ok(sqlx::query_scalar("SELECT tickwork_holds_any()")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError> {
        // Under a backlog held fires wait longer than a deadline: those past theirs end
        // here, in bulk, rather than each going through the queue to a claim that expires it.
        let sql = format!(
            "UPDATE executions x SET held = false, \
                 status = CASE WHEN {PAST_DEADLINE} THEN 'EXPIRED' ELSE x.status END, \
                 finished_at = CASE WHEN {PAST_DEADLINE} THEN clock_timestamp() END, \
                 error = CASE WHEN {PAST_DEADLINE} THEN {EXPIRED_ERROR} END, \
                 execution_type = CASE WHEN {PAST_DEADLINE} THEN j.execution_type \
                     ELSE x.execution_type END \
             FROM ( \
                 SELECT id, scheduled_at FROM executions WHERE held AND status = 'QUEUED' \
                 ORDER BY scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) h, jobs j \
             WHERE x.id = h.id AND x.scheduled_at = h.scheduled_at AND j.id = x.job_id \
             RETURNING x.id, x.scheduled_at, x.status = 'EXPIRED'"
        );
        let rows: Vec<(Uuid, DateTime<Utc>, bool)> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut released = Released::default();
        for (id, at, expired) in rows {
            if expired {
                released.expired.push(id);
            } else {
                released.fires.push((id, at));
            }
        }
        Ok(released)
    }

    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        on_postgres::execution_list_stale_queued(
            &self.pool,
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
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let times = self.fire_times(ids).await?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "UPDATE executions e SET \
                 status = CASE WHEN j.is_active THEN 'QUEUED' ELSE 'CANCELLED' END, \
                 queued_at = $2, next_attempt_at = NULL, \
                 finished_at = CASE WHEN j.is_active THEN NULL ELSE $2 END \
             FROM jobs j \
             WHERE e.id = ANY($1) AND e.scheduled_at >= $3 AND e.scheduled_at < $4 \
                 AND e.status = 'RETRYING' AND j.id = e.job_id \
                 AND (e.next_attempt_at IS NULL \
                     OR date_trunc('milliseconds', e.next_attempt_at) <= $2) \
             RETURNING e.id, e.status",
        )
        .bind(ids)
        .bind(now)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, status)| status == "QUEUED")
            .map(|(id, _)| id)
            .collect())
    }

    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_postgres::execution_list_overdue_retries(&self.pool, due_before, limit).await
    }

    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        // Nearly always no job sets a deadline: then no fire is read at all (the statement
        // below walks the waiting fires, a backlog's worth under overload), and the jobs are
        // asked again after ten seconds. A claim checks each fire's deadline itself, so a
        // deadline set meanwhile is never passed over; this pass only ends a backlog early.
        let checked = self.no_deadlines_at.lock().ok().and_then(|at| *at);
        if checked.is_some_and(|at| at.elapsed() < NO_DEADLINES_FOR) {
            return Ok(Vec::new());
        }
        // The shortest deadline any job sets: a fire queued more recently than that cannot
        // be past its deadline, so the read below looks only at fires queued before it.
        let shortest: Option<i32> = sqlx::query_scalar(
            "SELECT min(starting_deadline_seconds) FROM jobs \
             WHERE starting_deadline_seconds IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        if let Ok(mut at) = self.no_deadlines_at.lock() {
            *at = shortest.is_none().then(std::time::Instant::now);
        }
        let Some(shortest) = shortest else {
            return Ok(Vec::new());
        };
        // First the fires past their deadline, read without locks: QUEUED rows through
        // their two partial indexes, those pushed to the queue by when they were queued,
        // then those held back while the queue was full by their time, oldest first, each
        // joined to its job by key. Under a backlog this read is long; a claim must not
        // wait for it.
        let sql = format!(
            "WITH ready AS ( \
                 SELECT x.id, x.scheduled_at FROM executions x JOIN jobs j ON j.id = x.job_id \
                 WHERE x.finished_at IS NULL AND x.status = 'QUEUED' AND NOT x.held \
                     AND x.queued_at < (SELECT clock_timestamp()) - $2 * interval '1 second' \
                     AND {PAST_DEADLINE} \
                 ORDER BY x.queued_at LIMIT $1 \
             ), held AS ( \
                 SELECT x.id, x.scheduled_at FROM executions x JOIN jobs j ON j.id = x.job_id \
                 WHERE x.status = 'QUEUED' AND x.held \
                     AND x.scheduled_at < (SELECT clock_timestamp()) - $2 * interval '1 second' \
                     AND {PAST_DEADLINE} \
                 ORDER BY x.scheduled_at, x.id LIMIT (SELECT $1 - count(*) FROM ready) \
             ) \
             SELECT id, scheduled_at FROM ready UNION ALL SELECT id, scheduled_at FROM held"
        );
        let due: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .bind(shortest)
            .fetch_all(&self.pool)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // Then each, by its whole key, if it is still QUEUED and past its deadline; a fire
        // a claim or a release holds is passed over (SKIP LOCKED), so this statement is
        // short and waits for nothing.
        let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = due.into_iter().unzip();
        let sql = format!(
            "WITH due AS ( \
                 SELECT e.id, e.scheduled_at FROM executions e \
                 JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS k(id, scheduled_at) \
                     ON e.id = k.id AND e.scheduled_at = k.scheduled_at \
                 WHERE e.status = 'QUEUED' \
                 FOR NO KEY UPDATE OF e SKIP LOCKED \
             ) \
             UPDATE executions x SET status = 'EXPIRED', started_at = NULL, \
                 finished_at = clock_timestamp(), error = {EXPIRED_ERROR}, \
                 execution_type = j.execution_type, held = false \
             FROM due, jobs j \
             WHERE x.id = due.id AND x.scheduled_at = due.scheduled_at \
                 AND j.id = x.job_id AND x.status = 'QUEUED' AND {PAST_DEADLINE} \
             RETURNING x.id"
        );
        let expired = sqlx::query_scalar(&sql)
            .bind(&ids)
            .bind(&times)
            .fetch_all(&self.pool)
            .await?;
        Ok(expired)
    }
}

impl PgStore {
    /// Records the planned fires, QUEUED (held or not); one already recorded for its job
    /// and time is left as it is. Returns the fires recorded, with their times and whether
    /// each is held.
    async fn insert_fires(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        writes: &ClaimWrites,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>, bool)>, StoreError> {
        if writes.fires.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = writes.fires.iter().map(|f| f.0).collect();
        let jobs: Vec<Uuid> = writes.fires.iter().map(|f| f.1).collect();
        let times: Vec<DateTime<Utc>> = writes.fires.iter().map(|f| f.2).collect();
        Ok(sqlx::query_as(
            "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, held) \
             SELECT f.id, f.job_id, f.scheduled_at, 'QUEUED', $4, f.held \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $5::bool[]) \
                 AS f(id, job_id, scheduled_at, held) \
             ON CONFLICT ON CONSTRAINT executions_one_per_fire DO NOTHING \
             RETURNING id, scheduled_at, held",
        )
        .bind(&ids)
        .bind(&jobs)
        .bind(&times)
        .bind(now)
        .bind(&writes.held)
        .fetch_all(&mut **tx)
        .await
        .inspect_err(|e| {
            if partitions::is_missing_partition(e) {
                self.days.forget();
            }
        })?)
    }
}

/// Moves each claimed job's `next_run_at` on and counts the missed fires it dropped.
async fn advance_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    writes: &ClaimWrites,
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = writes.jobs.iter().map(|j| j.0).collect();
    let next_runs: Vec<Option<DateTime<Utc>>> = writes.jobs.iter().map(|j| j.1).collect();
    let skipped: Vec<i64> = writes.jobs.iter().map(|j| j.2).collect();
    sqlx::query(
        "UPDATE jobs SET next_run_at = n.next_run_at, skipped_fires = skipped_fires + n.skipped \
         FROM UNNEST($1::uuid[], $2::timestamptz[], $3::bigint[]) AS n(id, next_run_at, skipped) \
         WHERE jobs.id = n.id",
    )
    .bind(&ids)
    .bind(&next_runs)
    .bind(&skipped)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
