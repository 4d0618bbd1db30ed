-- The concurrent part of test/slow/85_sharding.sh's session: several
-- connections (psql -v k=0, 1, 2...) run this at once, each one autocommit
-- call at a time, in the order generated below.  Every connection joins the
-- same eight rooms (conc_0 .. conc_7, spread over the shards) with channels
-- and a user of its own, so the events of a room interleave between
-- connections but their payloads do not depend on the interleaving; all of
-- them also join the same presence (conc_hot, channel same), which must
-- give one presence and one join event however the joins race.
SET client_min_messages = warning;
SELECT presence.add('conc_hot', 'same', 'x') IS NOT NULL AS joined;

-- Per round r: k<k>-<r> joins the eight rooms as user u<k>; an anonymous
-- channel joins every other room; from round 1 the channel of the round
-- before leaves odd rooms and changes its meta in even ones; the round's
-- channel heartbeats with both touch forms.
SELECT format(stmt, VARIADIC args)
  FROM (
    SELECT r, i, 1 AS op, 'SELECT presence.add(%L, %L, %L) IS NOT NULL' AS stmt,
           ARRAY['conc_' || i, format('k%s-%s', :'k', r), 'u' || :'k'] AS args
      FROM generate_series(0, 3) r, generate_series(0, 7) i
    UNION ALL
    SELECT r, i, 2, 'SELECT presence.add(%L, %L) IS NOT NULL',
           ARRAY['conc_' || i, format('anon-k%s-%s', :'k', r)]
      FROM generate_series(0, 3) r, generate_series(0, 7, 2) i
    UNION ALL
    SELECT r, i, 3, 'SELECT presence.remove(%L, %L) IS NOT NULL',
           ARRAY['conc_' || i, format('k%s-%s', :'k', r - 1)]
      FROM generate_series(1, 3) r, generate_series(1, 7, 2) i
    UNION ALL
    SELECT r, i, 4, 'SELECT presence.update(%L, %L, %L) IS NOT NULL',
           ARRAY['conc_' || i, format('k%s-%s', :'k', r - 1), format('{"round": %s}', r)]
      FROM generate_series(1, 3) r, generate_series(0, 7, 2) i
    UNION ALL
    SELECT r, 8, 5, 'SELECT presence.touch(%L, ARRAY[%L, %L, %L, %L, %L, %L, %L, %L]) > 0',
           ARRAY[format('k%s-%s', :'k', r), 'conc_0', 'conc_1', 'conc_2', 'conc_3',
                 'conc_4', 'conc_5', 'conc_6', 'conc_7']
      FROM generate_series(0, 3) r
    UNION ALL
    SELECT r, 9, 6, 'SELECT presence.touch(%L) > 0', ARRAY[format('k%s-%s', :'k', r)]
      FROM generate_series(0, 3) r
  ) steps
 ORDER BY r, i, op
\gexec
