\set r random(1, 100)
\set c random(1, 1000000000)
SELECT presence.add('room' || :r, 'new' || :c, 'u' || :c);
SELECT presence.remove('room' || :r, 'new' || :c);
