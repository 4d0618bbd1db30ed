#!/usr/bin/env bash
# Crash recovery: under load (test/stress/crash.py load: 8 workers doing
# random add / update / remove / leave_all / touch with synchronous_commit
# on, plus a prune_rooms() / prune() loop, each worker journalling per
# channel what was acknowledged and what was in flight), the server is
# killed with `pg_ctl stop -m immediate` after PRESENCE_CRASH_SECONDS
# (default 10) and started again on the same data directory (same
# postgresql.conf: same port and socket directory). Then crash.py check:
# no presence without its room, no duplicate (room, channel), indexes pass
# amcheck, every channel whose last op was acknowledged is exactly as
# modelled (one with an op in flight: as before or as after it), and the
# API (add, touch, members, update, remove, leave_all, prune, prune_rooms,
# events) still works.
#
# This crashes the cluster the other integration tests share: it must run
# as root (or as the cluster's OS user) to control it with pg_ctl, and it
# restarts the cluster on every exit path, failures included.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

PY=/usr/bin/python3
# The binaries of the running cluster (test/lib.sh: PRESENCE_PGBIN).
PGBIN=${PRESENCE_PGBIN:-/usr/lib/postgresql/15/bin}
crashed=false
datadir="" owner="" logfile=""


# as_owner runs a command as the OS user that owns the data directory, from
# a directory that user can read.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$owner" -- "$@")
    else
        (cd / && "$@")
    fi
}

# start_cluster starts the cluster again, logging where it logged before.
start_cluster() {
    as_owner "$PGBIN/pg_ctl" -D "$datadir" -l "$logfile" -w -t 300 start >/dev/null
}

# it_on_exit (helpers.bash's EXIT trap): never leave the shared cluster down.
it_on_exit() {
    if "$crashed" && ! as_owner "$PGBIN/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
        printf '%s: restarting the cluster on exit\n' "$IT_NAME" >&2
        start_cluster || printf '%s: could not restart the cluster (log: %s)\n' \
            "$IT_NAME" "$logfile" >&2
    fi
}

it_ensure_psycopg2
it_psql -c 'CREATE EXTENSION presence'

# Where the cluster lives and how it runs, to restart it the same way.
datadir=$(it_value 'SHOW data_directory')
settings_sql="SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
    WHERE name IN ('port', 'unix_socket_directories', 'listen_addresses',
                   'shared_preload_libraries', 'cron.database_name')"
settings_before=$(it_value "$settings_sql")
[ -d "$datadir" ] || it_fail "data directory $datadir is not on this machine"
owner=$(stat -c %U "$datadir")
if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != "$owner" ]; then
    it_fail "must run as root or as $owner (the owner of $datadir) to crash and restart it"
fi
pid=$(head -n 1 "$datadir/postmaster.pid")
# Keep logging to the file the postmaster logs to now (pg_ctl -l appends).
logfile=$(readlink "/proc/$pid/fd/2" 2>/dev/null || true)
if [ -z "$logfile" ] || [ "${logfile#/}" = "$logfile" ] || [ ! -f "$logfile" ]; then
    logfile=$(mktemp "${TMPDIR:-/tmp}/presence-crash-restart.XXXXXX.log")
    if [ "$(id -u)" -eq 0 ]; then chown "$owner:" "$logfile"; fi
fi
if [ -f "$datadir/postmaster.opts" ] &&
    grep -q -- '"-[^D]' "$datadir/postmaster.opts"; then
    it_log "warning: the server was started with options ($(cat "$datadir/postmaster.opts"))" \
        "that pg_ctl start will not repeat; checking settings after the restart"
fi
it_log "cluster $datadir (owner $owner, pid $pid, log $logfile)"
[ "$(it_value 'SHOW synchronous_commit')" != off ] ||
    it_log "synchronous_commit is off in this cluster; the workers set it on"

# The load, until the server goes away.
journal=$IT_TMP/journal.json
"$PY" "$PRESENCE_REPO/test/stress/crash.py" load --journal "$journal" \
    --ready "$IT_TMP/ready" >"$IT_TMP/load.out" 2>&1 &
load_pid=$!
IT_PIDS+=("$load_pid")
for ((i = 0; i < 300; i++)); do
    [ -f "$IT_TMP/ready" ] && break
    kill -0 "$load_pid" 2>/dev/null || { cat "$IT_TMP/load.out" >&2; it_fail "the load did not start"; }
    sleep 0.1
done
[ -f "$IT_TMP/ready" ] || it_fail "the load did not start within 30 s"
it_log "load running; crashing the server in ${PRESENCE_CRASH_SECONDS:-10} s"
sleep "${PRESENCE_CRASH_SECONDS:-10}"
kill -0 "$load_pid" 2>/dev/null || { cat "$IT_TMP/load.out" >&2; it_fail "the load stopped before the crash"; }

crash_at=$(date +%s.%N)
crashed=true
as_owner "$PGBIN/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null ||
    it_fail "pg_ctl stop -m immediate failed"
it_log "server stopped with -m immediate"

# The load notices, writes its journal and exits.
load_rc=0
for ((i = 0; i < 300; i++)); do
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$load_pid" 2>/dev/null; then
    start_cluster
    it_fail "the load did not stop within 30 s of the crash"
fi
wait "$load_pid" || load_rc=$?
cat "$IT_TMP/load.out"

restart_start=$SECONDS
start_cluster || { tail -n 30 "$logfile" >&2; it_fail "the server did not restart after the crash"; }
crashed=false
it_log "server restarted in $((SECONDS - restart_start)) s"
if grep -q 'automatic recovery in progress' "$logfile" 2>/dev/null; then
    it_log "server log: $(grep -E 'redo (starts|done)' "$logfile" | tail -n 2 | sed 's/^.*\(redo\)/\1/' | paste -sd ';' -)"
fi
settings_after=$(it_value "$settings_sql")
[ "$settings_after" = "$settings_before" ] ||
    it_fail "the restarted server runs with other settings: $settings_after (was $settings_before)"

[ "$load_rc" -eq 0 ] || it_fail "the load found problems before the crash (above)"
[ -s "$journal" ] || it_fail "the load wrote no journal"
"$PY" "$PRESENCE_REPO/test/stress/crash.py" check --journal "$journal" --crash-at "$crash_at" ||
    it_fail "crash.py check found problems (above)"
it_log "passed"
