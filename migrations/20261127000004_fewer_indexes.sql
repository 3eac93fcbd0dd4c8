-- Every index on executions is paid for on each of a fire's writes. The overlap index
-- (QUEUED, RUNNING, RETRYING by job) already serves cancelling a job's waiting fires.
DROP INDEX executions_waiting_by_job_idx;
