#!/usr/bin/python3
"""Load and check for the crash test (test/integration/45_crash.sh).

    crash.py load  --journal FILE [--ready FILE] [--workers N]
    crash.py check --journal FILE --crash-at EPOCH

Connections come from the libpq environment (PGHOST, PGPORT, PGUSER,
PGDATABASE); the presence extension must be installed and PGUSER a superuser.

load: worker connections (8) do random add / update / remove / leave_all /
touch on 6 shared rooms with channels of their own (fixed user_id per
channel, users shared, some anonymous), synchronous_commit on, and a pruner
loops prune_rooms() and prune('1 hour'). Each worker keeps, per channel, the
state its acknowledged (committed) operations produced and the one operation
in flight, if any; touch's return value is checked against that state. It
runs until the server goes away (45_crash.sh stops it with -m immediate),
then writes the journal: per worker its channels' modelled state, the op in
flight when the connection was lost, the time it was lost, its counts and
any error that was not a lost connection. Exits 1 if there was such an error
or a mismatch before the crash.

check, after the server restarted: every worker lost its connection at or
after --crash-at (not earlier); no presence without its room, no duplicate
(room, channel), the btree indexes of both tables pass amcheck's
bt_index_check with heapallindexed when amcheck is available; every channel
whose last operation was acknowledged has exactly the modelled rooms,
user_id and meta, and a channel whose operation was in flight has the state
before or after it, nothing else; no presence of an unknown channel. Then the
API still works: add, touch, members, update, remove, leave_all, prune and
prune_rooms, with events reaching a LISTENer. Exits 1 on any failure.
"""

import argparse
import copy
import json
import os
import select
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
from stress import (ROOMS, USERS, NOTIFY_CHANNEL, Failures, check_integrity,  # noqa: E402
                    connect, connection_lost, random_meta)


def apply_op(rooms, op):
    """The channel state (a {room: meta} dict) after op, applied to a copy."""
    rooms = copy.deepcopy(rooms)
    kind = op["op"]
    if kind == "add":
        if op["room"] not in rooms or op["meta"] is not None:
            rooms[op["room"]] = op["meta"]
    elif kind == "update":
        if op["room"] in rooms:
            rooms[op["room"]] = op["meta"]
    elif kind == "remove":
        rooms.pop(op["room"], None)
    elif kind == "leave_all":
        rooms = {}
    return rooms                # touch changes no membership


