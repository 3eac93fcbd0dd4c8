//! PostgreSQL: the claim statements, which take a batch of QUEUED fires for a worker over
//! a day's partition or the whole history, and sort what they return.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{whole_history, PgStore, PAST_DEADLINE};
use crate::model::Delivery;
use crate::store::fire_id::{named_time, FireTimes};
use crate::store::rows::DeliveryRow;
use crate::store::sql::EXPIRED_ERROR;
use crate::store::{Claimed, StoreError};

impl PgStore {
    /// Runs one claim statement over `table`.
    pub(super) async fn claim(
        &self,
        ids: &[Uuid],
        worker: Uuid,
        times: &FireTimes,
        table: &str,
        claim: Claim,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        let sql = claim_sql(table, claim);
        if whole_history(table) {
            return sqlx::query_as(&sql)
                .bind(ids)
                .bind(worker)
                .bind(times.from)
                .bind(times.until)
                .fetch_all(&self.pool)
                .await;
        }
        // A day's partition is only named for fire-named ids.
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let named: Vec<Option<DateTime<Utc>>> = sorted.iter().map(|id| named_time(*id)).collect();
        sqlx::query_as(&sql)
            .bind(&sorted)
            .bind(worker)
            .bind(named)
            .fetch_all(&self.pool)
            .await
    }

