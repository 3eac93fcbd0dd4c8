//! The PostgreSQL history in time partitions: one partition of `executions` and one of
//! `attempts` per UTC day of the fires' scheduled time (see the migration
//! `20261130000016_history_partitions.sql`).
//!
//! - [`ensure_days`]: the partitions a batch of fires goes to exist before it is written.
//! - [`keep_history`]: partitions of the coming days are created; partitions past the
//!   retention period are detached and dropped once every fire in them is final.
//! - [`convert`]: an existing unpartitioned history is converted online, in resumable
//!   steps, by `tickwork-api migrate` (or the tick function's `{"action":"migrate"}`).

mod convert;
mod keep;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::StoreError;

pub(super) use convert::convert;
pub use convert::Conversion;
pub(super) use keep::keep_history;

/// UTC days whose partitions this process knows exist (or knows are covered by the first
/// partition, or that the history is not partitioned): the tick checks a day once.
#[derive(Debug, Clone, Default)]
pub(super) struct KnownDays(Arc<Mutex<HashSet<NaiveDate>>>);

impl KnownDays {
    /// The days of `times` not known yet.
    pub(super) fn unknown(&self, times: &[DateTime<Utc>]) -> Vec<NaiveDate> {
        let known = self.0.lock().map(|k| k.clone()).unwrap_or_default();
        let mut days: Vec<NaiveDate> = times
            .iter()
            .map(|t| t.date_naive())
            .filter(|d| !known.contains(d))
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }

    /// Notes that `days` have their partitions.
    pub(super) fn learn(&self, days: &[NaiveDate]) {
        if let Ok(mut known) = self.0.lock() {
            known.extend(days.iter().copied());
        }
    }

    /// Forgets every day: a write found a day without its partition (dropped by retention
    /// since), so the next batch checks again.
    pub(super) fn forget(&self) {
        if let Ok(mut known) = self.0.lock() {
            known.clear();
        }
    }
}

/// Creates the partitions of `days` that are missing, inside the caller's transaction (a
/// no-op while the history is not partitioned).
pub(super) async fn ensure_days(
    conn: &mut PgConnection,
    days: &[NaiveDate],
) -> Result<(), StoreError> {
    for day in days {
        sqlx::query("SELECT tickwork_history_partition($1)")
            .bind(day)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Runs one statement of its own, with no parameters (the simple protocol: `DETACH …
/// CONCURRENTLY` and `CREATE INDEX CONCURRENTLY` refuse to run inside a transaction).
async fn run(conn: &mut PgConnection, sql: String) -> Result<(), StoreError> {
    sqlx::Executor::execute(conn, sql.as_str()).await?;
    Ok(())
}

/// Whether a statement named a table that does not exist: a day's partition that
/// retention has dropped since.
pub(super) fn is_missing_table(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("42P01"))
}

/// Whether a write failed because no partition holds one of its rows.
pub(super) fn is_missing_partition(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some("23514") && e.message().contains("no partition of relation")
    })
}

/// How the history is laid out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Layout {
    /// Ids made from this time on name their fire's time (`None`: all).
    pub(super) fire_named_ids_from: Option<DateTime<Utc>>,
    /// Whether the tables are partitioned.
    pub(super) partitioned: bool,
    /// The end of the first partition (the history from before the conversion).
    pub(super) legacy_before: Option<DateTime<Utc>>,
    /// The online conversion's progress.
    pub(super) conversion: sqlx::types::Json<Value>,
}

/// Reads the layout.
pub(super) async fn layout(conn: &mut PgConnection) -> Result<Layout, StoreError> {
    Ok(sqlx::query_as(
        "SELECT fire_named_ids_from, partitioned, legacy_before, conversion FROM history_layout",
    )
    .fetch_one(conn)
    .await?)
}

/// Days of partitions kept ahead of today (and one behind, for fires caught up late).
const DAYS_AHEAD: i32 = 2;

/// The table of the partition of `table` for `day`.
pub(super) fn partition_name(table: &str, day: NaiveDate) -> String {
    format!("{table}_p{}", day.format("%Y%m%d"))
}

/// The first partition of `table` (the history from before the conversion).
fn legacy_name(table: &str) -> String {
    format!("{table}_legacy")
}
