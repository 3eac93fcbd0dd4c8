//! An execution: one fire of one job at one scheduled time, and how it went.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::field::named;
use super::{ExecutionType, HttpTarget};

/// Where a fire is in its life. Every move between states is a conditional write that
/// names the state it leaves, so two actors can never both make the same move.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::Display,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "Where a fire is in its life (docs/job-states.md)."
)]
pub enum ExecutionStatus {
    /// Recorded by the tick and handed to the queue; no worker has claimed it yet.
    Queued,
    /// A worker claimed it and is calling the target.
    Running,
    /// An attempt failed in a way worth retrying; waiting in the scheduled set for its
    /// next attempt, when it becomes QUEUED again.
    Retrying,
    /// The target answered 2xx.
    Succeeded,
    /// Failed for good: a non-retryable answer, no retries left, or AT_MOST_ONCE.
    Failed,
    /// Its job was deactivated or deleted before it was sent.
    Cancelled,
    /// An AT_MOST_ONCE fire whose worker died or stopped mid-request: the target may or may
    /// not have acted, and it is never sent again.
    Abandoned,
    /// Came due while an earlier fire of its job was unfinished (`concurrencyPolicy:
    /// FORBID`); recorded, never sent.
    Skipped,
    /// Its first attempt had not started within its job's `startingDeadlineSeconds`; never
    /// sent. A dead letter: it can be put back.
    Expired,
}

impl ExecutionStatus {
    /// True once nothing more will happen to the fire.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded
                | Self::Failed
                | Self::Cancelled
                | Self::Abandoned
                | Self::Skipped
                | Self::Expired
        )
    }
}

named!(ExecutionStatus, "status");

/// How a fire came to be.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::Display,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "SCHEDULED (from the job's schedule) or MANUAL (POST /api/v1/jobs/{id}/trigger)."
)]
pub enum FireKind {
    /// The tick recorded it at a time its schedule produced.
    #[default]
    Scheduled,
    /// An operator asked for it (`POST /api/v1/jobs/{id}/trigger`), at that moment.
    Manual,
}

named!(FireKind, "kind");

/// One fire as stored in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Execution id; also the `Idempotency-Key` the target receives.
    pub id: Uuid,
    /// The job that fired.
    pub job_id: Uuid,
    /// The fire time the schedule produced (not when it ran).
    pub scheduled_at: DateTime<Utc>,
    /// Where the fire is now.
    pub status: ExecutionStatus,
    /// Attempts started so far (1-based once running).
    pub attempt: i32,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the fire reached its final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long the latest attempt's request took.
    pub duration_ms: Option<i64>,
    /// The latest attempt's HTTP status, when the target answered.
    pub http_status: Option<i32>,
    /// Why the latest attempt failed, when it did.
    pub error: Option<String>,
    /// When a RETRYING fire is due for its next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Attempts lost to dead or stalled workers (since it was last requeued).
    pub crashes: i32,
    /// Scheduled by the tick, or run by hand.
    /// When the fire's first recorded request was sent: its lateness is this less
    /// `scheduled_at`. `None` until an attempt's outcome is recorded.
    pub first_sent_at: Option<DateTime<Utc>>,
    pub kind: FireKind,
}

/// One attempt of an execution, as kept in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// 1-based attempt number.
    pub attempt: i32,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// When its outcome was recorded.
    pub finished_at: DateTime<Utc>,
    /// How long the request took.
    pub duration_ms: i64,
    /// The HTTP status, when the target answered.
    pub http_status: Option<i32>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The start of the target's answer.
    pub response_body: Option<String>,
}

/// A claimed execution, with everything a worker needs to call the target.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Execution id.
    pub execution_id: Uuid,
    /// The job that fired.
    pub job_id: Uuid,
    /// The tenant the job belongs to.
    pub tenant: String,
    /// The fire time, sent as `X-Tickwork-Scheduled-At`.
    pub scheduled_at: DateTime<Utc>,
    /// This attempt's number, 1-based; it also fences the outcome write.
    pub attempt: i32,
    /// The worker process that holds this fire: its lease covers every fire it holds.
    pub worker_id: Uuid,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// Retries the job allows after a failed attempt.
    pub max_retries: i32,
    /// Attempts lost to dead or stalled workers; they do not count as retries.
    pub crashes: i32,
    /// Attempts handed back by stopping workers; they do not count as retries.
    pub handbacks: i32,
    /// Attempts made before the fire was last put back from the dead letters; they do not
    /// count against this round's retries.
    pub attempt_base: i32,
    /// The job's signing secrets, sealed: the current one, then the previous one while a
    /// rotation's grace period lasts. Empty: requests are not signed.
    pub signing_secrets: Vec<String>,
    /// What to call.
    pub target: HttpTarget,
    /// The job's timeout, in seconds.
    pub timeout_seconds: u8,
    /// How long to wait before sending: a fire claimed ahead of its time is sent at it.
    pub wait: std::time::Duration,
}

/// How one attempt ended, to be written to the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Execution id.
    pub execution_id: Uuid,
    /// The job that fired.
    pub job_id: Uuid,
    /// The tenant the job belongs to.
    pub tenant: String,
    /// Its fire's scheduled time: with the id, the row's key (and its partition).
    pub scheduled_at: DateTime<Utc>,
    /// The attempt this outcome belongs to; the write is refused for any other.
    pub attempt: i32,
    /// The fire's next state: SUCCEEDED, FAILED, or RETRYING.
    pub status: ExecutionStatus,
    /// For RETRYING: how long until the next attempt.
    pub retry_in: Option<std::time::Duration>,
    /// The start of the target's answer.
    pub response_body: Option<String>,
    /// How long the request took.
    pub duration_ms: i64,
    /// The HTTP status, when the target answered.
    pub http_status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When this attempt's request was sent, by the worker's clock.
    pub sent_at: DateTime<Utc>,
}

/// An outcome the store accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Execution id.
    pub execution_id: Uuid,
    /// The state written.
    pub status: ExecutionStatus,
    /// For RETRYING: when the next attempt is due, by the storage clock.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name_and_expired_is_final() {
        for status in <ExecutionStatus as strum::VariantArray>::VARIANTS {
            assert_eq!(ExecutionStatus::parse(status.as_str()), Ok(*status));
        }
        assert!(ExecutionStatus::Expired.is_final());
        let error = ExecutionStatus::parse("expired").unwrap_err();
        assert!(
            error.message.ends_with("(in upper case)"),
            "{}",
            error.message
        );
    }
}
