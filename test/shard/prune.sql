-- The pruning step of test/slow/85_sharding.sh, as the admin (the role that
-- schedules pruning): the test has just aged some presences by hand (an
-- UPDATE of last_seen, which sends no event), on the single cluster and on
-- every shard alike (10 minutes old; max_age 5 minutes keeps the rest, however
-- slow the machine).  Through the router, prune and prune_rooms run on every
-- shard and add up; the transcripts must be equal.
SET client_min_messages = warning;
SELECT presence.prune('5 minutes') AS pruned;
SELECT presence.prune('5 minutes') AS pruned_again;
SELECT presence.prune_rooms() AS rooms_pruned;
SELECT presence.prune_rooms() AS rooms_pruned_again;
SELECT presence.rooms_of('ann-1');
SELECT presence.touch('ann-1');
SELECT channel, user_id, meta FROM presence.members('conc_5');
