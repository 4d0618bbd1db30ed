#!/usr/bin/env bash
# Upgrading in place (DESIGN.md section 12): ALTER EXTENSION presence UPDATE
# from 0.1 on a database in use, with the current library installed (what a
# package upgrade leaves before the ALTER). Slow part: pg_cron runs a
# '* * * * *' job at the next minute boundary, so 30 s to 2 min.
#
# In this test's database: version 0.1, an app role with the README's
# GRANTs, presences, a connection of that role that stays open across the
# update, and a LISTENer. After the update: the presences are unchanged, the
# open connection and new ones use the API with the GRANTs the role had,
# the tables stay closed to it, the events arrive, and a pg_dump of the
# updated database restores into a new one that works.
#
# In presence_cron (pg_cron's database): version 0.1 with the pg_cron job
# 0.1's schedule_prune() made, then the update: the job is still there,
# unchanged, and its next run prunes the stale presences, with their
# events; schedule_prune() then replaces it with 0.2's job, and
# unschedule_prune() removes that.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

app=presence_upgrade_app
db=$PGDATABASE
restored=${db}_restored
started=$SECONDS
cron_had_presence=""
scheduled=false
it_ensure_psycopg2

# it_on_exit (called by the EXIT trap) leaves the cluster as it found it:
# no job, no restored database, no role, and presence_cron with presence
# only if it had it before (then at the current version).
it_on_exit() {
    if [ -n "${OLD_PID:-}" ]; then kill "$OLD_PID" 2>/dev/null || true; fi
    if "$scheduled"; then
        PGDATABASE=presence_cron it_value 'SELECT presence.unschedule_prune()' >/dev/null 2>&1 || true
    fi
    if [ "$cron_had_presence" = no ]; then
        PGDATABASE=presence_cron it_psql -c 'DROP EXTENSION IF EXISTS presence' >/dev/null 2>&1 || true
    elif [ "$cron_had_presence" = yes ]; then
        PGDATABASE=presence_cron it_psql -c 'DROP EXTENSION IF EXISTS presence' \
            -c 'CREATE EXTENSION presence' >/dev/null 2>&1 || true
    fi
    dropdb --if-exists "$restored" >/dev/null 2>&1 || true
    it_psql -d "$db" -c "DROP OWNED BY $app" >/dev/null 2>&1 || true
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $app" >/dev/null 2>&1 || true
}

# events_match EXPECTED RECEIVED PREFIX checks the events (test/tools/events_match.py).
events_match() {
    python3 "$PRESENCE_REPO/test/tools/events_match.py" "$@"
}

# wait_marker FILE waits until the listener writing FILE has received the
# marker {"test":"end"} this test sends after its last change.
wait_marker() {
    local i
    # In worker mode the marker would overtake events not sent yet.
    it_value "SELECT presence.flush_events()" >/dev/null
    it_value "SELECT pg_notify('presence', '{\"test\":\"end\"}')" >/dev/null
    for ((i = 0; i < 100; i++)); do
        grep -qx '{"test":"end"}' "$1" && return 0
        sleep 0.1
    done
    it_fail "the listener did not receive the end marker"
}

current=$(it_value "SELECT default_version FROM pg_available_extensions WHERE name = 'presence'")
[ "$current" != 0.1 ] || it_fail "the default version is still 0.1: nothing to upgrade to"

########################################################################
# 1. A database in use, with version 0.1
########################################################################

it_psql -o /dev/null <<SQL
CREATE EXTENSION presence VERSION '0.1';
SET client_min_messages = warning;
DROP ROLE IF EXISTS $app;
CREATE ROLE $app LOGIN;
$(it_app_grants "$app")
SQL
PGUSER=$app it_psql -o /dev/null <<'SQL'
SELECT presence.add('up_lobby', 'c1', 'ann', '{"status": "here"}');
SELECT presence.add('up_lobby', 'c2', 'bob');
SELECT presence.add('up_lobby', 'c3');
SELECT presence.add('up_other', 'c1', 'ann');
SQL
it_log "version $(it_value "SELECT extversion FROM pg_extension WHERE extname = 'presence'"):" \
    "4 presences in 2 rooms, joined by role $app with the README's GRANTs"

