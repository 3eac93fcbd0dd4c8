-- Who may call the API: API keys, each belonging to a tenant. Jobs (and through them their
-- history) belong to a tenant; a key sees only its tenant's jobs. Jobs stored before keys
-- existed belong to the tenant "default", which the operator key (API_ADMIN_KEY) works in.
ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';

-- Idempotency keys are per tenant: two tenants may use the same key.
ALTER TABLE job_idempotency_keys ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE job_idempotency_keys DROP CONSTRAINT job_idempotency_keys_pkey;
ALTER TABLE job_idempotency_keys ADD PRIMARY KEY (tenant, key);

-- The key itself is never stored: only its SHA-256 (keys are 256 random bits, so a fast
-- hash is enough) and its first characters, to recognise it in a list.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    prefix      text        NOT NULL,
    hash        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
