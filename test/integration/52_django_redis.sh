#!/usr/bin/env bash
# Exactly once across servers, about 1.5 minutes (most of it waiting for
# pg_cron's minute): the chat demo (examples/chat) on two Daphne servers
# that share a channels_redis layer on a real redis-server (started here on
# a free port), in pg_cron's database, its job scheduled with
# manage.py presence_schedule_prune (CHANNELS_PRESENCE_MAX_AGE = 5 s).
# examples/chat/e2e/chat.e2e.mjs drives headless Chromium: three tabs on two
# servers, a psql change, a closed tab, a killed server pruned by pg_cron;
# every change reaches every tab once through the app's presence_changed
# receiver (never twice: no change, member list or joined/left line
# repeated).  Server A starts first and is made the one whose listener
# signals what psql and pg_cron do; killing B then needs no failover.
# Installs what it needs (Debian's Django, Channels, Daphne, channels_redis,
# redis-server, psycopg2, Chromium; playwright-core with npm ci) and removes
# what it made in presence_cron: the job, the max_age setting, the schema.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=examples/chat/lib.sh
. "$PRESENCE_REPO/examples/chat/lib.sh"
started=$SECONDS

chat_ensure_deps --browser || it_fail "could not install ${CHAT_PACKAGES[*]} chromium"
it_apt_install redis-server python3-channels-redis

export PGDATABASE=presence_cron CHAT_DB_SCHEMA=chat_e2e CHAT_ROOM=e2e-lobby
export CHAT_MAX_AGE=5 CHAT_HEARTBEAT=1.5
scheduled=false
quiet=(-c 'SET client_min_messages = warning')

it_on_exit() {
    local pid
    for pid in "${IT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if "$scheduled"; then chat_manage presence_schedule_prune --unschedule >/dev/null || true; fi
    it_psql -o /dev/null "${quiet[@]}" -c "DROP SCHEMA IF EXISTS chat_e2e CASCADE" \
        -c "DELETE FROM presence.rooms WHERE name LIKE 'e2e-%'" || true
}

redis_port=$(it_free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    >"$IT_TMP/redis.log" 2>&1 &
IT_PIDS+=("$!")
for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
done
export CHAT_REDIS_URL="redis://127.0.0.1:$redis_port/0"
it_log "$(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$redis_port"

it_psql -o /dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS presence;
DROP SCHEMA IF EXISTS chat_e2e CASCADE;
CREATE SCHEMA chat_e2e;
DELETE FROM presence.rooms WHERE name LIKE 'e2e-%';
SQL
chat_manage migrate -v 0 || it_fail "manage.py migrate failed"
out=$(chat_manage presence_schedule_prune) || it_fail "manage.py presence_schedule_prune failed"
scheduled=true
it_log "manage.py presence_schedule_prune: $out"

# holder PID waits until the listener of process PID holds the election lock.
holder() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(it_value "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE l.locktype = 'advisory' AND l.granted
                          AND a.application_name = 'channels_presence listener pid=$1'")" = 1 ] &&
            return 0
        sleep 0.1
    done
    return 1
}

port_a=$(it_free_port)
chat_start_daphne "$port_a" "$IT_TMP/daphne-a.log" || it_fail "Daphne A did not start"
IT_PIDS+=("$CHAT_DAPHNE_PID")
disown "$CHAT_DAPHNE_PID"
pid_a=$CHAT_DAPHNE_PID
# Its first request starts its listener (PresenceListenerMiddleware).
"$CHAT_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port_a/?room=e2e-warmup').read()"
holder "$pid_a" || it_fail "server A's listener did not take the election lock"
port_b=$(it_free_port)
chat_start_daphne "$port_b" "$IT_TMP/daphne-b.log" || it_fail "Daphne B did not start"
IT_PIDS+=("$CHAT_DAPHNE_PID")
disown "$CHAT_DAPHNE_PID"  # no "Killed" notice from bash: the test kills B
pid_b=$CHAT_DAPHNE_PID
it_log "Daphne A on 127.0.0.1:$port_a (pid $pid_a, signals what others change), Daphne B on 127.0.0.1:$port_b (pid $pid_b)"

(cd "$CHAT_DIR/e2e" && npm ci --no-audit --no-fund --loglevel=error >"$IT_TMP/npm.log" 2>&1) ||
    { cat "$IT_TMP/npm.log" >&2; it_fail "npm ci failed in examples/chat/e2e"; }

it_log "browser test (headless $(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
shots=${CHAT_SCREENSHOTS:-$CHAT_DIR/e2e/screenshots}
e2e_start=$(it_value 'SELECT now()')
if ! (cd "$CHAT_DIR/e2e" &&
    CHAT_URL_A="http://127.0.0.1:$port_a" CHAT_URL_B="http://127.0.0.1:$port_b" \
        CHAT_SERVER_B_PID="$pid_b" SCREENSHOTS="$shots" timeout 200 node chat.e2e.mjs); then
    printf -- '----- Daphne A -----\n' >&2
    tail -n 30 "$IT_TMP/daphne-a.log" >&2
    printf -- '----- Daphne B -----\n' >&2
    tail -n 30 "$IT_TMP/daphne-b.log" >&2
    it_fail "the browser test failed"
fi
if grep -q Traceback "$IT_TMP/daphne-a.log"; then
    cat "$IT_TMP/daphne-a.log" >&2
    it_fail "Daphne A logged an exception"
fi
left=$(it_value "SELECT count(*) FROM presence.presences WHERE room = 'e2e-lobby' AND user_id =
                  (SELECT id::text FROM chat_e2e.auth_user WHERE username = 'carol')")
[ "$left" = 0 ] || it_fail "carol still has $left presences in e2e-lobby"
runs=$(it_value "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                  WHERE j.jobname = 'presence-prune' AND d.status = 'succeeded'
                    AND d.start_time >= '$e2e_start'")
[ "$runs" -ge 1 ] || it_fail "no succeeded run of presence-prune since the browser test started"
it_log "carol's presence is gone and presence-prune ran $runs time(s) since the browser test started"
it_log "ok in $((SECONDS - started))s; screenshots in $shots"
