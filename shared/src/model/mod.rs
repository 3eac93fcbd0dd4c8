//! The domain: jobs, their fires (executions), and the values a job is made of.
//!
//! Values that come from users are parsed into types here (`JobName`, `TargetUrl`, ...);
//! past the API boundary the code holds only values that passed. Nothing here does I/O
//! or reads the clock.

mod access;
mod execution;
mod field;
mod job;
mod policy;
mod rollup;
mod target;
mod text;

pub use access::{ApiKey, KeyName, KeyRole, Tenant, DEFAULT_TENANT};
pub use execution::{Attempt, Delivery, Execution, ExecutionStatus, FireKind, Outcome, Recorded};
pub use field::{json_kind, InvalidField};
pub use job::{Job, JobPatch, NewJob};
pub use policy::{
    CatchUpLimit, ConcurrencyPolicy, ExecutionType, MaxRetries, MisfirePolicy, StartingDeadline,
    TimeoutSeconds,
};
pub use rollup::{minute_of, Histogram, LastOutcome, MinuteRollup, BUCKETS, BUCKET_BOUNDS_MS};
pub use target::{HttpBody, HttpHeaders, HttpMethod, HttpTarget, SecretHeaderNames, TargetUrl};
pub use text::{Description, JobName};
