#!/usr/bin/env bash
# Failover on Patroni (DESIGN.md section 13), on loopback: etcd, and two
# Patroni nodes running PostgreSQL from $PRESENCE_PGBIN (the build under
# test), a primary and a synchronous standby (synchronous_mode), pg_cron
# preloaded with the presence-prune job, presence installed.
#
# Under load (test/ha/failover.py load: writers doing add / touch / update /
# remove / leave_all through a multi-host connection string with
# target_session_attrs=read-write, a psycopg2 listener, and the Django
# drop-in's listener in a process of its own), the primary's postgres is
# killed with kill -9 (the postmaster and all its processes at once).
# Patroni promotes the standby; the clients reconnect by themselves.
# Checked: nothing a synchronous commit acknowledged is lost, no orphan,
# no stranger; the listeners reconnect, LISTEN again and re-read (their
# view equals members() at the end); the old primary rejoins as a standby
# (after pg_rewind when its WAL went past the fork); on both standbys the readers answer as on the primary and
# touch (and every writing function) fails with SQLSTATE 25006; the pg_cron
# job runs on the new primary (it prunes backdated presences and their
# rooms, cron.job_run_details says succeeded) and never on a standby (no
# scheduler, no job in their logs while they were standbys).
# Prints the figures: time to a new primary, what each client saw.
#
# Settings (environment):
#   PRESENCE_HA_SYNC=off      asynchronous replication: acknowledged writes
#                             a failover lost are reported, not a failure
#   PRESENCE_HA_WORKER=on     worker mode: presence preloaded, a background
#                             worker sends the events
#   PRESENCE_HA_KILL=node     kill -9 Patroni too (a lost node): the leader
#                             key must expire (ttl 20 s) before a failover
#   PRESENCE_HA_MIN_ACKED=N   calls each writer makes before the kill (300)
#   PRESENCE_HA_TTL, PRESENCE_HA_LOOP_WAIT, PRESENCE_HA_RETRY_TIMEOUT
#                             Patroni's ttl, loop_wait, retry_timeout (20, 1, 5)
#   PRESENCE_HA_KEEP=1        keep the temp dir (logs, data) after the run
# Takes 30 s to 2 minutes, most of it waiting for pg_cron's next minute.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/../integration/helpers.bash"

PY=/usr/bin/python3
HA=$PRESENCE_REPO/test/ha
PGBIN=${PRESENCE_PGBIN:-/usr/lib/postgresql/15/bin}
SYNC=${PRESENCE_HA_SYNC:-on}
KILL=${PRESENCE_HA_KILL:-instance}
WORKER=${PRESENCE_HA_WORKER:-off}
MIN_ACKED=${PRESENCE_HA_MIN_ACKED:-300}
TTL=${PRESENCE_HA_TTL:-20} LOOP_WAIT=${PRESENCE_HA_LOOP_WAIT:-1} RETRY_TIMEOUT=${PRESENCE_HA_RETRY_TIMEOUT:-5}
DB=presence_ha
case $SYNC in on | off) ;; *) it_fail "PRESENCE_HA_SYNC must be on or off" ;; esac
case $KILL in instance | node) ;; *) it_fail "PRESENCE_HA_KILL must be instance or node" ;; esac
case $WORKER in on) preload=pg_cron,presence ;; off) preload=pg_cron ;; *) it_fail "PRESENCE_HA_WORKER must be on or off" ;; esac

passed=false
failures=()  # checks that failed without stopping the test: reported at the end
HA_TMP=""
ETCD_PID="" load_pid="" django_pid=""
PATRONI_PID=("" "" "")

# as_pg runs a command as the postgres OS user when root (Patroni's initdb
# refuses root), in the foreground or, prefixed with exec, in place.
AS_PG=(env)
if [ "$(id -u)" -eq 0 ]; then
    AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups env)
