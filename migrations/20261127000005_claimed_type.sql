-- The delivery promise a fire was claimed under. The reaper and a stopping worker decide
-- by it, so changing a job's executionType never turns an AT_MOST_ONCE fire caught
-- mid-request into one that is sent again.
ALTER TABLE executions ADD COLUMN execution_type text
    CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE'));
