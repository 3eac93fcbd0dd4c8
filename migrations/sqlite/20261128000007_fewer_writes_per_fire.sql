-- Fewer writes per fire, as in PostgreSQL: a successful last attempt lives in the execution
-- row (with the answer's excerpt), not in an attempt row; the overlap check reads the latest
-- earlier fire that ran through the one-row-per-fire key.
ALTER TABLE executions ADD COLUMN response_body TEXT;
DROP INDEX executions_unfinished_by_job_idx;
