-- Realtime: the change feed readers follow, output streams and input streams.
--
-- Every run's event log now starts with a 'created' event (message: its first status;
-- attributes: the metadata it was created with, if any), so a reader of the feed sees runs
-- appear and can replay their metadata; creating a run is still not a status change.
--
-- The feed is run_events' created, status, metadata, tag and input events. Ids come from a
-- sequence, so they are not in commit order across transactions: a reader follows the feed
-- by snapshots instead (store/feed.py). tx is the transaction that wrote the event; the rows a
-- reader has not seen yet are those whose tx was not visible in its last snapshot. Added
-- without a default first so existing rows are not rewritten (they stay NULL: history).
ALTER TABLE run_events ADD COLUMN tx xid8;
ALTER TABLE run_events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX run_events_feed ON run_events (tx, id)
    WHERE kind IN ('created', 'status', 'metadata', 'tag', 'input');

-- Every function resolves the engine's tables in the engine's schema, whatever the session's
-- search_path (SET search_path FROM CURRENT: this migration runs in that schema; see 0006).
CREATE FUNCTION shipyard_created_events() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message, attributes)
    SELECT n.id, n.created_at, 'created', n.status, NULLIF(n.metadata, '{}')
    FROM new_runs n ORDER BY n.id;
    RETURN NULL;
END;
$$;

-- One call per statement (a batch of 1,000 runs is one call). Readers are woken by the
-- NOTIFY shipyard_ready every insert path sends already.
CREATE TRIGGER runs_created_events
AFTER INSERT ON runs
REFERENCING NEW TABLE AS new_runs
FOR EACH STATEMENT
EXECUTE FUNCTION shipyard_created_events();

-- 0005's status events, now also waking feed readers: one NOTIFY per statement that changed
-- a status (PostgreSQL folds identical notifications of one transaction into one).
CREATE OR REPLACE FUNCTION shipyard_status_events() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO run_events (run_id, ts, kind, message)
    SELECT n.id, n.updated_at, 'status', n.status
    FROM new_runs n JOIN old_runs o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('shipyard_feed', '');
    END IF;
    RETURN NULL;
END;
$$;

-- An output stream of a run: its next chunk index and its size so far. Appending updates the
-- stream's row first (a row lock until commit), so indexes are dense and committed in order.
CREATE TABLE streams (
    run_id       TEXT NOT NULL,
    stream_id    TEXT NOT NULL,
    next_index   BIGINT NOT NULL DEFAULT 0,
    total_bytes  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (run_id, stream_id)
);

CREATE TABLE stream_chunks (
    run_id     TEXT NOT NULL,
    stream_id  TEXT NOT NULL,
    idx        BIGINT NOT NULL,
    data       TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    PRIMARY KEY (run_id, stream_id, idx)
);

-- Data sent to a run's input stream, kept until a listener takes it (consumed_at).
CREATE TABLE input_stream_data (
    id           BIGSERIAL PRIMARY KEY,
    run_id       TEXT NOT NULL,
    stream_id    TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    consumed_at  BIGINT
);
CREATE INDEX input_stream_data_pending ON input_stream_data (run_id, stream_id, id)
    WHERE consumed_at IS NULL;

-- A run suspended on .wait() of an input stream: the token (a MANUAL waitpoint) a send
-- completes.
CREATE TABLE input_stream_waits (
    waitpoint_id  TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    stream_id     TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX input_stream_waits_by_stream ON input_stream_waits (run_id, stream_id);

-- Streams go with their run (retention deletes runs): one call per DELETE statement.
CREATE FUNCTION shipyard_delete_streams() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM stream_chunks WHERE run_id IN (SELECT id FROM old_runs);
    DELETE FROM streams WHERE run_id IN (SELECT id FROM old_runs);
    DELETE FROM input_stream_data WHERE run_id IN (SELECT id FROM old_runs);
    DELETE FROM input_stream_waits WHERE run_id IN (SELECT id FROM old_runs);
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_delete_streams
AFTER DELETE ON runs
REFERENCING OLD TABLE AS old_runs
FOR EACH STATEMENT
EXECUTE FUNCTION shipyard_delete_streams();
