--
-- schema_checks: the C code relies on the definitions of the extension's
-- tables and indexes (src/schema.c lists them).  An admin who changes one of
-- them gets a clear error naming what changed (55000), never a wrong answer
-- and never an internal error, and the API works again once it is restored.
--

SELECT presence.add('sc_lobby', 'sc1', 'ann');

-- Returns 'ok: <result>' when stmt runs, or its SQLSTATE and message.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE stmt INTO result;
    RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TEMP VIEW api AS
SELECT * FROM (VALUES
    ('touch',   $$SELECT presence.touch('sc1')$$),
    ('add',     $$SELECT presence.add('sc_lobby', 'sc2', 'bob')$$),
    ('remove',  $$SELECT presence.remove('sc_lobby', 'sc2')$$),
    ('members', $$SELECT string_agg(channel || ' ' || joined_at::date::text, ',') FROM presence.members('sc_lobby')$$),
    ('stats',   $$SELECT connections FROM presence.stats('sc_lobby')$$)
) v(call, stmt);

-- The channel index recreated with its columns swapped: touch would scan
-- for a channel in the room column and return 0 for a present channel.
DROP INDEX presence.presences_channel_idx;
CREATE INDEX presences_channel_idx ON presence.presences (room, channel);
SELECT call, pg_temp.try(stmt) FROM api;
\set VERBOSITY verbose
SELECT presence.touch('sc1');
\set VERBOSITY default
DROP INDEX presence.presences_channel_idx;
CREATE INDEX presences_channel_idx ON presence.presences (channel, room);
SELECT call, pg_temp.try(stmt) FROM api;

-- A partial index in its place is no good either.
DROP INDEX presence.presences_channel_idx;
CREATE INDEX presences_channel_idx ON presence.presences (channel, room) WHERE user_id IS NOT NULL;
SELECT pg_temp.try($$SELECT presence.touch('sc1')$$);
DROP INDEX presence.presences_channel_idx;

-- Dropped: a clear error, not "relation does not exist" from inside.
SELECT call, pg_temp.try(stmt) FROM api;
CREATE INDEX presences_channel_idx ON presence.presences (channel, room);

-- joined_at retyped: members() would return garbage dates.
ALTER TABLE presence.presences ALTER COLUMN joined_at TYPE text;
SELECT call, pg_temp.try(stmt) FROM api;
ALTER TABLE presence.presences ALTER COLUMN joined_at TYPE timestamptz USING joined_at::timestamptz;

-- A column renamed.
ALTER TABLE presence.presences RENAME COLUMN user_id TO uid;
SELECT call, pg_temp.try(stmt) FROM api;
ALTER TABLE presence.presences RENAME COLUMN uid TO user_id;

-- The user index dropped.
DROP INDEX presence.presences_room_user_idx;
SELECT call, pg_temp.try(stmt) FROM api;
CREATE INDEX presences_room_user_idx ON presence.presences (room, user_id);

-- Restored: everything works again.
SELECT call, pg_temp.try(stmt) FROM api;

-- Leave the database empty for the next test.
SELECT presence.leave_all('sc1');
DELETE FROM presence.rooms;
