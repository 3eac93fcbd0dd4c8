//! PostgreSQL: a worker's lease, its claims and outcomes, and the fires taken back from
//! workers that stopped or died.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::claims::Claim;
use super::{whole_history, PgStore, Tables};
use crate::model::{Outcome, Recorded};
use crate::store::fire_id::FireTimes;
use crate::store::partitions;
use crate::store::rows::{millis, read_status, DeliveryRow};
use crate::store::rules::taken_back;
use crate::store::{Claimed, Deliveries, Reaped, StoreError, Unfinished};

#[async_trait]
impl Deliveries for PgStore {
    async fn execution_start(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError> {
        if ids.is_empty() {
            return Ok(Claimed::default());
        }
        // SKIP LOCKED: when two workers hold the same id, one takes it and the other moves
        // on. A FORBID job's fire with an earlier fire unfinished is SKIPPED here, at the
        // moment it would be sent: an earlier fire claimed concurrently is at least QUEUED in
        // this statement's snapshot, so two fires of one job never both start. A first
        // attempt past its job's starting deadline is EXPIRED instead, whatever its overlap
        // (EXPIRED fires never ran, so the overlap check looks past them as past SKIPPED
        // ones). The worker's row is share-locked and must not be dead: a reaper declaring
        // it dead waits for this claim (or this claim finds it dead and takes nothing), so
        // no fire is ever claimed for a worker whose fires were already taken back. A fire
        // left unsent keeps the worker it had (none, if never claimed), so the rows come
        // back naming the claiming worker: only the RUNNING ones are delivered.
        // Each statement names the range of the fires' times. Fires of one day (nearly
        // always) are claimed from that day's partition by name: a statement over the
        // partitioned table would lock every partition and each of its indexes, more than
        // PostgreSQL's fast per-session locks hold. Fires of FORBID jobs are left to a second
        // statement over the whole history, which their overlap check reads.
        let times = self.fire_times(ids).await?;
        let tables = self.tables(&times).await?;
        let mut over_a_day = !whole_history(&tables.executions);
        let mut rows: Vec<DeliveryRow> = match self
            .claim(ids, worker, &times, &tables.executions, Claim::AllButForbid)
            .await
        {
            Err(e) if partitions::is_missing_table(&e) => {
                over_a_day = false;
                self.claim(ids, worker, &times, "executions", Claim::AllButForbid)
                    .await?
            }
            other => other?,
        };
        // Left to the second statement: fires the first deferred (over the whole history),
        // or, over a day, those it did not return that are FORBID jobs' fires still QUEUED
        // or not in the day's partition at all.
        let deferred: Vec<Uuid> = if over_a_day {
            let returned: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
            let left: Vec<Uuid> = ids
                .iter()
                .filter(|id| !returned.contains(id))
                .copied()
                .collect();
            self.left_to_whole_history(&left, &tables.executions)
                .await?
        } else {
            rows.iter().filter(|r| r.deferred).map(|r| r.id).collect()
        };
        rows.retain(|r| !r.deferred);
        if !deferred.is_empty() {
            let times = self.fire_times(&deferred).await?;
            rows.extend(
                self.claim(&deferred, worker, &times, "executions", Claim::Forbid)
                    .await?,
            );
        }
        self.claimed_from(rows, &times).await
    }

    async fn worker_register(&self, lease: Duration) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO workers (id, lease_expires_at) \
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond')",
        )
        .bind(id)
        .bind(millis(lease))
        .execute(&self.leases)
        .await?;
        Ok(id)
    }

    async fn worker_renew(&self, worker: Uuid, lease: Duration) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE workers SET lease_expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
             WHERE id = $1 AND NOT dead",
        )
        .bind(worker)
        .bind(millis(lease))
        .execute(&self.leases)
        .await?
        .rows_affected();
        Ok(renewed > 0)
    }

    async fn worker_retire(&self, worker: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE workers SET dead = true, lease_expires_at = clock_timestamp() WHERE id = $1",
        )
        .bind(worker)
        .execute(&self.leases)
        .await?;
        Ok(())
    }

    async fn execution_reap_expired(
        &self,
        crash_limit: u32,
        limit: u32,
    ) -> Result<Vec<Reaped>, StoreError> {
        // First its own statement, so the next one sees every claim committed before it:
        // a worker is declared dead only while no claim of its holds its row (SKIP LOCKED),
        // and a claim that comes after finds it dead.
        sqlx::query(
            "UPDATE workers SET dead = true WHERE id IN ( \
                 SELECT id FROM workers WHERE NOT dead AND lease_expires_at < clock_timestamp() \
                 FOR UPDATE SKIP LOCKED)",
        )
        .execute(&self.pool)
        .await?;
        // Nearly always none: then the executions are not read at all. With some, the
        // partial index by worker is probed for those workers only (a scan of the whole index
        // would walk the dead entries of every fire that has finished since the last vacuum).
        let dead: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM workers WHERE dead")
            .fetch_all(&self.pool)
            .await?;
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH expired AS ( \
                 SELECT id, scheduled_at FROM executions \
                 WHERE finished_at IS NULL AND status = 'RUNNING' AND worker_id = ANY($3) \
                 ORDER BY id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED \
             ), reaped AS ( \
                 UPDATE executions e SET \
                     crashes = e.crashes + 1, \
                     status = CASE \
                         WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' THEN 'ABANDONED' \
                         WHEN e.crashes + 1 >= $1 THEN 'FAILED' \
                         ELSE 'QUEUED' END, \
                     queued_at = clock_timestamp(), \
                     finished_at = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         OR e.crashes + 1 >= $1 \
                         THEN clock_timestamp() END, \
                     http_status = NULL, \
                     error = CASE \
                         WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' THEN \
                             'worker lost its lease mid-request (crashed or stalled); outcome unknown, not retried (AT_MOST_ONCE)' \
                         WHEN e.crashes + 1 >= $1 THEN \
                             'worker lost its lease mid-request ' || (e.crashes + 1) || ' times (CRASH_LIMIT); giving up' \
                         ELSE 'worker lost its lease mid-request (crashed or stalled); running it again' END \
                 FROM expired x, jobs j \
                 WHERE e.id = x.id AND e.scheduled_at = x.scheduled_at AND j.id = e.job_id \
                 RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.error \
             ), kept AS ( \
                 INSERT INTO attempts (execution_id, scheduled_at, attempt, started_at, finished_at, duration_ms, error) \
                 SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                     (extract(epoch FROM clock_timestamp() - COALESCE(started_at, clock_timestamp())) * 1000)::bigint, \
                     error FROM reaped \
                 ON CONFLICT DO NOTHING \
             ) \
             SELECT id, status FROM reaped",
        )
        .bind(i32::try_from(crash_limit).unwrap_or(i32::MAX))
        .bind(i64::from(limit))
        .bind(&dead)
        .fetch_all(&self.pool)
        .await?;
        if rows.len() < limit as usize {
            sqlx::query(
                "DELETE FROM workers w WHERE dead AND NOT EXISTS ( \
                     SELECT 1 FROM executions e WHERE e.finished_at IS NULL \
                     AND e.worker_id = w.id AND e.status = 'RUNNING')",
            )
            .execute(&self.pool)
            .await?;
        }
        taken_back(rows)
    }

    async fn execution_hand_back(
        &self,
        unfinished: &[Unfinished],
    ) -> Result<Vec<Reaped>, StoreError> {
        if unfinished.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = unfinished.iter().map(|u| u.execution_id).collect();
        let attempts: Vec<i32> = unfinished.iter().map(|u| u.attempt).collect();
        let times = self.fire_times(&ids).await?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH u AS (SELECT * FROM UNNEST($1::uuid[], $2::int[]) AS u(id, attempt)), \
             back AS ( \
                 UPDATE executions e SET \
                     handbacks = e.handbacks + 1, \
                     status = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN 'ABANDONED' ELSE 'QUEUED' END, \
                     queued_at = clock_timestamp(), \
                     finished_at = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN clock_timestamp() END, \
                     http_status = NULL, \
                     error = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN 'worker stopped mid-request; outcome unknown, not retried (AT_MOST_ONCE)' \
                         ELSE 'worker stopped mid-request; handed back to run again' END \
                 FROM u, jobs j \
                 WHERE e.id = u.id AND e.scheduled_at >= $3 AND e.scheduled_at < $4 \
                     AND e.status = 'RUNNING' AND e.attempt = u.attempt AND j.id = e.job_id \
                 RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.error \
             ), kept AS ( \
                 INSERT INTO attempts (execution_id, scheduled_at, attempt, started_at, finished_at, duration_ms, error) \
                 SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                     (extract(epoch FROM clock_timestamp() - COALESCE(started_at, clock_timestamp())) * 1000)::bigint, \
                     error FROM back \
                 ON CONFLICT DO NOTHING \
             ) \
             SELECT id, status FROM back",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        taken_back(rows)
    }

    async fn execution_record_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let columns = OutcomeColumns::of(outcomes);
        // One statement: the fenced state change and the attempt row, or neither. Written to
        // the day's partitions by name when the fires are of one day (see the claim); each
        // row is found by its whole key, so the plan is a key lookup per outcome whatever
        // the statistics of a day's partition (a new one has none).
        let times = self.fire_times(&columns.ids).await?;
        let tables = self.tables(&times).await?;
        let rows = match self.record(&columns, &times, tables).await {
            Err(e) if partitions::is_missing_table(&e) => {
                self.record(&columns, &times, Tables::whole()).await?
            }
            other => other?,
        };
        rows.into_iter()
            .map(|(execution_id, status, next_attempt_at)| {
                Ok(Recorded {
                    execution_id,
                    status: read_status(&status)?,
                    next_attempt_at,
                })
            })
            .collect()
    }
}