fi

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID SECONDS sends TERM, waits up to SECONDS, then KILL.
stop_pid() {
    local pid=$1 i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

# it_on_exit (helpers.bash's EXIT trap): on failure show the logs; stop
# Patroni (which stops its postgres), then any postgres, pg_basebackup or
# pg_rewind still running from our temp dir, then etcd.
it_on_exit() {
    local n f pid pm cmd
    [ -n "$HA_TMP" ] || return 0
    if ! "$passed"; then
        if alive "$django_pid"; then  # its threads' stacks, to django.out
            kill -USR1 "$django_pid" 2>/dev/null || true
            sleep 1
        fi
        for f in "$HA_TMP"/node1/patroni.log "$HA_TMP"/node2/patroni.log \
            "$HA_TMP"/node1/pglog/postgresql.log "$HA_TMP"/node2/pglog/postgresql.log \
            "$HA_TMP"/etcd.log "$HA_TMP"/load.out "$HA_TMP"/django.out; do
            [ -s "$f" ] || continue
            printf '\n----- %s (last 60 lines) -----\n' "$f" >&2
            tail -n 60 "$f" >&2
        done
    fi
    stop_pid "$load_pid" 10
    stop_pid "$django_pid" 10
    for n in 1 2; do
        if alive "${PATRONI_PID[$n]}"; then kill -TERM "${PATRONI_PID[$n]}" 2>/dev/null || true; fi
    done
    for n in 1 2; do stop_pid "${PATRONI_PID[$n]}" 40; done
    stop_pid "$ETCD_PID" 10
    for n in 1 2; do
        f=$HA_TMP/node$n/data/postmaster.pid
        [ -f "$f" ] || continue
        pm=$(head -n 1 "$f")
        if alive "$pm" && [[ $(tr '\0' ' ' <"/proc/$pm/cmdline") == *"$HA_TMP/"* ]]; then
            kill -QUIT "$pm" 2>/dev/null || true
        fi
    done
    # Whatever else we started (pg_basebackup, pg_rewind, orphaned backends):
    # the processes whose command line names our unique temp dir.
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" != $$ ] || continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        if [[ $cmd == *"$HA_TMP/"* ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if [ "${PRESENCE_HA_KEEP:-}" = 1 ]; then
        printf '%s: kept %s\n' "$IT_NAME" "$HA_TMP" >&2
    else
        rm -rf "$HA_TMP"
    fi
}

# free_ports N prints N distinct free ports.
free_ports() {
    local -A seen=()
    local p
    while [ "${#seen[@]}" -lt "$1" ]; do
        p=$(it_free_port)
        if [ -z "${seen[$p]:-}" ]; then seen[$p]=1; echo "$p"; fi
    done
}

# psql_at NODE SQL prints the single value SQL returns on that node.
psql_at() {
    "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "host=127.0.0.1 port=${PG_PORT[$1]} user=postgres dbname=${3:-$DB}" -c "$2"
}

# start_patroni N starts Patroni for node N in the background.
start_patroni() {
    (cd "$HA_TMP" && exec "${AS_PG[@]}" HOME="$HA_TMP" patroni "$HA_TMP/node$1/patroni.yml") \
        >>"$HA_TMP/node$1/patroni.log" 2>&1 &
    PATRONI_PID[$1]=$!
}

# log_after FILE PATTERN prints FILE from its last line matching PATTERN.
log_after() { awk -v pat="$2" '$0 ~ pat { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$1"; }

# ---------------------------------------------------------------------------
it_apt_install patroni etcd-server python3-etcd python3-psycopg2 python3-django python3-django-channels procps
for f in pg_ctl postgres pg_rewind pg_basebackup psql; do
    [ -x "$PGBIN/$f" ] || it_fail "$PGBIN/$f not found (PRESENCE_PGBIN)"
done
pkglib=$("$PGBIN/pg_config" --pkglibdir)
for f in pg_cron presence; do
    [ -f "$pkglib/$f.so" ] || it_fail "$pkglib/$f.so not found: install $f for $PGBIN"
done
for f in patroni patronictl etcd; do command -v "$f" >/dev/null || it_fail "$f is missing"; done

HA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/presence-ha.XXXXXX")
mapfile -t ports < <(free_ports 6)
ETCD_PORT=${ports[0]} ETCD_PEER=${ports[1]}
REST_PORT=("" "${ports[2]}" "${ports[3]}")
PG_PORT=("" "${ports[4]}" "${ports[5]}")
sync_mode=true
[ "$SYNC" = on ] || sync_mode=false
for n in 1 2; do
    mkdir -p "$HA_TMP/node$n"
    sed -e "s|@NODE@|node$n|g; s|@REST_PORT@|${REST_PORT[$n]}|g; s|@ETCD_PORT@|$ETCD_PORT|g" \
        -e "s|@SYNC_MODE@|$sync_mode|g; s|@PG_PORT@|${PG_PORT[$n]}|g; s|@DIR@|$HA_TMP/node$n|g" \
        -e "s|@PRELOAD@|$preload|g" \
        -e "s|@TTL@|$TTL|g; s|@LOOP_WAIT@|$LOOP_WAIT|g; s|@RETRY_TIMEOUT@|$RETRY_TIMEOUT|g" \
        -e "s|@PGBIN@|$PGBIN|g" "$HA/patroni.yml.in" >"$HA_TMP/node$n/patroni.yml"
done
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$HA_TMP"; fi
it_log "temp dir $HA_TMP; etcd :$ETCD_PORT; node1 pg :${PG_PORT[1]} rest :${REST_PORT[1]}; node2 pg :${PG_PORT[2]} rest :${REST_PORT[2]}; synchronous_mode $sync_mode; kill $KILL; shared_preload_libraries $preload; ttl $TTL loop_wait $LOOP_WAIT retry_timeout $RETRY_TIMEOUT"

NODE_DSN=("" "host=127.0.0.1 port=${PG_PORT[1]} dbname=$DB user=postgres" "host=127.0.0.1 port=${PG_PORT[2]} dbname=$DB user=postgres")
APP_DSN=("" "host=127.0.0.1 port=${PG_PORT[1]} dbname=$DB user=app" "host=127.0.0.1 port=${PG_PORT[2]} dbname=$DB user=app")
# What an application writes: both nodes, and only a primary will do.
MULTI="host=127.0.0.1,127.0.0.1 port=${PG_PORT[1]},${PG_PORT[2]} dbname=$DB target_session_attrs=read-write connect_timeout=3 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"

# etcd, then node1 (it bootstraps the cluster), then node2 (a copy of it).
(cd "$HA_TMP" && exec "${AS_PG[@]}" HOME="$HA_TMP" etcd --name etcd1 --data-dir "$HA_TMP/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "etcd1=http://127.0.0.1:$ETCD_PEER") >"$HA_TMP/etcd.log" 2>&1 &
ETCD_PID=$!
"$PY" "$HA/failover.py" wait-http --url "http://127.0.0.1:$ETCD_PORT/health" --timeout 60 ||
    it_fail "etcd did not start"

start=$SECONDS
start_patroni 1
"$PY" "$HA/failover.py" wait-primary --dsn "host=127.0.0.1 port=${PG_PORT[1]} dbname=postgres user=postgres" \
    --timeout 180 >/dev/null || it_fail "node1 did not bootstrap as the primary"
psql_at 1 "CREATE DATABASE $DB" postgres >/dev/null
"$PY" "$HA/failover.py" setup --dsn "${NODE_DSN[1]}"
it_log "node1 is the primary ($((SECONDS - start)) s)"

start=$SECONDS
start_patroni 2
# standby_flags N: wait-standby's options for node N: synchronous, and known
# to Patroni as such (or as a replica), so that it may promote it.
standby_flags() {
    if [ "$SYNC" = on ]; then
        echo "--sync --rest http://127.0.0.1:${REST_PORT[$1]}/sync"
    else
        echo "--rest http://127.0.0.1:${REST_PORT[$1]}/replica"
    fi
}
# shellcheck disable=SC2046  # standby_flags's words are meant to split
"$PY" "$HA/failover.py" wait-standby --primary "${NODE_DSN[1]}" --standby "${NODE_DSN[2]}" \
    $(standby_flags 2) --timeout 240 || it_fail "node2 did not become a streaming standby"
it_log "node2 is a $([ "$SYNC" = on ] && echo synchronous || echo asynchronous) standby ($((SECONDS - start)) s): $(psql_at 1 "SELECT application_name || ' ' || sync_state FROM pg_stat_replication")"

# The standby before any failover (a failure here is reported at the end:
# the failover is tested all the same).
"$PY" "$HA/failover.py" standby --primary "${NODE_DSN[1]}" --standby "${NODE_DSN[2]}" \
    --standby-app "${APP_DSN[2]}" || failures+=("node2 as a standby before the failover")

# The Django drop-in's listener, in a process of its own.
"$PY" "$HA/django_listener.py" --hosts 127.0.0.1,127.0.0.1 --ports "${PG_PORT[1]},${PG_PORT[2]}" \
    --dbname "$DB" --out "$HA_TMP/django.events" --ready "$HA_TMP/django.ready" >"$HA_TMP/django.out" 2>&1 &
django_pid=$!
IT_PIDS+=("$django_pid")
for ((i = 0; i < 600; i++)); do
    [ -f "$HA_TMP/django.ready" ] && break
    alive "$django_pid" || { cat "$HA_TMP/django.out" >&2; it_fail "the Django listener did not start"; }
    sleep 0.1
done
[ -f "$HA_TMP/django.ready" ] || it_fail "the Django listener did not LISTEN within 60 s"

# The load.
"$PY" "$HA/failover.py" load --dsn "$MULTI user=app" --admin-dsn "$MULTI user=postgres" \
    --journal "$HA_TMP/journal.json" --status "$HA_TMP/status.json" --stop "$HA_TMP/stop" \
    >"$HA_TMP/load.out" 2>&1 &
load_pid=$!
IT_PIDS+=("$load_pid")
"$PY" "$HA/failover.py" wait-load --status "$HA_TMP/status.json" --min-acked "$MIN_ACKED" --timeout 300 ||
    { cat "$HA_TMP/load.out" >&2; it_fail "the load did not get going"; }
if [ "$SYNC" = on ]; then
    [ "$(psql_at 1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'node2'")" = sync ] ||
        it_fail "node2 is not the synchronous standby at the kill"
fi
repl=$(psql_at 1 "SELECT format('WAL %s, standby lag write %s flush %s replay %s', pg_current_wal_lsn(),
    coalesce(write_lag::text, '-'), coalesce(flush_lag::text, '-'), coalesce(replay_lag::text, '-'))
    FROM pg_stat_replication WHERE application_name = 'node2'")

# The kill: the postmaster and every process of its instance at once (kill
# is a builtin and EPOCHREALTIME a variable: no fork between them).
pm=$(head -n 1 "$HA_TMP/node1/data/postmaster.pid")
mapfile -t kids < <(ps -o pid= --ppid "$pm" | tr -d ' ')
kill_at=${EPOCHREALTIME/,/.}
if [ "$KILL" = node ]; then kill -KILL "${PATRONI_PID[1]}"; fi
kill -KILL "$pm" "${kids[@]}"
it_log "killed node1's postgres (postmaster $pm and ${#kids[@]} processes)$([ "$KILL" = node ] && echo " and its Patroni"); just before: $repl"

to_primary=$("$PY" "$HA/failover.py" wait-primary --dsn "${NODE_DSN[2]}" --since "$kill_at" --timeout 180) ||
    it_fail "node2 did not become the primary"
it_log "node2 is the primary ${to_primary} s after the kill"

"$PY" "$HA/failover.py" wait-load --status "$HA_TMP/status.json" --min-acked 100 --reconnected --timeout 180 ||
    { cat "$HA_TMP/load.out" >&2; it_fail "the clients did not recover"; }
"$PY" "$HA/failover.py" wait-django --events "$HA_TMP/django.events" --kill-at "$kill_at" --timeout 120 ||
    it_fail "the Django listener did not reconnect"
touch "$HA_TMP/stop"
for ((i = 0; i < 1800; i++)); do
    alive "$load_pid" || break
    sleep 0.1
done
alive "$load_pid" && it_fail "the load did not stop within 180 s"
wait "$load_pid" || { cat "$HA_TMP/load.out" >&2; it_fail "the load failed"; }
cat "$HA_TMP/load.out"

allow=()
[ "$SYNC" = on ] || allow=(--allow-loss)
"$PY" "$HA/failover.py" check --journal "$HA_TMP/journal.json" --dsn "${NODE_DSN[2]}" --kill-at "$kill_at" \
    --django-events "$HA_TMP/django.events" "${allow[@]}" || it_fail "the check after the failover (above)"

# The old primary rejoins as a standby (Patroni rewinds it); a lost node's
# Patroni is started again, as its operator would.
start=$SECONDS
if ! alive "${PATRONI_PID[1]}"; then start_patroni 1; fi
# shellcheck disable=SC2046
"$PY" "$HA/failover.py" wait-standby --primary "${NODE_DSN[2]}" --standby "${NODE_DSN[1]}" \
    $(standby_flags 1) --timeout 300 || it_fail "node1 did not rejoin as a standby"
it_log "node1 rejoined as a standby $((SECONDS - start)) s after the check$(grep -q 'running pg_rewind' "$HA_TMP/node1/patroni.log" && echo ', after pg_rewind')"
"$PY" "$HA/failover.py" standby --primary "${NODE_DSN[2]}" --standby "${NODE_DSN[1]}" \
    --standby-app "${APP_DSN[1]}" || failures+=("node1 as a standby after it rejoined")

# pg_cron: runs on the new primary, never on a standby.
"$PY" "$HA/failover.py" cron --primary "${NODE_DSN[2]}" --standby "${NODE_DSN[1]}" --since "$kill_at" \
    --timeout 180 || it_fail "pg_cron after the failover (above)"
log2=$HA_TMP/node2/pglog/postgresql.log log1=$HA_TMP/node1/pglog/postgresql.log
before_promotion=$(awk '/selected new timeline ID/ { exit } { print }' "$log2")
grep -q 'ready to accept read-only connections' <<<"$before_promotion" ||
    it_fail "node2's log does not show it ran as a standby"
if grep -E 'cron job [0-9]+ |pg_cron scheduler started' <<<"$before_promotion"; then
    it_fail "pg_cron ran on node2 while it was a standby (above)"
fi
grep -q 'pg_cron scheduler started' <(awk '/selected new timeline ID/ { on = 1 } on' "$log2") ||
    it_fail "node2's log does not show pg_cron starting after its promotion"
since_rejoin=$(log_after "$log1" 'starting PostgreSQL')
grep -q 'ready to accept read-only connections' <<<"$since_rejoin" ||
    it_fail "node1's log does not show it restarting as a standby"
if grep -E 'cron job [0-9]+ |pg_cron scheduler started' <<<"$since_rejoin"; then
    it_fail "pg_cron ran on node1 after it rejoined as a standby (above)"
fi
it_log "pg_cron: node2's log has no job before its promotion, node1's none since it rejoined"
it_log "cluster: $(cd "$HA_TMP" && "${AS_PG[@]}" HOME="$HA_TMP" patronictl -c "$HA_TMP/node2/patroni.yml" list 2>/dev/null | grep -E 'node[12]' | tr -s ' |' ' ' | paste -sd ';' -)"
it_log "summary: time to a new primary ${to_primary} s (kill -9 of the $KILL, synchronous_mode $sync_mode, $preload preloaded, ttl $TTL, loop_wait $LOOP_WAIT)"
if [ "${#failures[@]}" -gt 0 ]; then
    it_fail "$(printf '%s; ' "${failures[@]}")see the FAIL lines above"
fi
passed=true
it_log "passed"
