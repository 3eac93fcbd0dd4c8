//! The online conversion of an unpartitioned history to time partitions, in resumable
//! steps, each safe to repeat.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::PgConnection;

use super::{layout, run, Layout};
use crate::store::StoreError;

/// Where the online conversion of an unpartitioned history stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conversion {
    /// The history is partitioned: nothing left to do.
    pub done: bool,
    /// The step done last (or to do next, when a step was cut short by the deadline).
    pub step: String,
    /// What it did.
    pub detail: String,
}

/// The conversion's steps, in order; each is safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Fill `attempts.scheduled_at` of attempts written by earlier versions, in batches.
    Backfill,
    /// Build, without blocking writes, the indexes the partitioned tables need.
    Indexes,
    /// Prove the stored rows pass every check the partitioned tables have.
    Validate,
    /// Prove every stored fire is due before the cutoff, the first partition's end.
    Bound,
    /// In one short transaction, make the tables the first partition of new ones.
    Swap,
    /// Build, without blocking writes, a partition's index for the fire's states (one
    /// partition and index per step), and attach it to the partitioned index.
    StateIndexes,
    /// Drop the indexes on status the state indexes replace (migration 18).
    DropStatusIndexes,
    /// Nothing left.
    Done,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Backfill => "backfill attempts.scheduled_at",
            Step::Indexes => "build indexes",
            Step::Validate => "validate checks",
            Step::Bound => "bound the history before the cutoff",
            Step::Swap => "swap in the partitioned tables",
            Step::StateIndexes => "index the fire's states",
            Step::DropStatusIndexes => "drop the indexes on status",
            Step::Done => "done",
        }
    }
}

/// Attempts filled per statement of the backfill.
const BACKFILL_BATCH: i64 = 10_000;

/// Indexes the existing tables need before they can be attached as a partition without
/// an index being built under lock: (name, definition).
const INDEXES: [(&str, &str); 7] = [
    ("executions_legacy_key", "ON executions (id, scheduled_at)"),
    (
        "executions_unfinished_idx",
        "ON executions (queued_at) WHERE finished_at IS NULL",
    ),
    (
        "executions_failed_idx",
        "ON executions (id) WHERE finished_at IS NOT NULL AND error IS NOT NULL",
    ),
    (
        "executions_held_by_time_idx",
        "ON executions (scheduled_at, id) WHERE held",
    ),
    (
        "executions_retry_due_idx",
        "ON executions (next_attempt_at) WHERE next_attempt_at IS NOT NULL",
    ),
    (
        "attempts_legacy_key",
        "ON attempts (execution_id, attempt, scheduled_at)",
    ),
    (
        "executions_requeued_idx",
        "ON executions (requeued_at) WHERE requeued_at IS NOT NULL",
    ),
];

/// The indexes of `executions` for the fire's states (migration 18): (name, what follows
/// `ON <table>`). None names a column a claim changes, so a claim is a HOT update.
const STATE_INDEXES: [(&str, &str); 4] = [
    (
        "executions_unfinished_idx",
        "(queued_at) WHERE finished_at IS NULL",
    ),
    (
        "executions_failed_idx",
        "(id) WHERE finished_at IS NOT NULL AND error IS NOT NULL",
    ),
    (
        "executions_held_by_time_idx",
        "(scheduled_at, id) WHERE held",
    ),
    (
        "executions_retry_due_idx",
        "(next_attempt_at) WHERE next_attempt_at IS NOT NULL",
    ),
];

/// The indexes on status the state indexes replace, on the partitioned table and (as the
/// swap renamed them) on the history from before the conversion.
const STATUS_INDEXES: [&str; 10] = [
    "executions_dead_idx",
    "executions_held_idx",
    "executions_queued_idx",
    "executions_retrying_idx",
    "executions_running_by_worker_idx",
    "executions_legacy_dead_idx",
    "executions_legacy_held_idx",
    "executions_legacy_queued_idx",
    "executions_legacy_retrying_idx",
    "executions_legacy_running_by_worker_idx",
];

