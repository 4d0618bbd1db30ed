\set r random(1, 100)
\set c random(1, 1000000000)
INSERT INTO bare_pres (room, channel, user_id) VALUES ('room' || :r, 'new' || :c, 'u' || :c);
DELETE FROM bare_pres WHERE room = 'room' || :r AND channel = 'new' || :c;
