-- The embedded store (tickwork-local without servers): the PostgreSQL schema as it stands
-- after its migrations, in SQLite. Ids are 16-byte blobs (UUID v7, so byte order is time
-- order). Times are RFC 3339 text with one offset (+00:00): text order is time order.

CREATE TABLE jobs (
    id                  BLOB    PRIMARY KEY,
    name                TEXT    NOT NULL,
    description         TEXT    NOT NULL DEFAULT '',
    cron_expression     TEXT    NOT NULL,
    timezone            TEXT    NOT NULL DEFAULT 'UTC',
    http_method         TEXT    NOT NULL CHECK (http_method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
    http_url            TEXT    NOT NULL,
    http_headers        TEXT    NOT NULL DEFAULT '{}',
    http_body           TEXT,
    execution_type      TEXT    NOT NULL CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE')),
    max_retries         INTEGER NOT NULL CHECK (max_retries BETWEEN 0 AND 20),
    timeout_seconds     INTEGER NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 90),
    is_active           INTEGER NOT NULL DEFAULT 1,
    -- The next fire time; NULL while inactive or once the schedule has ended.
    next_run_at         TEXT,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    deleted_at          TEXT,
    misfire_policy      TEXT    NOT NULL DEFAULT 'FIRE_ONCE'
        CHECK (misfire_policy IN ('FIRE_ONCE', 'SKIP', 'FIRE_ALL')),
    catch_up_limit      INTEGER NOT NULL DEFAULT 100 CHECK (catch_up_limit BETWEEN 1 AND 10000),
    concurrency_policy  TEXT    NOT NULL DEFAULT 'ALLOW'
        CHECK (concurrency_policy IN ('ALLOW', 'FORBID')),
    skipped_fires       INTEGER NOT NULL DEFAULT 0
);

-- The tick's read: active jobs that are due.
CREATE INDEX jobs_due_idx ON jobs (next_run_at) WHERE is_active AND next_run_at IS NOT NULL;

CREATE TABLE executions (
    id                BLOB    PRIMARY KEY,
    job_id            BLOB    NOT NULL,
    scheduled_at      TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING',
        'SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED')),
    attempt           INTEGER NOT NULL DEFAULT 0,
    queued_at         TEXT    NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    duration_ms       INTEGER,
    http_status       INTEGER,
    error             TEXT,
    next_attempt_at   TEXT,
    lease_expires_at  TEXT,
    crashes           INTEGER NOT NULL DEFAULT 0,
    handbacks         INTEGER NOT NULL DEFAULT 0,
    execution_type    TEXT CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE')),
    -- One execution per fire.
    CONSTRAINT executions_one_per_fire UNIQUE (job_id, scheduled_at)
);

-- The sweeper, the promoter's check, the reaper and the overlap check, as in PostgreSQL.
CREATE INDEX executions_queued_idx ON executions (queued_at) WHERE status = 'QUEUED';
CREATE INDEX executions_retrying_idx ON executions (next_attempt_at) WHERE status = 'RETRYING';
CREATE INDEX executions_lease_idx ON executions (lease_expires_at) WHERE status = 'RUNNING';
CREATE INDEX executions_unfinished_by_job_idx ON executions (job_id)
    WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING');

-- One row per attempt: an execution's full story.
CREATE TABLE attempts (
    execution_id   BLOB    NOT NULL,
    attempt        INTEGER NOT NULL,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT    NOT NULL,
    duration_ms    INTEGER NOT NULL,
    http_status    INTEGER,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (execution_id, attempt)
) WITHOUT ROWID;
