-- Benchmark data: :presences presences in 100 rooms, and bare twins of the
-- table for the baselines (same columns, same fillfactor, same key).
CREATE EXTENSION presence;
SET presence.notify = off;
SELECT count(presence.add('room' || (i % 100), 'ch' || i, 'u' || (i % 5000)))
  FROM generate_series(1, :presences) i;

-- touch that writes vs this: UPDATE of last_seen by channel, indexed the same.
CREATE TABLE bare_touch (LIKE presence.presences INCLUDING DEFAULTS) WITH (fillfactor = 70);
INSERT INTO bare_touch SELECT * FROM presence.presences;
ALTER TABLE bare_touch ADD PRIMARY KEY (room, channel);
CREATE INDEX ON bare_touch (channel, room);

-- add + remove vs this: INSERT and DELETE of a row of the same width by key.
CREATE TABLE bare_pres (LIKE presence.presences INCLUDING DEFAULTS) WITH (fillfactor = 70);
ALTER TABLE bare_pres ADD PRIMARY KEY (room, channel);

-- The reference pair: the same INSERT + DELETE with the foreign key that
-- presences have (to rooms room0 to room100, those of the scripts), against
-- bare_pres.  It shows what
-- PostgreSQL's own referential integrity costs at each client count
-- (its check locks the room row FOR KEY SHARE, as add() does).
CREATE TABLE bare_rooms (name text PRIMARY KEY);
INSERT INTO bare_rooms SELECT 'room' || i FROM generate_series(0, 100) i;
CREATE TABLE bare_pres_fk (LIKE presence.presences INCLUDING DEFAULTS) WITH (fillfactor = 70);
ALTER TABLE bare_pres_fk ADD PRIMARY KEY (room, channel);
ALTER TABLE bare_pres_fk ADD FOREIGN KEY (room) REFERENCES bare_rooms (name) ON DELETE CASCADE;

VACUUM ANALYZE;
