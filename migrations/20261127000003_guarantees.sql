-- Delivery guarantees under failure: leases, crash counting, misfire and overlap policies.

ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN
    ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED'));

-- A RUNNING fire belongs to its worker until this time; the worker renews it while the
-- request runs, and the reaper takes back fires whose lease ran out.
ALTER TABLE executions ADD COLUMN lease_expires_at timestamptz;
-- Times a worker died (or stalled past its lease) holding this fire; not counted as retries.
ALTER TABLE executions ADD COLUMN crashes integer NOT NULL DEFAULT 0;
-- Times a stopping worker handed this fire back unfinished; not counted as retries.
ALTER TABLE executions ADD COLUMN handbacks integer NOT NULL DEFAULT 0;

-- The reaper's read: RUNNING fires by lease expiry.
CREATE INDEX executions_lease_idx ON executions (lease_expires_at) WHERE status = 'RUNNING';
-- The overlap check: fires of a job that are not finished.
CREATE INDEX executions_unfinished_by_job_idx ON executions (job_id)
    WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING');

ALTER TABLE jobs ADD COLUMN misfire_policy text NOT NULL DEFAULT 'FIRE_ONCE'
    CHECK (misfire_policy IN ('FIRE_ONCE', 'SKIP', 'FIRE_ALL'));
ALTER TABLE jobs ADD COLUMN catch_up_limit integer NOT NULL DEFAULT 100
    CHECK (catch_up_limit BETWEEN 1 AND 10000);
ALTER TABLE jobs ADD COLUMN concurrency_policy text NOT NULL DEFAULT 'ALLOW'
    CHECK (concurrency_policy IN ('ALLOW', 'FORBID'));
-- Fires that came due but were not recorded (misfire policy); a count, not a row each.
ALTER TABLE jobs ADD COLUMN skipped_fires bigint NOT NULL DEFAULT 0;
