//! The PostgreSQL store. Queries are checked at run time, so the workspace builds with no
//! database reachable; the integration tests run every one of them.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::Connection;
use uuid::Uuid;

use super::fire_id::{fire_id, named_time, FireTimes};
use super::partitions::{self, Conversion, KnownDays};
use super::rows::{
    bind_job, change_job, first_uuid_at, may_requeue, millis, read_status, taken_back, AttemptRow,
    ClaimWrites, DeadRow, DeliveryRow, DueRow, ExecutionRow, JobRow, WaitingFires, CANCEL_WAITING,
    DUE_COLUMNS, EXECUTION_COLUMNS, EXPIRED_ERROR, HOLDS_ANY, REQUEUE_DEAD_LETTER, SOFT_DELETE_JOB,
    SUCCEEDED_ATTEMPT, WRITE_JOB,
};
use super::shared::on_postgres;
use super::{
    Claimed, DueJob, FiredBatch, HistoryKept, IdempotentInsert, JobChange, JobCursor, JobFilter,
    Planner, Reaped, Released, Requeued, SealedValues, Store, StoreError, TenantCounts, Unfinished,
};
use crate::config::{ConfigError, DatabaseSettings};
use crate::model::{Attempt, Delivery, Execution, InvalidField, Job, Outcome, Recorded};

/// The migrations in `migrations/`, compiled into every binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds connection options from `DATABASE_URL`, or else from the `DB_*` parts.
pub fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, ConfigError> {
    if let Some(url) = &settings.url {
        let url = url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "is not a postgres URL; expected postgres://user:password@host:port/database",
            ));
        }
        return PgConnectOptions::from_str(url).map_err(|e| {
            ConfigError::new("DATABASE_URL", format!("is not a valid postgres URL: {e}"))
        });
    }
    let sslmode = PgSslMode::from_str(&settings.sslmode)
        .map_err(|e| ConfigError::new("DB_SSLMODE", format!("is not valid: {e}")))?;
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&settings.host)
        .port(settings.port)
        .username(&settings.user)
        .database(&settings.name)
        .ssl_mode(sslmode);
    if !settings.password.expose().is_empty() {
        options = options.password(settings.password.expose());
    }
    Ok(options)
}

/// Jobs and executions in PostgreSQL, through one connection pool per process, and one
/// connection of its own for a worker's lease renewals.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
    /// One connection, opened on first use (only workers renew leases), so a renewal never
    /// waits for a connection behind claims and outcomes.
    leases: PgPool,
    /// When ids started naming their fire's time (read once): see [`FireTimes`].
    named_from: Arc<OnceLock<Option<DateTime<Utc>>>>,
    /// Days whose history partitions this process has seen to.
    days: KnownDays,
    /// The history is partitioned (once seen, it stays so).
    partitioned: Arc<AtomicBool>,
    /// When the history was last seen not partitioned.
    unpartitioned_at: Arc<Mutex<Option<std::time::Instant>>>,
    /// When no job was last seen to set `startingDeadlineSeconds`.
    no_deadlines_at: Arc<Mutex<Option<std::time::Instant>>>,
}

