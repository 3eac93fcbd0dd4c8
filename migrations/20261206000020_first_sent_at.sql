-- When a fire's first recorded request was sent, by the worker's clock: its lateness is
-- this less scheduled_at (started_at is held to the scheduled time, so it cannot tell).
-- A nullable column without a default: no row is rewritten, and no index names it, so
-- outcome writes stay HOT updates.
ALTER TABLE executions ADD COLUMN first_sent_at timestamptz;

-- A history converted later gets the column in its partitioned tables too, so the
-- unpartitioned table (which has it now) attaches as their first partition.
ALTER FUNCTION tickwork_create_partitioned_history()
    RENAME TO tickwork_create_partitioned_history_before_first_sent_at;
CREATE FUNCTION tickwork_create_partitioned_history() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM tickwork_create_partitioned_history_before_first_sent_at();
    ALTER TABLE executions ADD COLUMN first_sent_at timestamptz;
END
$fn$;
