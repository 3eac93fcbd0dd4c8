//! SQLite: a worker's lease, its claims and outcomes, and the fires taken back from
//! workers that stopped or died.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::{
    after, next_attempt_at, push_ids, SqliteStore, EXPIRE_FIRES_AT, IN_LIST_CHUNK,
    PAST_DEADLINE_AT, ROWS_PER_STATEMENT,
};
use crate::model::{Delivery, ExecutionStatus, ExecutionType, Outcome, Recorded};
use crate::store::rows::{corrupt, read_status, DeliveryRow};
use crate::store::sql::EXPIRED_ERROR;
use crate::store::{Claimed, Deliveries, Reaped, StoreError, Unfinished};

fn elapsed_ms(from: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    from.map_or(0, |start| (now - start).num_milliseconds().max(0))
}

/// Appends `, error = ... WHERE id IN (ids)` to [`EXPIRE_FIRES_AT`] and its time.
fn expire_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[Uuid]) {
    query.push(format!(
        ", error = (SELECT {EXPIRED_ERROR} FROM jobs j WHERE j.id = executions.job_id) \
         WHERE status = 'QUEUED' AND id IN "
    ));
    push_ids(query, ids);
}

/// A RUNNING fire taken back from its worker.
#[derive(sqlx::FromRow)]
struct HeldRow {
    id: Uuid,
    attempt: i32,
    started_at: Option<DateTime<Utc>>,
    crashes: i32,
    execution_type: String,
}

/// Ends one RUNNING fire taken back from a worker as `status` with `error`, and keeps the
/// attempt it was on. `crashed` counts a crash (the reaper), else a hand-back.
async fn take_back(
    tx: &mut Transaction<'_, Sqlite>,
    held: &HeldRow,
    status: ExecutionStatus,
    error: &str,
    crashed: bool,
    now: DateTime<Utc>,
) -> Result<Option<Reaped>, StoreError> {
    let finished = (status != ExecutionStatus::Queued).then_some(now);
    let counter = if crashed { "crashes" } else { "handbacks" };
    let changed = sqlx::query(&format!(
        "UPDATE executions SET {counter} = {counter} + 1, \
         status = $3, queued_at = $4, finished_at = $5, http_status = NULL, error = $6 \
         WHERE id = $1 AND status = 'RUNNING' AND attempt = $2"
    ))
    .bind(held.id)
    .bind(held.attempt)
    .bind(status.as_str())
    .bind(now)
    .bind(finished)
    .bind(error)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT OR IGNORE INTO attempts (execution_id, attempt, started_at, finished_at, \
         duration_ms, error) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(held.id)
    .bind(held.attempt)
    .bind(held.started_at.unwrap_or(now))
    .bind(now)
    .bind(elapsed_ms(held.started_at, now))
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(Some(Reaped {
        execution_id: held.id,
        status,
    }))
}

fn held_type(held: &HeldRow) -> Result<ExecutionType, StoreError> {
    ExecutionType::parse(&held.execution_type).map_err(|e| corrupt("execution", e.message))
}

/// What a claim does with each fire of a batch that is still QUEUED.
struct Starts {
    /// A first attempt past its job's starting deadline: EXPIRED, not sent.
    expired: Vec<Uuid>,
    /// A FORBID job's fire with an earlier fire unfinished: SKIPPED.
    skipped: Vec<Uuid>,
    /// The rest: RUNNING, held by the worker.
    run: Vec<Uuid>,
}

