--
-- touch_interval: touch() writes last_seen at most once per
-- presence.touch_interval, so a touch on every message costs a read, not a
-- new row version.
--
-- Whether a row was written shows in its system columns: an UPDATE makes a
-- new row version, with a new xmin (the writing transaction) and a new ctid
-- (its place in the table).  Their values vary, so only comparisons are
-- printed.  Each statement runs in a transaction of its own.
--

-- Channel t1 is in two rooms.
SELECT presence.add('ti_a', 't1'), presence.add('ti_b', 't1');

-- The row versions of t1 as they were before a step ...
CREATE TEMP TABLE snap AS
SELECT room, xmin::text AS row_xmin, ctid AS row_ctid, last_seen
FROM presence.presences WHERE channel = 't1';

-- ... and what changed since, per room.
CREATE TEMP VIEW since_snap AS
SELECT p.room,
       p.xmin::text <> s.row_xmin AS new_xmin,
       p.ctid <> s.row_ctid AS new_ctid,
       p.last_seen > s.last_seen AS last_seen_moved
FROM presence.presences p JOIN snap s USING (room)
WHERE p.channel = 't1'
ORDER BY p.room;

-- Runs stmt and reports, from this session's table and function statistics,
-- how many rows of presences it updated, how many of those were HOT updates,
-- and how many times it called the event trigger functions.
CREATE FUNCTION pg_temp.effects(stmt text,
    OUT rows_updated bigint, OUT hot_updated bigint, OUT trigger_calls bigint)
LANGUAGE plpgsql AS $$
DECLARE
    u0 bigint;
    h0 bigint;
    t0 bigint;
BEGIN
    SELECT pg_stat_get_xact_tuples_updated('presence.presences'::regclass),
           pg_stat_get_xact_tuples_hot_updated('presence.presences'::regclass),
           sum(coalesce(pg_stat_get_xact_function_calls(f), 0))
    INTO u0, h0, t0
    FROM unnest(ARRAY['presence.capture_change'::regproc,
                      'presence.send_events'::regproc]) f;
    EXECUTE stmt;
    SELECT pg_stat_get_xact_tuples_updated('presence.presences'::regclass) - u0,
           pg_stat_get_xact_tuples_hot_updated('presence.presences'::regclass) - h0,
           sum(coalesce(pg_stat_get_xact_function_calls(f), 0)) - t0
    INTO rows_updated, hot_updated, trigger_calls
    FROM unnest(ARRAY['presence.capture_change'::regproc,
                      'presence.send_events'::regproc]) f;
END $$;

-- The default interval is one second.
SHOW presence.touch_interval;

--
-- Inside the interval: touch reads, and writes nothing.
--
SET presence.touch_interval = '1h';
SELECT presence.touch('t1');
SELECT presence.touch('t1');
SELECT * FROM since_snap;
SELECT * FROM pg_temp.effects($$SELECT presence.touch('t1')$$);

--
-- touch_interval = 0: every touch writes.  The write is a HOT update
-- (last_seen is in no index) and calls no trigger function: touch sends no
-- event and does not pay for them.
--
SET presence.touch_interval = 0;
SELECT * FROM pg_temp.effects($$SELECT presence.touch('t1')$$);
SELECT * FROM since_snap;

TRUNCATE snap;
INSERT INTO snap SELECT room, xmin::text, ctid, last_seen
FROM presence.presences WHERE channel = 't1';
SELECT presence.touch('t1');
SELECT * FROM since_snap;

--
-- A last_seen older than the interval is refreshed, and only that one: the
-- channel's fresh presences are left alone.  Make ti_a's last_seen two
-- hours old.
--
SET presence.touch_interval = '1h';
UPDATE presence.presences SET last_seen = now() - interval '2 hours'
WHERE room = 'ti_a' AND channel = 't1';
TRUNCATE snap;
INSERT INTO snap SELECT room, xmin::text, ctid, last_seen
FROM presence.presences WHERE channel = 't1';
SELECT * FROM pg_temp.effects($$SELECT presence.touch('t1')$$);
SELECT * FROM since_snap;
SELECT room, last_seen > now() - interval '1 minute' AS recent
FROM presence.presences WHERE channel = 't1' ORDER BY room;

-- The interval is not only whole seconds: with 500ms, a last_seen one
-- second old is stale.
SET presence.touch_interval = '500ms';
UPDATE presence.presences SET last_seen = now() - interval '1 second'
WHERE channel = 't1';
TRUNCATE snap;
INSERT INTO snap SELECT room, xmin::text, ctid, last_seen
FROM presence.presences WHERE channel = 't1';
SELECT presence.touch('t1');
SELECT * FROM since_snap;

-- touch returns the number of presences whether it wrote or not.
SET presence.touch_interval = '1h';
SELECT presence.touch('t1') AS read_only;
SET presence.touch_interval = 0;
SELECT presence.touch('t1') AS written, presence.touch('unknown') AS unknown;

-- Leave the database empty for the next test.
RESET presence.touch_interval;
SELECT presence.leave_all('t1');
DELETE FROM presence.rooms;
