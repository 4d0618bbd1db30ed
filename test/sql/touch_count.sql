--
-- touch_count: what touch() returns is the number of presences the channel
-- has at that moment, counting what this statement and this transaction did
-- and what other sessions committed; 0 means "you were pruned, re-join", so
-- it must never be 0 for a live channel.  In a read-only transaction touch
-- is always an error (25006), whether or not it would have had to write.
--

-- A join and a touch in one statement: the touch sees the join.
SELECT presence.add('tc_lobby', 'tc1', 'ann') AS joined,
       presence.touch('tc1') AS touched;

-- In one transaction, after more joins: the touch counts all of them.
BEGIN;
SELECT presence.add('tc_hall', 'tc1', 'ann'), presence.add('tc_den', 'tc1', 'ann');
SELECT presence.touch('tc1') AS touched;
SELECT presence.remove('tc_den', 'tc1');
SELECT presence.touch('tc1') AS after_remove;
COMMIT;

-- The same when the touch has to write (touch_interval 0) ...
SET presence.touch_interval = 0;
SELECT presence.add('tc_den', 'tc1', 'ann') AS joined, presence.touch('tc1') AS touched;
-- ... and when last_seen is stale, so that the touch writes some rows.
RESET presence.touch_interval;
UPDATE presence.presences SET last_seen = now() - interval '10 seconds'
WHERE channel = 'tc1' AND room = 'tc_hall';
SELECT presence.add('tc_yard', 'tc1', 'ann') AS joined, presence.touch('tc1') AS touched;
SELECT room FROM presence.presences
WHERE channel = 'tc1' AND last_seen < now() - interval '5 seconds';

-- A read-only transaction: 25006 every time, also while last_seen is fresh
-- (the touch would only have read), so an app on a hot standby never takes
-- a heartbeat for a success.
\set VERBOSITY sqlstate
BEGIN READ ONLY;
SELECT presence.touch('tc1');
ROLLBACK;
BEGIN READ ONLY;
SELECT presence.touch('unknown-channel');
ROLLBACK;
SET default_transaction_read_only = on;
SELECT presence.touch('tc1');
RESET default_transaction_read_only;
\set VERBOSITY default
BEGIN READ ONLY;
SELECT presence.touch('tc1');
ROLLBACK;

--
-- A touch always keeps a live connection from being pruned: when
-- touch_interval is not below max_age, the effective interval is half of
-- max_age.  With touch_interval 2 minutes and max_age 60 s, a last_seen 40 s
-- old is refreshed (effective interval 30 s), so a prune with max_age 60 s
-- twenty seconds later would still find it fresh.
--
SET presence.touch_interval = '2min';
SET presence.max_age = '60s';
UPDATE presence.presences SET last_seen = now() - interval '40 seconds'
WHERE channel = 'tc1';
SELECT presence.touch('tc1');
SELECT room, last_seen > now() - interval '1 second' AS refreshed
FROM presence.presences WHERE channel = 'tc1' ORDER BY room;
-- 20 s old stays as it is (inside the effective 30 s).
UPDATE presence.presences SET last_seen = now() - interval '20 seconds'
WHERE channel = 'tc1';
SELECT presence.touch('tc1');
SELECT room, last_seen > now() - interval '1 second' AS refreshed
FROM presence.presences WHERE channel = 'tc1' ORDER BY room;
RESET presence.touch_interval;
RESET presence.max_age;

-- Leave the database empty for the next test.
SELECT presence.leave_all('tc1');
DELETE FROM presence.rooms;