/// Outcomes as the arrays the recording statement reads.
struct OutcomeColumns<'a> {
    ids: Vec<Uuid>,
    fire_times: Vec<DateTime<Utc>>,
    attempts: Vec<i32>,
    statuses: Vec<&'a str>,
    durations: Vec<i64>,
    http: Vec<Option<i32>>,
    errors: Vec<Option<&'a str>>,
    bodies: Vec<Option<&'a str>>,
    retry_ms: Vec<Option<i64>>,
    sent_at: Vec<DateTime<Utc>>,
}

impl<'a> OutcomeColumns<'a> {
    fn of(outcomes: &'a [Outcome]) -> Self {
        Self {
            ids: outcomes.iter().map(|o| o.execution_id).collect(),
            fire_times: outcomes.iter().map(|o| o.scheduled_at).collect(),
            attempts: outcomes.iter().map(|o| o.attempt).collect(),
            statuses: outcomes.iter().map(|o| o.status.as_str()).collect(),
            durations: outcomes.iter().map(|o| o.duration_ms).collect(),
            http: outcomes
                .iter()
                .map(|o| o.http_status.map(i32::from))
                .collect(),
            errors: outcomes.iter().map(|o| o.error.as_deref()).collect(),
            bodies: outcomes
                .iter()
                .map(|o| o.response_body.as_deref())
                .collect(),
            retry_ms: outcomes.iter().map(|o| o.retry_in.map(millis)).collect(),
            sent_at: outcomes.iter().map(|o| o.sent_at).collect(),
        }
    }
}

