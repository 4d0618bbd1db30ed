\set i random(1, :presences)
SELECT presence.touch('ch' || :i);
