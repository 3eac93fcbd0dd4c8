-- Idempotency-Key on POST /api/v1/jobs, as in the PostgreSQL migration of the same name.
CREATE TABLE job_idempotency_keys (
    key          TEXT PRIMARY KEY,
    job_id       BLOB NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;
