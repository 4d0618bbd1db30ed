#!/usr/bin/env bash
# The pg_cron job's procedure, presence.prune_job(), commits after every
# batch (DESIGN.md section 7), about 10 s: while it prunes 200000 stale
# presences in 200 rooms, another session sees the count go down batch by
# batch (a single transaction would show all of them until the end), and a
# touch of a presence pruned in the first batch does not wait for the rest
# of the prune.  At the end every stale presence and every emptied room is
# gone, the fresh presence stays, and a listener got one event per room
# per batch at most.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_psycopg2
it_psql -q -c 'CREATE EXTENSION presence'
it_psql -q <<'SQL'
SET presence.notify = off;
INSERT INTO presence.rooms (name) SELECT 'pj' || lpad(i::text, 3, '0') FROM generate_series(1, 200) i;
INSERT INTO presence.presences (room, channel, user_id, last_seen)
SELECT 'pj' || lpad((i % 200 + 1)::text, 3, '0'), 'c' || i, 'u' || (i % 1000), now() - interval '1 hour'
FROM generate_series(1, 200000) i;
SQL
it_psql -q -c "SELECT presence.add('pj999', 'fresh', 'ann')"
it_start_listener "$IT_TMP/events" presence 120

/usr/bin/python3 - <<'PY' | tee "$IT_TMP/out"
import threading, time
import psycopg2

job = psycopg2.connect("")
job.autocommit = True
watch = psycopg2.connect("")
watch.autocommit = True
wcur = watch.cursor()

done = threading.Event()
def run_job():
    job.cursor().execute("CALL presence.prune_job('1 minute')")
    done.set()
t = threading.Thread(target=run_job)
t.start()

seen = set()
touch_ms = None
while not done.is_set():
    wcur.execute("SELECT count(*) FROM presence.presences WHERE room <> 'pj999'")
    n = wcur.fetchone()[0]
    seen.add(n)
    if touch_ms is None and 0 < n < 200000:
        # c200 lives in room pj001, pruned by the first batch and committed.
        start = time.time()
        wcur.execute("SELECT presence.touch('c200')")
        touch_ms = (time.time() - start) * 1000
        touch_result = wcur.fetchone()[0]
    time.sleep(0.01)
t.join()
intermediate = sorted(x for x in seen if 0 < x < 200000)
print("counts seen while the job ran: %d distinct, %d of them between 0 and 200000" % (len(seen), len(intermediate)))
if touch_ms is not None:
    print("touch of a presence pruned in an early batch: returned %d after %.1f ms" % (touch_result, touch_ms))
print("RESULT " + ("ok" if intermediate and touch_ms is not None and touch_result == 0 else "failed"))
PY
grep -q '^RESULT ok' "$IT_TMP/out" ||
    it_fail "the job's batches were not visible to another session while it ran"

[ "$(it_value "SELECT count(*) FROM presence.presences")" = 1 ] || it_fail "stale presences left"
[ "$(it_value "SELECT string_agg(name, ',') FROM presence.rooms")" = pj999 ] || it_fail "emptied rooms left"
sleep 1
events=$(grep -c '"bulk_change"' "$IT_TMP/events" || true)
it_log "listener: $events events for 200 rooms pruned in batches of 10000 rows"
[ "$events" -ge 200 ] && [ "$events" -le 220 ] || it_fail "expected 200 to 220 events, got $events"
it_log "ok: the job committed batch by batch and pruned everything stale"
