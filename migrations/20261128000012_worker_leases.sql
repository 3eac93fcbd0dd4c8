-- Leases per worker process instead of per fire. A worker registers a row and renews it
-- with one statement every third of LEASE_DURATION, whatever it holds; a claimed fire
-- names its worker. The reaper declares dead the workers whose lease ran out and takes back
-- their RUNNING fires. A worker's hold on thousands of fires no longer costs a write per
-- fire per renewal, and renewals (over a connection of their own) never wait behind claims.
CREATE TABLE workers (
    id                uuid PRIMARY KEY,
    started_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_expires_at  timestamptz NOT NULL,
    -- Set by the reaper (or a stopping worker): no claim may name it any more, and its
    -- RUNNING fires are taken back.
    dead              boolean     NOT NULL DEFAULT false
);

-- The worker that holds a RUNNING fire, and afterwards the one that ran its last attempt.
ALTER TABLE executions ADD COLUMN worker_id uuid;

-- Fires RUNNING under per-fire leases when this runs belong to one stand-in worker that
-- nobody renews: it expires when the last of those leases would have.
INSERT INTO workers (id, lease_expires_at)
SELECT '00000000-0000-0000-0000-000000000000', COALESCE(max(lease_expires_at), clock_timestamp())
FROM executions WHERE status = 'RUNNING' HAVING count(*) > 0;
UPDATE executions SET worker_id = '00000000-0000-0000-0000-000000000000' WHERE status = 'RUNNING';

-- The reaper's read: a dead worker's RUNNING fires.
DROP INDEX executions_lease_idx;
CREATE INDEX executions_running_by_worker_idx ON executions (worker_id) WHERE status = 'RUNNING';
ALTER TABLE executions DROP COLUMN lease_expires_at;
