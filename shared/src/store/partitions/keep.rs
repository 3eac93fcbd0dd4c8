//! Partition upkeep: the partitions of the coming days created, and those past the
//! retention period detached and dropped once every fire in them is final.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row};

use super::convert::state_indexed;
use super::{layout, legacy_name, partition_name, run, DAYS_AHEAD};
use crate::store::{HistoryKept, KeptPartition, StoreError};

/// One round of partition upkeep (see [`crate::store::History::history_keep`]).
pub(in crate::store) async fn keep_history(
    pool: &PgPool,
    before: Option<DateTime<Utc>>,
) -> Result<HistoryKept, StoreError> {
    let mut conn = pool.acquire().await?;
    if !layout(&mut conn).await?.partitioned {
        return Ok(HistoryKept::default());
    }
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('tickwork_keep_history'))")
            .fetch_one(&mut *conn)
            .await?;
    if !locked {
        return Ok(HistoryKept {
            busy: true,
            ..HistoryKept::default()
        });
    }
    let kept = keep_locked(&mut conn, before).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext('tickwork_keep_history'))")
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // The lock goes with the connection: close it rather than return it to the pool.
        conn.detach();
    }
    kept
}

async fn keep_locked(
    conn: &mut PgConnection,
    before: Option<DateTime<Utc>>,
) -> Result<HistoryKept, StoreError> {
    let mut kept = HistoryKept::default();
    finish_interrupted_detaches(conn, &mut kept).await?;
    let created: Vec<(NaiveDate, bool)> = sqlx::query_as(
        "SELECT d::date, tickwork_history_partition(d::date) FROM generate_series( \
             (now() AT TIME ZONE 'UTC')::date - 1, \
             (now() AT TIME ZONE 'UTC')::date + $1, interval '1 day') AS d",
    )
    .bind(DAYS_AHEAD)
    .fetch_all(&mut *conn)
    .await?;
    kept.created = created
        .into_iter()
        .filter(|(_, made)| *made)
        .map(|(day, _)| partition_name("executions", day))
        .collect();
    analyze_today(conn).await?;
    let Some(before) = before else {
        return Ok(kept);
    };
    if !state_indexed(conn).await? {
        // Whether a day is all final is read from its state index: until `migrate` has
        // built them all, days are kept.
        return Ok(kept);
    }
    for name in partitions_ending_by(conn, before).await? {
        let (unfinished, requeued) = holds(conn, &name, before).await?;
        if unfinished > 0 || requeued > 0 {
            kept.kept.push(KeptPartition {
                name,
                unfinished,
                requeued,
            });
            continue;
        }
        if drop_partition(conn, &name, before).await? {
            kept.dropped.push(name);
        } else {
            kept.kept.push(KeptPartition {
                name,
                unfinished: 0,
                requeued: 0,
            });
        }
    }
    Ok(kept)
}