/// The cutoff is chosen this far ahead (the next UTC day boundary after it), and chosen
/// again if the swap has not happened with less than [`CUTOFF_MARGIN`] to go: fires due
/// after the cutoff cannot be written to the existing tables once it is checked.
const CUTOFF_AHEAD_DAYS: i64 = 2;
const CUTOFF_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// Runs conversion steps until the history is partitioned or `deadline` passes (each step
/// is one batch or one statement; a step under way when it passes is finished first).
pub(in crate::store) async fn convert(
    pool: &PgPool,
    deadline: Option<tokio::time::Instant>,
) -> Result<Conversion, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut last = Conversion {
        done: false,
        step: Step::Done.name().to_string(),
        detail: String::new(),
    };
    loop {
        let step = next_step(&mut conn).await?;
        if step == Step::Done {
            return Ok(Conversion {
                done: true,
                step: step.name().to_string(),
                detail: "the history is partitioned".to_string(),
            });
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            last.step = step.name().to_string();
            return Ok(last);
        }
        let detail = run_step(&mut conn, step).await?;
        tracing::info!(step = step.name(), %detail, "history conversion");
        last = Conversion {
            done: false,
            step: step.name().to_string(),
            detail,
        };
    }
}

async fn next_step(conn: &mut PgConnection) -> Result<Step, StoreError> {
    let layout = layout(conn).await?;
    if layout.partitioned {
        if unindexed_state(conn).await?.is_some() {
            return Ok(Step::StateIndexes);
        }
        if unvalidated_checks(conn).await? {
            return Ok(Step::Validate);
        }
        if !status_indexes_left(conn).await?.is_empty() {
            return Ok(Step::DropStatusIndexes);
        }
        return Ok(Step::Done);
    }
    if layout.conversion.0.get("backfilled") != Some(&Value::Bool(true)) {
        return Ok(Step::Backfill);
    }
    for (name, _) in INDEXES {
        let valid = index_validity(conn, name).await?;
        if valid != Some(true) {
            return Ok(Step::Indexes);
        }
    }
    if unvalidated_checks(conn).await? {
        return Ok(Step::Validate);
    }
    let bounded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE convalidated \
         AND conname IN ('executions_legacy_bound', 'attempts_legacy_bound')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let cutoff = cutoff_of(&layout);
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await?;
    if bounded < 2 || cutoff.is_none_or(|c| c - now < CUTOFF_MARGIN) {
        return Ok(Step::Bound);
    }
    Ok(Step::Swap)
}

fn cutoff_of(layout: &Layout) -> Option<DateTime<Utc>> {
    layout
        .conversion
        .0
        .get("cutoff")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

async fn run_step(conn: &mut PgConnection, step: Step) -> Result<String, StoreError> {
    match step {
        Step::Backfill => backfill(conn).await,
        Step::Indexes => build_indexes(conn).await,
        Step::Validate => {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT conname::text FROM pg_constraint \
                 WHERE conrelid = 'executions'::regclass AND contype = 'c' \
                 AND NOT convalidated AND conname <> 'executions_legacy_bound'",
            )
            .fetch_all(&mut *conn)
            .await?;
            for name in &names {
                run(
                    conn,
                    format!("ALTER TABLE executions VALIDATE CONSTRAINT {name}"),
                )
                .await?;
            }
            Ok(format!("validated {}", names.join(", ")))
        }
        Step::Bound => bound(conn).await,
        Step::Swap => {
            let layout = layout(conn).await?;
            let Some(cutoff) = cutoff_of(&layout) else {
                return Ok("no cutoff yet".to_string());
            };
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query("SET LOCAL lock_timeout = '5s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT tickwork_swap_history($1)")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(format!(
                "the existing history is the first partition, before {cutoff}"
            ))
        }
        Step::StateIndexes => index_state(conn).await,
        Step::DropStatusIndexes => drop_status_indexes(conn).await,
        Step::Done => Ok(String::new()),
    }
}

/// Whether `executions` has a check not proved for the stored rows yet (the bound of the
/// history from before the conversion is proved by its own step).
async fn unvalidated_checks(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'executions'::regclass \
         AND contype = 'c' AND NOT convalidated \
         AND conname NOT IN ('executions_legacy_bound'))",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// A partition of `executions` and a state index it lacks, if any: (partition, index).
