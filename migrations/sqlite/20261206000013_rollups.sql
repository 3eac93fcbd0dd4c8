-- Per-minute rollups and each job's latest recorded outcome, as in the PostgreSQL migration
-- of the same name; histograms are JSON arrays of bucket counts.
CREATE TABLE outcome_minutes (
    minute     TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    fires      INTEGER NOT NULL,
    succeeded  INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    retried    INTEGER NOT NULL,
    lateness   TEXT    NOT NULL,
    latency    TEXT    NOT NULL,
    PRIMARY KEY (minute, tenant)
);

CREATE TABLE job_outcomes (
    job_id        BLOB PRIMARY KEY,
    status        TEXT NOT NULL,
    scheduled_at  TEXT NOT NULL
);
CREATE INDEX job_outcomes_status_idx ON job_outcomes (status, job_id);