impl PgStore {
    /// A store over a pool that connects on first use and reconnects after a restart.
    ///
    /// Every statement is planned for its parameters and the tables as they are: a plan
    /// cached while a day's partition was nearly empty would otherwise be kept all day (on a
    /// server without autovacuum nothing tells PostgreSQL the partition grew), and a
    /// statement over a few thousand fires would read the whole day.
    pub fn connect_lazy(options: PgConnectOptions, max_connections: u32) -> Self {
        let options = options.options([
            ("plan_cache_mode", "force_custom_plan"),
            ("random_page_cost", "1.1"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Self::from_pool(pool)
    }

    /// A store over an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        let leases = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        Self {
            pool,
            leases,
            named_from: Arc::default(),
            days: KnownDays::default(),
            partitioned: Arc::default(),
            unpartitioned_at: Arc::default(),
            no_deadlines_at: Arc::default(),
        }
    }

    /// The pool, for callers that manage databases (tests, benchmarks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations. The migrator holds an advisory lock, so processes that
    /// start together apply each migration once.
    ///
    /// Uses a connection of its own, so a database that cannot be reached is reported
    /// with the real cause rather than as a pool timeout.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let options = self.pool.connect_options();
        let mut conn = sqlx::postgres::PgConnection::connect_with(&options).await?;
        MIGRATOR.run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Converts an unpartitioned history to time partitions, online, step by step, until
    /// it is done or `deadline` passes (see [`partitions`]); run again, it goes on.
    pub async fn convert_history(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Conversion, StoreError> {
        let conversion = partitions::convert(&self.pool, deadline).await?;
        if conversion.done {
            self.partitioned.store(true, Ordering::Relaxed);
        }
        Ok(conversion)
    }

    /// Whether the history is kept in time partitions. Once seen, it stays so; not seen,
    /// it is asked again after ten seconds (the conversion may have finished since), so the
    /// claims and outcomes of an unconverted history make no extra round trip each.
    pub async fn history_partitioned(&self) -> Result<bool, StoreError> {
        if self.partitioned.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let checked = self.unpartitioned_at.lock().ok().and_then(|at| *at);
        if checked.is_some_and(|at| at.elapsed() < LAYOUT_TRUSTED_FOR) {
            return Ok(false);
        }
        let mut conn = self.pool.acquire().await?;
        let partitioned = partitions::layout(&mut conn).await?.partitioned;
        self.partitioned.store(partitioned, Ordering::Relaxed);
        if let Ok(mut at) = self.unpartitioned_at.lock() {
            *at = (!partitioned).then(std::time::Instant::now);
        }
        Ok(partitioned)
    }

    /// The tables holding fires of `times`: the partitions of their day when the history is
    /// partitioned and they are all of one UTC day, else the partitioned tables themselves.
    async fn tables(&self, times: &FireTimes) -> Result<Tables, StoreError> {
        Ok(match times.single_day() {
            Some(day) if self.history_partitioned().await? => Tables::of_day(day),
            _ => Tables::whole(),
        })
    }

    /// Runs one claim statement over `table`.
    async fn claim(
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
    async fn left_to_whole_history(
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

    /// The scheduled times the fires of `ids` can have.
    async fn fire_times(&self, ids: &[Uuid]) -> Result<FireTimes, StoreError> {
        let named_from = match self.named_from.get() {
            Some(from) => *from,
            None => {
                let mut conn = self.pool.acquire().await?;
                let from = partitions::layout(&mut conn).await?.fire_named_ids_from;
                *self.named_from.get_or_init(|| from)
            }
        };
        Ok(FireTimes::of(ids, named_from))
    }
}

/// How long a store trusts that the history is not partitioned yet.
const LAYOUT_TRUSTED_FOR: Duration = Duration::from_secs(10);

/// How long the expiry pass trusts that no job sets a deadline.
const NO_DEADLINES_FOR: Duration = Duration::from_secs(10);

/// Columns of a job as the API shows it, with its last finished run.
const JOB_COLUMNS: &str = "j.id, j.name, j.description, j.cron_expression, j.timezone, \
     j.http_method, j.http_url, j.http_headers, j.http_body, j.execution_type, j.max_retries, \
     j.timeout_seconds, j.is_active, j.next_run_at, j.created_at, j.updated_at, j.deleted_at, \
     j.misfire_policy, j.catch_up_limit, j.concurrency_policy, j.skipped_fires, \
     j.signing_secret, j.previous_signing_secret, j.previous_secret_expires_at, j.tenant, \
     j.starting_deadline_seconds, l.started_at AS last_run_at, l.status AS last_status";

/// The last finished fire of job `j`, read from the history instead of being written on
/// every outcome, so workers never lock job rows the tick is claiming.
const LAST_RUN_JOIN: &str = "LEFT JOIN LATERAL ( \
         SELECT e.started_at, e.status FROM executions e \
         WHERE e.job_id = j.id AND e.status IN ('SUCCEEDED', 'FAILED') \
         ORDER BY e.scheduled_at DESC LIMIT 1 \
     ) l ON true";

/// Whether fire `x` of job `j` is past its starting deadline at the database clock: it has
/// made no attempt in this round (a retry, a fire taken back from a worker and a hand-back
/// have), and its job's `starting_deadline_seconds` have passed since the later of its
/// scheduled time and when it was queued (so a fire the tick records late, catching up,
/// gets its whole deadline).
const PAST_DEADLINE: &str = "(x.attempt = x.attempt_base \
     AND j.starting_deadline_seconds IS NOT NULL \
     AND GREATEST(x.scheduled_at, x.queued_at) \
         + j.starting_deadline_seconds * interval '1 second' < clock_timestamp())";

/// Writes every column of a job (see [`WRITE_JOB`]).
async fn write_job<'e>(executor: impl sqlx::PgExecutor<'e>, job: &Job) -> Result<(), StoreError> {
    bind_job!(sqlx::query(WRITE_JOB), job)
        .execute(executor)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_postgres::ping(&self.pool).await
    }

    async fn clock(&self) -> Result<DateTime<Utc>, StoreError> {
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.pool)
            .await?;
        Ok(now)
    }

    async fn job_insert(&self, job: &Job) -> Result<(), StoreError> {
        write_job(&self.pool, job).await
    }

    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A second create with the key waits here for the first to commit, then sees it.
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
        write_job(&mut *tx, job).await?;
        tx.commit().await?;
        Ok(IdempotentInsert::Created)
    }

    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} WHERE j.id = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
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
            "SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} \
             WHERE ($1::timestamptz IS NULL OR j.id < $2) \
               AND ($4::boolean IS NULL OR j.is_active = $4) \
               AND ($5 OR j.deleted_at IS NULL) AND j.tenant = COALESCE($6, j.tenant) \
             ORDER BY j.id DESC LIMIT $3"
        );
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(cursor.map(|c| c.created_at))
            .bind(cursor.map(|c| c.id))
            .bind(i64::from(limit))
            .bind(filter.is_active)
            .bind(filter.include_deleted)
            .bind(filter.tenant.as_deref())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, InvalidField>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j {LAST_RUN_JOIN} WHERE j.id = $1 FOR UPDATE OF j"
        );
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
        write_job(&mut *tx, &job).await?;
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
        on_postgres::job_reseal(&self.pool, id, before, after).await
    }

    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
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
        let times = self.fire_times(&[id]).await?;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE id = $1 AND scheduled_at >= $2 AND scheduled_at < $3"
        );
        let row: Option<ExecutionRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(times.from)
            .bind(times.until)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError> {
        if execution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let times = self.fire_times(execution_ids).await?;
        let rows: Vec<AttemptRow> = sqlx::query_as(&format!(
            "SELECT execution_id, attempt, started_at, finished_at, duration_ms, http_status, \
             error, response_body FROM attempts WHERE execution_id = ANY($1) \
             AND scheduled_at >= $2 AND scheduled_at < $3 \
             UNION ALL {SUCCEEDED_ATTEMPT} e.id = ANY($1) \
             AND e.scheduled_at >= $2 AND e.scheduled_at < $3 \
             ORDER BY execution_id, attempt"
        ))
        .bind(execution_ids)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }

    async fn execution_count_retrying(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions WHERE finished_at IS NULL AND status = 'RETRYING'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn execution_list(
        &self,
        job_id: Uuid,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        on_postgres::execution_list(&self.pool, job_id, before, limit).await
    }

    async fn job_fire_due(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError> {
        let mut tx = self.pool.begin().await?;
        // NO KEY UPDATE: enough to keep other ticks off the row, without blocking the
        // key-share locks that inserting executions takes on it.
        let sql = format!(
            "SELECT {DUE_COLUMNS} FROM jobs WHERE is_active AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"
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
        let exec_ids: Vec<Uuid> = writes.fires.iter().map(|f| f.0).collect();
        let exec_jobs: Vec<Uuid> = writes.fires.iter().map(|f| f.1).collect();
        let exec_times: Vec<DateTime<Utc>> = writes.fires.iter().map(|f| f.2).collect();
        let job_ids: Vec<Uuid> = writes.jobs.iter().map(|j| j.0).collect();
        let next_runs: Vec<Option<DateTime<Utc>>> = writes.jobs.iter().map(|j| j.1).collect();
        let skipped_per_job: Vec<i64> = writes.jobs.iter().map(|j| j.2).collect();

        // The partitions of the fires' days, the first time this process writes to each.
        let days = self.days.unknown(&exec_times);
        partitions::ensure_days(&mut tx, &days).await?;
        let created: Vec<(Uuid, DateTime<Utc>, bool)> = if exec_ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, held) \
                 SELECT f.id, f.job_id, f.scheduled_at, 'QUEUED', $4, f.held \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $5::bool[]) \
                     AS f(id, job_id, scheduled_at, held) \
                 ON CONFLICT ON CONSTRAINT executions_one_per_fire DO NOTHING \
                 RETURNING id, scheduled_at, held",
            )
            .bind(&exec_ids)
            .bind(&exec_jobs)
            .bind(&exec_times)
            .bind(now)
            .bind(&writes.held)
            .fetch_all(&mut *tx)
            .await
            .inspect_err(|e| {
                if partitions::is_missing_partition(e) {
                    self.days.forget();
                }
            })?
        };

        sqlx::query(
            "UPDATE jobs SET next_run_at = n.next_run_at, skipped_fires = skipped_fires + n.skipped \
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::bigint[]) AS n(id, next_run_at, skipped) \
             WHERE jobs.id = n.id",
        )
        .bind(&job_ids)
        .bind(&next_runs)
        .bind(&skipped_per_job)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.days.learn(&days);

        let (held, executions) = super::rows::split_held(created);
        Ok(FiredBatch {
            jobs: job_ids.len(),
            executions,
            held,
            skipped_fires: writes.skipped_fires,
        })
    }

    async fn execution_any_held(&self) -> Result<bool, StoreError> {
        if !self.history_partitioned().await? {
            return Ok(sqlx::query_scalar(HOLDS_ANY).fetch_one(&self.pool).await?);
        }
        Ok(sqlx::query_scalar("SELECT tickwork_holds_any()")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError> {
        // Under a backlog held fires wait longer than a deadline: those past theirs end
        // here, in bulk, rather than each going through the queue to a claim that expires it.
        let sql = format!(
            "UPDATE executions x SET held = false, \
                 status = CASE WHEN {PAST_DEADLINE} THEN 'EXPIRED' ELSE x.status END, \
                 finished_at = CASE WHEN {PAST_DEADLINE} THEN clock_timestamp() END, \
                 error = CASE WHEN {PAST_DEADLINE} THEN {EXPIRED_ERROR} END, \
                 execution_type = CASE WHEN {PAST_DEADLINE} THEN j.execution_type \
                     ELSE x.execution_type END \
             FROM ( \
                 SELECT id, scheduled_at FROM executions WHERE held AND status = 'QUEUED' \
                 ORDER BY scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) h, jobs j \
             WHERE x.id = h.id AND x.scheduled_at = h.scheduled_at AND j.id = x.job_id \
             RETURNING x.id, x.scheduled_at, x.status = 'EXPIRED'"
        );
        let rows: Vec<(Uuid, DateTime<Utc>, bool)> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut released = Released::default();
        for (id, at, expired) in rows {
            if expired {
                released.expired.push(id);
            } else {
                released.fires.push((id, at));
            }
        }
        Ok(released)
    }

    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        on_postgres::execution_list_stale_queued(
            &self.pool,
            queued_from,
            queued_before,
            due_by,
            limit,
        )
        .await
    }

    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        if self.history_partitioned().await? {
            return Ok(0);
        }
        // Execution ids are UUID v7: ordered by creation time, so the primary key serves
        // "created before" and the deletion walks the oldest rows first.
        let deleted: i64 = sqlx::query_scalar(
            "WITH gone AS ( \
                 DELETE FROM executions WHERE id IN ( \
                     SELECT id FROM executions WHERE id < $1 \
                     AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', \
                         'EXPIRED') \
                     ORDER BY id LIMIT $2) \
                 RETURNING id), \
             gone_attempts AS ( \
                 DELETE FROM attempts WHERE execution_id IN (SELECT id FROM gone)) \
             SELECT count(*) FROM gone",
        )
        .bind(first_uuid_at(before))
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn history_keep(&self, before: Option<DateTime<Utc>>) -> Result<HistoryKept, StoreError> {
        partitions::keep_history(&self.pool, before).await
    }

    async fn execution_requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let times = self.fire_times(ids).await?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "UPDATE executions e SET \
                 status = CASE WHEN j.is_active THEN 'QUEUED' ELSE 'CANCELLED' END, \
                 queued_at = $2, next_attempt_at = NULL, \
                 finished_at = CASE WHEN j.is_active THEN NULL ELSE $2 END \
             FROM jobs j \
             WHERE e.id = ANY($1) AND e.scheduled_at >= $3 AND e.scheduled_at < $4 \
                 AND e.status = 'RETRYING' AND j.id = e.job_id \
                 AND (e.next_attempt_at IS NULL \
                     OR date_trunc('milliseconds', e.next_attempt_at) <= $2) \
             RETURNING e.id, e.status",
        )
        .bind(ids)
        .bind(now)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, status)| status == "QUEUED")
            .map(|(id, _)| id)
            .collect())
    }

    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_postgres::execution_list_overdue_retries(&self.pool, due_before, limit).await
    }

    async fn execution_start(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError> {
        if ids.is_empty() {
            return Ok(Claimed::default());
        }
        // SKIP LOCKED: when two workers hold the same id, one takes it and the other moves
        // on. A FORBID job's fire with an earlier fire unfinished is SKIPPED here, at the
        // moment it would be sent: an earlier fire claimed concurrently is at least QUEUED in
        // this statement's snapshot, so two fires of one job never both start. A first
        // attempt past its job's starting deadline is EXPIRED instead, whatever its overlap
        // (EXPIRED fires never ran, so the overlap check looks past them as past SKIPPED
        // ones). The worker's row is share-locked and must not be dead: a reaper declaring
        // it dead waits for this claim (or this claim finds it dead and takes nothing), so
        // no fire is ever claimed for a worker whose fires were already taken back. A fire
        // left unsent keeps the worker it had (none, if never claimed), so the rows come
        // back naming the claiming worker: only the RUNNING ones are delivered.
        // Each statement names the range of the fires' times. Fires of one day (nearly
        // always) are claimed from that day's partition by name: a statement over the
        // partitioned table would lock every partition and each of its indexes, more than
        // PostgreSQL's fast per-session locks hold. Fires of FORBID jobs are left to a second
        // statement over the whole history, which their overlap check reads.
        let times = self.fire_times(ids).await?;
        let tables = self.tables(&times).await?;
        let mut over_a_day = !whole_history(&tables.executions);
        let mut rows: Vec<DeliveryRow> = match self
            .claim(ids, worker, &times, &tables.executions, Claim::AllButForbid)
            .await
        {
            Err(e) if partitions::is_missing_table(&e) => {
                over_a_day = false;
                self.claim(ids, worker, &times, "executions", Claim::AllButForbid)
                    .await?
            }
            other => other?,
        };
        // Left to the second statement: fires the first deferred (over the whole history),
        // or, over a day, those it did not return that are FORBID jobs' fires still QUEUED
        // or not in the day's partition at all.
        let deferred: Vec<Uuid> = if over_a_day {
            let returned: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
            let left: Vec<Uuid> = ids
                .iter()
                .filter(|id| !returned.contains(id))
                .copied()
                .collect();
            self.left_to_whole_history(&left, &tables.executions)
                .await?
        } else {
            rows.iter().filter(|r| r.deferred).map(|r| r.id).collect()
        };
        rows.retain(|r| !r.deferred);
        if !deferred.is_empty() {
            let times = self.fire_times(&deferred).await?;
            rows.extend(
                self.claim(&deferred, worker, &times, "executions", Claim::Forbid)
                    .await?,
            );
        }
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

    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        // Nearly always no job sets a deadline: then no fire is read at all (the statement
        // below walks the waiting fires, a backlog's worth under overload), and the jobs are
        // asked again after ten seconds. A claim checks each fire's deadline itself, so a
        // deadline set meanwhile is never passed over; this pass only ends a backlog early.
        let checked = self.no_deadlines_at.lock().ok().and_then(|at| *at);
        if checked.is_some_and(|at| at.elapsed() < NO_DEADLINES_FOR) {
            return Ok(Vec::new());
        }
        // The shortest deadline any job sets: a fire queued more recently than that cannot
        // be past its deadline, so the read below looks only at fires queued before it.
        let shortest: Option<i32> = sqlx::query_scalar(
            "SELECT min(starting_deadline_seconds) FROM jobs \
             WHERE starting_deadline_seconds IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        if let Ok(mut at) = self.no_deadlines_at.lock() {
            *at = shortest.is_none().then(std::time::Instant::now);
        }
        let Some(shortest) = shortest else {
            return Ok(Vec::new());
        };
        // First the fires past their deadline, read without locks: QUEUED rows through
        // their two partial indexes, those pushed to the queue by when they were queued,
        // then those held back while the queue was full by their time, oldest first, each
        // joined to its job by key. Under a backlog this read is long; a claim must not
        // wait for it.
        let sql = format!(
            "WITH ready AS ( \
                 SELECT x.id, x.scheduled_at FROM executions x JOIN jobs j ON j.id = x.job_id \
                 WHERE x.finished_at IS NULL AND x.status = 'QUEUED' AND NOT x.held \
                     AND x.queued_at < (SELECT clock_timestamp()) - $2 * interval '1 second' \
                     AND {PAST_DEADLINE} \
                 ORDER BY x.queued_at LIMIT $1 \
             ), held AS ( \
                 SELECT x.id, x.scheduled_at FROM executions x JOIN jobs j ON j.id = x.job_id \
                 WHERE x.status = 'QUEUED' AND x.held \
                     AND x.scheduled_at < (SELECT clock_timestamp()) - $2 * interval '1 second' \
                     AND {PAST_DEADLINE} \
                 ORDER BY x.scheduled_at, x.id LIMIT (SELECT $1 - count(*) FROM ready) \
             ) \
             SELECT id, scheduled_at FROM ready UNION ALL SELECT id, scheduled_at FROM held"
        );
        let due: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .bind(shortest)
            .fetch_all(&self.pool)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // Then each, by its whole key, if it is still QUEUED and past its deadline; a fire
        // a claim or a release holds is passed over (SKIP LOCKED), so this statement is
        // short and waits for nothing.
        let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = due.into_iter().unzip();
        let sql = format!(
            "WITH due AS ( \
                 SELECT e.id, e.scheduled_at FROM executions e \
                 JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS k(id, scheduled_at) \
                     ON e.id = k.id AND e.scheduled_at = k.scheduled_at \
                 WHERE e.status = 'QUEUED' \
                 FOR NO KEY UPDATE OF e SKIP LOCKED \
             ) \
             UPDATE executions x SET status = 'EXPIRED', started_at = NULL, \
                 finished_at = clock_timestamp(), error = {EXPIRED_ERROR}, \
                 execution_type = j.execution_type, held = false \
             FROM due, jobs j \
             WHERE x.id = due.id AND x.scheduled_at = due.scheduled_at \
                 AND j.id = x.job_id AND x.status = 'QUEUED' AND {PAST_DEADLINE} \
             RETURNING x.id"
        );
        let expired = sqlx::query_scalar(&sql)
            .bind(&ids)
            .bind(&times)
            .fetch_all(&self.pool)
            .await?;
        Ok(expired)
    }

    async fn worker_register(&self, lease: Duration) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO workers (id, lease_expires_at) \
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond')",
        )
        .bind(id)
        .bind(millis(lease))
        .execute(&self.leases)
        .await?;
        Ok(id)
    }

    async fn worker_renew(&self, worker: Uuid, lease: Duration) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE workers SET lease_expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
             WHERE id = $1 AND NOT dead",
        )
        .bind(worker)
        .bind(millis(lease))
        .execute(&self.leases)
        .await?
        .rows_affected();
        Ok(renewed > 0)
    }

    async fn worker_retire(&self, worker: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE workers SET dead = true, lease_expires_at = clock_timestamp() WHERE id = $1",
        )
        .bind(worker)
        .execute(&self.leases)
        .await?;
        Ok(())
    }

    async fn execution_reap_expired(
        &self,
        crash_limit: u32,
        limit: u32,
    ) -> Result<Vec<Reaped>, StoreError> {
        // First its own statement, so the next one sees every claim committed before it:
        // a worker is declared dead only while no claim of its holds its row (SKIP LOCKED),
        // and a claim that comes after finds it dead.
        sqlx::query(
            "UPDATE workers SET dead = true WHERE id IN ( \
                 SELECT id FROM workers WHERE NOT dead AND lease_expires_at < clock_timestamp() \
                 FOR UPDATE SKIP LOCKED)",
        )
        .execute(&self.pool)
        .await?;
        // Nearly always none: then the executions are not read at all. With some, the
        // partial index by worker is probed for those workers only (a scan of the whole index
        // would walk the dead entries of every fire that has finished since the last vacuum).
        let dead: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM workers WHERE dead")
            .fetch_all(&self.pool)
            .await?;
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH expired AS ( \
                 SELECT id, scheduled_at FROM executions \
                 WHERE finished_at IS NULL AND status = 'RUNNING' AND worker_id = ANY($3) \
                 ORDER BY id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED \
             ), reaped AS ( \
                 UPDATE executions e SET \
                     crashes = e.crashes + 1, \
                     status = CASE \
                         WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' THEN 'ABANDONED' \
                         WHEN e.crashes + 1 >= $1 THEN 'FAILED' \
                         ELSE 'QUEUED' END, \
                     queued_at = clock_timestamp(), \
                     finished_at = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         OR e.crashes + 1 >= $1 \
                         THEN clock_timestamp() END, \
                     http_status = NULL, \
                     error = CASE \
                         WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' THEN \
                             'worker lost its lease mid-request (crashed or stalled); outcome unknown, not retried (AT_MOST_ONCE)' \
                         WHEN e.crashes + 1 >= $1 THEN \
                             'worker lost its lease mid-request ' || (e.crashes + 1) || ' times (CRASH_LIMIT); giving up' \
                         ELSE 'worker lost its lease mid-request (crashed or stalled); running it again' END \
                 FROM expired x, jobs j \
                 WHERE e.id = x.id AND e.scheduled_at = x.scheduled_at AND j.id = e.job_id \
                 RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.error \
             ), kept AS ( \
                 INSERT INTO attempts (execution_id, scheduled_at, attempt, started_at, finished_at, duration_ms, error) \
                 SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                     (extract(epoch FROM clock_timestamp() - COALESCE(started_at, clock_timestamp())) * 1000)::bigint, \
                     error FROM reaped \
                 ON CONFLICT DO NOTHING \
             ) \
             SELECT id, status FROM reaped",
        )
        .bind(i32::try_from(crash_limit).unwrap_or(i32::MAX))
        .bind(i64::from(limit))
        .bind(&dead)
        .fetch_all(&self.pool)
        .await?;
        if rows.len() < limit as usize {
            sqlx::query(
                "DELETE FROM workers w WHERE dead AND NOT EXISTS ( \
                     SELECT 1 FROM executions e WHERE e.finished_at IS NULL \
                     AND e.worker_id = w.id AND e.status = 'RUNNING')",
            )
            .execute(&self.pool)
            .await?;
        }
        taken_back(rows)
    }

    async fn execution_hand_back(
        &self,
        unfinished: &[Unfinished],
    ) -> Result<Vec<Reaped>, StoreError> {
        if unfinished.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = unfinished.iter().map(|u| u.execution_id).collect();
        let attempts: Vec<i32> = unfinished.iter().map(|u| u.attempt).collect();
        let times = self.fire_times(&ids).await?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH u AS (SELECT * FROM UNNEST($1::uuid[], $2::int[]) AS u(id, attempt)), \
             back AS ( \
                 UPDATE executions e SET \
                     handbacks = e.handbacks + 1, \
                     status = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN 'ABANDONED' ELSE 'QUEUED' END, \
                     queued_at = clock_timestamp(), \
                     finished_at = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN clock_timestamp() END, \
                     http_status = NULL, \
                     error = CASE WHEN COALESCE(e.execution_type, j.execution_type) = 'AT_MOST_ONCE' \
                         THEN 'worker stopped mid-request; outcome unknown, not retried (AT_MOST_ONCE)' \
                         ELSE 'worker stopped mid-request; handed back to run again' END \
                 FROM u, jobs j \
                 WHERE e.id = u.id AND e.scheduled_at >= $3 AND e.scheduled_at < $4 \
                     AND e.status = 'RUNNING' AND e.attempt = u.attempt AND j.id = e.job_id \
                 RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.error \
             ), kept AS ( \
                 INSERT INTO attempts (execution_id, scheduled_at, attempt, started_at, finished_at, duration_ms, error) \
                 SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                     (extract(epoch FROM clock_timestamp() - COALESCE(started_at, clock_timestamp())) * 1000)::bigint, \
                     error FROM back \
                 ON CONFLICT DO NOTHING \
             ) \
             SELECT id, status FROM back",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(times.from)
        .bind(times.until)
        .fetch_all(&self.pool)
        .await?;
        taken_back(rows)
    }

    async fn job_trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError> {
        // The fire is due now by the storage clock, to the millisecond its id names.
        let now: DateTime<Utc> =
            sqlx::query_scalar("SELECT date_trunc('milliseconds', clock_timestamp())")
                .fetch_one(&self.pool)
                .await?;
        let sql = format!(
            "INSERT INTO executions (id, job_id, scheduled_at, status, queued_at, kind) \
             SELECT $1, j.id, $3, 'QUEUED', clock_timestamp(), 'MANUAL' \
             FROM jobs j WHERE j.id = $2 AND j.deleted_at IS NULL \
             ON CONFLICT ON CONSTRAINT executions_one_per_fire DO NOTHING \
             RETURNING {EXECUTION_COLUMNS}"
        );
        let insert = || {
            sqlx::query_as::<_, ExecutionRow>(&sql)
                .bind(fire_id(now))
                .bind(job_id)
                .bind(now)
                .fetch_optional(&self.pool)
        };
        let row = match insert().await {
            Err(e) if partitions::is_missing_partition(&e) => {
                // Today's partition is made ahead of time; if it is missing after all
                // (a new deployment whose upkeep has not run), make it and write again.
                let mut conn = self.pool.acquire().await?;
                partitions::ensure_days(&mut conn, &[now.date_naive()]).await?;
                insert().await?
            }
            other => other?,
        };
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
               AND finished_at IS NOT NULL AND error IS NOT NULL \
               AND ($1::uuid IS NULL OR job_id = $1) AND ($2::uuid IS NULL OR id < $2) \
               AND job_id IN (SELECT id FROM jobs WHERE tenant = COALESCE($4, tenant)) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ExecutionRow> = sqlx::query_as(&sql)
            .bind(job_id)
            .bind(before)
            .bind(i64::from(limit))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Execution::try_from).collect()
    }

    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError> {
        let times = self.fire_times(&[id]).await?;
        let mut tx = self.pool.begin().await?;
        let row: Option<DeadRow> = sqlx::query_as(
            "SELECT e.status, COALESCE(e.execution_type, j.execution_type) AS execution_type, \
                 j.deleted_at IS NOT NULL AS job_deleted \
             FROM executions e JOIN jobs j ON j.id = e.job_id \
             WHERE e.id = $1 AND e.scheduled_at >= $2 AND e.scheduled_at < $3 \
             FOR NO KEY UPDATE OF e",
        )
        .bind(id)
        .bind(times.from)
        .bind(times.until)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Requeued::NoExecution);
        };
        if let Some(refused) = may_requeue(&row, force)? {
            return Ok(refused);
        }
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "{REQUEUE_DEAD_LETTER} AND scheduled_at >= $3 AND scheduled_at < $4"
        ))
        .bind(id)
        .bind(now)
        .bind(times.from)
        .bind(times.until)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions \
             WHERE id = $1 AND scheduled_at >= $2 AND scheduled_at < $3"
        );
        let row: ExecutionRow = sqlx::query_as(&sql)
            .bind(id)
            .bind(times.from)
            .bind(times.until)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Requeued::Queued(Execution::try_from(row)?))
    }

    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError> {
        on_postgres::tenant_counts(&self.pool, tenant).await
    }

    async fn execution_record_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = outcomes.iter().map(|o| o.execution_id).collect();
        let fire_times: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.scheduled_at).collect();
        let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
        let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
        let durations: Vec<i64> = outcomes.iter().map(|o| o.duration_ms).collect();
        let http: Vec<Option<i32>> = outcomes
            .iter()
            .map(|o| o.http_status.map(i32::from))
            .collect();
        let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
        let bodies: Vec<Option<&str>> = outcomes
            .iter()
            .map(|o| o.response_body.as_deref())
            .collect();
        let retry_ms: Vec<Option<i64>> = outcomes
            .iter()
            .map(|o| {
                o.retry_in
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            })
            .collect();
        // One statement: the fenced state change and the attempt row, or neither. Written to
        // the day's partitions by name when the fires are of one day (see the claim); each
        // row is found by its whole key, so the plan is a key lookup per outcome whatever
        // the statistics of a day's partition (a new one has none).
        let times = self.fire_times(&ids).await?;
        let tables = self.tables(&times).await?;
        let (ids, fire_times, attempts, statuses, durations, http, errors, bodies, retry_ms) = (
            &ids,
            &fire_times,
            &attempts,
            &statuses,
            &durations,
            &http,
            &errors,
            &bodies,
            &retry_ms,
        );
        let write = |tables: Tables| {
            // As in the claim: a day's partition named directly is given no range of times.
            let whole = whole_history(&tables.executions);
            let sql = format!(
                "WITH o AS ( \
                     SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::bigint[], \
                         $5::int[], $6::text[], $7::text[], $8::bigint[], $9::timestamptz[]) \
                     AS o(id, attempt, status, duration_ms, http_status, error, response_body, retry_ms, \
                         scheduled_at) \
                 ), done AS ( \
                     UPDATE {executions} e SET status = o.status, duration_ms = o.duration_ms, \
                         http_status = o.http_status, response_body = o.response_body, \
                         error = COALESCE(o.error, CASE WHEN o.status = 'FAILED' \
                             THEN 'failed; the worker gave no reason' END), \
                         finished_at = CASE WHEN o.status = 'RETRYING' THEN NULL ELSE clock_timestamp() END, \
                         next_attempt_at = CASE WHEN o.status = 'RETRYING' \
                             THEN clock_timestamp() + o.retry_ms * interval '1 millisecond' END \
                     FROM o \
                     WHERE e.id = o.id AND e.scheduled_at = o.scheduled_at{range} \
                         AND e.status = 'RUNNING' AND e.attempt = o.attempt \
                     RETURNING e.id, e.scheduled_at, e.attempt, e.started_at, e.status, e.next_attempt_at, \
                         o.duration_ms, o.http_status, o.error, o.response_body \
                 ), kept AS ( \
                     INSERT INTO {attempts} (execution_id, scheduled_at, attempt, started_at, \
                         finished_at, duration_ms, http_status, error, response_body) \
                     SELECT id, scheduled_at, attempt, COALESCE(started_at, clock_timestamp()), clock_timestamp(), \
                         duration_ms, http_status, error, response_body FROM done \
                     WHERE status <> 'SUCCEEDED' \
                     ON CONFLICT DO NOTHING \
                 ) \
                 SELECT id, status, next_attempt_at FROM done",
                executions = tables.executions,
                attempts = tables.attempts,
                range = if whole {
                    " AND e.scheduled_at >= $10 AND e.scheduled_at < $11"
                } else {
                    ""
                },
            );
            async move {
                let query = sqlx::query_as::<_, (Uuid, String, Option<DateTime<Utc>>)>(&sql)
                    .bind(ids)
                    .bind(attempts)
                    .bind(statuses)
                    .bind(durations)
                    .bind(http)
                    .bind(errors)
                    .bind(bodies)
                    .bind(retry_ms)
                    .bind(fire_times);
                let query = if whole {
                    query.bind(times.from).bind(times.until)
                } else {
                    query
                };
                query.fetch_all(&self.pool).await
            }
        };
        let rows = match write(tables).await {
            Err(e) if partitions::is_missing_table(&e) => write(Tables::whole()).await?,
            other => other?,
        };
        rows.into_iter()
            .map(|(execution_id, status, next_attempt_at)| {
                Ok(Recorded {
                    execution_id,
                    status: read_status(&status)?,
                    next_attempt_at,
                })
            })
            .collect()
    }
}

