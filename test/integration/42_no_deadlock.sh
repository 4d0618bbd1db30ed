#!/usr/bin/env bash
# Autocommit calls never deadlock against transactions that take rooms in
# room order (README, "Decisions and limits"), about 15 s.  Four sessions
# run explicit transactions that join one channel to 30 rooms in sorted
# order as one user, while a fifth disconnects that channel with an
# autocommit leave_all() in a loop, as a websocket server would on a
# reconnect storm.  No call may fail with 40P01 (deadlock detected).
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_psycopg2
it_psql -q -c 'CREATE EXTENSION presence'

/usr/bin/python3 - "${PRESENCE_DEADLOCK_SECONDS:-10}" <<'PY' | tee "$IT_TMP/out"
import sys, threading, time
import psycopg2
import psycopg2.errors

seconds = float(sys.argv[1])
rooms = ["dl-%02d" % i for i in range(30)]
stop = time.time() + seconds
counts = {"joins": 0, "leaves": 0, "join_deadlocks": 0, "leave_deadlocks": 0, "other": []}
lock = threading.Lock()

def joiner():
    conn = psycopg2.connect("")
    cur = conn.cursor()
    while time.time() < stop:
        try:
            for room in rooms:
                cur.execute("SELECT presence.add(%s, 'X', 'u')", (room,))
            conn.commit()
            with lock:
                counts["joins"] += 1
        except psycopg2.errors.DeadlockDetected:
            conn.rollback()
            with lock:
                counts["join_deadlocks"] += 1
        except psycopg2.Error as e:
            conn.rollback()
            with lock:
                counts["other"].append("join: %s %s" % (e.pgcode, e.pgerror))

def leaver():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    while time.time() < stop:
        try:
            cur.execute("SELECT presence.leave_all('X')")
            with lock:
                counts["leaves"] += 1
        except psycopg2.errors.DeadlockDetected:
            with lock:
                counts["leave_deadlocks"] += 1
        except psycopg2.Error as e:
            with lock:
                counts["other"].append("leave_all: %s %s" % (e.pgcode, e.pgerror))

threads = [threading.Thread(target=joiner) for _ in range(4)] + [threading.Thread(target=leaver)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("transactions of 30 joins: %(joins)d, deadlock victims among them: %(join_deadlocks)d" % counts)
print("autocommit leave_all: %(leaves)d, deadlock victims among them: %(leave_deadlocks)d" % counts)
for line in counts["other"][:10]:
    print("other error: " + line.strip())
ok = counts["leave_deadlocks"] == 0 and counts["join_deadlocks"] == 0 and not counts["other"] \
    and counts["joins"] > 0 and counts["leaves"] > 0
print("RESULT " + ("ok" if ok else "failed"))
PY
grep -q '^RESULT ok' "$IT_TMP/out" || it_fail "a call failed (see above)"
it_log "ok: no deadlock, no error"