snapshot_sql="SELECT string_agg(format('%s %s %s %s %s', room, channel, user_id, meta, joined_at), E'\n'
                                ORDER BY room, channel) FROM presence.presences"
before=$(it_value "$snapshot_sql")

# An application server's connection, as the app role, open across the update.
coproc OLD { PGUSER=$app psql -X -At -v ON_ERROR_STOP=0 2>&1; }
# old_sql SQL runs SQL on that connection and sets OLD_OUT to its output
# (not for use in $(...): a subshell does not have the connection's pipes).
old_sql() {
    local line
    OLD_OUT=""
    printf '%s;\n\\echo __end__\n' "$1" >&"${OLD[1]}"
    while IFS= read -r -t 20 line <&"${OLD[0]}"; do
        [ "$line" = __end__ ] && return 0
        OLD_OUT+="$line "
    done
    it_fail "the open connection did not answer: $1"
}
old_sql 'SELECT pg_backend_pid()'
old_pid=$OLD_OUT
old_sql "SELECT presence.touch('c1')"
[ "$OLD_OUT" = "2 " ] || it_fail "touch on the open connection before the update: $OLD_OUT"

it_start_listener "$IT_TMP/received" presence 120

########################################################################
# 2. The update
########################################################################

it_psql -c 'ALTER EXTENSION presence UPDATE'
version=$(it_value "SELECT extversion FROM pg_extension WHERE extname = 'presence'")
[ "$version" = "$current" ] || it_fail "after the update the version is $version, expected $current"
it_log "ALTER EXTENSION presence UPDATE: 0.1 -> $version"

after=$(it_value "$snapshot_sql")
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; it_fail "the presences changed"; }
it_log "ok: the 4 presences are unchanged (rooms, channels, users, meta, joined_at)"

# The connection that was open: same backend, the API works.
old_sql 'SELECT pg_backend_pid()'
[ "$OLD_OUT" = "$old_pid" ] || it_fail "the open connection was replaced"
old_sql "SELECT presence.touch('c1');
         SELECT presence.add('up_lobby', 'c4', 'cat');
         SELECT presence.update('up_lobby', 'c2', '{\"status\": \"away\"}');
         SELECT presence.remove('up_lobby', 'c3');
         SELECT count(*) FROM presence.members('up_lobby');"
[ "$OLD_OUT" = "2 t t t 3 " ] ||
    it_fail "the connection open across the update got '$OLD_OUT', expected '2 t t t 3 '"
it_log "ok: the connection open across the update (backend ${old_pid% }) touches, joins, updates and leaves"

# A new connection of the app role: the API with the GRANTs it had, and
# still no access to the tables.
got=$(PGUSER=$app it_value "SELECT presence.leave_all('c1')")
[ "$got" = 2 ] || it_fail "leave_all('c1') as $app returned '$got', expected 2"
got=$(PGUSER=$app it_value "SELECT string_agg(u, ',') FROM presence.users('up_lobby') u")
[ "$got" = bob,cat ] || it_fail "users('up_lobby') is '$got', expected bob,cat"
if err=$(PGUSER=$app it_value 'SELECT count(*) FROM presence.presences' 2>&1); then
    it_fail "$app can read presence.presences after the update"
fi
case $err in *"permission denied"*) ;; *) it_fail "reading the table as $app: $err" ;; esac
it_log "ok: a new connection of $app uses the API and is still refused the tables ($err)"

