#!/usr/bin/env bash
# Backpressure for real (issue 12; slow tier: about 4 minutes and 8 GB of
# temporary disk).  On a worker-mode cluster a listener sits in an open
# transaction, which keeps PostgreSQL's NOTIFY queue from being truncated,
# and the queue is filled to its 8 GB limit (what a stuck listener does in
# production over hours).  Then:
#  - 4 writers make 6000 joins and leaves: none fails and none waits (with
#    direct NOTIFY every one of them would fail with 54000);
#  - the worker logs that NOTIFY refuses events, holds them within
#    presence.queue_size (256kB here), folds them per room into bulk_change
#    and says so once, and its memory stays small;
#  - once the stuck listener is gone, the events flow again, and a healthy
#    listener that received everything can replay them (singles as +1/-1,
#    bulk_change by its counts) to exactly the members of every room.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/../integration/helpers.bash"

it_ensure_psycopg2
it_worker_cluster "presence.queue_size = '256kB'"
it_psql -q -c 'CREATE EXTENSION presence'
started=$SECONDS

/usr/bin/python3 - "$IT_WORKER_LOG" <<'PY' | tee "$IT_TMP/out"
import json, os, select, subprocess, sys, threading, time
import psycopg2

log_path = sys.argv[1]
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def conn():
    c = psycopg2.connect("")
    c.autocommit = True
    return c


def q(c, sql, *args):
    cur = c.cursor()
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


# The healthy listener: keeps every presence event.
events, stop = [], threading.Event()
healthy = conn()
q(healthy, "LISTEN presence")


def listen():
    while not stop.is_set():
        if select.select([healthy], [], [], 0.2) != ([], [], []):
            healthy.poll()
            while healthy.notifies:
                events.append(json.loads(healthy.notifies.pop(0).payload))


listener = threading.Thread(target=listen)
listener.start()

# The stuck listener: LISTEN, then an open transaction.
stuck = psycopg2.connect("")
stuck.autocommit = True
q(stuck, "LISTEN presence")
stuck.autocommit = False
q(stuck, "SELECT 1")
stuck_pid = q(stuck, "SELECT pg_backend_pid()")[0][0]

# Fill the NOTIFY queue to its limit.
filler = conn()
start = time.time()
while True:
    try:
        q(filler, "SELECT count(pg_notify('filler', repeat('x', 7900) || g)) FROM generate_series(1, 10000) g")
    except psycopg2.Error as e:
        check(e.pgcode == "54000", "the NOTIFY queue is full after %.0f s (%s)" % (time.time() - start, e.pgerror.strip().splitlines()[0]))
        break
print("queue usage: %s" % q(filler, "SELECT pg_notification_queue_usage()")[0][0], flush=True)

# Writers: joins and leaves, none may fail.
errors, done = [], []


def write(n):
    c = conn()
    t0 = time.time()
    for i in range(1500):
        room, channel = "full-%d" % (i % 100), "w%d-%d" % (n, i)
        try:
            q(c, "SELECT presence.add(%s, %s, %s)", room, channel, "u%d" % (i % 37))
            if i % 3 == 0:
                q(c, "SELECT presence.remove(%s, %s)", room, channel)
        except psycopg2.Error as e:
            errors.append(e.pgerror)
    done.append(time.time() - t0)


writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
for w in writers:
    w.start()
for w in writers:
    w.join()
check(not errors, "4 writers, 6000 joins and 2000 leaves with the NOTIFY queue full: %d errors (%s), %.1f s"
      % (len(errors), errors[:1], max(done)))

time.sleep(3)
status = q(filler, "SELECT worker_pid, queued_bytes, unsent_bytes FROM presence.queue_status()"
                   " WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())")
print("queue_status while NOTIFY refuses: %s" % status, flush=True)
check(status and status[0][2] > 0, "the worker holds unsent events")
with open("/proc/%d/status" % status[0][0]) as f:
    rss = [int(l.split()[1]) for l in f if l.startswith("RssAnon")][0]
check(rss < 64 * 1024, "the worker's private memory: %.1f MB (bound: presence.queue_size 256kB held)" % (rss / 1024))
with open(log_path) as f:
    log = f.read()
check("NOTIFY refuses events" in log, "the log says NOTIFY refuses events")
check(log.count("folding them into one bulk_change per room") == 1,
      "the log says once that events are folded per room")

# Release the stuck listener; everything must arrive.
q(filler, "SELECT pg_terminate_backend(%s)", stuck_pid)
ok = q(filler, "SELECT presence.flush_events('180 seconds')")[0][0]
check(ok, "after the stuck listener is gone, the worker sends everything (flush_events)")
time.sleep(2)
stop.set()
listener.join()

net = {}
bulks = 0
for e in events:
    if e["bulk_change"]:
        bulks += 1
        net[e["room"]] = net.get(e["room"], 0) + e["added_count"] - e["removed_count"]
    elif e["added"]:
        net[e["room"]] = net.get(e["room"], 0) + 1
    elif e["removed"]:
        net[e["room"]] = net.get(e["room"], 0) - 1
members = dict(q(filler, "SELECT room, count(*) FROM presence.presences GROUP BY room"))
wrong = [r for r in set(members) | set(net) if members.get(r, 0) != net.get(r, 0)]
check(not wrong, "replaying %d events (%d bulk_change) gives every room's members (%d rooms); wrong: %s"
      % (len(events), bulks, len(members), wrong[:5]))
print("RESULT " + ("ok" if not failures else "failed"))
PY
grep -q '^RESULT ok' "$IT_TMP/out" || it_fail "see above"
it_log "ok: writers unaffected by a full NOTIFY queue; events folded within bounds and replayed exactly (${SECONDS}s, $((SECONDS - started))s after setup)"