async fn unindexed_state(conn: &mut PgConnection) -> Result<Option<(String, String)>, StoreError> {
    let names: Vec<&str> = STATE_INDEXES.iter().map(|(name, _)| *name).collect();
    Ok(sqlx::query_as(
        "SELECT p.relname::text, n.name FROM pg_inherits h \
         JOIN pg_class p ON p.oid = h.inhrelid CROSS JOIN unnest($1::text[]) AS n(name) \
         WHERE h.inhparent = 'executions'::regclass AND NOT h.inhdetachpending \
           AND to_regclass(n.name) IS NOT NULL \
           AND NOT EXISTS ( \
               SELECT 1 FROM pg_inherits ih JOIN pg_index x ON x.indexrelid = ih.inhrelid \
               WHERE ih.inhparent = to_regclass(n.name) AND x.indrelid = p.oid) \
         ORDER BY 1, 2 LIMIT 1",
    )
    .bind(&names)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Builds one partition's missing state index concurrently (again, if an earlier build
/// was interrupted) and attaches it to the partitioned index.
async fn index_state(conn: &mut PgConnection) -> Result<String, StoreError> {
    let Some((partition, index)) = unindexed_state(conn).await? else {
        return Ok("every partition has its state indexes".to_string());
    };
    let Some((_, definition)) = STATE_INDEXES.iter().find(|(name, _)| *name == index) else {
        return Ok(format!("{index} is not a state index"));
    };
    let child = format!(
        "{partition}_{}",
        index.strip_prefix("executions_").unwrap_or(&index)
    );
    let valid = index_validity(conn, &child).await?;
    if valid == Some(false) {
        run(conn, format!("DROP INDEX CONCURRENTLY {child}")).await?;
    }
    if valid != Some(true) {
        run(
            conn,
            format!("CREATE INDEX CONCURRENTLY {child} ON {partition} {definition}"),
        )
        .await?;
    }
    run(
        conn,
        format!("ALTER INDEX {index} ATTACH PARTITION {child}"),
    )
    .await?;
    Ok(format!("built {child}"))
}

/// The indexes on status still there.
async fn status_indexes_left(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL ORDER BY n",
    )
    .bind(STATUS_INDEXES.as_slice())
    .fetch_all(&mut *conn)
    .await?)
}

