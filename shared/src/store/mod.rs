//! Storage: the truth about jobs and their fires.
//!
//! The tick, the worker and the API know storage only through [`Store`], which is one trait
//! per entity: [`Jobs`] (the API's), [`Fires`] (the tick's), [`Deliveries`] (the worker's),
//! [`History`] and [`ApiKeys`]. PostgreSQL ([`PgStore`]) serves the three functions; an
//! SQLite file (`SqliteStore`, feature `embedded`) serves `tickwork-local` when no servers
//! are configured. Each backend is a folder with a file per trait. Every state change is a
//! conditional write naming the state it expects to leave.

mod fire_id;
mod keys;
mod partitions;
mod postgres;
mod rows;
mod rules;
mod shared;
mod sql;
#[cfg(feature = "embedded")]
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    Attempt, Delivery, Execution, ExecutionStatus, ExecutionType, InvalidField, Job, LastOutcome,
    MinuteRollup, MisfirePolicy, Outcome, Recorded,
};

pub use fire_id::{fire_id, named_time, FireTimes};
pub use keys::ApiKeys;
pub use partitions::Conversion;
pub use postgres::{connect_options, PgStore};
#[cfg(feature = "embedded")]
pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a statement.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    /// Pending migrations could not be applied.
    #[error("could not apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The embedded database file is held by another process.
    #[error("{path} is in use by another process{holder} (the embedded backend serves one process at a time); stop that process, or use another file")]
    Locked {
        /// The database file.
        path: String,
        /// Who holds it, when known (" (pid N)"), else empty.
        holder: String,
    },
    /// The embedded database file could not be opened.
    #[error("could not open the embedded database {path}")]
    Open {
        /// The database file.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A stored row holds a value this build cannot read (written by a newer version?).
    #[error("stored {what} is malformed: {detail}")]
    Corrupt {
        /// Which kind of row.
        what: &'static str,
        /// What could not be read.
        detail: String,
    },
}

/// A due job as the tick sees it: enough to plan its fires.
#[derive(Debug, Clone, PartialEq)]
pub struct DueJob {
    /// The job.
    pub id: Uuid,
    /// Its cron expression as stored.
    pub cron_expression: String,
    /// Its time zone as stored.
    pub timezone: String,
    /// The fire time that made it due.
    pub next_run_at: DateTime<Utc>,
    /// What to do with fires missed while the tick was down.
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires `FIRE_ALL` records.
    pub catch_up_limit: u32,
}

/// What the tick decided for one due job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirePlan {
    /// Fire times to record, oldest first; may be empty.
    pub fires: Vec<DateTime<Utc>>,
    /// Missed fire times dropped by the misfire policy, counted on the job.
    pub skipped_fires: u64,
    /// The job's next fire time after these; `None` when the schedule has ended.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// Held fires released ([`Fires::execution_release_held`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Released {
    /// Fires to push, with their fire times.
    pub fires: Vec<(Uuid, DateTime<Utc>)>,
    /// Fires past their starting deadline, ended EXPIRED instead.
    pub expired: Vec<Uuid>,
}

/// What one claim transaction did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FiredBatch {
    /// Due jobs claimed (and whose `next_run_at` moved on).
    pub jobs: usize,
    /// QUEUED executions created to be pushed now, with their fire times; fires that
    /// already had one are not listed.
    pub executions: Vec<(Uuid, DateTime<Utc>)>,
    /// QUEUED executions created held (past the room the queue had), to be pushed by
    /// [`Fires::execution_release_held`].
    pub held: usize,
    /// Missed fires dropped by misfire policies.
    pub skipped_fires: u64,
}

/// What a claim did.
#[derive(Debug, Default)]
pub struct Claimed {
    /// Claimed fires, RUNNING, to deliver.
    pub deliveries: Vec<Delivery>,
    /// Fires recorded SKIPPED: an earlier fire of their `FORBID` job was unfinished.
    pub skipped: Vec<Uuid>,
    /// Fires recorded EXPIRED, unsent: their first attempt would have started after their
    /// job's `startingDeadlineSeconds`.
    pub expired: Vec<Uuid>,
    /// Fires recorded FAILED because their job could not be read.
    pub malformed: Vec<Uuid>,
}

/// A RUNNING fire whose lease ran out, as the reaper left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaped {
    /// Execution id.
    pub execution_id: Uuid,
    /// QUEUED (to run again), FAILED (crash limit reached) or ABANDONED (AT_MOST_ONCE).
    pub status: ExecutionStatus,
}

