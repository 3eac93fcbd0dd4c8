//! The domain: jobs, their fires (executions), and the values a job is made of.
//!
//! Values that come from users are parsed into types here (`JobName`, `TargetUrl`, ...);
//! past the API boundary the code holds only values that passed. Nothing here does I/O
//! or reads the clock.

mod access;
mod execution;
mod job;

pub use access::{ApiKey, Tenant, DEFAULT_TENANT};
pub use execution::{Attempt, Delivery, Execution, ExecutionStatus, FireKind, Outcome, Recorded};
pub use job::{
    CatchUpLimit, ConcurrencyPolicy, Description, ExecutionType, HttpBody, HttpHeaders, HttpMethod,
    HttpTarget, InvalidField, Job, JobName, JobPatch, MaxRetries, MisfirePolicy, NewJob,
    StartingDeadline, TargetUrl, TimeoutSeconds,
};
