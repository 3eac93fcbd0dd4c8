-- A bounded window of ready work in Redis. When the ready work (Redis's ready list and the
-- fires recorded ahead) reaches the window, the tick records fires as held: QUEUED in
-- PostgreSQL, not pushed. A maintenance pass releases held fires, oldest first, as room
-- frees up, so a backlog of millions waits on disk and costs Redis no memory.
ALTER TABLE executions ADD COLUMN held boolean NOT NULL DEFAULT false;

-- The release's read: held fires, oldest first. Empty unless the workers are behind.
CREATE INDEX executions_held_idx ON executions (scheduled_at, id) WHERE held AND status = 'QUEUED';

-- The sweeper looks for pushes that were lost, never for fires held on purpose.
DROP INDEX executions_queued_idx;
CREATE INDEX executions_queued_idx ON executions (queued_at) WHERE status = 'QUEUED' AND NOT held;
