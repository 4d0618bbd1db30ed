--
-- membership: add (join), remove (leave one room), leave_all (disconnect),
-- update (meta) and the return value of touch (heartbeat).
--
-- Timestamps vary from run to run, so they are never printed: the tests
-- compare them.  now() is the start time of the transaction, and every
-- statement here runs in a transaction of its own, so a statement that sets
-- last_seen = now() sets it later than the statements before it did.
--
\pset null '(null)'

-- Snapshots of presences, to compare timestamps and meta across statements.
CREATE TEMP TABLE snap AS
SELECT room, channel, user_id, meta, joined_at, last_seen
FROM presence.presences WHERE false;

--
-- add(room, channel, user_id, meta)
--

-- Ann opens the lobby: a new presence (true), and the room is created.
SELECT presence.add('lobby', 'c1', 'ann');
SELECT name FROM presence.rooms ORDER BY name;
SELECT channel, user_id, meta, joined_at = last_seen AS fresh
FROM presence.members('lobby');

-- Joining again is not a new presence (false).  It refreshes last_seen, keeps
-- joined_at, and keeps meta when no meta is given.
INSERT INTO snap SELECT 'lobby', * FROM presence.members('lobby');
SELECT presence.add('lobby', 'c1', 'ann');
SELECT m.channel, m.user_id, m.meta,
       m.joined_at = s.joined_at AS joined_at_kept,
       m.last_seen > s.last_seen AS last_seen_refreshed
FROM presence.members('lobby') m JOIN snap s USING (channel);

-- Joining again with meta replaces meta; without meta, meta stays.
SELECT presence.add('lobby', 'c1', 'ann', '{"status": "away"}');
SELECT channel, meta FROM presence.members('lobby');
SELECT presence.add('lobby', 'c1', 'ann');
SELECT channel, meta FROM presence.members('lobby');

-- A channel joins a room as one user: the same channel with another user_id
-- (or anonymously) is an error, and the presence is left as it was.
TRUNCATE snap;
INSERT INTO snap SELECT 'lobby', * FROM presence.members('lobby');
SELECT presence.add('lobby', 'c1', 'bob');
SELECT presence.add('lobby', 'c1');
SELECT presence.add('lobby', 'c1', 'bob', '{"status": "hijacked"}');
-- Its SQLSTATE is unique_violation.
\set VERBOSITY sqlstate
SELECT presence.add('lobby', 'c1', 'bob');
\set VERBOSITY default
SELECT m.channel, m.user_id, m.meta, m.last_seen = s.last_seen AS unchanged
FROM presence.members('lobby') m JOIN snap s USING (channel);

-- One user with many channels: Ann opens a second tab.  Two presences, one
-- user.
SELECT presence.add('lobby', 'c2', 'ann', '{"device": "phone"}');
SELECT channel, user_id, meta FROM presence.members('lobby');
SELECT * FROM presence.users('lobby');

-- Anonymous presences (user_id NULL): new, then again (false); an anonymous
-- channel cannot be claimed by a user either.
SELECT presence.add('lobby', 'g1');
SELECT presence.add('lobby', 'g1');
SELECT presence.add('lobby', 'g1', 'carl');
SELECT channel, user_id, meta FROM presence.members('lobby');
SELECT * FROM presence.stats('lobby');

-- One channel in many rooms: c1 also joins the kitchen and the garden.
SELECT presence.add('kitchen', 'c1', 'ann'), presence.add('garden', 'c1', 'ann');
SELECT * FROM presence.rooms_of('c1');
SELECT name FROM presence.rooms ORDER BY name;

--
-- touch(channel): how many presences the channel has
--

SELECT presence.touch('c1') AS c1, presence.touch('c2') AS c2,
       presence.touch('g1') AS g1, presence.touch('nobody') AS nobody;

--
-- update(room, channel, meta): replace meta of one presence
--

-- true when the presence exists; meta is replaced (not merged) and
-- last_seen is refreshed.
TRUNCATE snap;
INSERT INTO snap SELECT 'lobby', * FROM presence.members('lobby');
SELECT presence.update('lobby', 'g1', '{"typing": true}');
SELECT presence.update('lobby', 'c2', '{"status": "busy"}');
SELECT m.channel, m.meta, m.last_seen > s.last_seen AS last_seen_refreshed
FROM presence.members('lobby') m JOIN snap s USING (channel);

-- A NULL meta clears it.
SELECT presence.update('lobby', 'g1', NULL);
SELECT channel, meta FROM presence.members('lobby') WHERE channel = 'g1';

-- false for a channel that is not in the room, or a room that does not
-- exist; nothing is created.
SELECT presence.update('lobby', 'nobody', '{}') AS unknown_channel,
       presence.update('kitchen', 'c2', '{}') AS not_in_this_room,
       presence.update('nowhere', 'c1', '{}') AS unknown_room;
SELECT count(*) AS presences FROM presence.presences;
SELECT name FROM presence.rooms ORDER BY name;

--
-- remove(room, channel): leave one room
--

-- true when a presence was removed, false when there was none: removing twice,
-- an unknown channel and an unknown room are not errors.
SELECT presence.remove('lobby', 'c2');
SELECT presence.remove('lobby', 'c2');
SELECT presence.remove('lobby', 'nobody') AS unknown_channel,
       presence.remove('nowhere', 'c1') AS unknown_room;
SELECT channel, user_id FROM presence.members('lobby');

-- c1 left only the lobby; it is still in its other rooms.
SELECT presence.remove('lobby', 'c1');
SELECT * FROM presence.rooms_of('c1');

-- A room stays when its last presence leaves (prune_rooms() deletes empty
-- rooms); it reads as empty.
SELECT presence.remove('lobby', 'g1');
SELECT * FROM presence.stats('lobby');
SELECT name FROM presence.rooms ORDER BY name;

-- A removed channel can join again: a new presence.
SELECT presence.add('lobby', 'g1');

--
-- leave_all(channel): leave every room; how many presences were removed
--

SELECT presence.leave_all('c1');
SELECT presence.leave_all('c1');
SELECT * FROM presence.rooms_of('c1');
SELECT presence.touch('c1');
SELECT presence.leave_all('nobody');
SELECT presence.leave_all('g1');

-- Nothing is left.
SELECT count(*) AS presences FROM presence.presences;
DELETE FROM presence.rooms;
