-- Fewer writes per fire.
--
-- A fire that succeeds is described by its execution row alone: the row keeps the answer's
-- excerpt, and no attempt row is written for a successful last attempt (the attempts table
-- keeps the attempts that did not end the fire: failed tries before a retry, crashes,
-- hand-backs, and the last attempt of a fire that failed). Reads put the two together.
ALTER TABLE executions ADD COLUMN response_body text;

-- The overlap check (concurrencyPolicy FORBID) reads the latest earlier fire of the job
-- that ran or waits to run, through the one-row-per-fire key (job_id, scheduled_at): under
-- FORBID a fire runs only when every earlier fire had finished, so that one fire tells. The
-- index of every unfinished fire by job cost two random index insertions per fire, for
-- every job, to serve the few FORBID ones.
DROP INDEX executions_unfinished_by_job_idx;
