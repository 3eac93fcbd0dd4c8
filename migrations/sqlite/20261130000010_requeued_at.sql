-- When a fire was last put back from the dead letters (as in PostgreSQL, where retention
-- keeps the partition of a fire put back within HISTORY_RETENTION).
ALTER TABLE executions ADD COLUMN requeued_at TEXT;
