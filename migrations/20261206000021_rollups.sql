-- Per-minute rollups of recorded outcomes, per tenant: the dashboard's charts read these,
-- never the history. Workers add to them every few seconds (rows of the same minute and
-- tenant add up); histograms are bucket counts over fixed bounds (model::BUCKET_BOUNDS_MS).
CREATE TABLE outcome_minutes (
    minute     timestamptz NOT NULL,
    tenant     text        NOT NULL,
    fires      bigint      NOT NULL,
    succeeded  bigint      NOT NULL,
    failed     bigint      NOT NULL,
    retried    bigint      NOT NULL,
    lateness   bigint[]    NOT NULL,
    latency    bigint[]    NOT NULL,
    PRIMARY KEY (minute, tenant)
);

-- Each job's latest recorded outcome, for `GET /api/v1/jobs?status=`. Written by the same
-- flush, and only when a job's status changes: the jobs row is not touched at a fire.
CREATE TABLE job_outcomes (
    job_id        uuid        PRIMARY KEY,
    status        text        NOT NULL,
    scheduled_at  timestamptz NOT NULL
);
CREATE INDEX job_outcomes_status_idx ON job_outcomes (status, job_id);