/// Decides what becomes of each QUEUED fire among `ids`. A first attempt past its job's
/// starting deadline is EXPIRED; else a FORBID job's fire with an earlier fire unfinished
/// is SKIPPED (EXPIRED fires never ran, so the check looks past them as past SKIPPED ones).
/// The write transaction holds the database, so this decision and the claim see the same
/// rows: an earlier fire in this batch is still QUEUED here, so two fires of one job never
/// both start.
async fn decide_starts(
    tx: &mut Transaction<'static, Sqlite>,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Starts, StoreError> {
    let mut decide = QueryBuilder::new(
        "SELECT x.id, j.concurrency_policy = 'FORBID' AND COALESCE(( \
             SELECT o.status IN ('QUEUED', 'RUNNING', 'RETRYING') FROM executions o \
             WHERE o.job_id = x.job_id AND o.scheduled_at < x.scheduled_at \
             AND o.status NOT IN ('SKIPPED', 'CANCELLED', 'EXPIRED') \
             ORDER BY o.scheduled_at DESC LIMIT 1), 0), ",
    );
    decide.push(PAST_DEADLINE_AT).push_bind(now).push(
        "), 0) FROM executions x JOIN jobs j ON j.id = x.job_id \
         WHERE x.status = 'QUEUED' AND x.id IN ",
    );
    push_ids(&mut decide, ids);
    let decided: Vec<(Uuid, bool, bool)> = decide.build_query_as().fetch_all(&mut **tx).await?;
    let mut starts = Starts {
        expired: Vec::new(),
        skipped: Vec::new(),
        run: Vec::new(),
    };
    for (id, overlap, expired) in decided {
        match (expired, overlap) {
            (true, _) => starts.expired.push(id),
            (false, true) => starts.skipped.push(id),
            (false, false) => starts.run.push(id),
        }
    }
    Ok(starts)
}