class LoadWorker(threading.Thread):
    OPS = {"add": 30, "touch": 30, "remove": 15, "update": 15, "leave_all": 6}

    def __init__(self, idx, nchannels, failures, started):
        super().__init__(name="crashworker%d" % idx, daemon=True)
        import random
        self.rng = random.Random()
        self.idx = idx
        self.failures = failures
        self.started = started
        self.channels = ["k%d-c%d" % (idx, k) for k in range(nchannels)]
        self.user = {ch: USERS[(idx * nchannels + k) % len(USERS)]
                     for k, ch in enumerate(self.channels)}
        self.model = {ch: {} for ch in self.channels}
        self.inflight = None
        self.lost_at = None
        self.lost_error = None
        self.acked = {op: 0 for op in self.OPS}
        self.errors = []

    def call(self, op):
        """Runs op; returns its result once the server acknowledged it."""
        ch = op["channel"]
        cur = self.cur
        if op["op"] == "add":
            cur.execute("SELECT presence.add(%s::text, %s::text, %s::text, %s::jsonb)",
                        (op["room"], ch, self.user[ch],
                         psycopg2.extras.Json(op["meta"]) if op["meta"] is not None else None))
        elif op["op"] == "update":
            cur.execute("SELECT presence.update(%s, %s, %s::jsonb)",
                        (op["room"], ch,
                         psycopg2.extras.Json(op["meta"]) if op["meta"] is not None else None))
        elif op["op"] == "remove":
            cur.execute("SELECT presence.remove(%s, %s)", (op["room"], ch))
        elif op["op"] == "leave_all":
            cur.execute("SELECT presence.leave_all(%s)", (ch,))
        else:
            cur.execute("SELECT presence.touch(%s)", (ch,))
        return cur.fetchone()[0]

    def expected(self, op):
        rooms = self.model[op["channel"]]
        return {"add": op.get("room") not in rooms,
                "update": op.get("room") in rooms,
                "remove": op.get("room") in rooms,
                "leave_all": len(rooms),
                "touch": len(rooms)}[op["op"]]

    def run(self):
        try:
            self.conn = connect(self.name)
            self.cur = self.conn.cursor()
            self.cur.execute("SET synchronous_commit = on")
        except psycopg2.Error as e:
            self.errors.append("cannot connect: %s" % e)
            self.started.release()
            return
        self.started.release()
        names = list(self.OPS)
        weights = [self.OPS[n] for n in names]
        while True:
            ch = self.rng.choice(self.channels)
            op = {"op": self.rng.choices(names, weights=weights)[0], "channel": ch}
            if op["op"] in ("add", "update", "remove"):
                present = list(self.model[ch])
                op["room"] = self.rng.choice(present) if present and \
                    self.rng.random() < (0.25 if op["op"] == "add" else 0.75) \
                    else self.rng.choices(ROOMS, weights=[4, 4, 4, 4, 1, 3])[0]
            if op["op"] in ("add", "update"):
                op["meta"] = random_meta(self.rng)
            self.inflight = op
            try:
                got = self.call(op)
            except psycopg2.Error as e:
                if connection_lost(self.conn, e):
                    self.lost_at = time.time()
                    self.lost_error = str(e).strip()
                else:
                    self.errors.append("%s: ERROR %s: %s" % (op, e.pgcode, (e.pgerror or str(e)).strip()))
                return
            want = self.expected(op)
            if got != want:
                self.errors.append("%s returned %r, the model says %r" % (op, got, want))
            self.model[ch] = apply_op(self.model[ch], op)
            self.inflight = None
            self.acked[op["op"]] += 1

    def journal(self):
        return {"name": self.name, "user": self.user, "model": self.model,
                "inflight": self.inflight, "lost_at": self.lost_at,
                "lost_error": self.lost_error, "acked": self.acked, "errors": self.errors}


def load(args):
    failures = Failures()
    started = threading.Semaphore(0)
    workers = [LoadWorker(i, args.channels, failures, started) for i in range(args.workers)]
    for w in workers:
        w.start()
    for _ in workers:
        started.acquire()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")

    pruner = {"loops": 0, "rooms_pruned": 0, "errors": [], "lost_error": None}
    pconn = connect("crashpruner")
    pcur = pconn.cursor()
    deadline = time.monotonic() + args.max_seconds
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        try:
            pcur.execute("SELECT presence.prune_rooms()")
            pruner["rooms_pruned"] += pcur.fetchone()[0]
            pcur.execute("SELECT presence.prune('1 hour')")
            if pcur.fetchone()[0] != 0:
                pruner["errors"].append("prune('1 hour') deleted live presences")
            pruner["loops"] += 1
        except psycopg2.Error as e:
            if connection_lost(pconn, e):
                pruner["lost_error"] = str(e).strip()
                break
            pruner["errors"].append("ERROR %s: %s" % (e.pgcode, (e.pgerror or str(e)).strip()))
        time.sleep(0.005)
    for w in workers:
        w.join(max(1, deadline - time.monotonic()))
    alive = [w.name for w in workers if w.is_alive()]
    journal = {"workers": [w.journal() for w in workers], "pruner": pruner,
               "still_running": alive}
    with open(args.journal, "w") as f:
        json.dump(journal, f)
    acked = sum(sum(w.acked.values()) for w in workers)
    inflight = sum(1 for w in workers if w.inflight is not None)
    print("crash load: %d ops acknowledged, %d in flight when the server went away;"
          " pruner %d loops, %d rooms pruned" % (acked, inflight, pruner["loops"],
                                                 pruner["rooms_pruned"]))
    errors = [e for w in workers for e in w.errors] + pruner["errors"]
    for e in errors[:20]:
        print("crash load: ERROR before the crash: %s" % e, file=sys.stderr)
    if alive:
        print("crash load: workers still running after %d s: %s" % (args.max_seconds, alive),
              file=sys.stderr)
    return 1 if errors or alive else 0