/// Whether `table` is the whole history (partitioned or not), not one day's partition.
fn whole_history(table: &str) -> bool {
    table == "executions"
}

/// The two tables of the history a statement writes.
struct Tables {
    executions: String,
    attempts: String,
}

impl Tables {
    /// The partitioned tables (or, before the conversion, the plain ones).
    fn whole() -> Self {
        Self {
            executions: "executions".to_string(),
            attempts: "attempts".to_string(),
        }
    }

    /// The partitions of UTC day `day`.
    fn of_day(day: chrono::NaiveDate) -> Self {
        Self {
            executions: partitions::partition_name("executions", day),
            attempts: partitions::partition_name("attempts", day),
        }
    }
}

/// Which fires a claim statement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
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
                 x.handbacks, x.attempt_base, j.execution_type, j.max_retries, j.http_method, \
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
                 j.execution_type, j.max_retries, j.http_method, j.http_url, j.http_headers, \
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
             e.handbacks, e.attempt_base, j.execution_type, j.max_retries, j.http_method, \
             j.http_url, j.http_headers, j.http_body, j.timeout_seconds, j.signing_secret, \
             CASE WHEN j.previous_secret_expires_at > clock_timestamp() \
                 THEN j.previous_signing_secret END AS previous_signing_secret, \
             false AS overlap, e.status = 'EXPIRED' AS expired, \
             GREATEST(0, ceil(extract(epoch FROM e.scheduled_at - clock_timestamp()) * 1000))::bigint \
                 AS wait_ms, false AS deferred"
    )
}

/// Deletes a job's fires recorded ahead of time and not yet due (they never came due),
/// inside the caller's transaction.
async fn forget_fires_ahead(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let forgotten: i64 = sqlx::query_scalar(
        "WITH gone AS ( \
             DELETE FROM executions WHERE job_id = $1 AND status = 'QUEUED' AND scheduled_at > $2 \
             RETURNING id, scheduled_at), \
         gone_attempts AS ( \
             DELETE FROM attempts a USING gone g \
             WHERE a.execution_id = g.id AND a.scheduled_at = g.scheduled_at \
                 AND a.scheduled_at > $2) \
         SELECT count(*) FROM gone",
    )
    .bind(job_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(u64::try_from(forgotten).unwrap_or(0))
}

/// Ends a job's QUEUED and RETRYING fires as CANCELLED (deleting those recorded ahead and
/// not yet due), inside the caller's transaction.
async fn cancel_waiting_fires(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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
