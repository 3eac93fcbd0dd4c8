-- Bounded lateness: a job may set startingDeadlineSeconds, and a fire whose first attempt
-- has not started within it (counted from the later of its scheduled time and when it was
-- queued) ends EXPIRED, unsent. No default: jobs have none unless they ask.
ALTER TABLE jobs ADD COLUMN starting_deadline_seconds integer
    CHECK (starting_deadline_seconds BETWEEN 1 AND 86400);

-- EXPIRED is a final state. Every stored row passed the narrower check this replaces, so
-- the new one is added without scanning the table under its exclusive lock (NOT VALID
-- still holds every row written from now on).
ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN
    ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED',
     'SKIPPED', 'EXPIRED')) NOT VALID;

-- The dead-letter list holds expired fires too (they can be put back).
DROP INDEX executions_dead_idx;
CREATE INDEX executions_dead_idx ON executions (id)
    WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED');
