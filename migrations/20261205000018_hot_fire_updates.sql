-- A fire's claim as a HOT update: no index of `executions` names a column the claim changes
-- (status, attempt, started_at, worker_id), and each day's partition leaves a tenth of every
-- page free, so PostgreSQL writes the claimed row beside the queued one and adds no index
-- entry. The partial indexes on status give way to indexes on columns the happy path leaves
-- alone until the outcome:
--
--   unfinished   (queued_at) WHERE finished_at IS NULL      the sweeper, the reaper, retention
--   failed       (id) WHERE finished_at IS NOT NULL AND error IS NOT NULL
--                                                         the dead letters (and skipped fires)
--   held         (scheduled_at, id) WHERE held             the release of held fires
--   retry due    (next_attempt_at) WHERE next_attempt_at IS NOT NULL   retries coming due
--
-- Two checks make the predicates mean the states they stand for: a fire is unfinished
-- exactly while it has no finished_at, and a dead letter always says why.
--
-- A history with rows in its partitions gets the new indexes from `tickwork-api migrate`
-- (or the tick function's {"action":"migrate"}), built concurrently a partition at a time;
-- the status indexes are dropped once they are all in place. Partitions still empty are
-- indexed here. An unpartitioned history gets them from its conversion.

-- Creates the partitioned `executions` and `attempts` (no partitions yet), as in migration
-- 16 with the indexes and checks above.
CREATE OR REPLACE FUNCTION tickwork_create_partitioned_history() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    CREATE TABLE executions (
        id              uuid        NOT NULL,
        job_id          uuid        NOT NULL,
        scheduled_at    timestamptz NOT NULL,
        status          text        NOT NULL,
        attempt         integer     NOT NULL DEFAULT 0,
        queued_at       timestamptz NOT NULL,
        started_at      timestamptz,
        finished_at     timestamptz,
        duration_ms     bigint,
        http_status     integer,
        error           text,
        next_attempt_at timestamptz,
        crashes         integer     NOT NULL DEFAULT 0,
        handbacks       integer     NOT NULL DEFAULT 0,
        execution_type  text,
        kind            text        NOT NULL DEFAULT 'SCHEDULED',
        attempt_base    integer     NOT NULL DEFAULT 0,
        worker_id       uuid,
        response_body   text,
        held            boolean     NOT NULL DEFAULT false,
        requeued_at     timestamptz,
        CONSTRAINT executions_pkey PRIMARY KEY (id, scheduled_at),
        CONSTRAINT executions_one_per_fire UNIQUE (job_id, scheduled_at),
        CONSTRAINT executions_status_check CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING',
            'SUCCEEDED', 'FAILED', 'CANCELLED', 'ABANDONED', 'SKIPPED', 'EXPIRED')),
        CONSTRAINT executions_execution_type_check
            CHECK (execution_type IN ('AT_LEAST_ONCE', 'AT_MOST_ONCE')),
        CONSTRAINT executions_kind_check CHECK (kind IN ('SCHEDULED', 'MANUAL')),
        CONSTRAINT executions_finished_when_final
            CHECK ((finished_at IS NULL) = (status IN ('QUEUED', 'RUNNING', 'RETRYING'))),
        CONSTRAINT executions_dead_letters_say_why
            CHECK (status NOT IN ('FAILED', 'ABANDONED', 'EXPIRED') OR error IS NOT NULL)
    ) PARTITION BY RANGE (scheduled_at);
    CREATE INDEX executions_unfinished_idx ON executions (queued_at)
        WHERE finished_at IS NULL;
    CREATE INDEX executions_failed_idx ON executions (id)
        WHERE finished_at IS NOT NULL AND error IS NOT NULL;
    CREATE INDEX executions_held_by_time_idx ON executions (scheduled_at, id) WHERE held;
    CREATE INDEX executions_retry_due_idx ON executions (next_attempt_at)
        WHERE next_attempt_at IS NOT NULL;
    CREATE INDEX executions_requeued_idx ON executions (requeued_at)
        WHERE requeued_at IS NOT NULL;

    CREATE TABLE attempts (
        execution_id  uuid        NOT NULL,
        attempt       integer     NOT NULL,
        started_at    timestamptz NOT NULL,
        finished_at   timestamptz NOT NULL,
        duration_ms   bigint      NOT NULL,
        http_status   integer,
        error         text,
        response_body text,
        scheduled_at  timestamptz NOT NULL,
        CONSTRAINT attempts_pkey PRIMARY KEY (execution_id, attempt, scheduled_at)
    ) PARTITION BY RANGE (scheduled_at);
