//! The embedded store: jobs and history in one SQLite file, for `tickwork-local` on a
//! machine without PostgreSQL. Same rows, same conditional writes, same answers as the
//! PostgreSQL store; the conformance tests run against both.
//!
//! One process at a time: a lock file beside the database refuses a second. Inside the
//! process, writes go through one connection and every write transaction starts with
//! `BEGIN IMMEDIATE`, so they never race and never meet `SQLITE_BUSY`; reads use a pool of
//! read-only connections beside it (WAL mode: readers and the writer do not block each
//! other). The hot paths (claiming due jobs, starting fires, recording outcomes) write a
//! batch with a few multi-row statements: each statement is a hop to the connection's
//! thread, which is what costs most here. `synchronous = NORMAL` in WAL mode: a killed
//! process loses nothing it committed (a power cut may lose the last transactions).

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::rows::{
    bind_job, change_job, corrupt, first_uuid_at, may_requeue, read_status, AttemptRow,
    ClaimWrites, DeadRow, DeliveryRow, DueRow, ExecutionRow, JobRow, WaitingFires, CANCEL_WAITING,
    DUE_COLUMNS, EXECUTION_COLUMNS, EXPIRED_ERROR, HOLDS_ANY, REQUEUE_DEAD_LETTER, SOFT_DELETE_JOB,
    SUCCEEDED_ATTEMPT, WRITE_JOB,
};
use super::shared::on_sqlite;
use super::{
    Claimed, DueJob, FiredBatch, IdempotentInsert, JobChange, JobCursor, JobFilter, Planner,
    Reaped, Released, Requeued, SealedValues, Store, StoreError, TenantCounts, Unfinished,
};
use crate::model::{
    Attempt, Delivery, Execution, ExecutionStatus, ExecutionType, InvalidField, Job, Outcome,
    Recorded,
};

/// The embedded schema, in `migrations/sqlite/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Columns of a job as the API shows it, with its last finished run.
const JOB_COLUMNS: &str = "j.id, j.name, j.description, j.cron_expression, j.timezone, \
     j.http_method, j.http_url, j.http_headers, j.http_body, j.execution_type, j.max_retries, \
     j.timeout_seconds, j.is_active, j.next_run_at, j.created_at, j.updated_at, j.deleted_at, \
     j.misfire_policy, j.catch_up_limit, j.concurrency_policy, j.skipped_fires, \
     j.signing_secret, j.previous_signing_secret, j.previous_secret_expires_at, j.tenant, \
     j.starting_deadline_seconds, \
     (SELECT e.started_at FROM executions e WHERE e.job_id = j.id \
         AND e.status IN ('SUCCEEDED', 'FAILED') ORDER BY e.scheduled_at DESC LIMIT 1) \
         AS last_run_at, \
     (SELECT e.status FROM executions e WHERE e.job_id = j.id \
         AND e.status IN ('SUCCEEDED', 'FAILED') ORDER BY e.scheduled_at DESC LIMIT 1) \
         AS last_status";

/// Finished states: what retention may delete.
const FINISHED: &str = "('SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', 'EXPIRED')";

/// Whether fire `x` of job `j` is past its starting deadline at the instant bound right
/// after this text (close it with `)`): as in PostgreSQL, a fire with no attempt in this
/// round whose job's `starting_deadline_seconds` have passed since the later of its
/// scheduled time and when it was queued. Times are RFC 3339 text with one offset, so `MAX`
/// picks the later and `julianday` reads them (to well under a millisecond).
const PAST_DEADLINE_AT: &str = "COALESCE(x.attempt = x.attempt_base \
     AND j.starting_deadline_seconds IS NOT NULL \
     AND julianday(MAX(x.scheduled_at, x.queued_at)) \
         + j.starting_deadline_seconds / 86400.0 < julianday(";

/// Ends the fires of an `UPDATE executions` as EXPIRED, unsent, at the time bound right after
/// this text; the caller adds which.
const EXPIRE_FIRES_AT: &str = "UPDATE executions SET status = 'EXPIRED', started_at = NULL, \
     execution_type = (SELECT execution_type FROM jobs WHERE id = executions.job_id), \
     finished_at = ";

/// Most ids bound in one `IN (...)` list.
const IN_LIST_CHUNK: usize = 500;

/// Most rows written by one statement (at most 8 parameters each, well under SQLite's
/// limit of 32,766).
const ROWS_PER_STATEMENT: usize = 500;

