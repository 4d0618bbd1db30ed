\set r random(1, 100)
\set c random(1, 1000000000)
INSERT INTO bare_pres_fk (room, channel, user_id) VALUES ('room' || :r, 'new' || :c, 'u' || :c);
DELETE FROM bare_pres_fk WHERE room = 'room' || :r AND channel = 'new' || :c;