END
$fn$;

-- The partitions of UTC day `day` of both tables, as in migration 16; a day of `executions`
-- keeps a tenth of each page free for the claims of the fires on it (more would have every
-- read of a page try to prune it).
CREATE OR REPLACE FUNCTION tickwork_history_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    from_ts timestamptz := day::timestamp AT TIME ZONE 'UTC';
    to_ts   timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    suffix  text := to_char(day, 'YYYYMMDD');
    layout  history_layout;
    tbl     text;
BEGIN
    SELECT * INTO layout FROM history_layout;
    IF NOT layout.partitioned OR from_ts < COALESCE(layout.legacy_before, '-infinity') THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tickwork_history_partition'));
    IF to_regclass('executions_p' || suffix) IS NOT NULL THEN
        RETURN false;
    END IF;
    FOREACH tbl IN ARRAY ARRAY['executions', 'attempts'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) %s',
            tbl || '_p' || suffix, tbl,
            CASE WHEN tbl = 'executions' THEN 'WITH (fillfactor = 90)' ELSE '' END);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            tbl, tbl || '_p' || suffix, from_ts, to_ts);
    END LOOP;
    RETURN true;
END
$fn$;

DO $$
DECLARE
    names   text[] := ARRAY['unfinished_idx', 'failed_idx', 'held_by_time_idx', 'retry_due_idx'];
    defs    text[] := ARRAY['(queued_at) WHERE finished_at IS NULL',
                            '(id) WHERE finished_at IS NOT NULL AND error IS NOT NULL',
                            '(scheduled_at, id) WHERE held',
                            '(next_attempt_at) WHERE next_attempt_at IS NOT NULL'];
    part    text;
    empty   boolean;
    layout  history_layout;
BEGIN
    SELECT * INTO layout FROM history_layout;
    -- Checked for every row written from now on; rows already stored are proved by the
    -- conversion (unpartitioned) or were written by statements that kept them.
    ALTER TABLE executions ADD CONSTRAINT executions_finished_when_final
        CHECK ((finished_at IS NULL) = (status IN ('QUEUED', 'RUNNING', 'RETRYING'))) NOT VALID;
    ALTER TABLE executions ADD CONSTRAINT executions_dead_letters_say_why
        CHECK (status NOT IN ('FAILED', 'ABANDONED', 'EXPIRED') OR error IS NOT NULL) NOT VALID;
    IF NOT layout.partitioned THEN
        RETURN;
    END IF;
    FOR i IN 1..array_length(names, 1) LOOP
        EXECUTE format('CREATE INDEX %I ON ONLY executions %s', 'executions_' || names[i], defs[i]);
    END LOOP;
    FOR part IN
        SELECT c.relname::text FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
        WHERE h.inhparent = 'executions'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %I SET (fillfactor = 90)', part);
        -- An empty partition (every one, on a new database) is indexed at once.
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I)', part) INTO empty;
        CONTINUE WHEN NOT empty;
        FOR i IN 1..array_length(names, 1) LOOP
            EXECUTE format('CREATE INDEX %I ON %I %s', part || '_' || names[i], part, defs[i]);
            EXECUTE format('ALTER INDEX %I ATTACH PARTITION %I',
                'executions_' || names[i], part || '_' || names[i]);
        END LOOP;
    END LOOP;
    -- With every partition indexed, the status indexes go now; otherwise the migrate step
    -- drops them once it has built the rest.
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = ANY (SELECT 'executions_' || n FROM unnest(names) n)
          AND NOT i.indisvalid
    ) THEN
        DROP INDEX executions_dead_idx, executions_held_idx, executions_queued_idx,
            executions_retrying_idx, executions_running_by_worker_idx;
    END IF;
END
$$;

-- Whether any fire is held (the tick asks several times a second). Read from the index of
-- held fires whatever the statistics: a day's partition that has none yet (a new day, or a
-- server without autovacuum) would otherwise be read whole, held being unselective to a
-- planner that knows nothing of it.
CREATE FUNCTION tickwork_holds_any() RETURNS boolean LANGUAGE sql STABLE
    SET enable_seqscan = off SET enable_bitmapscan = off
AS $fn$
    SELECT EXISTS (SELECT 1 FROM executions WHERE held AND status = 'QUEUED')
$fn$;