    /// Of `ids`, those the claim over the day's partition `table` leaves to the statement
    /// over the whole history: fires of FORBID jobs still QUEUED, and any not found there
    /// by the time its id names. Nearly always `ids` is empty and nothing is read; fires
    /// no longer QUEUED (expired, taken by another worker) are not passed on.
    pub(super) async fn left_to_whole_history(
        &self,
        ids: &[Uuid],
        table: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let named: Vec<Option<DateTime<Utc>>> = ids.iter().map(|id| named_time(*id)).collect();
        Ok(sqlx::query_scalar(&format!(
            "SELECT k.id FROM UNNEST($1::uuid[], $2::timestamptz[]) AS k(id, scheduled_at) \
             LEFT JOIN {table} e ON e.id = k.id AND e.scheduled_at = k.scheduled_at \
             LEFT JOIN jobs j ON j.id = e.job_id \
             WHERE e.id IS NULL \
                 OR (e.status = 'QUEUED' AND j.concurrency_policy = 'FORBID')"
        ))
        .bind(ids)
        .bind(named)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sorts the rows a claim returned into what to deliver, what expired and what was
    /// skipped; a fire whose job row cannot be read becomes FAILED.
    pub(super) async fn claimed_from(
        &self,
        rows: Vec<DeliveryRow>,
        times: &FireTimes,
    ) -> Result<Claimed, StoreError> {
        let mut claimed = Claimed::default();
        for row in rows {
            let id = row.id;
            if row.expired {
                claimed.expired.push(id);
                continue;
            }
            if row.overlap {
                claimed.skipped.push(id);
                continue;
            }
            match Delivery::try_from(row) {
                Ok(delivery) => claimed.deliveries.push(delivery),
                Err(error) => {
                    // One unreadable job must not hold up the rest of the batch.
                    tracing::error!(execution_id = %id, error = %crate::telemetry::error_chain(&error), "cannot deliver: stored job is malformed");
                    sqlx::query(
                        "UPDATE executions SET status = 'FAILED', finished_at = clock_timestamp(), \
                         error = $2 WHERE id = $1 AND scheduled_at >= $3 AND scheduled_at < $4 \
                         AND status = 'RUNNING'",
                    )
                    .bind(id)
                    .bind(error.to_string())
                    .bind(times.from)
                    .bind(times.until)
                    .execute(&self.pool)
                    .await?;
                    claimed.malformed.push(id);
                }
            }
        }
        Ok(claimed)
    }
}

/// Which fires a claim statement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// Those of jobs that allow overlap; a FORBID job's fires come back `deferred`,
    /// unchanged (locked only while the statement runs). Reads only the table it is given.
    AllButForbid,
    /// Those of FORBID jobs, each checked against its job's latest earlier fire (read over
    /// the whole history: it may be days old).
    Forbid,
}

/// The claim statement over `table` (see [`PgStore::execution_start`]): over the whole
/// history, where the fires' range of times (`$3`, `$4`) picks the partitions, each fire is
/// locked (`SKIP LOCKED`), then decided; over a day's partition, [`day_claim_sql`].
fn claim_sql(table: &str, claim: Claim) -> String {
    if claim == Claim::AllButForbid && !whole_history(table) {
        return day_claim_sql(table);
    }
    let (deferred, overlap, rest) = match claim {
        Claim::AllButForbid => (
            "j.concurrency_policy = 'FORBID'",
            "false".to_string(),
            format!(
                " UNION ALL SELECT x.id, x.job_id, x.scheduled_at, x.attempt, $2, x.crashes, \
                 x.handbacks, x.attempt_base, j.tenant, j.execution_type, j.max_retries, j.http_method, \
                 j.http_url, j.http_headers, j.http_body, j.timeout_seconds, j.signing_secret, \
                 NULL, false, false, 0::bigint, true \
                 FROM decided d JOIN {table} x ON x.id = d.id AND x.scheduled_at = d.scheduled_at \
                 JOIN jobs j ON j.id = x.job_id WHERE d.deferred"
            ),
        ),
        Claim::Forbid => (
            "false",
            "j.concurrency_policy = 'FORBID' AND COALESCE(( \
                 SELECT o.status IN ('QUEUED', 'RUNNING', 'RETRYING') FROM executions o \
                 WHERE o.job_id = x.job_id AND o.scheduled_at < x.scheduled_at \
                 AND o.status NOT IN ('SKIPPED', 'CANCELLED', 'EXPIRED') \
                 ORDER BY o.scheduled_at DESC LIMIT 1), false)"
                .to_string(),
            String::new(),
        ),
    };
    format!(
            "WITH holder AS ( \
                 SELECT id FROM workers WHERE id = $2 AND NOT dead FOR KEY SHARE \
             ), claimable AS ( \
                 SELECT id, scheduled_at FROM {table} \
                 WHERE id = ANY($1) AND scheduled_at >= $3 AND scheduled_at < $4 \
                     AND status = 'QUEUED' AND EXISTS (SELECT 1 FROM holder) \
                 ORDER BY id FOR NO KEY UPDATE SKIP LOCKED \
             ), decided AS ( \
                 SELECT c.id, c.scheduled_at, {overlap} AS overlap, {PAST_DEADLINE} AS expired, \
                     {deferred} AS deferred \
                 FROM claimable c \
                 JOIN {table} x ON x.id = c.id AND x.scheduled_at = c.scheduled_at \
                     AND x.scheduled_at >= $3 AND x.scheduled_at < $4 \
                 JOIN jobs j ON j.id = x.job_id \
             ), claimed AS ( \
             UPDATE {table} e SET \
                 status = CASE WHEN d.expired THEN 'EXPIRED' WHEN d.overlap THEN 'SKIPPED' \
                     ELSE 'RUNNING' END, \
                 attempt = CASE WHEN d.overlap OR d.expired THEN e.attempt ELSE e.attempt + 1 END, \
                 started_at = CASE WHEN d.overlap OR d.expired THEN NULL \
                     ELSE GREATEST(clock_timestamp(), e.scheduled_at) END, \
                 finished_at = CASE WHEN d.overlap OR d.expired THEN clock_timestamp() END, \
                 error = CASE WHEN d.expired THEN {EXPIRED_ERROR} WHEN d.overlap \
                     THEN 'skipped: an earlier fire of this job was unfinished (concurrencyPolicy FORBID)' END, \
                 execution_type = j.execution_type, \
                 worker_id = CASE WHEN d.overlap OR d.expired THEN e.worker_id ELSE $2 END \
             FROM decided d, jobs j \
             WHERE e.id = d.id AND e.scheduled_at = d.scheduled_at AND NOT d.deferred \
                 AND e.scheduled_at >= $3 AND e.scheduled_at < $4 AND j.id = e.job_id \
             RETURNING e.id, e.job_id, e.scheduled_at, e.attempt, $2 AS worker_id, e.crashes, e.handbacks, e.attempt_base, \
                 j.tenant, j.execution_type, j.max_retries, j.http_method, j.http_url, j.http_headers, \
                 j.http_body, j.timeout_seconds, j.signing_secret, \
                 CASE WHEN j.previous_secret_expires_at > clock_timestamp() \
                     THEN j.previous_signing_secret END AS previous_signing_secret, d.overlap, \
                 d.expired, \
                 GREATEST(0, ceil(extract(epoch FROM e.scheduled_at - clock_timestamp()) * 1000))::bigint \
                     AS wait_ms, false AS deferred \
             ) SELECT * FROM claimed{rest}"
    )
}

/// The claim of fires of one day (`$1` their ids, `$3` the times the ids name), of jobs that
/// allow overlap, in one statement over the day's partition: each fire is found by its
/// whole key (a plan PostgreSQL picks even before it has statistics of the day; `id =
/// ANY($1)` alone would be taken, without them, to match most of the day), and changed in
/// place (a HOT update, no index names what changes). A fire another claim holds is waited
/// for and then passed over, no longer QUEUED; ids come sorted, so two claims wait on each
/// other in one order. Fires of FORBID jobs are left, unchanged and not returned, to the
/// caller's second statement. The deadline is read once per fire, at `k.now`.
fn day_claim_sql(table: &str) -> String {
    let past_deadline = PAST_DEADLINE
        .replace("x.", "e.")
        .replace("clock_timestamp()", "k.now");
    format!(
        "WITH holder AS ( \
             SELECT id FROM workers WHERE id = $2 AND NOT dead FOR KEY SHARE \
         ) \
         UPDATE {table} e SET \
             status = CASE WHEN {past_deadline} THEN 'EXPIRED' ELSE 'RUNNING' END, \
             attempt = CASE WHEN {past_deadline} THEN e.attempt ELSE e.attempt + 1 END, \
             started_at = CASE WHEN {past_deadline} THEN NULL \
                 ELSE GREATEST(k.now, e.scheduled_at) END, \
             finished_at = CASE WHEN {past_deadline} THEN k.now END, \
             error = CASE WHEN {past_deadline} THEN {EXPIRED_ERROR} END, \
             execution_type = j.execution_type, \
             worker_id = CASE WHEN {past_deadline} THEN e.worker_id ELSE $2 END \
         FROM (SELECT id, scheduled_at, clock_timestamp() AS now \
               FROM UNNEST($1::uuid[], $3::timestamptz[]) AS k(id, scheduled_at)) k, jobs j \
         WHERE e.id = k.id AND e.scheduled_at = k.scheduled_at AND e.status = 'QUEUED' \
             AND j.id = e.job_id AND j.concurrency_policy <> 'FORBID' \
             AND EXISTS (SELECT 1 FROM holder) \
         RETURNING e.id, e.job_id, e.scheduled_at, e.attempt, $2 AS worker_id, e.crashes, \
             e.handbacks, e.attempt_base, j.tenant, j.execution_type, j.max_retries, j.http_method, \
             j.http_url, j.http_headers, j.http_body, j.timeout_seconds, j.signing_secret, \
             CASE WHEN j.previous_secret_expires_at > clock_timestamp() \
                 THEN j.previous_signing_secret END AS previous_signing_secret, \
             false AS overlap, e.status = 'EXPIRED' AS expired, \
             GREATEST(0, ceil(extract(epoch FROM e.scheduled_at - clock_timestamp()) * 1000))::bigint \
                 AS wait_ms, false AS deferred"
    )
}