/// Gathers statistics of today's partition of `executions` when it has none from the last
/// minute. Autovacuum does so too, where it runs; without it, PostgreSQL would know nothing
/// of a day's fires (how few are held or unfinished) and could read a whole day to find them.
async fn analyze_today(conn: &mut PgConnection) -> Result<(), StoreError> {
    let today = Utc::now().date_naive();
    let name = partition_name("executions", today);
    let stale: Option<bool> = sqlx::query_scalar(
        "SELECT COALESCE(GREATEST(last_analyze, last_autoanalyze) \
             < now() - interval '50 seconds', true) \
         FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(&name)
    .fetch_optional(&mut *conn)
    .await?;
    if stale == Some(true) {
        run(conn, format!("ANALYZE {name}")).await?;
    }
    Ok(())
}

/// Partitions of `executions` whose every fire is due before `before`, oldest first.
async fn partitions_ending_by(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let layout = layout(conn).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'executions'::regclass AND NOT i.inhdetachpending \
         ORDER BY c.relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ending = Vec::new();
    if layout.legacy_before.is_some_and(|end| end <= before)
        && names.iter().any(|n| *n == legacy_name("executions"))
    {
        ending.push(legacy_name("executions"));
    }
    for name in names {
        let Some(day) = name
            .strip_prefix("executions_p")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        let end = day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        if end.is_some_and(|end| end <= before) {
            ending.push(name);
        }
    }
    Ok(ending)
}

/// The fires of partition `name` that keep it: not final yet, and put back from the dead
/// letters since `before`. Each count reads one partial index (the state index and
/// the requeue index).
async fn holds(
    conn: &mut PgConnection,
    name: &str,
    before: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let row = sqlx::query(&format!(
        "SELECT \
             (SELECT count(*) FROM {name} WHERE finished_at IS NULL \
                 AND status IN ('QUEUED', 'RUNNING', 'RETRYING')) AS unfinished, \
             (SELECT count(*) FROM {name} WHERE requeued_at IS NOT NULL AND requeued_at >= $1) \
                 AS requeued"
    ))
    .bind(before)
    .fetch_one(&mut *conn)
    .await?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok((count("unfinished")?, count("requeued")?))
}

/// The partition of `attempts` that goes with partition `name` of `executions`.
fn attempts_partition(name: &str) -> String {
    name.replacen("executions", "attempts", 1)
}

/// The two tables of a day, each with its parent: partition `name` of `executions` and its
/// attempts' partition.
fn halves(name: &str) -> [(String, String); 2] {
    [
        ("executions".to_string(), name.to_string()),
        ("attempts".to_string(), attempts_partition(name)),
    ]
}

/// Detaches partition `name` (and its attempts) without blocking reads and writes, then
/// drops both; a fire put back or left unfinished between the check and the detach (seen in
/// the detached table) puts them back instead. Returns whether they were dropped.
async fn drop_partition(
    conn: &mut PgConnection,
    name: &str,
    before: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let bounds: String = sqlx::query_scalar(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = $1",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    for (parent, table) in halves(name) {
        run(
            conn,
            format!("ALTER TABLE {parent} DETACH PARTITION {table} CONCURRENTLY"),
        )
        .await?;
    }
    let (unfinished, requeued) = holds(conn, name, before).await?;
    if unfinished > 0 || requeued > 0 {
        tracing::warn!(
            partition = name,
            unfinished,
            requeued,
            "a fire changed in a partition being dropped; attaching it again"
        );
        for (parent, table) in halves(name) {
            run(
                conn,
                format!("ALTER TABLE {parent} ATTACH PARTITION {table} {bounds}"),
            )
            .await?;
        }
        return Ok(false);
    }
    run(
        conn,
        format!("DROP TABLE {}; DROP TABLE {name}", attempts_partition(name)),
    )
    .await?;
    Ok(true)
}

/// A detach interrupted by a crash leaves its partition pending: it was on its way out,
/// so it is finished and dropped.
async fn finish_interrupted_detaches(
    conn: &mut PgConnection,
    kept: &mut HistoryKept,
) -> Result<(), StoreError> {
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.relname::text, c.relname::text FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE i.inhdetachpending AND p.relname IN ('executions', 'attempts')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (parent, table) in pending {
        run(
            conn,
            format!("ALTER TABLE {parent} DETACH PARTITION {table} FINALIZE"),
        )
        .await?;
    }
    // Tables detached but not dropped (a crash between the two) are left alone unless both
    // halves are detached: a partition is dropped only with its attempts.
    let orphans: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         WHERE c.relkind = 'r' AND c.relname ~ '^executions_(p[0-9]{8}|legacy)$' \
           AND NOT c.relispartition",
    )
    .fetch_all(&mut *conn)
    .await?;
    for name in orphans {
        let attempts = attempts_partition(&name);
        let attached: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relispartition)",
        )
        .bind(&attempts)
        .fetch_one(&mut *conn)
        .await?;
        if !attached {
            run(
                conn,
                format!("DROP TABLE IF EXISTS {attempts}; DROP TABLE {name}"),
            )
            .await?;
            kept.dropped.push(name);
        }
    }
    Ok(())
}
