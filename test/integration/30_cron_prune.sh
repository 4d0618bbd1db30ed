#!/usr/bin/env bash
# Pruning by pg_cron for real (DESIGN.md section 7), slow: about 1 to 2
# minutes, as pg_cron runs a '* * * * *' job at the next minute boundary.
# In presence_cron (cron.database_name), makes some presences stale, keeps
# one fresh with heartbeats, schedules the job twice, and waits until pg_cron
# has pruned; then checks: exactly one job existed, the stale presences and
# the emptied rooms are gone, the fresh presence and its room survived, the
# job's run succeeded, a LISTENer got one event per pruned room, and
# unschedule_prune() removes the job.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

# pg_cron runs jobs only in its own database.
export PGDATABASE=presence_cron
started=$SECONDS
scheduled=false
it_ensure_psycopg2

# it_on_exit (called by the EXIT trap) never leaves the job behind.
it_on_exit() {
    if "$scheduled"; then
        it_value 'SELECT presence.unschedule_prune()' >/dev/null 2>&1 || true
    fi
}

it_psql <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS presence;
-- Leftovers of an earlier run of this test (a room's presences go with it).
DELETE FROM presence.rooms WHERE name LIKE 'cronit\_%';
SQL

# The listener outlives the wait for pg_cron; it is stopped at the end.
it_start_listener "$IT_TMP/received" presence 300

# The presences, set up with events off, so that every event the listener
# gets for these rooms comes from pg_cron's prune. The UPDATE of last_seen
# is what a vanished connection looks like ten minutes later.
it_psql -o /dev/null <<'SQL'
SET presence.notify = off;
-- cronit_gone: three connections that vanished; the room empties.
SELECT presence.add('cronit_gone', 'g1', 'ann');
SELECT presence.add('cronit_gone', 'g2', 'bob');
SELECT presence.add('cronit_gone', 'g3');
-- cronit_mixed: two vanished connections and a live one of the same user.
SELECT presence.add('cronit_mixed', 'm1', 'ann');
SELECT presence.add('cronit_mixed', 'm2', 'cat');
SELECT presence.add('cronit_mixed', 'live', 'ann');
-- cronit_one: a single vanished connection; the room empties.
SELECT presence.add('cronit_one', 'o1', 'dan');
UPDATE presence.presences SET last_seen = now() - interval '10 minutes'
 WHERE room LIKE 'cronit\_%' AND channel <> 'live';
SQL
it_log "3 rooms, 6 stale presences and 1 fresh one (channel live) created"

# Schedule twice: the second call replaces the first job, leaving one.
first=$(it_value "SELECT presence.schedule_prune('* * * * *')")
scheduled=true
second=$(it_value "SELECT presence.schedule_prune('* * * * *')")
jobs=$(it_value "SELECT count(*) FROM cron.job
                  WHERE jobname = 'presence-prune' OR command LIKE '%presence.prune%'")
[ "$jobs" = 1 ] || it_fail "$jobs presence-prune jobs in cron.job after scheduling twice, expected 1"
jobid=$(it_value "SELECT jobid FROM cron.job WHERE jobname = 'presence-prune'")
[ "$jobid" = "$second" ] ||
    it_fail "schedule_prune returned job $second, but cron.job has job '$jobid'"
it_log "schedule_prune twice (jobs $first, $second): one job in cron.job:" \
    "$(it_value "SELECT format('%s %s %s %L in %s', jobid, jobname, schedule, command, database)
                 FROM cron.job WHERE jobid = $jobid")"

# Wait for pg_cron: poll every 2 s (at most ~150 s) until the stale
# presences are gone. Each poll also touches the live channel, the heartbeat
# a connected client sends, so it stays fresh however long pg_cron takes.
it_log "waiting for pg_cron's next run (at the next minute boundary; at most ~150 s)"
stale_sql="SELECT count(*) FROM presence.presences WHERE room LIKE 'cronit\_%' AND channel <> 'live'"
wait_start=$SECONDS
while :; do
    waited=$((SECONDS - wait_start))
    it_value "SELECT presence.touch('live')" >/dev/null
    stale=$(it_value "$stale_sql")
    [ "$stale" = 0 ] && break
    failed=$(it_value "SELECT string_agg(return_message, '; ') FROM cron.job_run_details
                        WHERE jobid = $jobid AND status = 'failed'")
    [ -z "$failed" ] || it_fail "pg_cron ran job $jobid and it failed: $failed"
    [ "$waited" -ge 150 ] && it_fail "after ${waited}s, $stale stale presences are still there"
    sleep 2
done
waited=$((SECONDS - wait_start))
it_log "the stale presences were pruned after ${waited}s of waiting"

# The run's status is written when the job's command (prune, then
# prune_rooms) has finished: wait up to 20 s more for it.
for ((i = 0; i < 20; i++)); do
    status=$(it_value "SELECT string_agg(DISTINCT status, ',') FROM cron.job_run_details
                        WHERE jobid = $jobid AND status IN ('succeeded', 'failed')")
    [ -n "$status" ] && break
    sleep 1
done
[ "$status" = succeeded ] || it_fail "job $jobid runs: '$status' after ${i}s more, expected succeeded;" \
    "$(it_value "SELECT string_agg(status || ': ' || return_message, '; ') FROM cron.job_run_details WHERE jobid = $jobid")"
it_log "cron.job_run_details (${i}s later): job $jobid $(it_value "SELECT format('ran %s times: %s',
        count(*), string_agg(format('%s (%s) in %s', status, return_message, end_time - start_time),
                             '; ' ORDER BY runid))
        FROM cron.job_run_details WHERE jobid = $jobid")"

# The live presence survived, with its room; the emptied rooms are gone.
members=$(it_value "SELECT string_agg(channel || '/' || user_id, ',') FROM presence.members('cronit_mixed')")
[ "$members" = live/ann ] || it_fail "cronit_mixed has '$members', expected the live presence only"
rooms=$(it_value "SELECT string_agg(name, ',' ORDER BY name) FROM presence.rooms WHERE name LIKE 'cronit\_%'")
[ "$rooms" = cronit_mixed ] || it_fail "rooms left: '$rooms', expected cronit_mixed only (prune_rooms)"
it_log "the fresh presence and its room survived; cronit_gone and cronit_one were deleted"

# The events: one per room the prune changed, in room order: a bulk_change
# for the rooms that lost several presences, a removed event for the room
# that lost one (user_left: dan had no other connection there). The marker
# tells when the listener has read everything sent before it.
it_value "SELECT presence.flush_events()" >/dev/null
it_value "SELECT pg_notify('presence', '{\"test\":\"end\"}')" >/dev/null
for ((i = 0; i < 100; i++)); do
    grep -qx '{"test":"end"}' "$IT_TMP/received" && break
    sleep 0.1
done
cat >"$IT_TMP/expected" <<'EOF'
{"room":"cronit_gone","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":3,"pruned":true}
{"room":"cronit_mixed","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":2,"pruned":true}
{"room":"cronit_one","added":null,"removed":{"channel":"o1","user_id":"dan","meta":null,"user_left":true},"updated":null,"bulk_change":false,"pruned":true}
{"test":"end"}
EOF
/usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$IT_TMP/received" >"$IT_TMP/verified" ||
    it_fail "an event's signature does not verify (above)"
grep -E '^\{"room":"cronit_|^\{"test":"end"\}$' "$IT_TMP/verified" >"$IT_TMP/ours" || true
it_check_json "$IT_TMP/received"
diff -u "$IT_TMP/expected" "$IT_TMP/ours" ||
    it_fail "the events for the pruned rooms differ (diff above: - expected, + received)"
it_log "the listener received the 3 prune events (2 bulk_change, 1 removed)"

# Unscheduling removes the job.
[ "$(it_value 'SELECT presence.unschedule_prune()')" = t ] || it_fail "unschedule_prune() did not return true"
scheduled=false
jobs=$(it_value "SELECT count(*) FROM cron.job WHERE jobid = $jobid OR jobname = 'presence-prune'")
[ "$jobs" = 0 ] || it_fail "the job is still in cron.job after unschedule_prune()"
it_log "unschedule_prune() returned true and the job is gone"

it_log "ok: pg_cron pruned in ${waited}s of waiting; the test took $((SECONDS - started))s"