wait_marker "$IT_TMP/received"
cat >"$IT_TMP/expected" <<'EOF'
{"room":"up_lobby","added":{"channel":"c4","user_id":"cat","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"up_lobby","added":null,"removed":null,"updated":{"channel":"c2","user_id":"bob","meta":{"status":"away"}},"bulk_change":false}
{"room":"up_lobby","added":null,"removed":{"channel":"c3","user_id":null,"meta":null,"user_left":false},"updated":null,"bulk_change":false}
{"room":"up_lobby","added":null,"removed":{"channel":"c1","user_id":"ann","meta":{"status":"here"},"user_left":true},"updated":null,"bulk_change":false}
{"room":"up_other","added":null,"removed":{"channel":"c1","user_id":"ann","meta":null,"user_left":true},"updated":null,"bulk_change":false}
EOF
events_match "$IT_TMP/expected" "$IT_TMP/received" up_ ||
    it_fail "the events after the update differ (above)"
it_log "ok: the listener received the 5 events of the changes made after the update"
# 0.2 signs events (presence.sign_events, on by default) from the update on,
# the connection that was open across it included.
unsigned=$(grep '^{"room":"up_' "$IT_TMP/received" | grep -vc '"sig":"' || true)
[ "$unsigned" = 0 ] || it_fail "$unsigned events after the update are not signed"
it_log "ok: they are signed"

########################################################################
# 3. pg_dump of the updated database restores, and works
########################################################################

describe() {
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT 'extension ' || extversion FROM pg_extension WHERE extname = 'presence'
UNION ALL
SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(array_to_string(c.reloptions, ','), '')
       || ' ' || coalesce(c.relacl::text, '')
  FROM pg_class c WHERE c.relnamespace = 'presence'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'presence.presences'::regclass AND NOT tgisinternal
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || coalesce(p.proacl::text, 'default')
       || ' ' || coalesce(p.proconfig::text, '')
  FROM pg_proc p WHERE p.pronamespace = 'presence'::regnamespace
UNION ALL
SELECT 'schema ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'presence'
ORDER BY 1;
SQL
}
pg_dump -d "$db" -f "$IT_TMP/dump.sql"
createdb "$restored"
psql -X -q -v ON_ERROR_STOP=1 -d "$restored" -f "$IT_TMP/dump.sql" >/dev/null 2>"$IT_TMP/restore.err" ||
    { cat "$IT_TMP/restore.err" >&2; it_fail "the dump of the updated database does not restore"; }
a=$(describe "$db") b=$(describe "$restored")
[ "$a" = "$b" ] || { diff <(echo "$a") <(echo "$b") >&2; it_fail "the restored extension differs"; }
grep -q "$app=X" <<<"$b" || it_fail "the restored functions lost the GRANTs to $app"
got=$(PGUSER=$app psql -X -At -v ON_ERROR_STOP=1 -d "$restored" \
    -c "SELECT presence.touch('c2')" -c "SELECT presence.add('up_lobby', 'c2', 'bob')" \
    -c "SELECT presence.touch('c2')" | tr '\n' ' ')
[ "$got" = "0 t 1 " ] || it_fail "in the restored database, touch/add/touch as $app gave '$got', expected '0 t 1 '"
it_log "ok: pg_dump of the updated database restores ($(wc -l <<<"$b") objects, grants included)" \
    "and $app re-joins there"

########################################################################
# 4. pg_cron's job across the update (in presence_cron)
########################################################################

export PGDATABASE=presence_cron
cron_had_presence=$(it_value "SELECT CASE WHEN EXISTS (SELECT FROM pg_extension WHERE extname = 'presence')
                              THEN 'yes' ELSE 'no' END")
it_psql -o /dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
DROP EXTENSION IF EXISTS presence;
CREATE EXTENSION presence VERSION '0.1';
SELECT presence.add('upcron_live', 'live', 'ann');
SELECT presence.add('upcron_two', 's1', 'bob');
SELECT presence.add('upcron_two', 's2');
SELECT presence.add('upcron_one', 'o1', 'dan');
SQL
# The job as 0.1's schedule_prune() created it (its library is not the one
# installed now, whose schedule_prune() schedules 0.2's CALL presence.prune_job()).
jobid=$(it_value "SELECT cron.schedule('presence-prune', '* * * * *',
                                       'SELECT presence.prune(); SELECT presence.prune_rooms()')")
scheduled=true
job_before=$(it_value "SELECT format('%s %s %s %L %s', jobid, jobname, schedule, command, username)
                       FROM cron.job WHERE jobid = $jobid")
it_log "presence_cron: version 0.1, 4 presences, pg_cron job $jobid: $job_before"

it_psql -c 'ALTER EXTENSION presence UPDATE'
updated_at=$(it_value 'SELECT clock_timestamp()')
it_log "ALTER EXTENSION presence UPDATE at $updated_at"
job_after=$(it_value "SELECT format('%s %s %s %L %s', jobid, jobname, schedule, command, username)
                      FROM cron.job WHERE jobname = 'presence-prune'")
[ -n "$job_after" ] || it_fail "the job presence-prune is gone after the update"
[ "$(it_value "SELECT count(*) FROM cron.job WHERE jobname = 'presence-prune'")" = 1 ] ||
    it_fail "more than one presence-prune job after the update"
[ "$job_after" = "$job_before" ] || it_fail "the update changed the job: $job_after"
it_log "the job after the update is unchanged: $job_after"

# Three presences go stale (what vanished connections look like later);
# the live one keeps touching while we wait.
it_psql -o /dev/null -c "UPDATE presence.presences SET last_seen = now() - interval '10 minutes'
                          WHERE room LIKE 'upcron\_%' AND channel <> 'live'"
it_start_listener "$IT_TMP/cron_received" presence 200
it_log "waiting for pg_cron's next run (at most ~150 s)"
wait_start=$SECONDS
while :; do
    it_value "SELECT presence.touch('live')" >/dev/null
    stale=$(it_value "SELECT count(*) FROM presence.presences WHERE room LIKE 'upcron\_%' AND channel <> 'live'")
    runs=$(it_value "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                      WHERE j.jobname = 'presence-prune' AND d.start_time > '$updated_at'
                        AND d.status IN ('succeeded', 'failed')")
    [ "$stale" = 0 ] && [ "$runs" -gt 0 ] && break
    failed=$(it_value "SELECT string_agg(d.return_message, '; ') FROM cron.job_run_details d
                        JOIN cron.job j USING (jobid)
                        WHERE j.jobname = 'presence-prune' AND d.status = 'failed'")
    [ -z "$failed" ] || it_fail "the job failed after the update: $failed"
    [ $((SECONDS - wait_start)) -lt 150 ] ||
        it_fail "after $((SECONDS - wait_start))s, $stale stale presences left, $runs runs of the job"
    sleep 2
done
status=$(it_value "SELECT string_agg(DISTINCT d.status, ',') FROM cron.job_run_details d
                    JOIN cron.job j USING (jobid)
                    WHERE j.jobname = 'presence-prune' AND d.start_time > '$updated_at'
                      AND d.status IN ('succeeded', 'failed')")
[ "$status" = succeeded ] || it_fail "the job's runs after the update: $status"
rooms=$(it_value "SELECT string_agg(name, ',' ORDER BY name) FROM presence.rooms WHERE name LIKE 'upcron\_%'")
[ "$rooms" = upcron_live ] || it_fail "rooms left: '$rooms', expected upcron_live (prune_rooms)"
it_log "ok: the job ran $((SECONDS - wait_start))s after the update and succeeded: stale presences and emptied rooms gone, the live one kept"

wait_marker "$IT_TMP/cron_received"
cat >"$IT_TMP/cron_expected" <<'EOF'
{"room":"upcron_one","added":null,"removed":{"channel":"o1","user_id":"dan","meta":null,"user_left":true},"updated":null,"bulk_change":false}
{"room":"upcron_two","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":2}
EOF
events_match "$IT_TMP/cron_expected" "$IT_TMP/cron_received" upcron_ ||
    it_fail "the prune's events differ (above)"
it_log "ok: the listener received the prune's 2 events"

# schedule_prune() of the updated extension replaces it with 0.2's job.
newjob=$(it_value "SELECT presence.schedule_prune('* * * * *')")
cmd=$(it_value "SELECT string_agg(command, '; ') FROM cron.job WHERE jobname = 'presence-prune'")
[ "$cmd" = "CALL presence.prune_job()" ] || it_fail "after schedule_prune() the job runs '$cmd'"
it_log "ok: schedule_prune() after the update replaced it with job $newjob: $cmd"

[ "$(it_value 'SELECT presence.unschedule_prune()')" = t ] || it_fail "unschedule_prune() after the update"
scheduled=false
[ "$(it_value "SELECT count(*) FROM cron.job WHERE jobname = 'presence-prune'")" = 0 ] ||
    it_fail "the job is still there after unschedule_prune()"
it_log "ok: unschedule_prune() removes it"
it_log "ok: upgrade from 0.1 to $current in $((SECONDS - started))s"
