-- The execution lifecycle: soft delete, retries, cancellation, and every attempt kept.

-- Soft delete: a deleted job is inactive, keeps its history, and can be brought back.
ALTER TABLE jobs ADD COLUMN deleted_at timestamptz;

ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN
    ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED'));

-- When a RETRYING fire is due for its next attempt.
ALTER TABLE executions ADD COLUMN next_attempt_at timestamptz;
-- The sweeper's read of retries whose scheduled item was lost.
CREATE INDEX executions_retrying_idx ON executions (next_attempt_at) WHERE status = 'RETRYING';
-- Cancelling a job's waiting fires reads them by job.
CREATE INDEX executions_waiting_by_job_idx ON executions (job_id)
    WHERE status IN ('QUEUED', 'RETRYING');

-- One row per attempt: an execution's full story.
CREATE TABLE attempts (
    execution_id   uuid        NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    attempt        integer     NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    duration_ms    bigint      NOT NULL,
    http_status    integer,
    error          text,
    -- The start of the target's answer, truncated.
    response_body  text,
    PRIMARY KEY (execution_id, attempt)
);
