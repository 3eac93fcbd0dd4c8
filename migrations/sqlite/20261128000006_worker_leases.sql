-- Leases per worker process instead of per fire, as in PostgreSQL: a worker renews one row;
-- a claimed fire names its worker; the reaper declares dead the workers whose lease ran
-- out and takes back their RUNNING fires.
CREATE TABLE workers (
    id                BLOB    PRIMARY KEY,
    started_at        TEXT    NOT NULL,
    lease_expires_at  TEXT    NOT NULL,
    dead              INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE executions ADD COLUMN worker_id BLOB;

-- Fires RUNNING under per-fire leases when this runs belong to one stand-in worker that
-- nobody renews: it expires when the last of those leases would have.
INSERT INTO workers (id, started_at, lease_expires_at)
SELECT zeroblob(16), COALESCE(max(lease_expires_at), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    COALESCE(max(lease_expires_at), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
FROM executions WHERE status = 'RUNNING' HAVING count(*) > 0;
UPDATE executions SET worker_id = zeroblob(16) WHERE status = 'RUNNING';

DROP INDEX executions_lease_idx;
CREATE INDEX executions_running_by_worker_idx ON executions (worker_id) WHERE status = 'RUNNING';
ALTER TABLE executions DROP COLUMN lease_expires_at;
