\set i random(1, :presences)
\set r :i % :rooms
SELECT presence.touch('ch' || :i, ARRAY['room' || :r]);
