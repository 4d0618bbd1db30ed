--
-- validation: bad arguments are errors with a fitting SQLSTATE, raised
-- before anything is read or written (DESIGN.md sections 3 and 4).
--
-- Room and channel: 1 to 255 characters, never NULL.  user_id: NULL
-- (anonymous) or 1 to 255 characters.  Readers check their argument too.
--

-- A few errors in full: message, detail and hint.
SELECT presence.add(NULL, 'c1');
SELECT presence.add('room', '');
SELECT presence.add(repeat('r', 256), 'c1');
SELECT presence.add('room', 'c1', '');
SELECT presence.add('room', 'c1', repeat('u', 256));
SELECT * FROM presence.members(NULL);
SELECT presence.touch(repeat('c', 300));
-- meta is checked by the jsonb type itself.
SELECT presence.update('room', 'c1', '{"status": ');

-- Returns 'ok: <result>' when stmt runs, or its SQLSTATE and message when it
-- fails.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE stmt INTO result;
    RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Nothing exists yet; the sweep below must leave it so.
SELECT (SELECT count(*) FROM presence.rooms) AS rooms,
       (SELECT count(*) FROM presence.presences) AS presences;

-- Every room and channel argument of every function, with NULL, an empty
-- string and 256 characters: 22004 null_value_not_allowed, 22023
-- invalid_parameter_value, 22001 string_data_right_truncation.  user_id
-- takes NULL, but not an empty or over-long string.
SELECT format(f.call, a.arg) AS call,
       pg_temp.try('SELECT ' || format(f.call, a.arg)) AS outcome
FROM (VALUES (1, 'presence.add(%s, ''c1'')'),
             (2, 'presence.add(''room'', %s)'),
             (3, 'presence.add(''room'', ''c1'', %s, ''{}'')'),
             (4, 'presence.remove(%s, ''c1'')'),
             (5, 'presence.remove(''room'', %s)'),
             (6, 'presence.leave_all(%s)'),
             (7, 'presence.touch(%s)'),
             (8, 'presence.update(%s, ''c1'', ''{}'')'),
             (9, 'presence.update(''room'', %s, ''{}'')'),
             (10, 'presence.members(%s)'),
             (11, 'presence.users(%s)'),
             (12, 'presence.anonymous_count(%s)'),
             (13, 'presence.rooms_of(%s)'),
             (14, 'presence.stats(%s)')) AS f(n, call),
     (VALUES (1, 'NULL'), (2, ''''''), (3, 'repeat(''x'', 256)')) AS a(n, arg)
WHERE NOT (f.n = 3 AND a.n = 1)
ORDER BY f.n, a.n;

-- Nothing was created, not even the room of an add() whose channel was bad.
SELECT (SELECT count(*) FROM presence.rooms) AS rooms,
       (SELECT count(*) FROM presence.presences) AS presences;

-- 255 characters is the limit, and it is allowed everywhere.
SELECT presence.add(repeat('r', 255), repeat('c', 255), repeat('u', 255));
SELECT char_length(room), char_length(channel), char_length(user_id)
FROM presence.presences;
SELECT presence.touch(repeat('c', 255)),
       presence.update(repeat('r', 255), repeat('c', 255), '{"ok": true}'),
       presence.anonymous_count(repeat('r', 255));
SELECT count(*) FROM presence.users(repeat('r', 255));
SELECT count(*) FROM presence.members(repeat('r', 255));
SELECT count(*) FROM presence.rooms_of(repeat('c', 255));
SELECT * FROM presence.stats(repeat('r', 255));
SELECT presence.remove(repeat('r', 255), repeat('c', 255));
SELECT presence.leave_all(repeat('c', 255));

-- Names of one character are fine, and so is any character: spaces, quotes,
-- backslashes, JSON and SQL punctuation.
SELECT presence.add('x', 'y', 'z');
SELECT presence.add(' ', E'a\'b"c\\d', 'Robert''); DROP TABLE students;--');
SELECT room, channel, user_id FROM presence.presences ORDER BY room;
SELECT presence.leave_all('y'), presence.leave_all(E'a\'b"c\\d');

-- The limit counts characters, not bytes.  The database this suite runs in
-- may not be UTF8 (that depends on the locale of the test machine), so this
-- part runs in a UTF8 database of its own.
\set test_db :DBNAME
CREATE DATABASE regress_presence_utf8
    TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
\c regress_presence_utf8
CREATE EXTENSION presence;
-- 255 two-byte characters (510 bytes) and 255 four-byte ones (1020 bytes)
-- are allowed; 256 are not.
SELECT presence.add(repeat('é', 255), repeat('🙂', 255), repeat('ü', 255));
SELECT octet_length(room) AS room_bytes, char_length(room) AS room_chars,
       octet_length(channel) AS channel_bytes, char_length(channel) AS channel_chars,
       octet_length(user_id) AS user_id_bytes, char_length(user_id) AS user_id_chars
FROM presence.presences;
SELECT presence.add(repeat('é', 256), 'c1');
SELECT presence.add('room', repeat('🙂', 256));
SELECT presence.add('room', 'c1', repeat('ü', 256));
SELECT * FROM presence.stats(repeat('é', 256));
-- Only the first add changed anything.
SELECT count(*) AS presences FROM presence.presences;
SELECT count(*) AS rooms FROM presence.rooms;
\c :test_db
DROP DATABASE regress_presence_utf8;

-- Leave the database empty for the next test.
DELETE FROM presence.rooms;
SELECT (SELECT count(*) FROM presence.rooms) AS rooms,
       (SELECT count(*) FROM presence.presences) AS presences;
