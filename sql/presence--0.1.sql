\echo Use "CREATE EXTENSION presence" to load this file. \quit

-- presence: rooms and "who is connected right now", inside PostgreSQL.
--
-- Applications never touch the tables below: they call the functions of this
-- schema (EXECUTE is granted per role, see the README), which run as the
-- extension owner with a pinned search_path and fully qualified SQL.

-- The schema is part of the extension: DROP EXTENSION removes it, and
-- CREATE EXTENSION refuses to run where a schema presence already exists.
CREATE SCHEMA presence;
COMMENT ON SCHEMA presence IS 'rooms and live presence (extension presence)';

--------------------------------------------------------------------------
-- Tables
--------------------------------------------------------------------------

-- One row per room, created on the first join and deleted by prune_rooms()
-- once empty.  The name is the key: presences reference it directly, so an
-- event can name its room even while the room row itself is being deleted.
CREATE TABLE presence.rooms (
    name        text        NOT NULL PRIMARY KEY
                            CONSTRAINT rooms_name_length
                            CHECK (pg_catalog.char_length(name) BETWEEN 1 AND 255),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE presence.rooms IS
    'Rooms (seed: Room.channel_name); created by presence.add, removed by presence.prune_rooms once empty';

-- One row per (room, channel).  last_seen is deliberately in no index and the
-- fillfactor leaves room on each page, so that touch() (the hot path, which
-- only moves last_seen) is a HOT update that writes no index entry.
CREATE TABLE presence.presences (
    room        text        NOT NULL
                            REFERENCES presence.rooms (name)
                            ON DELETE CASCADE ON UPDATE CASCADE,
    channel     text        NOT NULL
                            CONSTRAINT presences_channel_length
                            CHECK (pg_catalog.char_length(channel) BETWEEN 1 AND 255),
    user_id     text        CONSTRAINT presences_user_id_length
                            CHECK (pg_catalog.char_length(user_id) BETWEEN 1 AND 255),
    meta        jsonb,
    joined_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (room, channel)
) WITH (fillfactor = 70);
COMMENT ON TABLE presence.presences IS
    'One row per connection (channel) per room; last_seen is refreshed by presence.touch and aged out by presence.prune';

-- touch, leave_all and rooms_of look presences up by channel.
CREATE INDEX presences_channel_idx ON presence.presences (channel, room);
-- users, anonymous_count, stats and the user_joined/user_left flags of events
-- read one room's users; with user_id in the key they are index-only scans.
CREATE INDEX presences_room_user_idx ON presence.presences (room, user_id);

REVOKE ALL ON presence.rooms, presence.presences FROM PUBLIC;

-- pg_dump: neither table is registered with pg_extension_config_dump, so a
-- dump carries the extension but no presence state.  Presences describe live
-- connections of the moment the dump was taken; restored, they would show
-- users as present who are long gone (until the next prune).  Connections
-- re-join by themselves: touch() returns 0 for a channel it does not know.
-- Rooms hold nothing but their name and are recreated by the first join.

--------------------------------------------------------------------------
-- Events: every committed change of presences is announced with NOTIFY on
-- presence.notify_channel, whoever made it (see the README for the format).
--------------------------------------------------------------------------

-- Row triggers record each change; the statement trigger sends one event
-- per room the statement changed.  UPDATE triggers list the columns an event
-- is about, so touch() (which only moves last_seen) fires none of them.
CREATE FUNCTION presence.capture_change() RETURNS trigger
AS 'MODULE_PATHNAME', 'presence_capture_change'
LANGUAGE C;
COMMENT ON FUNCTION presence.capture_change() IS
    'Trigger: records a change of presence.presences for its event';

CREATE FUNCTION presence.capture_truncate() RETURNS trigger
AS 'MODULE_PATHNAME', 'presence_capture_truncate'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.capture_truncate() IS
    'Trigger: records every presence as removed before a TRUNCATE';

-- Reads presences for user_joined / user_left by direct index scans, which
-- need no privilege and look nothing up by search_path: no SECURITY DEFINER,
-- whose per-call settings work would cost more than the trigger itself.
CREATE FUNCTION presence.send_events() RETURNS trigger
AS 'MODULE_PATHNAME', 'presence_send_events'
LANGUAGE C;
COMMENT ON FUNCTION presence.send_events() IS
    'Trigger: sends the events of the changes a statement made';

CREATE TRIGGER presences_capture_insert
    AFTER INSERT ON presence.presences
    FOR EACH ROW EXECUTE FUNCTION presence.capture_change();
CREATE TRIGGER presences_capture_delete
    AFTER DELETE ON presence.presences
    FOR EACH ROW EXECUTE FUNCTION presence.capture_change();
CREATE TRIGGER presences_capture_update
    AFTER UPDATE OF room, channel, user_id, meta ON presence.presences
    FOR EACH ROW
    WHEN (OLD.room IS DISTINCT FROM NEW.room
          OR OLD.channel IS DISTINCT FROM NEW.channel
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.meta IS DISTINCT FROM NEW.meta)
    EXECUTE FUNCTION presence.capture_change();
CREATE TRIGGER presences_capture_truncate
    BEFORE TRUNCATE ON presence.presences
    FOR EACH STATEMENT EXECUTE FUNCTION presence.capture_truncate();
CREATE TRIGGER presences_send_events
    AFTER INSERT OR DELETE OR UPDATE OF room, channel, user_id, meta OR TRUNCATE
    ON presence.presences
    FOR EACH STATEMENT EXECUTE FUNCTION presence.send_events();

REVOKE ALL ON FUNCTION
    presence.capture_change(),
    presence.capture_truncate(),
    presence.send_events()
FROM PUBLIC;

--------------------------------------------------------------------------
-- Membership: join, leave, heartbeat, per-connection state
--------------------------------------------------------------------------

-- These five are the hot path (touch runs on every message).  They are
-- SECURITY DEFINER without a SET search_path clause, which would cost more
-- per call than touch's own work: instead every statement they run is
-- prepared and executed with search_path pinned to pg_catalog in C
-- (src/plans.c), its SQL qualified down to the operators, and touch's read
-- is a direct index scan that looks nothing up by name.

CREATE FUNCTION presence.add(room text, channel text,
                             user_id text DEFAULT NULL, meta jsonb DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'presence_add'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION presence.add(text, text, text, jsonb) IS
    'Join room with channel (creating the room if needed); true if a new presence was created, false if it refreshed an existing one';

CREATE FUNCTION presence.remove(room text, channel text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'presence_remove'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION presence.remove(text, text) IS
    'Leave one room; true if a presence was removed';

CREATE FUNCTION presence.leave_all(channel text)
RETURNS integer
AS 'MODULE_PATHNAME', 'presence_leave_all'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION presence.leave_all(text) IS
    'Leave every room (disconnect); number of presences removed';

CREATE FUNCTION presence.touch(channel text)
RETURNS integer
AS 'MODULE_PATHNAME', 'presence_touch'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION presence.touch(text) IS
    'Refresh last_seen of every presence of channel (at most once per presence.touch_interval); number of presences the channel has, 0 meaning re-join';

CREATE FUNCTION presence.update(room text, channel text, meta jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'presence_update'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION presence.update(text, text, jsonb) IS
    'Replace meta of one presence (and refresh its last_seen); true if the presence exists';

--------------------------------------------------------------------------
-- Pruning: connections that vanished without leaving, rooms left empty
--------------------------------------------------------------------------

CREATE FUNCTION presence.prune(max_age interval DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'presence_prune'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.prune(interval) IS
    'Delete presences whose last_seen is older than max_age (NULL: presence.max_age); number deleted';

CREATE FUNCTION presence.prune_rooms()
RETURNS integer
AS 'MODULE_PATHNAME', 'presence_prune_rooms'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.prune_rooms() IS
    'Delete rooms without presences; number deleted';

-- The job runs as the role that scheduled it, so these two are SECURITY
-- INVOKER: that role needs pg_cron's rights and EXECUTE on prune and
-- prune_rooms.  They never run inside CREATE EXTENSION.
CREATE FUNCTION presence.schedule_prune(schedule text DEFAULT '* * * * *')
RETURNS bigint
AS 'MODULE_PATHNAME', 'presence_schedule_prune'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.schedule_prune(text) IS
    'Create or replace the pg_cron job presence-prune that runs prune() and prune_rooms(); job id';

CREATE FUNCTION presence.unschedule_prune()
RETURNS boolean
AS 'MODULE_PATHNAME', 'presence_unschedule_prune'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.unschedule_prune() IS
    'Remove the pg_cron job presence-prune; false if there was none';

REVOKE ALL ON FUNCTION
    presence.prune(interval),
    presence.prune_rooms(),
    presence.schedule_prune(text),
    presence.unschedule_prune()
FROM PUBLIC;

--------------------------------------------------------------------------
-- Reading: who is here
--------------------------------------------------------------------------

CREATE FUNCTION presence.members(room text)
RETURNS TABLE (channel text, user_id text, meta jsonb,
               joined_at timestamptz, last_seen timestamptz)
AS 'MODULE_PATHNAME', 'presence_members'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.members(text) IS
    'Presences of room, ordered by channel';

CREATE FUNCTION presence.users(room text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'presence_users'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.users(text) IS
    'Distinct non-NULL user_ids present in room, ordered';

CREATE FUNCTION presence.anonymous_count(room text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'presence_anonymous_count'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.anonymous_count(text) IS
    'Number of presences in room with a NULL user_id';

CREATE FUNCTION presence.rooms_of(channel text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'presence_rooms_of'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.rooms_of(text) IS
    'Rooms channel is in, ordered';

CREATE FUNCTION presence.stats(room text)
RETURNS TABLE (connections bigint, users bigint, anonymous bigint)
AS 'MODULE_PATHNAME', 'presence_stats'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION presence.stats(text) IS
    'Connections, distinct users and anonymous connections of room (zeros for an unknown room)';

REVOKE ALL ON FUNCTION
    presence.add(text, text, text, jsonb),
    presence.remove(text, text),
    presence.leave_all(text),
    presence.touch(text),
    presence.update(text, text, jsonb),
    presence.members(text),
    presence.users(text),
    presence.anonymous_count(text),
    presence.rooms_of(text),
    presence.stats(text)
FROM PUBLIC;
