-- Operator controls, as in the PostgreSQL migration of the same name.
ALTER TABLE executions ADD COLUMN kind TEXT NOT NULL DEFAULT 'SCHEDULED'
    CHECK (kind IN ('SCHEDULED', 'MANUAL'));
ALTER TABLE executions ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
CREATE INDEX executions_dead_idx ON executions (id) WHERE status IN ('FAILED', 'ABANDONED');
