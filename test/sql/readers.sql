--
-- readers: members, users, anonymous_count, rooms_of and stats, and that
-- they answer from an index instead of scanning other rooms.
--
\pset null '(null)'

-- The lobby: Ann in two tabs, Bob, Dora, and two anonymous visitors.
-- Channel a1 is also in two other rooms.
SELECT presence.add('lobby', 'a1', 'ann', '{"tab": 1}'),
       presence.add('lobby', 'a2', 'ann', '{"tab": 2}'),
       presence.add('lobby', 'b1', 'bob'),
       presence.add('lobby', 'd1', 'dora', '{"status": "away"}'),
       presence.add('lobby', 'g1'),
       presence.add('lobby', 'g2'),
       presence.add('kitchen', 'a1', 'ann'),
       presence.add('garden', 'a1', 'ann'),
       presence.add('garden', 'b2', 'bob');

--
-- members(room): one row per presence, ordered by channel
--
SELECT channel, user_id, meta,
       joined_at <= last_seen AS joined_before_last_seen,
       last_seen <= now() AS not_in_future
FROM presence.members('lobby');

-- All five columns are exactly the table's, timestamps included.
SELECT count(*) AS differences FROM (
    (SELECT * FROM presence.members('lobby')
     EXCEPT ALL
     SELECT channel, user_id, meta, joined_at, last_seen
     FROM presence.presences WHERE room = 'lobby')
    UNION ALL
    (SELECT channel, user_id, meta, joined_at, last_seen
     FROM presence.presences WHERE room = 'lobby'
     EXCEPT ALL
     SELECT * FROM presence.members('lobby'))) d;

-- The column names and types of the result.
SELECT * FROM presence.members('lobby') LIMIT 0;
SELECT pg_typeof(channel) AS channel, pg_typeof(user_id) AS user_id,
       pg_typeof(meta) AS meta, pg_typeof(joined_at) AS joined_at,
       pg_typeof(last_seen) AS last_seen
FROM presence.members('lobby') LIMIT 1;

--
-- users(room): distinct user_ids, without anonymous ones, ordered
--
SELECT * FROM presence.users('lobby');
SELECT * FROM presence.users('garden');

--
-- anonymous_count(room): presences without a user_id
--
SELECT presence.anonymous_count('lobby') AS lobby,
       presence.anonymous_count('garden') AS garden;

--
-- rooms_of(channel): the rooms a channel is in, ordered
--
SELECT * FROM presence.rooms_of('a1');
SELECT * FROM presence.rooms_of('g1');

--
-- stats(room): always one row of counts
--
SELECT * FROM presence.stats('lobby');
SELECT * FROM presence.stats('garden');

--
-- Unknown rooms and channels are not errors: no rows, or zeros.
--
SELECT * FROM presence.members('nowhere');
SELECT * FROM presence.users('nowhere');
SELECT presence.anonymous_count('nowhere');
SELECT * FROM presence.rooms_of('nobody');
SELECT * FROM presence.stats('nowhere');
-- No room was created by reading.
SELECT name FROM presence.rooms ORDER BY name;

-- A room whose presences all left reads like an unknown one.
SELECT presence.leave_all('a1'), presence.leave_all('b2');
SELECT * FROM presence.members('garden');
SELECT * FROM presence.stats('garden');

-- Set-returning readers compose like tables: stats of every room.
SELECT r.name, s.*
FROM presence.rooms r, LATERAL presence.stats(r.name) s
ORDER BY r.name;

--
-- Readers use an index on the room (or the channel), not a scan of the
-- table: with 20000 presences in 1000 other rooms, each call reads only the
-- index entries of its own room.  The counters are this transaction's
-- statistics of presence.presences and its indexes; each reader is called
-- ten times, so that both the first (custom) plans and the cached generic
-- plan are used.
--
SET presence.notify = off;
INSERT INTO presence.rooms (name)
SELECT 'big' || g FROM generate_series(0, 999) g;
INSERT INTO presence.presences (room, channel, user_id)
SELECT 'big' || (g % 1000), 'bc' || g,
       CASE WHEN g % 3 <> 0 THEN 'u' || (g % 7) END
FROM generate_series(1, 20000) g;
RESET presence.notify;
VACUUM ANALYZE presence.presences;

-- Runs stmt ten times and reports the scans of presence.presences it made.
CREATE FUNCTION pg_temp.scans(stmt text,
    OUT seq_scans bigint, OUT index_scans bigint, OUT index_entries bigint)
LANGUAGE plpgsql AS $$
DECLARE
    s0 bigint;
    i0 bigint;
    e0 bigint;
BEGIN
    SELECT pg_stat_get_xact_numscans('presence.presences'::regclass),
           sum(pg_stat_get_xact_numscans(indexrelid)),
           sum(pg_stat_get_xact_tuples_returned(indexrelid))
    INTO s0, i0, e0
    FROM pg_index WHERE indrelid = 'presence.presences'::regclass;
    FOR i IN 1 .. 10 LOOP
        EXECUTE stmt;
    END LOOP;
    SELECT pg_stat_get_xact_numscans('presence.presences'::regclass) - s0,
           sum(pg_stat_get_xact_numscans(indexrelid)) - i0,
           sum(pg_stat_get_xact_tuples_returned(indexrelid)) - e0
    INTO seq_scans, index_scans, index_entries
    FROM pg_index WHERE indrelid = 'presence.presences'::regclass;
END $$;

-- Room big7 holds 20 presences, channel bc7 one.  seq_scans must be 0, and
-- the index entries read at most 10 calls x 20 rows.
SELECT reader, s.seq_scans, s.index_scans >= 10 AS used_an_index,
       s.index_entries <= 10 * 20 AS read_only_its_room
FROM (VALUES ('members',         $$SELECT * FROM presence.members('big7')$$),
             ('users',           $$SELECT * FROM presence.users('big7')$$),
             ('anonymous_count', $$SELECT presence.anonymous_count('big7')$$),
             ('rooms_of',        $$SELECT * FROM presence.rooms_of('bc7')$$),
             ('stats',           $$SELECT * FROM presence.stats('big7')$$),
             ('stats, unknown',  $$SELECT * FROM presence.stats('nowhere')$$))
     AS r(reader, stmt),
     LATERAL pg_temp.scans(r.stmt) s;

-- The answers themselves: big7 holds channels bc7, bc1007, ... bc19007,
-- of users u0 to u6, and every third one anonymous.
SELECT * FROM presence.stats('big7');
SELECT * FROM presence.users('big7');
SELECT presence.anonymous_count('big7');
SELECT count(*) AS presences,
       bool_and(substr(channel, 3)::int % 1000 = 7) AS all_of_big7
FROM presence.members('big7');

-- A plain count(*) of the table is what a seq scan looks like here (with
-- index scans off, as the planner may prefer an index-only scan for it).
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SELECT * FROM pg_temp.scans('SELECT count(*) FROM presence.presences');
RESET enable_indexscan;
RESET enable_indexonlyscan;
RESET enable_bitmapscan;

-- Leave the database empty for the next test.
SET presence.notify = off;
DELETE FROM presence.rooms;
RESET presence.notify;
