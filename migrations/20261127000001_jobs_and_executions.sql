-- Jobs: what to call and when. Executions: one row per fire (job, scheduled time).

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    name             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    cron_expression  text        NOT NULL,
    timezone         text        NOT NULL DEFAULT 'UTC',
    http_method      text        NOT NULL CHECK (http_method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
    http_url         text        NOT NULL,
    http_headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    http_body        text,
    execution_type   text        NOT NULL CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE')),
    max_retries      integer     NOT NULL CHECK (max_retries BETWEEN 0 AND 20),
    timeout_seconds  integer     NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 90),
    is_active        boolean     NOT NULL DEFAULT true,
    -- The next fire time; NULL while inactive or once the schedule has ended.
    next_run_at      timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- The tick's only read: active jobs that are due. Idle and inactive jobs cost nothing.
CREATE INDEX jobs_due_idx ON jobs (next_run_at) WHERE is_active AND next_run_at IS NOT NULL;
-- Listing newest first, with a (created_at, id) cursor.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);

CREATE TABLE executions (
    id            uuid PRIMARY KEY,
    job_id        uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    scheduled_at  timestamptz NOT NULL,
    status        text        NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    attempt       integer     NOT NULL DEFAULT 0,
    queued_at     timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint,
    http_status   integer,
    error         text,
    -- One execution per fire, however many ticks run at once.
    CONSTRAINT executions_one_per_fire UNIQUE (job_id, scheduled_at)
);

-- The sweeper's read: fires still waiting for a worker.
CREATE INDEX executions_queued_idx ON executions (queued_at) WHERE status = 'QUEUED';
-- A job's history, and its last finished run, are served by the unique index
-- (job_id, scheduled_at) read backwards.
