//! An execution: one fire of one job at one scheduled time, and how it went.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ExecutionType, HttpTarget};

/// Where a fire is in its life. Every move between states is a conditional write that
/// names the state it leaves, so two actors can never both make the same move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    /// Recorded by the tick and handed to the queue; no worker has claimed it yet.
    Queued,
    /// A worker claimed it and is calling the target.
    Running,
    /// The target answered 2xx.
    Succeeded,
    /// The target answered otherwise, or could not be reached.
    Failed,
}

impl ExecutionStatus {
    /// The name used in JSON and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "QUEUED",
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
        }
    }

    /// Reads a stored name back; `None` for a name this build does not know.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "QUEUED" => Some(Self::Queued),
            "RUNNING" => Some(Self::Running),
            "SUCCEEDED" => Some(Self::Succeeded),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }

    /// True once nothing more will happen to the fire.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

/// A claimed execution, with everything a worker needs to call the target.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Execution id.
    pub execution_id: Uuid,
    /// The job that fired.
    pub job_id: Uuid,
    /// The fire time, sent as `X-Tickwork-Scheduled-At`.
    pub scheduled_at: DateTime<Utc>,
    /// This attempt's number, 1-based; it also fences the outcome write.
    pub attempt: i32,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// What to call.
    pub target: HttpTarget,
    /// The job's timeout, in seconds.
    pub timeout_seconds: u8,
}

/// How one attempt ended, to be written to the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Execution id.
    pub execution_id: Uuid,
    /// The attempt this outcome belongs to; the write is refused for any other.
    pub attempt: i32,
    /// Final state of the fire.
    pub status: ExecutionStatus,
    /// How long the request took.
    pub duration_ms: i64,
    /// The HTTP status, when the target answered.
    pub http_status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}
