#!/usr/bin/env bash
# Changes that arrive by logical replication are announced on the
# subscriber (README, "Decisions and limits"), in both transports, about
# 20 s.  A logical replication apply worker fires row triggers only, never
# statement triggers, so the changes it records are sent at commit.  For
# each mode, a cluster of its own with wal_level = logical: database pub
# publishes presence's tables, database sub (presence created there too)
# subscribes; a listener on sub receives the event of a join and of a leave
# made on pub.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_psycopg2

for mode in direct worker; do
    it_cluster "$mode" "wal_level = logical"
    it_psql -q -c "CREATE DATABASE pub" -c "CREATE DATABASE sub"
    PGDATABASE=pub it_psql -q <<'SQL'
CREATE EXTENSION presence;
CREATE PUBLICATION presence_pub FOR TABLE presence.rooms, presence.presences;
SELECT pg_create_logical_replication_slot('presence_sub', 'pgoutput');
SQL
    PGDATABASE=sub it_psql -q -c 'CREATE EXTENSION presence' \
        -c "CREATE SUBSCRIPTION presence_sub CONNECTION 'host=$PGHOST port=$PGPORT dbname=pub user=postgres'
            PUBLICATION presence_pub WITH (create_slot = false, slot_name = 'presence_sub', copy_data = false)"
    PGDATABASE=sub it_start_listener "$IT_TMP/$mode.events" presence 30 2
    PGDATABASE=pub it_psql -q -c "SELECT presence.add('replicated', 'c1', 'ann')" \
        -c "SELECT presence.remove('replicated', 'c1')" >/dev/null
    it_wait_listener "$IT_TMP/$mode.events" || it_fail "$mode mode: the subscriber announced no event for replicated changes"
    /usr/bin/python3 - "$IT_TMP/$mode.events" <<'PY' || it_fail "$mode mode: wrong events on the subscriber"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
assert events[0]["room"] == "replicated" and events[0]["added"]["channel"] == "c1", events
assert events[1]["removed"]["channel"] == "c1", events
PY
    it_log "ok ($mode mode): the subscriber announced the join and the leave made on the publisher"
    PGDATABASE=sub it_psql -q -c 'DROP SUBSCRIPTION presence_sub'
done
