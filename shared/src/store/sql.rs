//! SQL text both stores run as it is (`$n` parameters), with the macros that bind their
//! parameters in order.

/// Soft-deletes job `$1` at `$2` (the first deletion time is kept).
pub(super) const SOFT_DELETE_JOB: &str = "UPDATE jobs SET is_active = false, \
     next_run_at = NULL, updated_at = CASE WHEN deleted_at IS NULL THEN $2 ELSE updated_at END, \
     deleted_at = COALESCE(deleted_at, $2) WHERE id = $1";

/// Cancels the QUEUED and RETRYING fires of job `$1` at `$2` (a finished fire is never
/// held: the index of held fires keeps only those waiting).
pub(super) const CANCEL_WAITING: &str = "UPDATE executions SET status = 'CANCELLED', \
     finished_at = $2, next_attempt_at = NULL, held = false \
     WHERE job_id = $1 AND status IN ('QUEUED', 'RETRYING')";

/// QUEUED fires queued from `$4` and before `$1` and due by `$3`, at most `$2`; held fires
/// are not lost.
pub(super) const STALE_QUEUED: &str = "SELECT id, queued_at FROM executions \
     WHERE finished_at IS NULL AND status = 'QUEUED' AND NOT held \
     AND queued_at >= $4 AND queued_at < $1 AND scheduled_at <= $3 \
     ORDER BY queued_at LIMIT $2";

/// Whether any fire is held.
pub(super) const HOLDS_ANY: &str =
    "SELECT EXISTS (SELECT 1 FROM executions WHERE held AND status = 'QUEUED')";

/// RETRYING fires due before `$1`, at most `$2`.
pub(super) const OVERDUE_RETRIES: &str = "SELECT id FROM executions \
     WHERE status = 'RETRYING' AND next_attempt_at < $1 \
     ORDER BY next_attempt_at LIMIT $2";

/// The attempt that ended a SUCCEEDED fire, read from its execution row (no attempt row is
/// written for it), as attempt rows are read; the caller appends which executions
/// (`e.id = ...`). Fires that succeeded before the row kept it have an attempt row instead.
pub(super) const SUCCEEDED_ATTEMPT: &str = "SELECT e.id AS execution_id, e.attempt, \
     COALESCE(e.started_at, e.finished_at) AS started_at, e.finished_at, \
     COALESCE(e.duration_ms, 0) AS duration_ms, e.http_status, e.error, e.response_body \
     FROM executions e WHERE e.status = 'SUCCEEDED' AND e.finished_at IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM attempts a \
         WHERE a.execution_id = e.id AND a.attempt = e.attempt) AND";

/// Why a fire ended EXPIRED, as an SQL expression over its job `j` (both stores).
pub(super) const EXPIRED_ERROR: &str = "'not started within startingDeadlineSeconds (' \
     || j.starting_deadline_seconds || ' s) of its time; not sent'";

/// Columns of an execution.
pub(super) const EXECUTION_COLUMNS: &str = "id, job_id, scheduled_at, status, attempt, \
     started_at, finished_at, duration_ms, http_status, error, next_attempt_at, crashes, kind, \
     first_sent_at";

/// Writes every column of a job: inserts a new one, or replaces the row of an existing one
/// (its creation time and tenant kept). The same text serves both stores (`$n` parameters).
pub(super) const WRITE_JOB: &str = "INSERT INTO jobs (id, name, description, cron_expression, \
     timezone, http_method, http_url, http_headers, http_body, execution_type, max_retries, \
     timeout_seconds, is_active, next_run_at, created_at, updated_at, deleted_at, \
     misfire_policy, catch_up_limit, concurrency_policy, signing_secret, \
     previous_signing_secret, previous_secret_expires_at, tenant, starting_deadline_seconds) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22, $23, $24, $25) \
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
     description = EXCLUDED.description, cron_expression = EXCLUDED.cron_expression, \
     timezone = EXCLUDED.timezone, http_method = EXCLUDED.http_method, \
     http_url = EXCLUDED.http_url, http_headers = EXCLUDED.http_headers, \
     http_body = EXCLUDED.http_body, execution_type = EXCLUDED.execution_type, \
     max_retries = EXCLUDED.max_retries, timeout_seconds = EXCLUDED.timeout_seconds, \
     is_active = EXCLUDED.is_active, next_run_at = EXCLUDED.next_run_at, \
     updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at, \
     misfire_policy = EXCLUDED.misfire_policy, catch_up_limit = EXCLUDED.catch_up_limit, \
     concurrency_policy = EXCLUDED.concurrency_policy, \
     signing_secret = EXCLUDED.signing_secret, \
     previous_signing_secret = EXCLUDED.previous_signing_secret, \
     previous_secret_expires_at = EXCLUDED.previous_secret_expires_at, \
     starting_deadline_seconds = EXCLUDED.starting_deadline_seconds";

