#!/usr/bin/env bash
# What schedule_prune() and unschedule_prune() tell an admin when pg_cron is
# not where they run, about 10 s:
#  1. in a database named o'db, pg_cron living in presence_cron: the HINT's
#     SQL, run as printed in pg_cron's database, schedules the job for o'db,
#     and unschedule_prune()'s HINT, run as printed, removes it;
#  2. on a cluster where pg_cron was created but is no longer preloaded:
#     schedule_prune() fails with 55000 and a HINT to preload it, not with
#     an internal error from pg_cron.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=test/lib.sh
. "$PRESENCE_REPO/test/lib.sh"

it_ensure_psycopg2
it_psql -q -d presence_cron -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS pg_cron'
it_psql -q -c "DROP DATABASE IF EXISTS \"o'db\"" -c "CREATE DATABASE \"o'db\""
it_psql -q -d "o'db" -c 'CREATE EXTENSION presence'

# error_of DB SQL prints "SQLSTATE|HINT" of the error SQL raises in DB.
error_of() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(dbname=sys.argv[1])
try:
    conn.cursor().execute(sys.argv[2])
    print("no error")
except psycopg2.Error as e:
    print("%s|%s" % (e.pgcode, e.diag.message_hint or ""))
PY
}

# hint_sql HINT prints the SQL statement the hint tells to run.
hint_sql() { sed -n 's/.*run: \(SELECT .*;\)$/\1/p' <<<"$1"; }

it_on_exit() {
    it_psql -q -d presence_cron -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE database = 'o''db'" >/dev/null 2>&1 || true
    it_psql -q -c "DROP DATABASE IF EXISTS \"o'db\"" >/dev/null 2>&1 || true
    if [ -n "${other:-}" ]; then presence_stop_cluster "$other"; rm -rf "$other"; fi
}

out=$(error_of "o'db" "SELECT presence.schedule_prune('*/5 * * * *')")
it_log "schedule_prune in o'db: $out"
[ "${out%%|*}" = 55000 ] || it_fail "expected SQLSTATE 55000"
sql=$(hint_sql "${out#*|}")
[ -n "$sql" ] || it_fail "no SQL in the hint"
it_psql -q -d presence_cron -c "$sql" >/dev/null || it_fail "the hint's SQL failed in presence_cron: $sql"
job=$(PGDATABASE=presence_cron it_value "SELECT jobname || ' ' || schedule || ' ' || database || ' ' || command FROM cron.job WHERE database = 'o''db'")
it_log "job created by the hint: $job"
[ -n "$job" ] || it_fail "the hint's SQL created no job for o'db"

out=$(error_of "o'db" "SELECT presence.unschedule_prune()")
it_log "unschedule_prune in o'db: $out"
[ "${out%%|*}" = 55000 ] || it_fail "expected SQLSTATE 55000"
sql=$(hint_sql "${out#*|}")
case $sql in *unschedule*) ;; *) it_fail "the hint does not say how to unschedule: $sql" ;; esac
it_psql -q -d presence_cron -c "$sql" >/dev/null || it_fail "the hint's SQL failed: $sql"
[ "$(PGDATABASE=presence_cron it_value "SELECT count(*) FROM cron.job WHERE database = 'o''db'")" = 0 ] ||
    it_fail "the unschedule hint left the job"
it_log "ok: both hints run as printed"

# --- 2. pg_cron created, then no longer preloaded ------------------------------
other=$(presence_mktemp)
port=$(it_free_port)
(
    presence_start_cluster "$other" "$port" cronless '' >/dev/null
    psql -X -q -d cronless -c 'CREATE EXTENSION pg_cron' -c 'CREATE EXTENSION presence'
    sed -i "s/^shared_preload_libraries = 'pg_cron'/shared_preload_libraries = ''/" "$other/data/postgresql.conf"
    cd "$other" && presence_run_as_pg pg_ctl -D data -l log -w restart >/dev/null
) || it_fail "could not set up the cluster without pg_cron preloaded"
out=$(PGHOST=$other/sock PGPORT=$port error_of cronless "SELECT presence.schedule_prune()")
it_log "schedule_prune with pg_cron not preloaded: $out"
[ "${out%%|*}" = 55000 ] || it_fail "expected SQLSTATE 55000"
case ${out#*|} in *shared_preload_libraries*) ;; *) it_fail "the hint does not mention shared_preload_libraries" ;; esac
it_log "ok: pg_cron not preloaded is reported with a hint"
