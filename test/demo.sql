-- A short tour of presence, run by ./test/demo.sh (psql -e echoes each
-- statement).  Needs CREATE EXTENSION pg_cron; CREATE EXTENSION presence;

\echo
\echo '--- 0. Every change is announced with NOTIFY on the channel "presence".'
\echo '---    This psql session listens, so each event is printed below the'
\echo '---    statement that caused it ("Asynchronous notification ...").'
LISTEN presence;

\echo
\echo '--- 1. Joining. Ann opens the lobby in two browser tabs: two channels (one'
\echo '---    per websocket connection), one user. add() creates the room and'
\echo '---    returns true for a new presence.'
SELECT presence.add('lobby', 'ws.ann.tab1', 'ann');
SELECT presence.add('lobby', 'ws.ann.tab2', 'ann', '{"device": "phone"}');

\echo
\echo '--- 2. A visitor who is not logged in joins anonymously (user_id NULL).'
SELECT presence.add('lobby', 'ws.guest.1');

\echo
\echo '--- 3. Joining again is harmless: it refreshes last_seen and returns false.'
SELECT presence.add('lobby', 'ws.ann.tab1', 'ann');

\echo
\echo '--- 4. Who is here? One row per connection ...'
SELECT channel, user_id, meta FROM presence.members('lobby');

\echo
\echo '--- 5. ... and the distinct logged-in users (anonymous ones are not listed).'
SELECT * FROM presence.users('lobby');

\echo
\echo '--- 6. Counts for a badge: 3 connections, 1 user, 1 anonymous.'
SELECT * FROM presence.stats('lobby');

\echo
\echo '--- 7. Heartbeat: each message or ping from a connection calls touch(),'
\echo '---    which refreshes last_seen in every room of that channel and returns'
\echo '---    how many rooms that is (0 would mean: pruned, join again).'
SELECT presence.touch('ws.ann.tab1');
SELECT presence.touch('ws.never.joined');

\echo
\echo '--- 8. Ann closes her phone tab: remove() leaves one room.'
SELECT presence.remove('lobby', 'ws.ann.tab2');
SELECT * FROM presence.stats('lobby');

\echo
\echo '--- 9. The guest disconnects: leave_all() leaves every room of the channel'
\echo '---    and returns how many presences it removed.'
SELECT presence.leave_all('ws.guest.1');
SELECT channel, user_id, meta FROM presence.members('lobby');
SELECT * FROM presence.stats('lobby');

\echo
\echo '--- 10. A connection vanishes without saying goodbye (network drop, server'
\echo '---     restart): Bob joins, then never sends a heartbeat again.  We age'
\echo '---     his last_seen by hand instead of waiting presence.max_age (60 s).'
SELECT presence.add('lobby', 'ws.bob.1', 'bob');
UPDATE presence.presences SET last_seen = now() - interval '5 minutes'
 WHERE channel = 'ws.bob.1';

\echo
\echo '--- 11. prune() deletes presences older than presence.max_age and says'
\echo '---     how many; the room hears that Bob left.  prune_rooms() deletes'
\echo '---     rooms nobody is in.'
SHOW presence.max_age;
SELECT presence.prune();
SELECT channel, user_id FROM presence.members('lobby');
SELECT presence.add('empty-room', 'ws.x'), presence.remove('empty-room', 'ws.x');
SELECT presence.prune_rooms();

\echo
\echo '--- 12. In production pg_cron runs both every minute; schedule_prune()'
\echo '---     creates (or replaces) that one job.'
SELECT presence.schedule_prune('* * * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job;