def check(args):
    with open(args.journal) as f:
        journal = json.load(f)
    failures = Failures()
    conn = None
    for _ in range(60):
        try:
            conn = connect("crashcheck")
            break
        except psycopg2.OperationalError:
            time.sleep(0.5)
    if conn is None:
        print("crash check: cannot connect to the restarted server", file=sys.stderr)
        return 1
    cur = conn.cursor()

    # The connections were lost to the crash, not before it.
    for w in journal["workers"]:
        if w["lost_at"] is None:
            failures.add(w["name"], "never lost its connection (errors: %s)" % w["errors"])
        elif w["lost_at"] < args.crash_at:
            failures.add(w["name"], "lost its connection %.2f s before the crash: %s"
                         % (args.crash_at - w["lost_at"], w["lost_error"]))
        for e in w["errors"]:
            failures.add(w["name"], "before the crash: %s" % e)
    for e in journal["pruner"]["errors"]:
        failures.add("pruner", "before the crash: %s" % e)

    # Read the heap itself, not an index that recovery might have left wrong.
    cur.execute("SET enable_indexscan = off; SET enable_indexonlyscan = off;"
                " SET enable_bitmapscan = off")
    check_integrity(cur, failures, "after recovery")

    # The indexes agree with the heap (amcheck ships with the server).
    cur.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'")
    amchecked = 0
    if cur.fetchone()[0]:
        cur.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        cur.execute("SELECT c.oid::regclass::text FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE i.indrelid IN ('presence.rooms'::regclass, 'presence.presences'::regclass)")
        for (idx,) in cur.fetchall():
            try:
                cur.execute("SELECT bt_index_check(%s::regclass, true)", (idx,))
                amchecked += 1
            except psycopg2.Error as e:
                failures.add("amcheck", "%s: %s" % (idx, (e.pgerror or str(e)).strip()))
        cur.execute("DROP EXTENSION amcheck")

    # Per channel: the acknowledged state, or (op in flight) before or after it.
    cur.execute("SELECT channel, room, user_id, meta FROM presence.presences")
    table = {}
    for ch, room, user, meta in cur.fetchall():
        table.setdefault(ch, {})[room] = (user, meta)
    cur.execute("RESET enable_indexscan; RESET enable_indexonlyscan; RESET enable_bitmapscan")
    exact = either = before = after = 0
    known = set()
    for w in journal["workers"]:
        for ch, rooms in w["model"].items():
            known.add(ch)
            got = table.get(ch, {})
            want = {r: (w["user"][ch], m) for r, m in rooms.items()}
            op = w["inflight"]
            if op is not None and op["channel"] == ch:
                either += 1
                want_after = {r: (w["user"][ch], m) for r, m in apply_op(rooms, op).items()}
                if got == want:
                    before += 1
                elif got == want_after:
                    after += 1
                else:
                    failures.add(ch, "op %s was in flight; the table has %r, neither the state"
                                 " before (%r) nor after (%r)" % (op, got, want, want_after))
            else:
                exact += 1
                if got != want:
                    failures.add(ch, "last op acknowledged; the table has %r, the model %r"
                                 % (got, want))
    for ch in sorted(set(table) - known):
        failures.add(ch, "presences of a channel no worker used: %r" % table[ch])

    # The API still works, events included.
    listen = connect("crashcheck-listener")
    listen.cursor().execute("LISTEN " + NOTIFY_CHANNEL)
    api = []

    def step(name, sql, want, params=()):
        try:
            cur.execute(sql, params)
            got = cur.fetchall()
            got = got[0][0] if len(got) == 1 and len(got[0]) == 1 else got
        except psycopg2.Error as e:
            got = "ERROR %s: %s" % (e.pgcode, (e.pgerror or str(e)).strip())
        ok = want(got) if callable(want) else got == want
        api.append(name)
        if not ok:
            failures.add("api", "%s: got %r" % (name, got))

    step("add", "SELECT presence.add('after-crash', 'z1', 'zed')", True)
    step("add again", "SELECT presence.add('after-crash', 'z1', 'zed')", False)
    step("touch", "SELECT presence.touch('z1')", 1)
    step("update", """SELECT presence.update('after-crash', 'z1', '{"s":1}')""", True)
    step("members", "SELECT channel, user_id, meta FROM presence.members('after-crash')",
         [("z1", "zed", {"s": 1})])
    step("stats", "SELECT * FROM presence.stats('after-crash')", [(1, 1, 0)])
    step("remove", "SELECT presence.remove('after-crash', 'z1')", True)
    step("add z2", "SELECT presence.add('after-crash', 'z2')", True)
    step("backdate z2", "UPDATE presence.presences SET last_seen = now() - interval '1 hour'"
         " WHERE channel = 'z2' RETURNING 1", 1)
    step("prune", "SELECT presence.prune('10 minutes')", 1)
    step("touch pruned", "SELECT presence.touch('z2')", 0)
    nrows = len([1 for rooms in table.values() for _ in rooms])
    step("leave_all of every channel", "SELECT coalesce(sum(presence.leave_all(c)), 0)::int"
         " FROM (SELECT DISTINCT channel AS c FROM presence.presences) s", nrows)
    step("prune_rooms", "SELECT presence.prune_rooms()", lambda n: isinstance(n, int) and n >= 1)
    step("no rooms left", "SELECT count(*) FROM presence.rooms", 0)

    # Events of the steps above: add z1, update, remove z1, add z2, prune z2,
    # then the leave_alls (one per presence).
    cur.execute("SELECT pg_notify(%s, '{\"marker\":\"crashcheck\"}')", (NOTIFY_CHANNEL,))
    events, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline:
        if select.select([listen], [], [], 0.5) != ([], [], []):
            listen.poll()
            while listen.notifies:
                events.append(json.loads(listen.notifies.pop(0).payload))
        if events and events[-1] == {"marker": "crashcheck"}:
            break
    after_crash = [e for e in events if e.get("room") == "after-crash"]
    kinds = [next((k for k in ("added", "removed", "updated") if e.get(k)), "bulk")
             for e in after_crash]
    if kinds != ["added", "updated", "removed", "added", "removed"]:
        failures.add("api", "events of room after-crash: %r" % after_crash)
    net = sum(1 if e.get("added") else -1 if e.get("removed") else
              e.get("added_count", 0) - e.get("removed_count", 0)
              for e in events if e.get("room") != "after-crash" and "marker" not in e)
    if net != -nrows:
        failures.add("api", "leave_all of %d presences: events add up to %d" % (nrows, net))
    listen.close()
    conn.close()

    nacked = sum(sum(w["acked"].values()) for w in journal["workers"])
    ops = {}
    for w in journal["workers"]:
        for k, v in w["acked"].items():
            ops[k] = ops.get(k, 0) + v
    print("crash check: %d ops acknowledged before the crash (%s)"
          % (nacked, ", ".join("%s %d" % kv for kv in sorted(ops.items()))))
    print("crash check: %d presences after recovery; %d channels exactly as acknowledged,"
          " %d with an op in flight (%d found as before it, %d as after)"
          % (nrows, exact, either, before, after))
    print("crash check: %d indexes passed amcheck; API steps run: %d; %d events after recovery"
          % (amchecked, len(api), len(events) - 1))
    if failures:
        print("crash check: FAILED, %d problem(s):" % failures.count, file=sys.stderr)
        for item in failures.items:
            print("  " + item, file=sys.stderr)
        return 1
    print("crash check: OK")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--journal", required=True)
    lp.add_argument("--ready")
    lp.add_argument("--workers", type=int, default=8)
    lp.add_argument("--channels", type=int, default=3)
    lp.add_argument("--max-seconds", type=float, default=120,
                    help="give up if the server is still up after this long")
    cp = sub.add_parser("check")
    cp.add_argument("--journal", required=True)
    cp.add_argument("--crash-at", type=float, required=True)
    args = ap.parse_args()
    return load(args) if args.cmd == "load" else check(args)


if __name__ == "__main__":
    sys.exit(main())