/// A fire a stopping worker could not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    /// Execution id.
    pub execution_id: Uuid,
    /// The attempt the worker held (the fencing token).
    pub attempt: i32,
    /// Decides its fate: AT_LEAST_ONCE goes back to QUEUED, AT_MOST_ONCE is ABANDONED.
    pub execution_type: ExecutionType,
}

/// A tenant's fires that are not finished, and its dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantCounts {
    /// QUEUED.
    pub queued: u64,
    /// RUNNING.
    pub running: u64,
    /// RETRYING.
    pub retrying: u64,
    /// FAILED, ABANDONED and EXPIRED: the dead letters.
    pub dead: u64,
}

/// What a create with an idempotency key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentInsert {
    /// The job was stored under the key.
    Created,
    /// The key was already used: by this job, for a request with this fingerprint.
    Existing {
        /// The job the first request made.
        job_id: Uuid,
        /// That request's fingerprint.
        fingerprint: String,
    },
}

/// What putting a dead letter back did.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeued {
    /// No such execution.
    NoExecution,
    /// It is not FAILED, ABANDONED or EXPIRED (its status now).
    NotDeadLetter(ExecutionStatus),
    /// Its job is deleted.
    JobDeleted,
    /// It is AT_MOST_ONCE (and not EXPIRED) and `force` was not given: its target may
    /// already have acted.
    AtMostOnce,
    /// Back in QUEUED, as it is now.
    Queued(Execution),
}

/// What one round of [`History::history_keep`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryKept {
    /// Partitions created for the coming days.
    pub created: Vec<String>,
    /// Partitions detached and dropped: their history is gone.
    pub dropped: Vec<String>,
    /// Partitions past the retention period kept because of some of their fires.
    pub kept: Vec<KeptPartition>,
    /// Another process was keeping the history; this round did nothing.
    pub busy: bool,
}

/// A partition past the retention period that is kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPartition {
    /// The partition's table.
    pub name: String,
    /// Its fires not final yet (QUEUED, RUNNING, RETRYING).
    pub unfinished: u64,
    /// Its fires put back from the dead letters within the retention period.
    pub requeued: u64,
}

/// Decides the fires for one due job; the tick provides it, storage applies it.
pub type Planner<'a> = &'a (dyn Fn(&DueJob) -> FirePlan + Sync);

/// The order of a job list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobOrder {
    /// Newest first (by id, which grows with creation time).
    #[default]
    Newest,
    /// By name, then id.
    Name,
    /// Soonest next run first, jobs with none last; a first page only, since next runs move
    /// every second.
    NextRun,
}

/// A page position: the last job of the previous page, in its list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCursor {
    /// In the newest-first list.
    Newest { created_at: DateTime<Utc>, id: Uuid },
    /// In the list by name.
    Name { name: String, id: Uuid },
}

impl JobCursor {
    /// Where `job` stands in a list in `order`; `None` in an order that has no next page.
    pub fn of(job: &Job, order: JobOrder) -> Option<Self> {
        match order {
            JobOrder::Newest => Some(Self::Newest {
                created_at: job.created_at,
                id: job.id,
            }),
            JobOrder::Name => Some(Self::Name {
                name: job.name.clone(),
                id: job.id,
            }),
            JobOrder::NextRun => None,
        }
    }

    /// The order of the list it belongs to.
    pub fn order(&self) -> JobOrder {
        match self {
            Self::Newest { .. } => JobOrder::Newest,
            Self::Name { .. } => JobOrder::Name,
        }
    }

    /// The id and (in the list by name) the name it stands after, as the statements bind
    /// them.
    pub(crate) fn bounds(cursor: Option<&Self>) -> (Option<Uuid>, Option<&str>) {
        match cursor {
            Some(Self::Newest { id, .. }) => (Some(*id), None),
            Some(Self::Name { name, id }) => (Some(*id), Some(name)),
            None => (None, None),
        }
    }
}

/// Which jobs a list shows, in which order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobFilter {
    /// Only this tenant's jobs (`None`: every tenant's).
    pub tenant: Option<String>,
    /// Only active (`Some(true)`) or only inactive (`Some(false)`) jobs.
    pub is_active: Option<bool>,
    /// Show deleted jobs too.
    pub include_deleted: bool,
    /// Only jobs whose name or description holds this text, ignoring case.
    pub search: Option<String>,
    /// Only jobs whose latest recorded outcome has this status (see [`Rollups`]).
    pub last_status: Option<ExecutionStatus>,
    /// The order.
    pub order: JobOrder,
}

