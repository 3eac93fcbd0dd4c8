-- Idempotency-Key on POST /api/v1/jobs: a retried create returns the job the first request
-- made. The fingerprint (SHA-256 of the request body) tells a retry from a different
-- request that reuses the key.
CREATE TABLE job_idempotency_keys (
    key          text PRIMARY KEY,
    job_id       uuid        NOT NULL,
    fingerprint  text        NOT NULL,
    created_at   timestamptz NOT NULL
);
