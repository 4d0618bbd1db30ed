#!/usr/bin/env bash
# pg_dump of a database using presence restores cleanly into a new database:
# the extension comes back whole (tables, indexes, triggers, functions and
# their privileges) and empty, because presence state is ephemeral and
# neither table is registered with pg_extension_config_dump (README, Backups).
set -euo pipefail

src=$PGDATABASE
dst=${PGDATABASE}_restored
dump=$(mktemp)
trap 'rm -f "$dump"; dropdb --if-exists "$dst" >/dev/null 2>&1 || true' EXIT

q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# A database in use: rooms, presences, an app role with the README's grants.
q -d "$src" -o /dev/null <<'SQL'
CREATE EXTENSION presence;
SELECT presence.add('lobby', 'c' || i, (i % 3)::text) FROM generate_series(1, 5) i;
SET client_min_messages = warning;
DROP ROLE IF EXISTS presence_dump_app;
CREATE ROLE presence_dump_app;
GRANT USAGE ON SCHEMA presence TO presence_dump_app;
GRANT EXECUTE ON FUNCTION presence.touch(text) TO presence_dump_app;
SQL

# What the catalog says about the extension, to compare after the restore.
describe() {
    q -d "$1" <<'SQL'
SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(array_to_string(c.reloptions, ','), '')
  FROM pg_class c WHERE c.relnamespace = 'presence'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'presence.presences'::regclass AND NOT tgisinternal
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || coalesce(array_to_string(p.proacl, ','), 'default')
  FROM pg_proc p WHERE p.pronamespace = 'presence'::regnamespace
ORDER BY 1;
SQL
}
before=$(describe "$src")

pg_dump -d "$src" -f "$dump"
createdb "$dst"
psql -X -q -v ON_ERROR_STOP=1 -d "$dst" -f "$dump" >/dev/null \
    || fail "the dump does not restore cleanly"
after=$(describe "$dst")

[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "restored extension differs"; }
echo "ok: extension restored with the same tables, indexes, triggers, functions and grants ($(echo "$after" | wc -l) objects)"

[ "$(q -d "$dst" -c 'SELECT count(*) FROM presence.presences')" = 0 ] || fail "presences were dumped"
[ "$(q -d "$dst" -c 'SELECT count(*) FROM presence.rooms')" = 0 ] || fail "rooms were dumped"
echo "ok: no presence state in the dump (5 presences in the source)"

# The restored extension works: a connection that re-joins is back.
[ "$(q -d "$dst" -c "SELECT presence.touch('c1')")" = 0 ] || fail "touch of an unknown channel is not 0"
[ "$(q -d "$dst" -c "SELECT presence.add('lobby', 'c1', '1')")" = t ] || fail "add after restore"
[ "$(q -d "$dst" -c "SELECT presence.touch('c1')")" = 1 ] || fail "touch after re-join"
echo "ok: after the restore touch() returns 0, the app re-joins, and presence works"

# Roles are cluster-wide: drop what the test created.
q -d "$dst" -c 'DROP EXTENSION presence'
q -d "$src" -c 'DROP EXTENSION presence' -c 'DROP ROLE presence_dump_app'