/// Ends the fires decided EXPIRED or SKIPPED.
async fn end_unstarted(
    tx: &mut Transaction<'static, Sqlite>,
    starts: &Starts,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !starts.expired.is_empty() {
        let mut expire = QueryBuilder::new(EXPIRE_FIRES_AT);
        expire.push_bind(now);
        expire_ids(&mut expire, &starts.expired);
        expire.build().execute(&mut **tx).await?;
    }
    if !starts.skipped.is_empty() {
        let mut skip = QueryBuilder::new(
            "UPDATE executions SET status = 'SKIPPED', started_at = NULL, \
             error = 'skipped: an earlier fire of this job was unfinished (concurrencyPolicy FORBID)', \
             execution_type = (SELECT execution_type FROM jobs WHERE id = executions.job_id), \
             finished_at = ",
        );
        skip.push_bind(now).push(" WHERE id IN ");
        push_ids(&mut skip, &starts.skipped);
        skip.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves `run` to RUNNING, held by `worker`, and reads what to deliver; a fire whose job
/// row cannot be read becomes FAILED.
async fn start_fires(
    tx: &mut Transaction<'static, Sqlite>,
    run: &[Uuid],
    worker: Uuid,
    now: DateTime<Utc>,
    claimed: &mut Claimed,
) -> Result<(), StoreError> {
    let mut start = QueryBuilder::new(
        "UPDATE executions SET status = 'RUNNING', attempt = attempt + 1, \
         finished_at = NULL, error = NULL, \
         execution_type = (SELECT execution_type FROM jobs WHERE id = executions.job_id), \
         started_at = MAX(",
    );
    start
        .push_bind(now)
        .push(", scheduled_at), worker_id = ")
        .push_bind(worker)
        .push(" WHERE id IN ");
    push_ids(&mut start, run);
    start.build().execute(&mut **tx).await?;
    let mut read = QueryBuilder::new(
        "SELECT e.id, e.job_id, e.scheduled_at, e.attempt, e.worker_id, e.crashes, e.handbacks, \
         e.attempt_base, j.tenant, j.execution_type, j.max_retries, j.http_method, j.http_url, \
         j.http_headers, j.http_body, j.timeout_seconds, j.signing_secret, \
         CASE WHEN j.previous_secret_expires_at > ",
    );
    read.push_bind(now).push(
        " THEN j.previous_signing_secret END AS previous_signing_secret, \
         false AS overlap, false AS expired, 0 AS wait_ms \
         FROM executions e JOIN jobs j ON j.id = e.job_id WHERE e.id IN ",
    );
    push_ids(&mut read, run);
    let rows: Vec<DeliveryRow> = read.build_query_as().fetch_all(&mut **tx).await?;
    for mut row in rows {
        let id = row.id;
        let wait = row.scheduled_at - now;
        row.wait_ms = (wait + TimeDelta::microseconds(999))
            .num_milliseconds()
            .max(0);
        match Delivery::try_from(row) {
            Ok(delivery) => claimed.deliveries.push(delivery),
            Err(error) => {
                // One unreadable job must not hold up the rest of the batch.
                tracing::error!(execution_id = %id, error = %crate::telemetry::error_chain(&error), "cannot deliver: stored job is malformed");
                sqlx::query(
                    "UPDATE executions SET status = 'FAILED', finished_at = $2, \
                     error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .bind(error.to_string())
                .execute(&mut **tx)
                .await?;
                claimed.malformed.push(id);
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Deliveries for SqliteStore {
    async fn execution_start(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError> {
        let mut claimed = Claimed::default();
        if ids.is_empty() {
            return Ok(claimed);
        }
        let mut tx = self.write().await?;
        let now = Utc::now();
        // The write transaction holds the database: a reaper cannot declare the worker dead
        // between this check and the claim.
        let alive: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM workers WHERE id = $1 AND NOT dead")
                .bind(worker)
                .fetch_optional(&mut *tx)
                .await?;
        if alive.is_none() {
            return Ok(claimed);
        }
        for chunk in ids.chunks(IN_LIST_CHUNK) {
            let decided = decide_starts(&mut tx, chunk, now).await?;
            end_unstarted(&mut tx, &decided, now).await?;
            claimed.expired.extend(decided.expired);
            claimed.skipped.extend(decided.skipped);
            if !decided.run.is_empty() {
                start_fires(&mut tx, &decided.run, worker, now, &mut claimed).await?;
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn worker_register(&self, lease: Duration) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        sqlx::query("INSERT INTO workers (id, started_at, lease_expires_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(now)
            .bind(after(now, lease))
            .execute(&self.writer)
            .await?;
        Ok(id)
    }

    async fn worker_renew(&self, worker: Uuid, lease: Duration) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE workers SET lease_expires_at = $2 WHERE id = $1 AND NOT dead")
                .bind(worker)
                .bind(after(Utc::now(), lease))
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(renewed > 0)
    }

    async fn worker_retire(&self, worker: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE workers SET dead = 1, lease_expires_at = $2 WHERE id = $1")
            .bind(worker)
            .bind(Utc::now())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn execution_reap_expired(
        &self,
        crash_limit: u32,
        limit: u32,
    ) -> Result<Vec<Reaped>, StoreError> {
        let mut tx = self.write().await?;
        let now = Utc::now();
        sqlx::query("UPDATE workers SET dead = 1 WHERE NOT dead AND lease_expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let expired: Vec<HeldRow> = sqlx::query_as(
            "SELECT e.id, e.attempt, e.started_at, e.crashes, \
                 COALESCE(e.execution_type, j.execution_type) AS execution_type \
             FROM executions e JOIN jobs j ON j.id = e.job_id \
             WHERE e.status = 'RUNNING' AND e.worker_id IN (SELECT id FROM workers WHERE dead) \
             ORDER BY e.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut reaped = Vec::with_capacity(expired.len());
        for held in &expired {
            let crashes = i64::from(held.crashes) + 1;
            let (status, error) = if held_type(held)? == ExecutionType::AtMostOnce {
                (
                    ExecutionStatus::Abandoned,
                    "worker lost its lease mid-request (crashed or stalled); outcome unknown, \
                     not retried (AT_MOST_ONCE)"
                        .to_string(),
                )
            } else if crashes >= i64::from(crash_limit) {
                (
                    ExecutionStatus::Failed,
                    format!(
                        "worker lost its lease mid-request {crashes} times (CRASH_LIMIT); \
                         giving up"
                    ),
                )
            } else {
                (
                    ExecutionStatus::Queued,
                    "worker lost its lease mid-request (crashed or stalled); running it again"
                        .to_string(),
                )
            };
            reaped.extend(take_back(&mut tx, held, status, &error, true, now).await?);
        }
        if expired.len() < limit as usize {
            sqlx::query(
                "DELETE FROM workers WHERE dead AND NOT EXISTS (SELECT 1 FROM executions e \
                 WHERE e.worker_id = workers.id AND e.status = 'RUNNING')",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(reaped)
    }

    async fn execution_hand_back(
        &self,
        unfinished: &[Unfinished],
    ) -> Result<Vec<Reaped>, StoreError> {
        if unfinished.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let now = Utc::now();
        let mut back = Vec::with_capacity(unfinished.len());
        for u in unfinished {
            let held: Option<HeldRow> = sqlx::query_as(
                "SELECT e.id, e.attempt, e.started_at, e.crashes, \
                     COALESCE(e.execution_type, j.execution_type) AS execution_type \
                 FROM executions e JOIN jobs j ON j.id = e.job_id \
                 WHERE e.id = $1 AND e.status = 'RUNNING' AND e.attempt = $2",
            )
            .bind(u.execution_id)
            .bind(u.attempt)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(held) = held else {
                continue;
            };
            let (status, error) = if held_type(&held)? == ExecutionType::AtMostOnce {
                (
                    ExecutionStatus::Abandoned,
                    "worker stopped mid-request; outcome unknown, not retried (AT_MOST_ONCE)",
                )
            } else {
                (
                    ExecutionStatus::Queued,
                    "worker stopped mid-request; handed back to run again",
                )
            };
            back.extend(take_back(&mut tx, &held, status, error, false, now).await?);
        }
        tx.commit().await?;
        Ok(back)
    }

    async fn execution_record_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let now = Utc::now();
        let mut recorded = Vec::with_capacity(outcomes.len());
        for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
            // The fenced state changes, then one attempt row for each change made, inside
            // one transaction: both or neither.
            let mut done = QueryBuilder::new(
                "WITH o(id, attempt, status, duration_ms, http_status, error, finished_at, \
                 next_attempt_at, response_body, sent_at) AS (",
            );
            done.push_values(chunk, |mut row, o| {
                let retrying = o.status == ExecutionStatus::Retrying;
                row.push_bind(o.execution_id)
                    .push_bind(o.attempt)
                    .push_bind(o.status.as_str())
                    .push_bind(o.duration_ms)
                    .push_bind(o.http_status.map(i32::from))
                    .push_bind(o.error.clone())
                    .push_bind((!retrying).then_some(now))
                    .push_bind(next_attempt_at(o, now))
                    .push_bind(o.response_body.clone())
                    .push_bind(o.sent_at);
            });
            done.push(
                ") UPDATE executions SET status = o.status, duration_ms = o.duration_ms, \
                 http_status = o.http_status, error = o.error, response_body = o.response_body, \
                 finished_at = o.finished_at, next_attempt_at = o.next_attempt_at, \
                 first_sent_at = COALESCE(executions.first_sent_at, o.sent_at) \
                 FROM o WHERE executions.id = o.id AND executions.status = 'RUNNING' \
                 AND executions.attempt = o.attempt \
                 RETURNING id, started_at, status, next_attempt_at",
            );
            let changed: Vec<(Uuid, Option<DateTime<Utc>>, String, Option<DateTime<Utc>>)> =
                done.build_query_as().fetch_all(&mut *tx).await?;
            // A successful last attempt lives in the execution row alone.
            let unsuccessful: Vec<_> = changed
                .iter()
                .filter(|(_, _, status, _)| status != "SUCCEEDED")
                .collect();
            let by_id: HashMap<Uuid, &Outcome> =
                chunk.iter().map(|o| (o.execution_id, o)).collect();
            let mut kept = QueryBuilder::new(
                "INSERT OR IGNORE INTO attempts (execution_id, attempt, started_at, finished_at, \
                 duration_ms, http_status, error, response_body) ",
            );
            if !unsuccessful.is_empty() {
                kept.push_values(unsuccessful, |mut row, (id, started_at, _, _)| {
                    let o = by_id[id];
                    row.push_bind(*id)
                        .push_bind(o.attempt)
                        .push_bind(started_at.unwrap_or(now))
                        .push_bind(now)
                        .push_bind(o.duration_ms)
                        .push_bind(o.http_status.map(i32::from))
                        .push_bind(o.error.clone())
                        .push_bind(o.response_body.clone());
                });
                kept.build().execute(&mut *tx).await?;
            }
            for (execution_id, _, status, next_attempt_at) in changed {
                recorded.push(Recorded {
                    execution_id,
                    status: read_status(&status)?,
                    next_attempt_at,
                });
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }
}
