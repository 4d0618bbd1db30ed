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

VACUUM ANALYZE;
