-- Operator controls: fires run by hand, and dead letters put back.

-- How a fire came to be: SCHEDULED by the tick, or MANUAL (POST /api/v1/jobs/{id}/trigger).
ALTER TABLE executions ADD COLUMN kind text NOT NULL DEFAULT 'SCHEDULED'
    CHECK (kind IN ('SCHEDULED', 'MANUAL'));
-- Attempts made before the fire was last put back from the dead letters: a requeued fire gets
-- its job's maxRetries again, counted from here.
ALTER TABLE executions ADD COLUMN attempt_base integer NOT NULL DEFAULT 0;
-- The dead-letter list: failed and abandoned fires, newest first. Partial, so fires that
-- succeed never touch it.
CREATE INDEX executions_dead_idx ON executions (id) WHERE status IN ('FAILED', 'ABANDONED');
