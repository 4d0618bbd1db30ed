--
-- prune: presences whose last_seen is older than max_age go; prune_rooms:
-- rooms nobody is in go.  Ages are set by hand (as superuser) instead of
-- waiting.
--

-- Three rooms: lobby (ann fresh, bob 2 minutes old), hall (carl 10 minutes
-- old, alone), den (dan 30 seconds old).
SELECT presence.add('lobby', 'ann-1', 'ann'), presence.add('lobby', 'bob-1', 'bob'),
       presence.add('hall', 'carl-1', 'carl'), presence.add('den', 'dan-1', 'dan');
UPDATE presence.presences SET last_seen = now() - interval '2 minutes' WHERE channel = 'bob-1';
UPDATE presence.presences SET last_seen = now() - interval '10 minutes' WHERE channel = 'carl-1';
UPDATE presence.presences SET last_seen = now() - interval '30 seconds' WHERE channel = 'dan-1';

-- Nothing is older than an hour: nothing goes.
SELECT presence.prune('1 hour');

-- An explicit max_age: only carl (10 minutes) is older than 5 minutes.
SELECT presence.prune('5 minutes');
SELECT room, channel FROM presence.presences ORDER BY room, channel;

-- Without max_age, presence.max_age applies (60 s by default): bob goes,
-- dan (30 s) stays.
SHOW presence.max_age;
SELECT presence.prune();
SELECT presence.prune(NULL);
SELECT room, channel FROM presence.presences ORDER BY room, channel;

-- presence.max_age can be changed: with 20 s, dan goes too.
SET presence.max_age = '20s';
SELECT presence.prune();
RESET presence.max_age;
SELECT room, channel FROM presence.presences ORDER BY room, channel;

-- A calendar interval is taken as now() - max_age: a presence a day old is
-- younger than '1 mon'.
UPDATE presence.presences SET last_seen = now() - interval '1 day';
SELECT presence.prune('1 mon'), presence.prune('23 hours');

-- Zero: everything older than now, i.e. everything not touched in this
-- transaction.
SELECT presence.add('lobby', 'eve-1', 'eve');
BEGIN;
SELECT presence.add('lobby', 'fay-1', 'fay');
SELECT presence.prune('0');
SELECT room, channel FROM presence.presences ORDER BY room, channel;
COMMIT;

-- Emptied rooms stay until prune_rooms(), which deletes exactly those.
SELECT name FROM presence.rooms ORDER BY name;
SELECT presence.prune_rooms();
SELECT name FROM presence.rooms ORDER BY name;
SELECT presence.prune_rooms();

-- Bad max_age: an error, and nothing is deleted.
SELECT presence.add('lobby', 'old-1'), presence.add('lobby', 'old-2');
UPDATE presence.presences SET last_seen = now() - interval '1 hour';
\set VERBOSITY default
SELECT presence.prune('-1 second');
SELECT presence.prune('1 day -25 hours');
SELECT presence.prune('-1 mon');
-- Mixed signs: compared as a normalized interval (1 year = 360 days) this
-- is one second, but as calendar arithmetic (what the cutoff uses) it puts
-- the cutoff 5 or 6 days in the future, which would delete every presence.
-- The cutoff itself is checked.
SELECT presence.prune('-1 year 360 days 1 second');
SELECT presence.prune('1 second -1 year 360 days');
\set VERBOSITY sqlstate
SELECT presence.prune('-1 second');
\set VERBOSITY default
-- An interval larger than the timestamp range: out of range, nothing deleted.
SELECT presence.prune('290000 years');
SELECT count(*) AS still_there FROM presence.presences;

SELECT presence.prune('0') AS cleared;

-- Many presences in many rooms: prune() works in batches of 10000 rows,
-- and returns the total.
SET presence.notify = off;
INSERT INTO presence.rooms (name) SELECT 'r' || i FROM generate_series(1, 300) i;
INSERT INTO presence.presences (room, channel, last_seen)
SELECT 'r' || (i % 300 + 1), 'c' || i,
       now() - CASE WHEN i % 10 = 0 THEN interval '1 second' ELSE interval '1 hour' END
FROM generate_series(1, 25000) i;
RESET presence.notify;

-- Cancelled midway (here by statement_timeout; pg_cancel_backend is the
-- same), a prune deletes nothing: it is one transaction.
\set VERBOSITY terse
SET statement_timeout = '5ms';
SELECT presence.prune('1 minute');
RESET statement_timeout;
\set VERBOSITY default
SELECT count(*) AS all_still_there FROM presence.presences WHERE room LIKE 'r%';

SELECT presence.prune('1 minute');
SELECT count(*) AS fresh_left, count(DISTINCT room) AS rooms FROM presence.presences WHERE room LIKE 'r%';
SELECT presence.prune('0');
SELECT presence.prune_rooms();
SELECT count(*) AS rooms_left FROM presence.rooms;
-- A prune across 10000 rooms with one signed-in presence each sends one
-- event per room with its user_left flag; the lock that makes the flags
-- exact under concurrency is taken only by statements that change a few
-- rooms, so this does not run out of shared lock memory.
SET presence.notify = off;
INSERT INTO presence.rooms (name) SELECT 'solo' || i FROM generate_series(1, 10000) i;
INSERT INTO presence.presences (room, channel, user_id, last_seen)
SELECT 'solo' || i, 's' || i, 'u' || i, now() - interval '1 hour'
FROM generate_series(1, 10000) i;
RESET presence.notify;
SELECT presence.prune('1 minute');
SELECT presence.prune_rooms();

-- Leave the table as the next test expects it: analyzed, without bloat.
VACUUM ANALYZE presence.presences, presence.rooms;