/// Drops the indexes on status. Those of the partitioned table cannot be dropped
/// concurrently: a plain drop holds its lock for a moment, and gives up rather than queue
/// behind a long statement (the next step tries again).
async fn drop_status_indexes(conn: &mut PgConnection) -> Result<String, StoreError> {
    let names = status_indexes_left(conn).await?;
    for name in &names {
        if name.starts_with("executions_legacy_") {
            run(conn, format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")).await?;
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(format!("dropped {}", names.join(", ")))
}

/// Whether every partition has every state index (retention reads them).
pub(super) async fn state_indexed(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Ok(unindexed_state(conn).await?.is_none())
}

/// One batch of the backfill, in key order from where the last one stopped.
async fn backfill(conn: &mut PgConnection) -> Result<String, StoreError> {
    let layout = layout(conn).await?;
    let after = layout.conversion.0.get("backfill_after");
    let after_id = after
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .unwrap_or_default();
    let after_attempt = after
        .and_then(|a| a.get(1))
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(i32::MIN);
    let last: Option<(uuid::Uuid, i32, i64)> = sqlx::query_as(
        "WITH batch AS ( \
             SELECT execution_id, attempt FROM attempts \
             WHERE (execution_id, attempt) > ($1, $2) \
             ORDER BY execution_id, attempt LIMIT $3 \
         ), filled AS ( \
             UPDATE attempts a SET scheduled_at = COALESCE( \
                 (SELECT e.scheduled_at FROM executions e WHERE e.id = a.execution_id), \
                 a.started_at) \
             FROM batch b \
             WHERE a.execution_id = b.execution_id AND a.attempt = b.attempt \
               AND a.scheduled_at IS NULL \
             RETURNING 1 \
         ) \
         SELECT execution_id, attempt, (SELECT count(*) FROM filled) FROM batch \
         ORDER BY execution_id DESC, attempt DESC LIMIT 1",
    )
    .bind(after_id)
    .bind(after_attempt)
    .bind(BACKFILL_BATCH)
    .fetch_optional(&mut *conn)
    .await?;
    let progress = match last {
        Some((id, attempt, _)) => serde_json::json!({ "backfill_after": [id, attempt] }),
        None => serde_json::json!({ "backfilled": true }),
    };
    sqlx::query("UPDATE history_layout SET conversion = conversion || $1")
        .bind(sqlx::types::Json(&progress))
        .execute(&mut *conn)
        .await?;
    Ok(match last {
        Some((id, attempt, filled)) => {
            format!("filled {filled} attempts, up to ({id}, {attempt})")
        }
        None => "every attempt names its fire's time".to_string(),
    })
}

/// Whether index `name` is valid (`None`: there is none; `Some(false)`: a concurrent build
/// was interrupted).
async fn index_validity(conn: &mut PgConnection, name: &str) -> Result<Option<bool>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE c.relname = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

/// Builds each missing index concurrently; one left invalid by an interrupted build is
/// dropped and built again.
async fn build_indexes(conn: &mut PgConnection) -> Result<String, StoreError> {
    let mut built = Vec::new();
    for (name, definition) in INDEXES {
        let valid = index_validity(conn, name).await?;
        if valid == Some(true) {
            continue;
        }
        if valid == Some(false) {
            run(conn, format!("DROP INDEX CONCURRENTLY {name}")).await?;
        }
        let unique = if name.ends_with("_key") {
            "UNIQUE "
        } else {
            ""
        };
        run(
            conn,
            format!("CREATE {unique}INDEX CONCURRENTLY {name} {definition}"),
        )
        .await?;
        built.push(name);
    }
    Ok(format!("built {}", built.join(", ")))
}

/// Chooses the cutoff (again, if the last one is too close) and proves every stored fire
/// and attempt is due before it. Attempts written meanwhile by an earlier version without
/// their fire's time send the conversion back to the backfill.
async fn bound(conn: &mut PgConnection) -> Result<String, StoreError> {
    let layout = layout(conn).await?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await?;
    let cutoff = match cutoff_of(&layout) {
        Some(c) if c - now >= CUTOFF_MARGIN => c,
        _ => {
            run(
                conn,
                "ALTER TABLE executions DROP CONSTRAINT IF EXISTS executions_legacy_bound; \
                 ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_legacy_bound"
                    .to_string(),
            )
            .await?;
            let day = (now + chrono::TimeDelta::days(CUTOFF_AHEAD_DAYS)).date_naive();
            let cutoff = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            sqlx::query("UPDATE history_layout SET conversion = conversion || $1")
                .bind(sqlx::types::Json(
                    serde_json::json!({ "cutoff": cutoff.to_rfc3339() }),
                ))
                .execute(&mut *conn)
                .await?;
            // NOT VALID: rows written from now on are checked at once; the stored ones are
            // proved below without blocking writes.
            sqlx::query(&format!(
                "ALTER TABLE executions ADD CONSTRAINT executions_legacy_bound \
                 CHECK (scheduled_at < '{}') NOT VALID",
                cutoff.to_rfc3339()
            ))
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "ALTER TABLE attempts ADD CONSTRAINT attempts_legacy_bound \
                 CHECK (scheduled_at IS NOT NULL AND scheduled_at < '{}') NOT VALID",
                cutoff.to_rfc3339()
            ))
            .execute(&mut *conn)
            .await?;
            cutoff
        }
    };
    run(
        conn,
        "ALTER TABLE executions VALIDATE CONSTRAINT executions_legacy_bound".to_string(),
    )
    .await?;
    if let Err(error) = sqlx::Executor::execute(
        &mut *conn,
        "ALTER TABLE attempts VALIDATE CONSTRAINT attempts_legacy_bound",
    )
    .await
    {
        if error
            .as_database_error()
            .is_some_and(|e| e.code().as_deref() == Some("23514"))
        {
            run(
                conn,
                "UPDATE history_layout SET conversion = conversion - 'backfilled' - 'backfill_after'"
                    .to_string(),
            )
            .await?;
            return Ok(
                "attempts without their fire's time were written meanwhile; backfilling again"
                    .to_string(),
            );
        }
        return Err(error.into());
    }
    Ok(format!("every stored fire is due before {cutoff}"))
}
