//! The queue: how work reaches workers.
//!
//! The queue is a cache of work; the store is the truth. Losing an item delays a fire and
//! never loses it: the tick's sweeper pushes QUEUED executions again. Pushing an id that
//! is already waiting leaves one item, so pushes can be repeated freely.

mod memory;
mod redis;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::memory::MemoryQueue;
pub use self::redis::{redis_connection_info, RedisQueue};

/// How many ids the completed list keeps.
pub const COMPLETED_KEPT: usize = 1000;

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached or refused a command.
    #[error("redis failed")]
    Redis(#[from] ::redis::RedisError),
    /// The queue held a value that is not an execution id.
    #[error("queue item {0:?} is not an execution id")]
    BadItem(String),
}

/// How an item taken from the queue was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Its fire succeeded; the id joins the completed list.
    Completed,
    /// Its fire failed for good; the id joins the failed (dead-letter) list.
    Failed,
    /// Not ours to run (delivered twice, or already taken): it just leaves processing.
    Dropped,
    /// To be tried again: it moves to the scheduled set, due at this time.
    Retry {
        /// When the next attempt is due (storage clock).
        due: chrono::DateTime<chrono::Utc>,
    },
}

/// Counts of what the queue holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Waiting for a worker.
    pub ready: u64,
    /// Waiting for their time: retries, and fires recorded ahead of time.
    pub scheduled: u64,
    /// Taken by a worker and not yet settled.
    pub processing: u64,
    /// Recently completed (bounded by [`COMPLETED_KEPT`]).
    pub completed: u64,
    /// In the dead-letter list.
    pub failed: u64,
}

pub use crate::config::RateLimit;

/// The work queue between the tick and the workers.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// What kind of queue this is (`redis`, `memory`), as `/health` names it.
    fn kind(&self) -> &'static str;

    /// Checks that the queue answers.
    async fn ping(&self) -> Result<(), QueueError>;

    /// Makes ids ready for workers; an id already waiting is not added again. Returns
    /// how many were added.
    async fn push(&self, ids: &[Uuid]) -> Result<usize, QueueError>;

    /// As [`Queue::push`], but leaves out ids a worker took from the queue at or after
    /// `taken_since`: their claim may still be under way. The sweeper pushes this way, so
    /// what is merely waiting for its claim is not handed out again.
    async fn push_untaken(
        &self,
        ids: &[Uuid],
        taken_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, QueueError>;

    /// Pushes ids to the ready list even if the queue believes they are already in it.
    async fn repush(&self, ids: &[Uuid]) -> Result<usize, QueueError>;

    /// Holds ids recorded ahead of time until their fire time.
    async fn push_upcoming(
        &self,
        items: &[(Uuid, chrono::DateTime<chrono::Utc>)],
    ) -> Result<(), QueueError>;

    /// Moves up to `max` held ids whose fire time is at or before `now` to the ready list
    /// (an id already there is not added twice). Returns how many left the held set.
    async fn release_upcoming(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<usize, QueueError>;

    /// Takes up to `max` ready ids, oldest first, moving them to processing.
    async fn pop(&self, max: usize) -> Result<Vec<Uuid>, QueueError>;

    /// Removes settled ids from processing, recording completed and failed ones and
    /// scheduling retries.
    async fn settle(&self, items: &[(Uuid, Settled)]) -> Result<(), QueueError>;

    /// Takes up to `max` scheduled ids due at `now` out of the scheduled set.
    async fn take_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<Uuid>, QueueError>;

    /// Current counts.
    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// Takes a token from `bucket` (shared by every process on this queue): `Ok(None)` when
    /// one was there, `Ok(Some(wait))` with how long until one will be.
    async fn take_token(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<Option<std::time::Duration>, QueueError>;
}
