//! The PostgreSQL store. Queries are checked at run time, so the workspace builds with no
//! database reachable; the integration tests run every one of them.

mod claims;
mod deliveries;
mod fires;
mod history;
mod jobs;
mod rollups;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::Connection;
use uuid::Uuid;

use super::fire_id::FireTimes;
use super::partitions::{self, Conversion, KnownDays};
use super::shared::on_postgres;
use super::{Store, StoreError};
use crate::config::{ConfigError, DatabaseSettings};

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

/// Whether fire `x` of job `j` is past its starting deadline at the database clock: it has
/// made no attempt in this round (a retry, a fire taken back from a worker and a hand-back
/// have), and its job's `starting_deadline_seconds` have passed since the later of its
/// scheduled time and when it was queued (so a fire the tick records late, catching up,
/// gets its whole deadline).
const PAST_DEADLINE: &str = "(x.attempt = x.attempt_base \
     AND j.starting_deadline_seconds IS NOT NULL \
     AND GREATEST(x.scheduled_at, x.queued_at) \
         + j.starting_deadline_seconds * interval '1 second' < clock_timestamp())";

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
