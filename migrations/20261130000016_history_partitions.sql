-- History in time partitions: `executions` and `attempts` range-partitioned by the fire's
-- scheduled time, one partition per UTC day, so retention detaches and drops a day at a
-- time instead of deleting rows, and each day's indexes stay the size of a day.
--
-- PostgreSQL requires the partition key in every unique index: the one-row-per-fire key
-- (job_id, scheduled_at) already has it; the primary keys become (id, scheduled_at) and
-- (execution_id, attempt, scheduled_at). An execution's id is a UUID v7 whose timestamp is
-- the fire's scheduled time, so a lookup by id names its partition (see `fire_id.rs`).
--
-- A database with no history is converted here, at once. One with history keeps its tables
-- as they are until `tickwork-api migrate` (or the tick function's {"action":"migrate"})
-- converts them online, in resumable steps: the existing tables become the first partition
-- (everything before a cutoff), and days after it get partitions of their own.

-- How the history is laid out; one row.
CREATE TABLE history_layout (
    only_row            boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Ids made from this time on carry their fire's scheduled time; earlier ones (made by
    -- earlier versions, which took the time they were made) are looked up over the whole
    -- history before it. An hour after this migration, so processes of the earlier version
    -- still running while a deployment rolls over do not matter. NULL: every id does (the
    -- history was empty when this migration ran).
    fire_named_ids_from timestamptz,
    -- Whether `executions` and `attempts` are partitioned.
    partitioned         boolean     NOT NULL DEFAULT false,
    -- The end of the first partition, which holds the history from before the conversion.
    legacy_before       timestamptz,
    -- Progress of the online conversion (the step reached, its cutoff, the backfill key).
    conversion          jsonb       NOT NULL DEFAULT '{}'::jsonb
);

-- An attempt names its fire's scheduled time: the partition key of `attempts`.
ALTER TABLE attempts ADD COLUMN scheduled_at timestamptz;
-- When a fire was last put back from the dead letters: retention keeps the partition of a
-- fire put back within HISTORY_RETENTION. (Its index is built by the conversion, online.)
ALTER TABLE executions ADD COLUMN requeued_at timestamptz;

-- Creates the partitioned `executions` and `attempts` (no partitions yet). Column names,
-- constraint names and index definitions are those of the unpartitioned tables, so those
-- can be attached as a partition without an index being built.
CREATE FUNCTION tickwork_create_partitioned_history() RETURNS void LANGUAGE plpgsql AS $fn$
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
        CONSTRAINT executions_kind_check CHECK (kind IN ('SCHEDULED', 'MANUAL'))
    ) PARTITION BY RANGE (scheduled_at);
    CREATE INDEX executions_dead_idx ON executions (id)
        WHERE status IN ('FAILED', 'ABANDONED', 'EXPIRED');
    CREATE INDEX executions_held_idx ON executions (scheduled_at, id)
        WHERE held AND status = 'QUEUED';
    CREATE INDEX executions_queued_idx ON executions (queued_at)
        WHERE status = 'QUEUED' AND NOT held;
    CREATE INDEX executions_retrying_idx ON executions (next_attempt_at)
        WHERE status = 'RETRYING';
    CREATE INDEX executions_running_by_worker_idx ON executions (worker_id)
        WHERE status = 'RUNNING';
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

-- The partitions of UTC day `day` of both tables, unless they exist or the first partition
-- (the history from before the conversion) covers that day. Each is created empty and then
-- attached, which locks the parent only against other schema changes, never against reads
-- and writes. Safe to call from several processes at once.
CREATE FUNCTION tickwork_history_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $fn$
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
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
            tbl || '_p' || suffix, tbl);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            tbl, tbl || '_p' || suffix, from_ts, to_ts);
    END LOOP;
    RETURN true;
END
$fn$;

-- The last step of the online conversion (`tickwork-api migrate`), in the caller's short
-- transaction: the existing tables, their indexes and checks prepared by the earlier steps
-- (a unique index with the partition key, every check validated, every row proved due
-- before `cutoff`), become the first partition of new partitioned tables, covering
-- everything before `cutoff`; nothing is copied and no index is built.
CREATE FUNCTION tickwork_swap_history(cutoff timestamptz) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    idx record;
BEGIN
    LOCK TABLE executions, attempts IN ACCESS EXCLUSIVE MODE;
    ALTER TABLE executions DROP CONSTRAINT executions_pkey;
    ALTER TABLE executions ADD CONSTRAINT executions_legacy_pkey
        PRIMARY KEY USING INDEX executions_legacy_key;
    ALTER TABLE executions RENAME CONSTRAINT executions_one_per_fire
        TO executions_legacy_one_per_fire;
    FOR idx IN
        SELECT c.relname::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'executions'::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.name,
            regexp_replace(idx.name, '^executions_', 'executions_legacy_'));
    END LOOP;
    ALTER TABLE executions RENAME TO executions_legacy;
    ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
    ALTER TABLE attempts ADD CONSTRAINT attempts_legacy_pkey
        PRIMARY KEY USING INDEX attempts_legacy_key;
    -- Proved by the validated attempts_legacy_bound check: no scan.
    ALTER TABLE attempts ALTER COLUMN scheduled_at SET NOT NULL;
    ALTER TABLE attempts RENAME TO attempts_legacy;
    PERFORM tickwork_create_partitioned_history();
    EXECUTE format('ALTER TABLE executions ATTACH PARTITION executions_legacy '
        'FOR VALUES FROM (MINVALUE) TO (%L)', cutoff);
    EXECUTE format('ALTER TABLE attempts ATTACH PARTITION attempts_legacy '
        'FOR VALUES FROM (MINVALUE) TO (%L)', cutoff);
    UPDATE history_layout SET partitioned = true, legacy_before = cutoff,
        conversion = conversion || jsonb_build_object('swapped_at', now());
    FOR d IN 0..2 LOOP
        PERFORM tickwork_history_partition((cutoff AT TIME ZONE 'UTC')::date + d);
    END LOOP;
END
$fn$;

DO $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF EXISTS (SELECT 1 FROM executions) OR EXISTS (SELECT 1 FROM attempts) THEN
        INSERT INTO history_layout (fire_named_ids_from, partitioned)
        VALUES (now() + interval '1 hour', false);
    ELSE
        DROP TABLE attempts;
        DROP TABLE executions;
        PERFORM tickwork_create_partitioned_history();
        INSERT INTO history_layout (fire_named_ids_from, partitioned) VALUES (NULL, true);
        FOR d IN -1..2 LOOP
            PERFORM tickwork_history_partition(today + d);
        END LOOP;
    END IF;
END
$$;
