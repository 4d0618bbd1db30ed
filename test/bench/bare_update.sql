\set i random(1, :presences)
UPDATE bare_touch SET last_seen = now() WHERE channel = 'ch' || :i;
