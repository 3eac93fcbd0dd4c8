-- Jobs are listed newest first by id (UUID v7, so ids sort by creation time) through the
-- primary key. The separate creation-time index was updated on every fire, because each
-- fire moves next_run_at and that update cannot be HOT.
DROP INDEX jobs_created_idx;
