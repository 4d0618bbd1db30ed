-- The scripted session of test/slow/85_sharding.sh, first part: joins,
-- second tabs, anonymous visitors, meta, moves between rooms, leaves,
-- readers, both touch forms and the errors, one autocommit call per line,
-- as an app server makes them.  Run as the application role, once through
-- the router and once on a single cluster: the two transcripts must be equal
-- (results only; timestamps are left out).  Rooms are spread over every
-- shard with 2 and with 4 shards (the test checks that).
SET client_min_messages = warning;

-- Joins: ann in lobby with two tabs and in kitchen; an anonymous visitor;
-- bob, cat, dan and eve in rooms on different shards.
SELECT presence.add('lobby', 'ann-1', 'ann');
SELECT presence.add('lobby', 'ann-2', 'ann');
SELECT presence.add('lobby', 'anon-1');
SELECT presence.add('kitchen', 'ann-1', 'ann', '{"status": "cooking"}');
SELECT presence.add('study', 'bob-1', 'bob');
SELECT presence.add('harbor', 'bob-1', 'bob');
SELECT presence.add('garden', 'cat-1', 'cat', '{"n": 1}');
SELECT presence.add('gallery', 'cat-1', 'cat');
SELECT presence.add('attic', 'dan-1', 'dan');
SELECT presence.add('porch', 'dan-1', 'dan');
SELECT presence.add('porch', 'eve-1');
SELECT presence.add('porch', 'anon-1');
SELECT presence.add('attic', 'eve-2', 'eve', '{"device": "phone"}');

-- presence.origin tags the events of the changes made while it is set,
-- for the whole session or for one transaction (the Django drop-in's form);
-- through the router, each call carries it to the shard.
SET presence.origin = 'app-1';
SELECT presence.add('gallery', 'fay-1', 'fay');
SELECT presence.update('gallery', 'fay-1', '{"status": "busy"}');
RESET presence.origin;
SELECT presence.add('harbor', 'fay-1', 'fay')
  FROM (SELECT set_config('presence.origin', 'django', true)) o;
SELECT presence.remove('gallery', 'fay-1')
  FROM (SELECT set_config('presence.origin', 'django', true)) o;

-- A rejoin refreshes and returns false, no event; with another meta it
-- sends an updated event.
SELECT presence.add('lobby', 'ann-1', 'ann');
SELECT presence.add('study', 'bob-1', 'bob', '{"status": "away"}');

-- update: changed meta (event), the same meta (no event), unknown presence.
SELECT presence.update('garden', 'cat-1', '{"n": 2}');
SELECT presence.update('garden', 'cat-1', '{"n": 2}');
SELECT presence.update('garden', 'nobody', '{"n": 3}');
SELECT presence.update('gallery', 'cat-1', NULL);

-- Moves: bob goes from harbor to gallery, cat from garden to lobby.
SELECT presence.remove('harbor', 'bob-1');
SELECT presence.add('gallery', 'bob-1', 'bob');
SELECT presence.remove('garden', 'cat-1');
SELECT presence.add('lobby', 'cat-1', 'cat');

-- Leaving what one is not in is not an error.
SELECT presence.remove('harbor', 'bob-1');
SELECT presence.remove('nowhere', 'x');

-- ann's second tab leaves lobby (user_left false: ann-1 is still there).
SELECT presence.remove('lobby', 'ann-2');

-- Readers of one room.
SELECT channel, user_id, meta FROM presence.members('lobby');
SELECT channel, user_id, meta FROM presence.members('porch');
SELECT channel, user_id, meta FROM presence.members('nowhere');
SELECT presence.users('lobby');
SELECT presence.users('porch');
SELECT presence.anonymous_count('porch'), presence.anonymous_count('nowhere');
SELECT * FROM presence.stats('lobby');
SELECT * FROM presence.stats('nowhere');

-- Readers and heartbeats keyed by channel: ann-1 is in lobby and kitchen,
-- anon-1 in lobby and porch, bob-1 in study and gallery.
SELECT presence.rooms_of('ann-1');
SELECT presence.rooms_of('anon-1');
SELECT presence.rooms_of('bob-1');
SELECT presence.rooms_of('nobody');
SELECT presence.touch('ann-1');
SELECT presence.touch('ann-1', ARRAY['lobby', 'kitchen']);
SELECT presence.touch('anon-1', ARRAY['porch', 'lobby']);
SELECT presence.touch('bob-1', ARRAY['gallery', 'study', 'gallery']);
SELECT presence.touch('nobody');
SELECT presence.touch('nobody', ARRAY['lobby']);

-- Errors: the SQLSTATE, the same on both sides, nothing changed.
SELECT sqlstate_of($$SELECT presence.add(NULL, 'c')$$) AS add_null_room;
SELECT sqlstate_of($$SELECT presence.add('', 'c')$$) AS add_empty_room;
SELECT sqlstate_of($$SELECT presence.add('lobby', NULL)$$) AS add_null_channel;
SELECT sqlstate_of($$SELECT presence.add('lobby', repeat('x', 256))$$) AS add_long_channel;
SELECT sqlstate_of($$SELECT presence.add(repeat('r', 256), 'c')$$) AS add_long_room;
SELECT sqlstate_of($$SELECT presence.add('lobby', 'c', '')$$) AS add_empty_user;
SELECT sqlstate_of($$SELECT presence.add('lobby', 'ann-1', 'bob')$$) AS add_other_user;
SELECT sqlstate_of($$SELECT presence.remove('lobby', '')$$) AS remove_empty_channel;
SELECT sqlstate_of($$SELECT presence.update(NULL, 'c', '{}')$$) AS update_null_room;
SELECT sqlstate_of($$SELECT * FROM presence.members(NULL)$$) AS members_null;
SELECT sqlstate_of($$SELECT presence.users('')$$) AS users_empty;
SELECT sqlstate_of($$SELECT * FROM presence.stats(NULL)$$) AS stats_null;
SELECT sqlstate_of($$SELECT presence.anonymous_count('')$$) AS anonymous_count_empty;
SELECT sqlstate_of($$SELECT presence.touch(NULL)$$) AS touch_null;
SELECT sqlstate_of($$SELECT presence.leave_all('')$$) AS leave_all_empty;
SELECT sqlstate_of($$SELECT presence.rooms_of(NULL)$$) AS rooms_of_null;
SELECT sqlstate_of($$SELECT presence.prune()$$) AS prune_not_granted;
BEGIN READ ONLY;
SELECT sqlstate_of($$SELECT presence.touch('ann-1')$$) AS touch_read_only;
SELECT sqlstate_of($$SELECT presence.touch('ann-1', ARRAY['lobby', 'kitchen'])$$) AS touch_rooms_read_only;
SELECT sqlstate_of($$SELECT presence.add('lobby', 'ro-1')$$) AS add_read_only;
SELECT sqlstate_of($$SELECT presence.remove('lobby', 'ann-1')$$) AS remove_read_only;
SELECT sqlstate_of($$SELECT presence.leave_all('ann-1')$$) AS leave_all_read_only;
SELECT count(*) AS lobby_read_only FROM presence.members('lobby');
ROLLBACK;
