-- A bounded window of ready work, as in PostgreSQL: fires recorded while the workers are
-- behind are held (QUEUED, not queued in memory) and released oldest first as room frees up.
ALTER TABLE executions ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
CREATE INDEX executions_held_idx ON executions (scheduled_at, id) WHERE held AND status = 'QUEUED';
DROP INDEX executions_queued_idx;
CREATE INDEX executions_queued_idx ON executions (queued_at) WHERE status = 'QUEUED' AND NOT held;
