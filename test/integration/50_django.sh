#!/usr/bin/env bash
# channels_presence (clients/django) and the chat demo (examples/chat) on a
# real cluster, about 1 to 2 minutes (most of it waiting for pg_cron):
#  1. Django's test runner runs clients/django/tests in test_$PGDATABASE
#     (the app's migration creates the extension there): the API a
#     django-channels-presence user relies on, presence_changed from NOTIFY
#     events, the decorators on real consumers.
#  2. In presence_cron (pg_cron's database): the demo is migrated into a
#     schema of its own (chat_e2e), manage.py presence_schedule_prune
#     schedules the job with CHANNELS_PRESENCE_MAX_AGE = 5 s, two Daphne
#     servers serve it, and examples/chat/e2e/chat.e2e.mjs drives headless
#     Chromium: three tabs see each other, a closed tab leaves within a
#     second, a tab whose server is killed is pruned by pg_cron.  Screenshots
#     go to examples/chat/e2e/screenshots (CHAT_SCREENSHOTS).
# Installs what it needs (Debian's Django, Channels, Daphne, psycopg2,
# Chromium; playwright-core with npm ci) and removes what it made in
# presence_cron: the job, the max_age setting, the schema, the rooms.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=examples/chat/lib.sh
. "$PRESENCE_REPO/examples/chat/lib.sh"
started=$SECONDS

chat_ensure_deps --browser || it_fail "could not install ${CHAT_PACKAGES[*]} chromium"

# --- 1. The Django app's tests ---------------------------------------------

it_log "Django tests of clients/django (Django $("$CHAT_PYTHON" -c 'import django; print(django.get_version())'), Channels $("$CHAT_PYTHON" -c 'import channels; print(channels.__version__)'))"
if ! (cd "$PRESENCE_REPO/clients/django" &&
    PYTHONPATH=. timeout 300 "$CHAT_PYTHON" -m django test --settings=tests.settings \
        --noinput -v 2) >"$IT_TMP/django.log" 2>&1; then
    cat "$IT_TMP/django.log" >&2
    it_fail "the Django tests failed (output above)"
fi
grep -E ' \.\.\. ok$' "$IT_TMP/django.log" | sed -E 's/^([a-z_]+) \(([^)]*)\) \.\.\. ok$/\2 ok/; s/^/  /' || true
it_log "Django: $(grep -E '^Ran ' "$IT_TMP/django.log"): $(grep -E '^(OK|FAILED)' "$IT_TMP/django.log")"

# --- 2. The chat in a browser, pruned by pg_cron ----------------------------

export PGDATABASE=presence_cron CHAT_DB_SCHEMA=chat_e2e CHAT_ROOM=e2e-lobby
export CHAT_MAX_AGE=5 CHAT_HEARTBEAT=1.5
scheduled=false
quiet=(-c 'SET client_min_messages = warning')

# it_on_exit (called by the EXIT trap of helpers.bash, which also stops the
# Daphne servers) leaves presence_cron as it was.
it_on_exit() {
    local pid
    for pid in "${IT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if "$scheduled"; then chat_manage presence_schedule_prune --unschedule >/dev/null || true; fi
    it_psql -o /dev/null "${quiet[@]}" -c "DROP SCHEMA IF EXISTS chat_e2e CASCADE" \
        -c "DELETE FROM presence.rooms WHERE name LIKE 'e2e-%'" || true
}

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
job=$(it_value "SELECT format('%s %L %L as %s', jobname, schedule, command, username)
                 FROM cron.job WHERE jobname = 'presence-prune'")
[ -n "$job" ] || it_fail "no presence-prune job in cron.job after: $out"
setting=$(it_value "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s
                     JOIN pg_database d ON d.oid = s.setdatabase
                     WHERE d.datname = 'presence_cron' AND s.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)")
[ "$setting" = presence.max_age=5s ] ||
    it_fail "the job's role has '$setting' in presence_cron, expected presence.max_age=5s"
it_log "manage.py presence_schedule_prune: $out; cron.job: $job; ALTER ROLE setting: $setting"

port_a=$(chat_free_port)
chat_start_daphne "$port_a" "$IT_TMP/daphne-a.log" || it_fail "Daphne A did not start"
IT_PIDS+=("$CHAT_DAPHNE_PID")
disown "$CHAT_DAPHNE_PID"  # no "Killed" notice from bash: the test kills B
port_b=$(chat_free_port)
chat_start_daphne "$port_b" "$IT_TMP/daphne-b.log" || it_fail "Daphne B did not start"
IT_PIDS+=("$CHAT_DAPHNE_PID")
disown "$CHAT_DAPHNE_PID"
pid_b=$CHAT_DAPHNE_PID
it_log "Daphne A on 127.0.0.1:$port_a, Daphne B on 127.0.0.1:$port_b (pid $pid_b)"

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
    it_fail "the browser test failed"
fi
if grep -q Traceback "$IT_TMP/daphne-a.log"; then
    cat "$IT_TMP/daphne-a.log" >&2
    it_fail "Daphne A logged an exception"
fi
# carol's server was killed, so only pg_cron's job can have removed her.
left=$(it_value "SELECT count(*) FROM presence.presences WHERE room = 'e2e-lobby' AND user_id =
                  (SELECT id::text FROM chat_e2e.auth_user WHERE username = 'carol')")
[ "$left" = 0 ] || it_fail "carol still has $left presences in e2e-lobby"
runs=$(it_value "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                  WHERE j.jobname = 'presence-prune' AND d.status = 'succeeded'
                    AND d.start_time >= '$e2e_start'")
[ "$runs" -ge 1 ] || it_fail "no succeeded run of presence-prune since the browser test started"
it_log "carol's presence is gone and presence-prune ran $runs time(s) since the browser test started"
it_log "ok: Django tests and browser test passed in $((SECONDS - started))s; screenshots in $shots"
