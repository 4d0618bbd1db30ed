-- The scripted session of test/slow/85_sharding.sh, after the concurrent
-- joins: disconnects with both leave_all forms, then the readers of every
-- room.  Run as the application role, through the router and on a single
-- cluster; the transcripts must be equal.
SET client_min_messages = warning;

-- Disconnects: k0-0 is in four conc rooms on several shards (every shard
-- is asked); k1-0 lists its rooms (only their shards are asked); dan-1 is
-- in attic and porch; leaving again finds nothing.
SELECT presence.rooms_of('k0-0');
SELECT presence.leave_all('k0-0');
SELECT presence.leave_all('k1-0', ARRAY['conc_0', 'conc_2', 'conc_4', 'conc_6'])
  FROM (SELECT set_config('presence.origin', 'app-3', true)) o;
SET presence.origin = 'app-2';
SELECT presence.leave_all('dan-1');
RESET presence.origin;
SELECT presence.leave_all('dan-1');
SELECT presence.leave_all('nobody', ARRAY['lobby', 'porch']);
SELECT presence.rooms_of('k0-0');

-- The heartbeats of the survivors, both forms in one statement (the
-- second touch counts what the first one wrote).
SELECT presence.touch('k2-3'), presence.touch('k2-3', ARRAY['conc_0', 'conc_1', 'conc_2', 'conc_3',
                                                            'conc_4', 'conc_5', 'conc_6', 'conc_7']);
SELECT presence.touch('same'), presence.touch('same', ARRAY['conc_hot']);

-- Every room, as a reader sees it.
SELECT r AS room, m.channel, m.user_id, m.meta
  FROM unnest(ARRAY['lobby', 'kitchen', 'study', 'harbor', 'garden', 'gallery', 'attic', 'porch',
                    'conc_0', 'conc_1', 'conc_2', 'conc_3', 'conc_4', 'conc_5', 'conc_6',
                    'conc_7', 'conc_hot']) r,
       LATERAL presence.members(r) m
 ORDER BY 1, 2;
SELECT r AS room, s.*, presence.anonymous_count(r) AS anonymous_count,
       array_to_string(ARRAY(SELECT presence.users(r)), ',') AS users
  FROM unnest(ARRAY['lobby', 'kitchen', 'study', 'harbor', 'garden', 'gallery', 'attic', 'porch',
                    'conc_0', 'conc_1', 'conc_2', 'conc_3', 'conc_4', 'conc_5', 'conc_6',
                    'conc_7', 'conc_hot']) r,
       LATERAL presence.stats(r) s
 ORDER BY 1;