impl PgStore {
    /// Runs the recording statement over `tables`; returns each written fire's id, status
    /// and next attempt time.
    async fn record(
        &self,
        columns: &OutcomeColumns<'_>,
        times: &FireTimes,
        tables: Tables,
    ) -> Result<Vec<(Uuid, String, Option<DateTime<Utc>>)>, sqlx::Error> {
        // As in the claim: a day's partition named directly is given no range of times.
        let whole = whole_history(&tables.executions);
        let sql = record_sql(&tables, whole);
        let query = sqlx::query_as(&sql)
            .bind(&columns.ids)
            .bind(&columns.attempts)
            .bind(&columns.statuses)
            .bind(&columns.durations)
            .bind(&columns.http)
            .bind(&columns.errors)
            .bind(&columns.bodies)
            .bind(&columns.retry_ms)
            .bind(&columns.fire_times)
            .bind(&columns.sent_at);
        let query = if whole {
            query.bind(times.from).bind(times.until)
        } else {
            query
        };
        query.fetch_all(&self.pool).await
    }
}

/// The recording statement over `tables` (`whole`: the whole history, given a range of
/// times in `$11` and `$12`). A fire keeps its first recorded send time: a retry's does
/// not replace it.
fn record_sql(tables: &Tables, whole: bool) -> String {
    format!(
        "WITH o AS ( \
             SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::bigint[], \
                 $5::int[], $6::text[], $7::text[], $8::bigint[], $9::timestamptz[], \
                 $10::timestamptz[]) \
             AS o(id, attempt, status, duration_ms, http_status, error, response_body, retry_ms, \
                 scheduled_at, sent_at) \
         ), done AS ( \
             UPDATE {executions} e SET status = o.status, duration_ms = o.duration_ms, \
                 http_status = o.http_status, response_body = o.response_body, \
                 first_sent_at = COALESCE(e.first_sent_at, o.sent_at), \
                 error = COALESCE(o.error, CASE WHEN o.status = 'FAILED' \
                     THEN 'failed; the worker gave no reason' END), \
                 finished_at = CASE WHEN o.status = 'RETRYING' THEN NULL ELSE clock_timestamp() END, \
                 next_attempt_at = CASE WHEN o.status = 'RETRYING' \
                     THEN clock_timestamp() + o.retry_ms * interval '1 millisecond' END \
             FROM o \
             WHERE e.id = o.id AND e.scheduled_at = o.scheduled_at{range} \
                 AND e.status = 'RUNNING' AND e.attempt = o.attempt \
             RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.next_attempt_at, \
                 o.duration_ms, o.http_status, o.error, o.response_body \
         ), kept AS ( \
             INSERT INTO {attempts} (execution_id, scheduled_at, attempt, started_at, \
                 finished_at, duration_ms, http_status, error, response_body) \
             SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                 duration_ms, http_status, error, response_body FROM done \
             WHERE status <> 'SUCCEEDED' \
             ON CONFLICT DO NOTHING \
         ) \
         SELECT id, status, next_attempt_at FROM done",
        executions = tables.executions,
        attempts = tables.attempts,
        range = if whole {
            " AND e.scheduled_at >= $11 AND e.scheduled_at < $12"
        } else {
            ""
        },
    )
}
