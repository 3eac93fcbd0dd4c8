//! The rows the benchmark reads and writes directly, on either backend: the PostgreSQL
//! database it created, or the embedded SQLite file `tickwork-local` serves.

use chrono::{DateTime, Utc};

/// A pool on the deployment's store.
pub enum Rows {
    /// The benchmark's own PostgreSQL database.
    Postgres(sqlx::PgPool),
    /// The embedded file (a second connection beside `tickwork-local`'s own).
    Sqlite(sqlx::SqlitePool),
}

/// Runs the same query text on whichever pool `rows` holds.
macro_rules! on_either {
    ($rows:expr, $pool:ident => $body:expr) => {
        match $rows {
            Rows::Postgres($pool) => $body,
            Rows::Sqlite($pool) => $body,
        }
    };
}

impl Rows {
    /// The storage clock (the embedded backend uses this machine's clock).
    pub async fn clock(&self) -> anyhow::Result<DateTime<Utc>> {
        Ok(match self {
            Rows::Postgres(pool) => {
                sqlx::query_scalar("SELECT clock_timestamp()")
                    .fetch_one(pool)
                    .await?
            }
            Rows::Sqlite(_) => Utc::now(),
        })
    }

    /// Stops jobs whose next fire is at or past `t1`; returns how many jobs still have a
    /// fire before `t1` to record.
    pub async fn stop_firing_from(&self, t1: DateTime<Utc>) -> anyhow::Result<i64> {
        const STOP: &str = "UPDATE jobs SET next_run_at = NULL WHERE next_run_at >= $1";
        const LEFT: &str = "SELECT count(*) FROM jobs WHERE next_run_at IS NOT NULL";
        Ok(on_either!(self, pool => {
            sqlx::query(STOP).bind(t1).execute(pool).await?;
            sqlx::query_scalar(LEFT).fetch_one(pool).await?
        }))
    }

    /// Fires scheduled before `t1` that are not final yet.
    pub async fn open_before(&self, t1: DateTime<Utc>) -> anyhow::Result<i64> {
        const OPEN: &str = "SELECT count(*) FROM executions WHERE scheduled_at < $1 \
             AND status IN ('QUEUED', 'RUNNING', 'RETRYING')";
        Ok(on_either!(self, pool => sqlx::query_scalar(OPEN).bind(t1).fetch_one(pool).await?))
    }

    /// Fires scheduled more than two days before `now`: what is left of `--old-history`.
    pub async fn older_than_two_days(&self, now: DateTime<Utc>) -> anyhow::Result<i64> {
        const OLD: &str = "SELECT count(*) FROM executions WHERE scheduled_at < $1";
        let before = now - chrono::TimeDelta::days(2);
        Ok(on_either!(self, pool => sqlx::query_scalar(OLD).bind(before).fetch_one(pool).await?))
    }

    /// (executions, succeeded, attempts) of fires scheduled in `[t0, t1)`.
    pub async fn window(
        &self,
        t0: DateTime<Utc>,
        t1: DateTime<Utc>,
    ) -> anyhow::Result<(i64, i64, i64)> {
        const WINDOW: &str = "SELECT count(*), count(*) FILTER (WHERE status = 'SUCCEEDED'), \
             (SELECT count(*) FROM attempts a JOIN executions e ON e.id = a.execution_id \
              WHERE e.scheduled_at >= $1 AND e.scheduled_at < $2) \
             FROM executions WHERE scheduled_at >= $1 AND scheduled_at < $2";
        Ok(on_either!(self, pool => {
            sqlx::query_as(WINDOW).bind(t0).bind(t1).fetch_one(pool).await?
        }))
    }

    /// Executions of fires scheduled in `[t0, t1)` by status (every status that appears).
    pub async fn statuses(
        &self,
        t0: DateTime<Utc>,
        t1: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        const STATUSES: &str = "SELECT status, count(*) FROM executions \
             WHERE scheduled_at >= $1 AND scheduled_at < $2 GROUP BY status ORDER BY status";
        Ok(on_either!(self, pool => {
            sqlx::query_as(STATUSES).bind(t0).bind(t1).fetch_all(pool).await?
        }))
    }
}
