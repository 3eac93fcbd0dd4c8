-- When a fire's first recorded request was sent, by the worker's clock: its lateness is
-- this less scheduled_at.
ALTER TABLE executions ADD COLUMN first_sent_at TEXT;
