-- shard_bench.sh's data on one shard (or, with :n = 1, the whole set): of
-- :presences channels ch<i>, each in room room<i % :rooms>, those whose room
-- the router sends to shard :shard of :n.  Events off: this is loading.
SET presence.notify = off;
SELECT count(presence.add('room' || (g % :rooms), 'ch' || g, 'u' || g))
  FROM generate_series(1, :presences) g
 WHERE pg_catalog.hashtext('room' || (g % :rooms)) & (:n - 1) = :shard;
VACUUM ANALYZE presence.presences;
