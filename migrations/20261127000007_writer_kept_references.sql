-- The references from executions to jobs and from attempts to executions are kept by the
-- writers rather than by foreign-key triggers, which cost a lookup and a row lock per
-- inserted row (a tenth of PostgreSQL's time at 10,000 fires per second):
--   * an execution is inserted only by the tick, in the transaction that holds its job row
--     locked, and job rows are never deleted (a deleted job keeps its row, with deleted_at);
--   * an attempt is inserted only in the statement that updates its execution;
--   * history retention and the removal of fires recorded ahead delete an execution's
--     attempts in the statement that deletes the execution.
ALTER TABLE executions DROP CONSTRAINT IF EXISTS executions_job_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_execution_id_fkey;