/// Jobs and executions in one SQLite file, held by this process alone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) writer: SqlitePool,
    pub(super) reader: SqlitePool,
    path: PathBuf,
    /// Held open (and locked) for as long as any clone of the store lives.
    _lock: Arc<File>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `path`, after taking its lock file
    /// (`PATH.lock`): a second process on the same file gets [`StoreError::Locked`].
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let lock = lock(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options.create_if_missing(false).read_only(true));
        Ok(Self {
            writer,
            reader,
            path: path.to_path_buf(),
            _lock: Arc::new(lock),
        })
    }

    /// Applies pending migrations of the embedded schema.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only pool, for callers that look at rows (tests, benchmarks).
    pub fn pool(&self) -> &SqlitePool {
        &self.reader
    }

    /// Closes both pools (the lock goes with the last clone of the store).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Takes `PATH.lock` (an advisory lock the OS drops when the process dies, even by kill -9)
/// and writes this process id into it.
fn lock(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let open_failed = |source| StoreError::Open {
        path: lock_path.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(open_failed)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(open_failed)?;
            write!(file, "{}", std::process::id()).map_err(open_failed)?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(StoreError::Locked {
                path: path.display().to_string(),
                holder: if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
            })
        }
        Err(TryLockError::Error(source)) => Err(open_failed(source)),
    }
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// When a RETRYING outcome's next attempt is due: in whole milliseconds (the queue's unit),
/// so the promoter's check against it never refuses a retry it was handed on time.
fn next_attempt_at(o: &Outcome, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    o.retry_in
        .filter(|_| o.status == ExecutionStatus::Retrying)
        .map(|d| after(now, d))
        .map(|at| at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at))
}

fn elapsed_ms(from: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    from.map_or(0, |start| (now - start).num_milliseconds().max(0))
}

/// Appends `(?, ?, ...)` binding `ids`.
fn push_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[Uuid]) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    query.push(")");
}

