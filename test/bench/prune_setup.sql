-- :rows stale presences spread over :rooms rooms, loaded without events.
SET presence.notify = off;
TRUNCATE presence.presences;
DELETE FROM presence.rooms;
INSERT INTO presence.rooms (name) SELECT 'p' || r FROM generate_series(1, :rooms) r;
INSERT INTO presence.presences (room, channel, user_id, last_seen)
SELECT 'p' || (i % :rooms + 1), 'pc' || i, 'u' || (i % 50000), now() - interval '1 hour'
  FROM generate_series(1, :rows) i;
VACUUM ANALYZE presence.presences;
