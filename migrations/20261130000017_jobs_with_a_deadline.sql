-- The expiry pass looks for fires past their job's startingDeadlineSeconds; with no job
-- setting one (the default) it reads nothing. This index answers "does any job set one?"
-- without reading the jobs table.
CREATE INDEX jobs_with_deadline_idx ON jobs (id) WHERE starting_deadline_seconds IS NOT NULL;
