//! The embedded store: per-minute rollups and each job's latest outcome. Histograms are
//! JSON arrays, added up here in Rust; the writer is the only one, so a read and a write in
//! one transaction cannot race another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::SqliteStore;
use crate::model::{LastOutcome, MinuteRollup};
use crate::store::rows::{count, RollupRow};
use crate::store::rules::{in_lock_order, sum_by_minute};
use crate::store::{Rollups, StoreError};

const ROLLUP_COLUMNS: &str = "minute, tenant, fires, succeeded, failed, retried, lateness, latency";

/// Latest outcomes per statement: three parameters each, under SQLite's limit.
const LATEST_PER_STATEMENT: usize = 300;

fn counts(json: &str) -> Vec<i64> {
    serde_json::from_str(json).unwrap_or_default()
}

fn json(counts: Vec<i64>) -> String {
    serde_json::Value::from(counts).to_string()
}

#[async_trait]
impl Rollups for SqliteStore {
    async fn rollup_add(
        &self,
        minutes: &[MinuteRollup],
        latest: &[LastOutcome],
    ) -> Result<(), StoreError> {
        let (minutes, latest) = in_lock_order(minutes, latest);
        let mut tx = self.write().await?;
        for m in minutes {
            let kept: Option<RollupRow<String>> = sqlx::query_as(&format!(
                "SELECT {ROLLUP_COLUMNS} FROM outcome_minutes WHERE minute = $1 AND tenant = $2"
            ))
            .bind(m.minute)
            .bind(&m.tenant)
            .fetch_optional(&mut *tx)
            .await?;
            let mut total = m.clone();
            if let Some(kept) = kept {
                total.add(&kept.into_rollup(|h| counts(h)));
            }
            sqlx::query(&format!(
                "INSERT OR REPLACE INTO outcome_minutes ({ROLLUP_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(total.minute)
            .bind(&total.tenant)
            .bind(count(total.fires))
            .bind(count(total.succeeded))
            .bind(count(total.failed))
            .bind(count(total.retried))
            .bind(json(total.lateness.counts()))
            .bind(json(total.latency.counts()))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in latest.chunks(LATEST_PER_STATEMENT) {
            let mut note =
                QueryBuilder::new("INSERT INTO job_outcomes (job_id, status, scheduled_at) ");
            note.push_values(chunk, |mut row, l| {
                let status: &'static str = l.status.into();
                row.push_bind(l.job_id)
                    .push_bind(status)
                    .push_bind(l.scheduled_at);
            });
            note.push(
                " ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, \
                 scheduled_at = excluded.scheduled_at \
                 WHERE job_outcomes.status <> excluded.status \
                 AND job_outcomes.scheduled_at <= excluded.scheduled_at",
            );
            note.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollup_list(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        let rows: Vec<RollupRow<String>> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_COLUMNS} FROM outcome_minutes \
             WHERE minute >= $1 AND tenant = COALESCE($2, tenant) ORDER BY minute"
        ))
        .bind(since)
        .bind(tenant)
        .fetch_all(&self.reader)
        .await?;
        Ok(sum_by_minute(
            rows.into_iter().map(|row| row.into_rollup(|h| counts(h))),
            tenant,
        ))
    }

    async fn rollup_forget(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM outcome_minutes WHERE minute < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
