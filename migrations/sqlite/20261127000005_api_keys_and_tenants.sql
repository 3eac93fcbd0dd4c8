-- API keys and tenants, as in the PostgreSQL migration of the same name.
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';

CREATE TABLE job_idempotency_keys_by_tenant (
    tenant       TEXT NOT NULL,
    key          TEXT NOT NULL,
    job_id       BLOB NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
INSERT INTO job_idempotency_keys_by_tenant (tenant, key, job_id, fingerprint, created_at)
    SELECT 'default', key, job_id, fingerprint, created_at FROM job_idempotency_keys;
DROP TABLE job_idempotency_keys;
ALTER TABLE job_idempotency_keys_by_tenant RENAME TO job_idempotency_keys;

CREATE TABLE api_keys (
    id          BLOB PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