/// Binds a job's columns to [`WRITE_JOB`], in its parameter order.
macro_rules! bind_job {
    ($query:expr, $job:expr) => {{
        let job = $job;
        $query
            .bind(job.id)
            .bind(&job.name)
            .bind(&job.description)
            .bind(&job.cron_expression)
            .bind(&job.timezone)
            .bind(job.http_method.as_str())
            .bind(&job.http_url)
            .bind(sqlx::types::Json(&job.http_headers))
            .bind(&job.http_body)
            .bind(job.execution_type.as_str())
            .bind(job.max_retries)
            .bind(job.timeout_seconds)
            .bind(job.is_active)
            .bind(job.next_run_at)
            .bind(job.created_at)
            .bind(job.updated_at)
            .bind(job.deleted_at)
            .bind(job.misfire_policy.as_str())
            .bind(job.catch_up_limit)
            .bind(job.concurrency_policy.as_str())
            .bind(&job.signing_secret)
            .bind(&job.previous_signing_secret)
            .bind(job.previous_secret_expires_at)
            .bind(&job.tenant)
            .bind(job.starting_deadline_seconds)
    }};
}
pub(super) use bind_job;

/// Columns of a due job, as the tick's claim reads them.
pub(super) const DUE_COLUMNS: &str =
    "id, cron_expression, timezone, next_run_at, misfire_policy, catch_up_limit";

/// Puts a dead letter back in the queue: same execution, a fresh round of retries and crash
/// budget (the attempts so far stay in the history and keep their numbers). `$1` is the
/// execution, `$2` the time (kept in `requeued_at`); only a FAILED, ABANDONED or EXPIRED fire moves. `queued_at`
/// restarts the clock of the job's `startingDeadlineSeconds`, and `attempt_base = attempt`
/// makes its next attempt a first one again, subject to it.
pub(super) const REQUEUE_DEAD_LETTER: &str = "UPDATE executions SET status = 'QUEUED', \
     queued_at = $2, started_at = NULL, finished_at = NULL, duration_ms = NULL, \
     http_status = NULL, error = NULL, response_body = NULL, \
     next_attempt_at = NULL, crashes = 0, handbacks = 0, \
     attempt_base = attempt, requeued_at = $2, held = false \
     WHERE id = $1 AND status IN ('FAILED', 'ABANDONED', 'EXPIRED')";

/// A job's sealed values replaced, only if they are still what was read; nothing else
/// about the job changes. Parameters: id, the new headers and signing secrets, then the
/// ones read (see [`bind_reseal`]).
pub(super) const RESEAL_JOB: &str = "UPDATE jobs \
     SET http_headers = $2, signing_secret = $3, previous_signing_secret = $4, http_url = $8 \
     WHERE id = $1 AND http_headers = $5 \
       AND signing_secret IS NOT DISTINCT FROM $6 \
       AND previous_signing_secret IS NOT DISTINCT FROM $7 AND http_url = $9";

/// Binds [`RESEAL_JOB`]'s parameters.
macro_rules! bind_reseal {
    ($query:expr, $id:expr, $before:expr, $after:expr) => {{
        let (before, after): (&$crate::store::SealedValues, &$crate::store::SealedValues) =
            ($before, $after);
        $query
            .bind($id)
            .bind(sqlx::types::Json(&after.http_headers))
            .bind(&after.signing_secret)
            .bind(&after.previous_signing_secret)
            .bind(sqlx::types::Json(&before.http_headers))
            .bind(&before.signing_secret)
            .bind(&before.previous_signing_secret)
            .bind(&after.http_url)
            .bind(&before.http_url)
    }};
}
pub(super) use bind_reseal;

/// A tenant's unfinished fires and dead letters by state (`$1` the tenant).
pub(super) const TENANT_COUNTS: &str = "SELECT e.status, count(*) FROM executions e \
     JOIN jobs j ON j.id = e.job_id WHERE j.tenant = $1 \
     AND e.status IN ('QUEUED', 'RUNNING', 'RETRYING', 'FAILED', 'ABANDONED', 'EXPIRED') \
     AND (e.finished_at IS NULL OR (e.finished_at IS NOT NULL AND e.error IS NOT NULL)) \
     GROUP BY e.status";
