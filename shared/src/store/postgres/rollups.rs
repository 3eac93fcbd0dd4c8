//! PostgreSQL: per-minute rollups and each job's latest outcome.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgStore;
use crate::model::{LastOutcome, MinuteRollup};
use crate::store::rows::{count, RollupRow};
use crate::store::rules::{in_lock_order, sum_by_minute};
use crate::store::{Rollups, StoreError};

/// Adds one rollup to its row; histograms add bucket by bucket.
const ADD_MINUTE: &str = "INSERT INTO outcome_minutes AS m \
         (minute, tenant, fires, succeeded, failed, retried, lateness, latency) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (minute, tenant) DO UPDATE SET fires = m.fires + EXCLUDED.fires, \
         succeeded = m.succeeded + EXCLUDED.succeeded, failed = m.failed + EXCLUDED.failed, \
         retried = m.retried + EXCLUDED.retried, \
         lateness = ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) \
             FROM unnest(m.lateness, EXCLUDED.lateness) WITH ORDINALITY AS t(a, b, i) ORDER BY i), \
         latency = ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) \
             FROM unnest(m.latency, EXCLUDED.latency) WITH ORDINALITY AS t(a, b, i) ORDER BY i)";

/// Notes latest outcomes: a job whose noted status is the same is passed over before any
/// row is locked, so a steady job costs an index read, not a write.
const NOTE_LATEST: &str = "INSERT INTO job_outcomes AS o (job_id, status, scheduled_at) \
     SELECT u.job_id, u.status, u.scheduled_at \
     FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS u(job_id, status, scheduled_at) \
     WHERE NOT EXISTS (SELECT 1 FROM job_outcomes k WHERE k.job_id = u.job_id AND k.status = u.status) \
     ORDER BY u.job_id \
     ON CONFLICT (job_id) DO UPDATE SET status = EXCLUDED.status, scheduled_at = EXCLUDED.scheduled_at \
     WHERE o.status <> EXCLUDED.status AND o.scheduled_at <= EXCLUDED.scheduled_at";

#[async_trait]
impl Rollups for PgStore {
    async fn rollup_add(
        &self,
        minutes: &[MinuteRollup],
        latest: &[LastOutcome],
    ) -> Result<(), StoreError> {
        let (minutes, latest) = in_lock_order(minutes, latest);
        let mut tx = self.pool.begin().await?;
        for m in minutes {
            sqlx::query(ADD_MINUTE)
                .bind(m.minute)
                .bind(&m.tenant)
                .bind(count(m.fires))
                .bind(count(m.succeeded))
                .bind(count(m.failed))
                .bind(count(m.retried))
                .bind(m.lateness.counts())
                .bind(m.latency.counts())
                .execute(&mut *tx)
                .await?;
        }
        if !latest.is_empty() {
            let ids: Vec<Uuid> = latest.iter().map(|l| l.job_id).collect();
            let statuses: Vec<&str> = latest.iter().map(|l| l.status.into()).collect();
            let times: Vec<DateTime<Utc>> = latest.iter().map(|l| l.scheduled_at).collect();
            sqlx::query(NOTE_LATEST)
                .bind(ids)
                .bind(statuses)
                .bind(times)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollup_list(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        let rows: Vec<RollupRow<Vec<i64>>> = sqlx::query_as(
            "SELECT minute, tenant, fires, succeeded, failed, retried, lateness, latency \
             FROM outcome_minutes WHERE minute >= $1 AND tenant = COALESCE($2, tenant) \
             ORDER BY minute",
        )
        .bind(since)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        Ok(sum_by_minute(
            rows.into_iter().map(|row| row.into_rollup(|h| h.clone())),
            tenant,
        ))
    }

    async fn rollup_forget(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outcome_minutes WHERE minute < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