/// A job's sealed values (credential headers among its headers, signing secrets): what
/// finishing a key rotation rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValues {
    /// The target URL, credential query values sealed.
    pub http_url: String,
    /// Every header, credentials sealed.
    pub http_headers: std::collections::BTreeMap<String, String>,
    /// The signing secret, sealed.
    pub signing_secret: Option<String>,
    /// The previous signing secret during a rotation, sealed.
    pub previous_signing_secret: Option<String>,
}

impl SealedValues {
    /// A job's.
    pub fn of(job: &Job) -> Self {
        Self {
            http_url: job.http_url.clone(),
            http_headers: job.http_headers.clone(),
            signing_secret: job.signing_secret.clone(),
            previous_signing_secret: job.previous_signing_secret.clone(),
        }
    }
}

/// How one of a job's recent fires ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentOutcome {
    pub job_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub status: ExecutionStatus,
}

/// A page of one job's executions: latest fire first, scheduled strictly before `before`,
/// at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionListing {
    pub job_id: Uuid,
    pub before: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// A page of dead letters: newest first, ids below `before`, at most `limit`, of one job
/// (`job_id`) or all, of one tenant or (`None`) every tenant's.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterListing<'a> {
    pub tenant: Option<&'a str>,
    pub job_id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Changes a job read under lock at the storage clock's `now`; an error leaves it as it was.
pub type JobChange<'a> = &'a (dyn Fn(Job, DateTime<Utc>) -> Result<Job, InvalidField> + Sync);

/// Storage of jobs and executions.
#[async_trait]
pub trait Store:
    ApiKeys + Jobs + Fires + Deliveries + History + Rollups + Send + Sync + 'static
{
    /// What kind of storage this is (`postgres`, `sqlite`), as `/health` names it.
    fn kind(&self) -> &'static str;

    /// Checks that storage answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The storage clock: the one clock every tick in every process reads.
    async fn clock(&self) -> Result<DateTime<Utc>, StoreError>;
}

