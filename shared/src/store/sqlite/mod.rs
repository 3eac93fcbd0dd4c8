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

mod deliveries;
mod fires;
mod history;
mod jobs;
mod rollups;

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

use super::shared::on_sqlite;
use super::{Store, StoreError};
use crate::model::{ExecutionStatus, Outcome};

/// The embedded schema, in `migrations/sqlite/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

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

/// Appends `(?, ?, ...)` binding `ids`.
fn push_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[Uuid]) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    query.push(")");
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
}
