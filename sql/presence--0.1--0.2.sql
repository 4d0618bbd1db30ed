\echo Use "ALTER EXTENSION presence UPDATE TO '0.2'" to load this file. \quit

-- presence 0.1 -> 0.2.
--
-- Brings a 0.1 installation to what sql/presence.sql creates in 0.2:
-- test/sql/upgrade.sql compares the two object by object (functions, their
-- settings and privileges, tables, indexes, constraints, triggers, comments),
-- so anything sql/presence.sql adds or changes in 0.2 must be done here too.
-- Runs as one transaction inside ALTER EXTENSION, on live data: presences,
-- rooms, the GRANTs made to application roles and a pg_cron job scheduled by
-- presence.schedule_prune() must all survive it.
-- The C of 0.2 changed more than the SQL: leave_all, prune and touch behave
-- as the README says from the moment the new library is loaded.

-- Signed events: the key table, its functions, a first key.
CREATE TABLE presence.event_key (
    singleton   boolean     NOT NULL PRIMARY KEY DEFAULT true
                            CONSTRAINT event_key_one_row CHECK (singleton),
    key         bytea       NOT NULL
                            CONSTRAINT event_key_length CHECK (pg_catalog.octet_length(key) = 32),
    rotated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE presence.event_key IS
    'The HMAC-SHA256 key of event signatures; see presence.event_key() and presence.rotate_event_key()';
REVOKE ALL ON presence.event_key FROM PUBLIC;

-- Changes applied with session_replication_role = replica are announced too.
ALTER TABLE presence.presences
    ENABLE ALWAYS TRIGGER presences_capture_insert,
    ENABLE ALWAYS TRIGGER presences_capture_delete,
    ENABLE ALWAYS TRIGGER presences_capture_update,
    ENABLE ALWAYS TRIGGER presences_capture_truncate,
    ENABLE ALWAYS TRIGGER presences_send_events;

CREATE FUNCTION presence.event_key()
RETURNS text
AS 'MODULE_PATHNAME', 'presence_event_key'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.event_key() IS
    'The key (64 hex digits) of the HMAC-SHA256 "sig" that ends every event';

CREATE FUNCTION presence.rotate_event_key()
RETURNS void
AS 'MODULE_PATHNAME', 'presence_rotate_event_key'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.rotate_event_key() IS
    'Replace the event key with a new random one; listeners fetch it again';

-- Worker mode (presence in shared_preload_libraries): waiting for the
-- worker, and what waits for it.
CREATE FUNCTION presence.flush_events(timeout interval DEFAULT '10 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'presence_flush_events'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.flush_events(interval) IS
    'Wait until the events of transactions committed before the call are sent (worker mode); true if they are';

CREATE FUNCTION presence.queue_status(
    OUT database oid, OUT worker_pid integer,
    OUT queued_bytes bigint, OUT unsent_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'presence_queue_status'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.queue_status() IS
    'Per database with a worker slot: its worker (NULL: none), bytes queued for it, bytes not yet sent';

REVOKE ALL ON FUNCTION presence.event_key(), presence.rotate_event_key(),
    presence.flush_events(interval), presence.queue_status() FROM PUBLIC;
SELECT presence.rotate_event_key();

-- Pruning in batches that commit: the steps and the procedure the pg_cron
-- job runs.  A job that 0.1's schedule_prune() created keeps its command
-- (SELECT presence.prune(); SELECT presence.prune_rooms()), which still
-- works; calling presence.schedule_prune() again switches it to
-- CALL presence.prune_job() (its role then needs EXECUTE on prune_job,
-- prune_batch and prune_rooms_batch).
CREATE FUNCTION presence.prune_batch(cutoff timestamptz, after_room text,
    after_channel text,
    OUT deleted integer, OUT locked integer, OUT next_room text, OUT next_channel text)
AS 'MODULE_PATHNAME', 'presence_prune_batch'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.prune_batch(timestamptz, text, text) IS
    'One batch of prune_job(): delete presences older than cutoff after (after_room, after_channel); the next key is NULL when done';

CREATE FUNCTION presence.prune_rooms_batch(after_name text,
    OUT deleted integer, OUT locked integer, OUT next_name text)
AS 'MODULE_PATHNAME', 'presence_prune_rooms_batch'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.prune_rooms_batch(text) IS
    'One batch of prune_job(): delete empty rooms after after_name; next_name is NULL when done';

CREATE PROCEDURE presence.prune_job(max_age interval DEFAULT NULL)
AS 'MODULE_PATHNAME', 'presence_prune_job'
LANGUAGE C;
COMMENT ON PROCEDURE presence.prune_job(interval) IS
    'What the pg_cron job runs: prune(max_age) and prune_rooms(), committing after every batch';

COMMENT ON FUNCTION presence.schedule_prune(text) IS
    'Create or replace the pg_cron job presence-prune that runs CALL presence.prune_job(); job id';

REVOKE ALL ON FUNCTION
    presence.prune_batch(timestamptz, text, text),
    presence.prune_rooms_batch(text)
FROM PUBLIC;
REVOKE ALL ON PROCEDURE presence.prune_job(interval) FROM PUBLIC;