/// Deletes a job's fires recorded ahead of time and not yet due, with their attempts.
async fn forget_fires_ahead(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    const AHEAD: &str = "SELECT id FROM executions \
         WHERE job_id = $1 AND status = 'QUEUED' AND scheduled_at > $2";
    sqlx::query(&format!(
        "DELETE FROM attempts WHERE execution_id IN ({AHEAD})"
    ))
    .bind(job_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let gone = sqlx::query(&format!("DELETE FROM executions WHERE id IN ({AHEAD})"))
        .bind(job_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(gone)
}

/// Appends `, error = ... WHERE id IN (ids)` to [`EXPIRE_FIRES_AT`] and its time.
fn expire_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[Uuid]) {
    query.push(format!(
        ", error = (SELECT {EXPIRED_ERROR} FROM jobs j WHERE j.id = executions.job_id) \
         WHERE status = 'QUEUED' AND id IN "
    ));
    push_ids(query, ids);
}

/// Ends a job's QUEUED and RETRYING fires as CANCELLED (deleting those recorded ahead).
async fn cancel_waiting_fires(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    forget_fires_ahead(tx, job_id, now).await?;
    let cancelled = sqlx::query(CANCEL_WAITING)
        .bind(job_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(cancelled)
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

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_sqlite::ping(&self.reader).await
    }

    async fn clock(&self) -> Result<DateTime<Utc>, StoreError> {
        // One process: its clock is the one every part reads.
        Ok(Utc::now())
    }

    async fn job_insert(&self, job: &Job) -> Result<(), StoreError> {
        bind_job!(sqlx::query(WRITE_JOB), job)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        let mut tx = self.write().await?;
        let claimed: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO job_idempotency_keys (key, job_id, fingerprint, created_at, tenant) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, key) DO NOTHING RETURNING job_id",
        )
        .bind(key)
        .bind(job.id)
        .bind(fingerprint)
        .bind(job.created_at)
        .bind(&job.tenant)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            let (job_id, fingerprint): (Uuid, String) = sqlx::query_as(
                "SELECT job_id, fingerprint FROM job_idempotency_keys \
                 WHERE key = $1 AND tenant = $2",
            )
            .bind(key)
            .bind(&job.tenant)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(IdempotentInsert::Existing {
                job_id,
                fingerprint,
            });
        }
        bind_job!(sqlx::query(WRITE_JOB), job)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(IdempotentInsert::Created)
    }

    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(Job::try_from).transpose()
    }

    async fn job_list(
        &self,
        filter: JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             WHERE ($1 IS NULL OR j.id < $1) \
               AND ($3 IS NULL OR j.is_active = $3) \
               AND ($4 OR j.deleted_at IS NULL) AND j.tenant = COALESCE($5, j.tenant) \
             ORDER BY j.id DESC LIMIT $2"
        );
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(cursor.map(|c| c.id))
            .bind(i64::from(limit))
            .bind(filter.is_active)
            .bind(filter.include_deleted)
            .bind(filter.tenant.as_deref())
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, InvalidField>>, StoreError> {
        let mut tx = self.write().await?;
        let now = Utc::now();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1");
        let Some(row) = sqlx::query_as::<_, JobRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let (job, waiting) = match change_job(Job::try_from(row)?, change, now) {
            Ok(changed) => changed,
            Err(invalid) => return Ok(Some(Err(invalid))),
        };
        bind_job!(sqlx::query(WRITE_JOB), &job)
            .execute(&mut *tx)
            .await?;
        match waiting {
            WaitingFires::Cancel => {
                cancel_waiting_fires(&mut tx, id, now).await?;
            }
            WaitingFires::ForgetAhead => {
                forget_fires_ahead(&mut tx, id, now).await?;
            }
            WaitingFires::Keep => {}
        }
        tx.commit().await?;
        Ok(Some(Ok(job)))
    }

    async fn job_reseal(
        &self,
        id: Uuid,
        before: &SealedValues,
        after: &SealedValues,
    ) -> Result<bool, StoreError> {
        on_sqlite::job_reseal(&self.writer, id, before, after).await
    }

    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let now = Utc::now();
        let found = sqlx::query(SOFT_DELETE_JOB)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if found {
            cancel_waiting_fires(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn execution_get(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        let mut attempts = Vec::new();
        for ids in execution_ids.chunks(IN_LIST_CHUNK) {
            let mut query = QueryBuilder::new(
                "SELECT execution_id, attempt, started_at, finished_at, duration_ms, \
                 http_status, error, response_body FROM attempts WHERE execution_id IN ",
            );
            push_ids(&mut query, ids);
            query
                .push(" UNION ALL ")
                .push(SUCCEEDED_ATTEMPT)
                .push(" e.id IN ");
            push_ids(&mut query, ids);
            query.push(" ORDER BY execution_id, attempt");
            let rows: Vec<AttemptRow> = query.build_query_as().fetch_all(&self.reader).await?;
            attempts.extend(rows.into_iter().map(Attempt::from));
        }
        attempts.sort_by_key(|a| (a.execution_id, a.attempt));
        Ok(attempts)
    }

    async fn execution_count_retrying(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'RETRYING'")
                .fetch_one(&self.reader)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn execution_list(
        &self,
        job_id: Uuid,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        on_sqlite::execution_list(&self.reader, job_id, before, limit).await
    }

    async fn job_fire_due(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT {DUE_COLUMNS} FROM jobs WHERE is_active AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2"
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
        let mut created = Vec::with_capacity(writes.fires.len());
        let rows: Vec<_> = writes.fires.iter().zip(&writes.held).collect();
        for fires in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, held) ",
            );
            insert.push_values(fires, |mut row, ((id, job_id, at), held)| {
                row.push_bind(*id)
                    .push_bind(*job_id)
                    .push_bind(*at)
                    .push("'QUEUED'")
                    .push_bind(now)
                    .push_bind(**held);
            });
            insert.push(
                " ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING id, scheduled_at, held",
            );
            let inserted: Vec<(Uuid, DateTime<Utc>, bool)> =
                insert.build_query_as().fetch_all(&mut *tx).await?;
            created.extend(inserted);
        }
        for jobs in writes.jobs.chunks(ROWS_PER_STATEMENT) {
            let mut update = QueryBuilder::new("WITH n(id, next_run_at, skipped) AS (");
            update.push_values(jobs, |mut row, (job_id, next_run_at, skipped)| {
                row.push_bind(*job_id)
                    .push_bind(*next_run_at)
                    .push_bind(*skipped);
            });
            update.push(
                ") UPDATE jobs SET next_run_at = n.next_run_at, \
                 skipped_fires = skipped_fires + n.skipped FROM n WHERE jobs.id = n.id",
            );
            update.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let (held, executions) = super::rows::split_held(created);
        Ok(FiredBatch {
            jobs: writes.jobs.len(),
            executions,
            held,
            skipped_fires: writes.skipped_fires,
        })
    }

    async fn execution_any_held(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(HOLDS_ANY)
            .fetch_one(&self.reader)
            .await?)
    }

    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError> {
        let mut tx = self.write().await?;
        let released: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE executions SET held = 0 WHERE id IN ( \
                 SELECT id FROM executions WHERE held AND status = 'QUEUED' \
                 ORDER BY scheduled_at, id LIMIT $1) \
             RETURNING id, scheduled_at",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Released {
            fires: released,
            expired: Vec::new(),
        })
    }

    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        on_sqlite::execution_list_stale_queued(
            &self.reader,
            queued_from,
            queued_before,
            due_by,
            limit,
        )
        .await
    }

    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        // Execution ids are UUID v7, so the oldest rows come first by id; inside one write
        // transaction both statements see the same rows.
        let oldest = format!(
            "SELECT id FROM executions WHERE id < $1 AND status IN {FINISHED} \
             ORDER BY id LIMIT $2"
        );
        let mut tx = self.write().await?;
        let cutoff = first_uuid_at(before);
        sqlx::query(&format!(
            "DELETE FROM attempts WHERE execution_id IN ({oldest})"
        ))
        .bind(cutoff)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(&format!("DELETE FROM executions WHERE id IN ({oldest})"))
            .bind(cutoff)
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn execution_requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.write().await?;
        let mut queued = Vec::new();
        for ids in ids.chunks(IN_LIST_CHUNK) {
            let mut query = QueryBuilder::new(
                "UPDATE executions SET \
                     status = CASE WHEN j.is_active THEN 'QUEUED' ELSE 'CANCELLED' END, \
                     queued_at = ",
            );
            query
                .push_bind(now)
                .push(
                    ", next_attempt_at = NULL, \
                     finished_at = CASE WHEN j.is_active THEN NULL ELSE ",
                )
                .push_bind(now)
                .push(
                    " END FROM jobs j WHERE j.id = executions.job_id \
                     AND executions.status = 'RETRYING' \
                     AND (executions.next_attempt_at IS NULL OR executions.next_attempt_at <= ",
                )
                .push_bind(now)
                .push(") AND executions.id IN ");
            push_ids(&mut query, ids);
            query.push(" RETURNING id, status");
            let rows: Vec<(Uuid, String)> = query.build_query_as().fetch_all(&mut *tx).await?;
            queued.extend(
                rows.into_iter()
                    .filter(|(_, status)| status == "QUEUED")
                    .map(|(id, _)| id),
            );
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_sqlite::execution_list_overdue_retries(&self.reader, due_before, limit).await
    }

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
            // A first attempt past its job's starting deadline is EXPIRED; else a FORBID
            // job's fire with an earlier fire unfinished is SKIPPED (EXPIRED fires never ran,
            // so the check looks past them as past SKIPPED ones). The write transaction holds
            // the database, so this decision and the claim below see the same rows: an
            // earlier fire in this batch is still QUEUED here, so two fires of one job never
            // both start.
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
            push_ids(&mut decide, chunk);
            let decided: Vec<(Uuid, bool, bool)> =
                decide.build_query_as().fetch_all(&mut *tx).await?;
            let (expired, decided): (Vec<_>, Vec<_>) = decided.into_iter().partition(|d| d.2);
            let (skipped, run): (Vec<_>, Vec<_>) = decided.into_iter().partition(|d| d.1);
            let expired: Vec<Uuid> = expired.into_iter().map(|d| d.0).collect();
            let skipped: Vec<Uuid> = skipped.into_iter().map(|d| d.0).collect();
            let run: Vec<Uuid> = run.into_iter().map(|d| d.0).collect();
            if !expired.is_empty() {
                let mut expire = QueryBuilder::new(EXPIRE_FIRES_AT);
                expire.push_bind(now);
                expire_ids(&mut expire, &expired);
                expire.build().execute(&mut *tx).await?;
                claimed.expired.extend(expired);
            }
            if !skipped.is_empty() {
                let mut skip = QueryBuilder::new(
                    "UPDATE executions SET status = 'SKIPPED', started_at = NULL, \
                     error = 'skipped: an earlier fire of this job was unfinished (concurrencyPolicy FORBID)', \
                     execution_type = (SELECT execution_type FROM jobs WHERE id = executions.job_id), \
                     finished_at = ",
                );
                skip.push_bind(now).push(" WHERE id IN ");
                push_ids(&mut skip, &skipped);
                skip.build().execute(&mut *tx).await?;
                claimed.skipped.extend(skipped);
            }
            if run.is_empty() {
                continue;
            }
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
            push_ids(&mut start, &run);
            start.build().execute(&mut *tx).await?;
            let mut read = QueryBuilder::new(
                "SELECT e.id, e.job_id, e.scheduled_at, e.attempt, e.worker_id, e.crashes, e.handbacks, \
                 e.attempt_base, j.execution_type, j.max_retries, j.http_method, j.http_url, \
                 j.http_headers, j.http_body, j.timeout_seconds, j.signing_secret, \
                 CASE WHEN j.previous_secret_expires_at > ",
            );
            read.push_bind(now).push(
                " THEN j.previous_signing_secret END AS previous_signing_secret, \
                 false AS overlap, false AS expired, 0 AS wait_ms \
                 FROM executions e JOIN jobs j ON j.id = e.job_id WHERE e.id IN ",
            );
            push_ids(&mut read, &run);
            let rows: Vec<DeliveryRow> = read.build_query_as().fetch_all(&mut *tx).await?;
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
                        .execute(&mut *tx)
                        .await?;
                        claimed.malformed.push(id);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now();
        let cutoff = now - TimeDelta::seconds(1);
        // As in PostgreSQL: QUEUED rows through their two partial indexes, from a second
        // before now (no deadline is shorter), those pushed to the queue by when they were
        // queued and those held back by their time, each joined to its job by key.
        let mut expire = QueryBuilder::new(EXPIRE_FIRES_AT);
        expire.push_bind(now).push(format!(
            ", error = (SELECT {EXPIRED_ERROR} FROM jobs j WHERE j.id = executions.job_id) \
             WHERE status = 'QUEUED' AND id IN (SELECT id FROM ( \
                 SELECT id FROM (SELECT x.id FROM executions x JOIN jobs j ON j.id = x.job_id \
                     WHERE x.status = 'QUEUED' AND NOT x.held AND x.queued_at < "
        ));
        expire
            .push_bind(cutoff)
            .push(" AND ")
            .push(PAST_DEADLINE_AT)
            .push_bind(now)
            .push("), 0) ORDER BY x.queued_at LIMIT ")
            .push_bind(i64::from(limit))
            .push(
                ") UNION ALL \
                 SELECT id FROM (SELECT x.id FROM executions x JOIN jobs j ON j.id = x.job_id \
                     WHERE x.status = 'QUEUED' AND x.held AND x.scheduled_at < ",
            )
            .push_bind(cutoff)
            .push(" AND ")
            .push(PAST_DEADLINE_AT)
            .push_bind(now)
            .push("), 0) ORDER BY x.scheduled_at, x.id LIMIT ")
            .push_bind(i64::from(limit))
            .push(")) LIMIT ")
            .push_bind(i64::from(limit))
            .push(") RETURNING id");
        let ids: Vec<Uuid> = expire.build_query_scalar().fetch_all(&self.writer).await?;
        Ok(ids)
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

    async fn job_trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError> {
        let now = Utc::now();
        let at = now
            .duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now);
        let sql = format!(
            "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, kind) \
             SELECT $1, j.id, $3, 'QUEUED', $4, 'MANUAL' \
             FROM jobs j WHERE j.id = $2 AND j.deleted_at IS NULL \
             ON CONFLICT (job_id, scheduled_at) DO NOTHING \
             RETURNING {EXECUTION_COLUMNS}"
        );
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(super::fire_id(at))
            .bind(job_id)
            .bind(at)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn dead_letter_list(
        &self,
        tenant: Option<&str>,
        job_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED') \
               AND ($1 IS NULL OR job_id = $1) AND ($2 IS NULL OR id < $2) \
               AND job_id IN (SELECT id FROM jobs WHERE tenant = COALESCE($4, tenant)) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ExecutionRow> = sqlx::query_as(&sql)
            .bind(job_id)
            .bind(before)
            .bind(i64::from(limit))
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<DeadRow> = sqlx::query_as(
            "SELECT e.status, COALESCE(e.execution_type, j.execution_type) AS execution_type, \
                 j.deleted_at IS NOT NULL AS job_deleted \
             FROM executions e JOIN jobs j ON j.id = e.job_id WHERE e.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Requeued::NoExecution);
        };
        if let Some(refused) = may_requeue(&row, force)? {
            return Ok(refused);
        }
        sqlx::query(REQUEUE_DEAD_LETTER)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row: ExecutionRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Requeued::Queued(Execution::try_from(row)?))
    }

    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        on_sqlite::tenant_counts(&self.reader, tenant).await
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
                 next_attempt_at, response_body) AS (",
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
                    .push_bind(o.response_body.clone());
            });
            done.push(
                ") UPDATE executions SET status = o.status, duration_ms = o.duration_ms, \
                 http_status = o.http_status, error = o.error, response_body = o.response_body, \
                 finished_at = o.finished_at, next_attempt_at = o.next_attempt_at \
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