/// Jobs: what the API stores, reads, changes and triggers.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Stores a new job.
    async fn job_insert(&self, job: &Job) -> Result<(), StoreError>;

    /// Stores a new job under an idempotency key, unless the key was used before: then
    /// nothing is stored and the first use is returned. Two creates racing with one key
    /// store one job.
    async fn job_insert_once(
        &self,
        job: &Job,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotentInsert, StoreError>;

    /// One job with its last finished run, or `None`.
    async fn job_get(&self, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// Jobs newest first, after `cursor`, at most `limit`.
    async fn job_list(
        &self,
        filter: JobFilter,
        cursor: Option<JobCursor>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;

    /// Changes a job in one transaction. When the change leaves it inactive, its QUEUED
    /// and RETRYING fires that are due become CANCELLED; fires recorded ahead of time and
    /// not yet due are deleted (they never came due), also when the schedule changes. `None` when there is no such job;
    /// `Some(Err)` when `change` refused.
    async fn job_update(
        &self,
        id: Uuid,
        change: JobChange<'_>,
    ) -> Result<Option<Result<Job, InvalidField>>, StoreError>;

    /// Writes `after` over a job's headers and signing secrets if they are still `before`;
    /// nothing else about the job changes (not `updatedAt`, not its fires). False when they
    /// changed meanwhile, or there is no such job.
    async fn job_reseal(
        &self,
        id: Uuid,
        before: &SealedValues,
        after: &SealedValues,
    ) -> Result<bool, StoreError>;

    /// Soft-deletes a job: inactive, `deleted_at` set (kept if already set), waiting fires
    /// CANCELLED (or deleted, if recorded ahead and not yet due). False when there is no
    /// such job.
    async fn job_delete(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Records a MANUAL fire of a job that is not deleted, QUEUED and due now (the storage
    /// clock, in whole milliseconds). `None` when there is no such job, it is deleted, or a
    /// fire of it is already recorded at that instant.
    async fn job_trigger(&self, job_id: Uuid) -> Result<Option<Execution>, StoreError>;
}

/// Fires on their way to the queue: recorded by the tick, released when the queue has
/// room, found again when a push or a retry may be lost, expired when they waited too long.
#[async_trait]
pub trait Fires: Send + Sync {
    /// In one transaction: claims up to `limit` active jobs due by `horizon` (skipping jobs
    /// another tick holds), records one execution per planned fire (none twice for the same
    /// job and time), and moves each job's `next_run_at` on. `now` stamps the rows.
    /// The first `room` fires by time are recorded to be pushed now; the rest are recorded
    /// held: QUEUED, to be pushed by [`Fires::execution_release_held`] when the queue has room.
    async fn job_fire_due(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
        plan: Planner<'_>,
        room: u64,
    ) -> Result<FiredBatch, StoreError>;

    /// Whether any QUEUED fire is held (recorded while the queue was full).
    async fn execution_any_held(&self) -> Result<bool, StoreError>;

    /// Releases up to `limit` held fires, oldest first (by fire time): those past their
    /// job's starting deadline end EXPIRED there and then (PostgreSQL; the embedded
    /// backend leaves them to the expiry pass), the others are returned with their fire
    /// times for the caller to push. Safe in every process at once (`SKIP LOCKED`): each
    /// fire is released once. A crash before the push leaves QUEUED fires that the sweeper
    /// finds.
    async fn execution_release_held(&self, limit: u32) -> Result<Released, StoreError>;

    /// Executions QUEUED from `queued_from` and before `queued_before` and due by `due_by`,
    /// oldest first, with when they were queued: their push may have been lost. Fires
    /// recorded ahead of time are not listed before their time, nor are held fires.
    async fn execution_list_stale_queued(
        &self,
        queued_from: DateTime<Utc>,
        queued_before: DateTime<Utc>,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;

    /// Moves RETRYING executions among `ids` whose next attempt is due at `now` back to
    /// QUEUED (CANCELLED if their job is no longer active). Returns the ids now QUEUED.
    async fn execution_requeue_retries(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// RETRYING executions due before `due_before`: their scheduled item may be lost.
    async fn execution_list_overdue_retries(
        &self,
        due_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Ends as EXPIRED, unsent, up to `limit` QUEUED fires that would expire if claimed now
    /// (see [`Deliveries::execution_start`]), oldest queued first, without waiting for a claim;
    /// returns their ids. Safe in every process at once.
    async fn execution_expire_overdue(&self, limit: u32) -> Result<Vec<Uuid>, StoreError>;

    /// How many fires are RETRYING.
    async fn execution_count_retrying(&self) -> Result<u64, StoreError>;
}

/// Fires in a worker's hands: its lease, its claims, what it records, what it hands back,
/// and what is taken back from workers that died.
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Registers a worker process: every fire it claims is its own until `lease` from now
    /// (the storage clock), renewed for all of them at once by [`Deliveries::worker_renew`].
    /// Returns its id.
    async fn worker_register(&self, lease: std::time::Duration) -> Result<Uuid, StoreError>;

    /// Extends a worker's lease to `lease` from now, for every fire it holds, in one
    /// statement (on PostgreSQL over a connection of its own, so it never waits behind
    /// claims and outcomes). False when the worker was declared dead (its lease ran out and
    /// a reaper took back its fires): it must drop what it holds and register again.
    async fn worker_renew(
        &self,
        worker: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// Ends a stopping worker's lease now: anything it still holds is taken back by the
    /// next reaper pass.
    async fn worker_retire(&self, worker: Uuid) -> Result<(), StoreError>;

    /// Moves each listed execution that is still QUEUED to RUNNING, held by `worker`,
    /// counting an attempt, and returns what to deliver. Ids that are not QUEUED (delivered
    /// twice, already taken) are left out, and nothing is claimed for a worker declared
    /// dead. A fire that has made no attempt in this round (`attempt = attempt_base`: not a
    /// retry, not taken back from a worker) and whose job's `startingDeadlineSeconds` has
    /// passed since the later of its scheduled time and when it was queued, by the storage
    /// clock, becomes EXPIRED and is not sent. Else a fire of a `FORBID` job with an earlier
    /// fire still QUEUED, RUNNING or RETRYING becomes SKIPPED; a fire whose job row cannot
    /// be read becomes FAILED.
    async fn execution_start(&self, ids: &[Uuid], worker: Uuid) -> Result<Claimed, StoreError>;

    /// Declares dead the workers whose lease ran out, then takes back up to `limit` RUNNING
    /// fires of dead workers, counting a crash on each: AT_MOST_ONCE ones become ABANDONED;
    /// AT_LEAST_ONCE ones become QUEUED, or FAILED once they have crashed `crash_limit`
    /// times. Dead workers left holding nothing are forgotten. Safe in every worker at once.
    async fn execution_reap_expired(
        &self,
        crash_limit: u32,
        limit: u32,
    ) -> Result<Vec<Reaped>, StoreError>;

    /// Hands back fires a stopping worker cannot finish: AT_LEAST_ONCE to QUEUED,
    /// AT_MOST_ONCE to ABANDONED. Returns what each became (fenced by the attempt).
    async fn execution_hand_back(
        &self,
        unfinished: &[Unfinished],
    ) -> Result<Vec<Reaped>, StoreError>;

    /// Writes outcomes of RUNNING executions whose attempt matches, and one attempt row
    /// each; returns what was written. An outcome for another attempt, or a fire no longer
    /// RUNNING, is refused (left out of the result).
    async fn execution_record_outcomes(
        &self,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, StoreError>;
}

/// What happened: executions and their attempts, the dead letters, and how long the
/// history is kept.
#[async_trait]
pub trait History: Send + Sync {
    /// One execution, or `None`.
    async fn execution_get(&self, id: Uuid) -> Result<Option<Execution>, StoreError>;

    /// The attempts of these executions, oldest first within each.
    async fn attempt_list(&self, execution_ids: &[Uuid]) -> Result<Vec<Attempt>, StoreError>;

    /// The last `per_job` finished fires of each of `job_ids` (latest first within each):
    /// job, scheduled time and final status, in one statement for them all.
    async fn execution_list_recent(
        &self,
        job_ids: &[Uuid],
        per_job: u32,
    ) -> Result<Vec<RecentOutcome>, StoreError>;

    /// A page of a job's executions (see [`ExecutionListing`]).
    async fn execution_list(&self, listing: ExecutionListing)
        -> Result<Vec<Execution>, StoreError>;

    /// Deletes up to `limit` finished executions (with their attempts) of fires due before
    /// `before`; returns how many. A history kept in time partitions deletes no rows (see
    /// [`History::history_keep`]) and returns 0.
    async fn history_delete(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Keeps a history stored in time partitions in shape: creates the partitions of the
    /// coming days and, with `before` (now less `HISTORY_RETENTION`), detaches and drops
    /// those whose fires are all due before it, final, and not put back from the dead
    /// letters since; the others are kept and reported. One process does it at a time (the
    /// others find it busy and do nothing). A store without partitions does nothing.
    async fn history_keep(&self, before: Option<DateTime<Utc>>) -> Result<HistoryKept, StoreError> {
        let _ = before;
        Ok(HistoryKept::default())
    }

    /// A page of FAILED, ABANDONED and EXPIRED fires (see [`DeadLetterListing`]).
    async fn dead_letter_list(
        &self,
        listing: DeadLetterListing<'_>,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Puts a FAILED, ABANDONED or EXPIRED fire back to QUEUED (same execution, a fresh
    /// round of retries, the starting deadline counted from now), refusing an AT_MOST_ONCE
    /// one that may have been sent (FAILED, ABANDONED) unless `force`.
    async fn dead_letter_requeue(&self, id: Uuid, force: bool) -> Result<Requeued, StoreError>;

    /// A tenant's unfinished fires and dead letters, by state.
    async fn tenant_counts(&self, tenant: &str) -> Result<TenantCounts, StoreError>;
}

/// Per-minute rollups of recorded outcomes and each job's latest outcome: what the
/// dashboard's charts and `GET /api/v1/jobs?status=` read instead of the history.
#[async_trait]
pub trait Rollups: Send + Sync {
    /// Adds `minutes` to the kept rollups (counts of the same minute and tenant add up) and
    /// notes each job's latest outcome where its status changed and its fire is not older
    /// than the one noted, in one transaction.
    async fn rollup_add(
        &self,
        minutes: &[MinuteRollup],
        latest: &[LastOutcome],
    ) -> Result<(), StoreError>;

    /// The rollups of the minutes from `since`, oldest first: of one tenant, or summed over
    /// every tenant (`tenant` `None`, with `tenant` empty in the answer).
    async fn rollup_list(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>, StoreError>;

    /// Forgets the rollups of minutes before `before`; returns how many rows went.
    async fn rollup_forget(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
