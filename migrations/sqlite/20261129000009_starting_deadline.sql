-- Bounded lateness, as in the PostgreSQL migration of the same name: jobs may set
-- startingDeadlineSeconds (no default), and EXPIRED is a final state.
ALTER TABLE jobs ADD COLUMN starting_deadline_seconds INTEGER
    CHECK (starting_deadline_seconds BETWEEN 1 AND 86400);

-- SQLite cannot change a CHECK constraint in place: the executions table is made again
-- with EXPIRED among its states, its rows copied, and its indexes made again (the
-- dead-letter one with EXPIRED).
CREATE TABLE executions_with_expired (
    id                BLOB    PRIMARY KEY,
    job_id            BLOB    NOT NULL,
    scheduled_at      TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING',
        'SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', 'EXPIRED')),
    attempt           INTEGER NOT NULL DEFAULT 0,
    queued_at         TEXT    NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    duration_ms       INTEGER,
    http_status       INTEGER,
    error             TEXT,
    next_attempt_at   TEXT,
    crashes           INTEGER NOT NULL DEFAULT 0,
    handbacks         INTEGER NOT NULL DEFAULT 0,
    execution_type    TEXT CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE')),
    kind              TEXT    NOT NULL DEFAULT 'SCHEDULED' CHECK (kind IN ('SCHEDULED', 'MANUAL')),
    attempt_base      INTEGER NOT NULL DEFAULT 0,
    worker_id         BLOB,
    response_body     TEXT,
    held              INTEGER NOT NULL DEFAULT 0,
    -- One execution per fire.
    CONSTRAINT executions_one_per_fire UNIQUE (job_id, scheduled_at)
);
INSERT INTO executions_with_expired (id, job_id, scheduled_at, status, attempt, queued_at,
    started_at, finished_at, duration_ms, http_status, error, next_attempt_at, crashes,
    handbacks, execution_type, kind, attempt_base, worker_id, response_body, held)
SELECT id, job_id, scheduled_at, status, attempt, queued_at, started_at, finished_at,
    duration_ms, http_status, error, next_attempt_at, crashes, handbacks, execution_type,
    kind, attempt_base, worker_id, response_body, held
FROM executions;
DROP TABLE executions;
ALTER TABLE executions_with_expired RENAME TO executions;

CREATE INDEX executions_queued_idx ON executions (queued_at) WHERE status = 'QUEUED' AND NOT held;
CREATE INDEX executions_held_idx ON executions (scheduled_at, id) WHERE held AND status = 'QUEUED';
CREATE INDEX executions_retrying_idx ON executions (next_attempt_at) WHERE status = 'RETRYING';
CREATE INDEX executions_running_by_worker_idx ON executions (worker_id) WHERE status = 'RUNNING';
CREATE INDEX executions_dead_idx ON executions (id)
    WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED');
