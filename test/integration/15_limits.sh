#!/usr/bin/env bash
# Limits that protect the server from its own callers (DESIGN.md section 4),
# about 30 s:
#  1. one transaction joins 20000 rooms and then leaves them all, while
#     other sessions keep joining: no "out of shared memory" for anyone;
#  2. the peak private memory of the backend (test/tools/peak_memory.py) for
#     a leave_all of a channel in 2000 rooms whose meta is 1 MB each, a prune
#     of 1000 such presences, and a TRUNCATE of 400000 presences stays under
#     PEAK_LIMIT_MB: the events' bookkeeping never copies a meta that cannot
#     fit a payload and never holds every row.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

PEAK_LIMIT_MB=${PEAK_LIMIT_MB:-64}
it_ensure_psycopg2
it_psql -q -c 'CREATE EXTENSION presence'

# --- 1. 20000 joins in one transaction ---------------------------------------

PGAPPNAME=limits-big psql -X -q -At -v ON_ERROR_STOP=1 >"$IT_TMP/big.out" 2>&1 <<'SQL' &
BEGIN;
SELECT count(*) FILTER (WHERE presence.add('big-' || i, 'big-tab', 'ann')) FROM generate_series(1, 20000) i;
SELECT pg_sleep(3);
SELECT presence.leave_all('big-tab');
COMMIT;
SQL
big=$!
IT_PIDS+=("$big")
for ((i = 0; i < 600; i++)); do
    [ "$(it_value "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'limits-big' AND query LIKE '%pg_sleep%'")" = 1 ] && break
    kill -0 "$big" 2>/dev/null || break
    sleep 0.1
done
# While it holds everything it took, other sessions join rooms as users.
others=$(it_value "SELECT count(*) FILTER (WHERE presence.add('other-' || i, 'other-tab', 'u' || i)) FROM generate_series(1, 200) i")
[ "$others" = 200 ] || it_fail "another session's joins failed while the big transaction ran: $others"
wait "$big" || { cat "$IT_TMP/big.out" >&2; it_fail "the transaction of 20000 joins and a leave_all failed"; }
[ "$(sed -n 1p "$IT_TMP/big.out")" = 20000 ] && [ "$(sed -n 3p "$IT_TMP/big.out")" = 20000 ] ||
    { cat "$IT_TMP/big.out" >&2; it_fail "expected 20000 joins and 20000 leaves"; }
it_log "ok: one transaction joined 20000 rooms and left them all; another session joined 200 rooms meanwhile"
it_psql -q -c "SELECT presence.leave_all('other-tab')" -c "DELETE FROM presence.rooms"

# --- 2. Peak memory ----------------------------------------------------------

# peak LABEL SQL [SETUP] runs SQL on a backend of its own and fails if its
# peak private memory reaches PEAK_LIMIT_MB.
peak() {
    local line mb
    line=$(/usr/bin/python3 "$PRESENCE_REPO/test/tools/peak_memory.py" "$2" "${3:-}") ||
        it_fail "$1: the statement failed"
    mb=$(sed -n 's/^peak_private_mb=\([0-9.]*\) .*/\1/p' <<<"$line")
    it_log "$1: $line"
    awk -v mb="$mb" -v lim="$PEAK_LIMIT_MB" 'BEGIN { exit !(mb < lim) }' ||
        it_fail "$1: peak private memory $mb MB, limit $PEAK_LIMIT_MB MB"
}

# 2000 rooms, each with one presence of channel big-meta whose meta is 1 MB
# (it compresses well, so the table stays small); written with events off.
it_psql -q <<'SQL'
SET presence.notify = off;
INSERT INTO presence.rooms (name) SELECT 'm' || i FROM generate_series(1, 2000) i;
INSERT INTO presence.presences (room, channel, user_id, meta)
SELECT 'm' || i, 'big-meta', 'ann', m.meta
FROM generate_series(1, 2000) i,
     (SELECT jsonb_build_object('blob', repeat('x', 1000000)) AS meta) m;
SQL
peak "leave_all of a channel in 2000 rooms with 1 MB of meta each" \
    "SELECT presence.leave_all('big-meta')"

it_psql -q <<'SQL'
SET presence.notify = off;
INSERT INTO presence.presences (room, channel, user_id, meta, last_seen)
SELECT 'm' || i, 'stale-meta', 'ann', m.meta, now() - interval '1 hour'
FROM generate_series(1, 1000) i,
     (SELECT jsonb_build_object('blob', repeat('y', 1000000)) AS meta) m;
SQL
peak "prune of 1000 presences with 1 MB of meta each" "SELECT presence.prune('1 minute')"

it_psql -q <<'SQL'
SET presence.notify = off;
INSERT INTO presence.presences (room, channel, user_id, meta)
SELECT 'm' || (i % 2000 + 1), 't' || i, 'u' || (i % 5000), '{"status":"here"}'
FROM generate_series(1, 400000) i;
SQL
peak "TRUNCATE of 400000 presences in 2000 rooms" \
    "TRUNCATE presence.presences; SELECT count(*) FROM presence.presences"

it_log "ok: every peak under $PEAK_LIMIT_MB MB"
