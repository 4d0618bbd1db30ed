#!/usr/bin/python3
"""Stress test of presence (DESIGN.md sections 4, 6 and 8) on a live cluster.

Run by test/integration/40_stress.sh, or by hand with the libpq variables
(PGHOST, PGPORT, PGUSER, PGDATABASE) pointing at a database where the
presence extension is installed and PGUSER is a superuser:

    /usr/bin/python3 test/stress/stress.py [--seconds N] [--workers N] [--seed N]

Needs psycopg2 (Debian: python3-psycopg2, seen by /usr/bin/python3).

What runs, concurrently, for --seconds (env PRESENCE_STRESS_SECONDS, 45):

- workers (8), one connection each, doing random add / touch / update /
  remove / leave_all / members / rooms_of on a shared set of 6 rooms. Each
  worker owns its channels (a fixed user_id per channel, from a small set of
  users shared by all workers, some channels anonymous) and keeps an exact
  model of their presences, so every return value is checked against the
  model: add's "created", remove's and update's "existed", leave_all's and
  touch's counts, and its own channels' rows in members() and rooms_of().
  Half the workers run with presence.touch_interval = 0 (touch always
  writes). Now and then a worker makes a channel "vanish": it backdates the
  channel's last_seen by 30 minutes (plain UPDATE as superuser), calls
  presence.prune('10 minutes') and drops the channel from its model; touch
  must then return 0.
- a pruner connection calling presence.prune('1 hour') (must delete nothing:
  no presence is that old) and presence.prune_rooms() in a loop, racing the
  workers' adds on rooms that just became empty (a presence must never be
  lost, section 8).
- a listener connection on channel presence that parses every event, checks
  its shape (section 6) and keeps, per room, +1 per added, -1 per removed,
  +added_count -removed_count per bulk_change. It also checks user_joined /
  user_left against the (room, user) connection counts the events imply, for
  as long as no bulk_change made those counts unknown.

At the end (workers stopped, then a marker NOTIFY that tells the listener it
has every earlier event): the table must equal the union of the models (no
lost, no extra, no duplicate presence; user_id and meta included), no
presence without its room, per room the event counter must equal the number
of presences, the total that the vanish prunes deleted must equal the number
of presences backdated, and no error may have been raised. Then one more
prune_rooms() must leave no empty room and lose no presence.

Prints a summary (ops per kind, events, duration); exits 1 on any mismatch.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import select
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.extensions
import psycopg2.extras

ROOMS = ["lobby", "room-1", "room-2", "room-3", "quiet", 'salle "é" \\ ü']
# Users shared between workers; None = anonymous.
USERS = ["u1", "u2", "u3", None, "u4", "u1", None, "u2"]
NOTIFY_CHANNEL = "presence"
SINGLE_KEYS = ["room", "added", "removed", "updated", "bulk_change"]
BULK_KEYS = SINGLE_KEYS + ["added_count", "removed_count"]
# Keys that may follow, in this order, each only when it applies.
TRAILER_KEYS = ["pruned", "origin", "seq", "ts", "sig"]


def split_trailer(ev):
    """The event's keys before its trailer, or None if the trailer's keys
    are out of order or followed by others."""
    keys = list(ev)
    i = len(keys)
    while i > 0 and keys[i - 1] in TRAILER_KEYS:
        i -= 1
    trailer = keys[i:]
    if trailer != [k for k in TRAILER_KEYS if k in trailer]:
        return None
    return keys[:i]


def signature_ok(payload, key):
    """Whether payload ends with a valid "ts" and "sig" under key."""
    at = payload.rfind(',"sig":"')
    if at < 0 or key is None:
        return False
    want = hmac.new(key, payload[:at].encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(payload[at + 8:-2], want)


def connection_lost(conn, e):
    """Whether error e means the server went away (not, say, a deadlock,
    which psycopg2 also raises as an OperationalError)."""
    if isinstance(e, psycopg2.InterfaceError) or conn is None or conn.closed:
        return True
    # admin_shutdown, crash_shutdown, cannot_connect_now, or no SQLSTATE at
    # all (psycopg2 reports "server closed the connection unexpectedly" as an
    # OperationalError or, while reading a result, a plain DatabaseError)
    return isinstance(e, psycopg2.DatabaseError) and \
        (e.pgcode is None or e.pgcode in ("57P01", "57P02", "57P03"))

psycopg2.extensions.register_type(psycopg2.extensions.UNICODE)


def connect(application_name):
    """An autocommit connection from the libpq environment."""
    conn = psycopg2.connect("", application_name=application_name)
    conn.autocommit = True
    return conn


def random_meta(rng):
    """A small meta value, or None."""
    r = rng.random()
    if r < 0.4:
        return None
    if r < 0.5:
        return {"status": "online"}  # often equal to what is there already
    return {"status": rng.choice(["online", "away", "busy"]),
            "n": rng.randint(0, 3),
            "device": rng.choice(["web", "ios", "an\"droid é"])}


class Failures:
    """Mismatches and errors, shared by every thread."""

    def __init__(self, limit=8):
        self.lock = threading.Lock()
        self.items = []
        self.count = 0
        self.limit = limit          # shown per thread / check
        self.per_who = {}

    def add(self, who, what):
        with self.lock:
            self.count += 1
            self.per_who[who] = self.per_who.get(who, 0) + 1
            if self.per_who[who] <= self.limit:
                self.items.append("%s: %s" % (who, what))

    def __bool__(self):
        return self.count > 0


class Worker(threading.Thread):
    """One connection doing random operations on the channels it owns."""

    # op name -> weight
    OPS = {"touch": 30, "add": 26, "remove": 13, "update": 11, "leave_all": 6,
           "members": 6, "rooms_of": 4, "vanish": 1.5}

    def __init__(self, idx, nchannels, seed, stop, failures, touch_write):
        super().__init__(name="worker%d" % idx, daemon=True)
        self.idx = idx
        self.rng = random.Random(seed)
        self.stop = stop
        self.failures = failures
        self.touch_write = touch_write
        self.channels = ["w%d-c%d" % (idx, k) for k in range(nchannels)]
        self.user = {ch: USERS[(idx * nchannels + k) % len(USERS)]
                     for k, ch in enumerate(self.channels)}
        # channel -> {room: meta}
        self.model = {ch: {} for ch in self.channels}
        self.ops = {op: 0 for op in self.OPS}
        self.checks = 0
        self.errors = 0
        self.backdated = 0          # presences this worker backdated
        self.vanish_pruned = 0      # what its prune('10 minutes') calls deleted
        self.conn = None
        self.cur = None
        self.out_of_sync = False
        names = list(self.OPS)
        self.op_names = names
        self.op_weights = [self.OPS[n] for n in names]

    # -- helpers -----------------------------------------------------------

    def q1(self, sql, args=()):
        self.cur.execute(sql, args)
        return self.cur.fetchone()[0]

    def expect(self, op, what, got, want):
        self.checks += 1
        if got != want:
            self.failures.add(self.name, "%s %s: got %r, model says %r" % (op, what, got, want))
            self.out_of_sync = True

    def pick_room(self, ch, present_bias):
        """A room; with probability present_bias one the channel is in."""
        rooms = list(self.model[ch])
        if rooms and self.rng.random() < present_bias:
            return self.rng.choice(rooms)
        # "quiet" is picked less often, so it is empty (and pruned) often.
        return self.rng.choices(ROOMS, weights=[4, 4, 4, 4, 1, 3])[0]

    def resync(self):
        """After an error, reload the model of our channels from the table."""
        try:
            for ch in self.channels:
                self.model[ch] = {}
            self.cur.execute("SELECT channel, room, meta FROM presence.presences"
                             " WHERE channel = ANY(%s)", (self.channels,))
            for ch, room, meta in self.cur.fetchall():
                self.model[ch][room] = meta
        except psycopg2.Error as e:
            self.failures.add(self.name, "resync failed: %s" % e)
            self.stop.set()

    # -- operations ----------------------------------------------------------

    def op_add(self, ch):
        room = self.pick_room(ch, 0.25)
        meta = random_meta(self.rng)
        want = room not in self.model[ch]
        got = self.q1("SELECT presence.add(%s::text, %s::text, %s::text, %s::jsonb)",
                      (room, ch, self.user[ch],
                       psycopg2.extras.Json(meta) if meta is not None else None))
        self.expect("add", "(%r, %r)" % (room, ch), got, want)
        if got or meta is not None:
            self.model[ch][room] = meta
        elif room not in self.model[ch]:
            self.model[ch][room] = None

    def op_remove(self, ch):
        room = self.pick_room(ch, 0.7)
        want = room in self.model[ch]
        got = self.q1("SELECT presence.remove(%s, %s)", (room, ch))
        self.expect("remove", "(%r, %r)" % (room, ch), got, want)
        self.model[ch].pop(room, None)

    def op_update(self, ch):
        room = self.pick_room(ch, 0.8)
        meta = random_meta(self.rng)
        want = room in self.model[ch]
        got = self.q1("SELECT presence.update(%s, %s, %s::jsonb)",
                      (room, ch, psycopg2.extras.Json(meta) if meta is not None else None))
        self.expect("update", "(%r, %r)" % (room, ch), got, want)
        if room in self.model[ch]:
            self.model[ch][room] = meta

    def op_leave_all(self, ch):
        got = self.q1("SELECT presence.leave_all(%s)", (ch,))
        self.expect("leave_all", "(%r)" % ch, got, len(self.model[ch]))
        self.model[ch] = {}

    def op_touch(self, ch):
        got = self.q1("SELECT presence.touch(%s)", (ch,))
        self.expect("touch", "(%r)" % ch, got, len(self.model[ch]))

    def op_members(self, ch):
        room = self.pick_room(ch, 0.5)
        self.cur.execute("SELECT channel, user_id, meta FROM presence.members(%s)", (room,))
        mine = set(self.channels)
        got = {c: (u, m) for c, u, m in self.cur.fetchall() if c in mine}
        want = {c: (self.user[c], self.model[c][room])
                for c in self.channels if room in self.model[c]}
        self.expect("members", "(%r), own channels" % room, got, want)

    def op_rooms_of(self, ch):
        self.cur.execute("SELECT r FROM presence.rooms_of(%s) r", (ch,))
        got = sorted(r for (r,) in self.cur.fetchall())
        self.expect("rooms_of", "(%r)" % ch, got, sorted(self.model[ch]))

    def op_vanish(self, ch):
        """The connection vanished: backdate it, prune, it must be gone."""
        if not self.model[ch]:
            return self.op_add(ch)
        self.cur.execute("UPDATE presence.presences"
                         " SET last_seen = now() - interval '30 minutes'"
                         " WHERE channel = %s", (ch,))
        self.expect("vanish", "backdated rows of %r" % ch, self.cur.rowcount, len(self.model[ch]))
        self.backdated += self.cur.rowcount
        # Another worker's prune may take (some of) them: the total is checked.
        self.vanish_pruned += self.q1("SELECT presence.prune('10 minutes')")
        self.model[ch] = {}
        # touch waits for a prune still holding them, then must see nothing.
        self.expect("touch after vanish", "(%r)" % ch,
                    self.q1("SELECT presence.touch(%s)", (ch,)), 0)

    # -- thread --------------------------------------------------------------

    def run(self):
        try:
            self.conn = connect(self.name)
            self.cur = self.conn.cursor()
            if self.touch_write:
                self.cur.execute("SET presence.touch_interval = 0")
        except psycopg2.Error as e:
            self.failures.add(self.name, "cannot connect: %s" % e)
            self.stop.set()
            return
        while not self.stop.is_set():
            op = self.rng.choices(self.op_names, weights=self.op_weights)[0]
            ch = self.rng.choice(self.channels)
            try:
                getattr(self, "op_" + op)(ch)
                self.ops[op] += 1
                if self.out_of_sync:
                    # One mismatch is reported once, not again by every later op.
                    self.out_of_sync = False
                    self.resync()
            except psycopg2.Error as e:
                self.errors += 1
                if connection_lost(self.conn, e):
                    self.failures.add(self.name, "%s: connection lost: %s" % (op, e))
                    self.stop.set()
                    break
                self.failures.add(self.name, "%s on %r: ERROR %s: %s"
                                  % (op, ch, e.pgcode, (e.pgerror or str(e)).strip()))
                self.resync()
        self.conn.close()


class Pruner(threading.Thread):
    """prune('1 hour') and prune_rooms() in a loop."""

    def __init__(self, stop, failures):
        super().__init__(name="pruner", daemon=True)
        self.stop = stop
        self.failures = failures
        self.loops = 0
        self.rooms_pruned = 0
        self.errors = 0

    def run(self):
        try:
            conn = connect("pruner")
            cur = conn.cursor()
        except psycopg2.Error as e:
            self.failures.add(self.name, "cannot connect: %s" % e)
            self.stop.set()
            return
        while not self.stop.is_set():
            try:
                cur.execute("SELECT presence.prune('1 hour')")
                n = cur.fetchone()[0]
                if n != 0:
                    self.failures.add(self.name, "prune('1 hour') deleted %d live presences" % n)
                cur.execute("SELECT presence.prune_rooms()")
                self.rooms_pruned += cur.fetchone()[0]
                self.loops += 1
            except psycopg2.Error as e:
                self.errors += 1
                self.failures.add(self.name, "ERROR %s: %s" % (e.pgcode, (e.pgerror or str(e)).strip()))
                if connection_lost(conn, e):
                    self.stop.set()
                    break
            time.sleep(0.002)
        conn.close()


class Listener(threading.Thread):
    """LISTENs on presence, checks every event and counts per room."""

    def __init__(self, failures, marker):
        super().__init__(name="listener", daemon=True)
        self.failures = failures
        self.marker = marker
        self.key = None
        self.ready = threading.Event()
        self.done = threading.Event()
        self.quit = threading.Event()
        self.counter = {}           # room -> net presences per events
        self.kinds = {"added": 0, "removed": 0, "updated": 0, "bulk_change": 0}
        self.events = 0
        # (room, user) -> connections, as the events tell; rooms whose
        # per-user counts a bulk_change made unknown.
        self.user_conns = {}
        self.unknown_rooms = set()
        self.flag_checks = 0

    def bad(self, what, payload):
        self.failures.add(self.name, "%s: %s" % (what, payload[:300]))

    def check_flag(self, room, obj, flag, delta, payload):
        user = obj.get("user_id")
        if flag not in obj or not isinstance(obj[flag], bool):
            return self.bad("missing or non-boolean %s" % flag, payload)
        if user is None:
            if obj[flag]:
                self.bad("%s true for an anonymous presence" % flag, payload)
            return
        key = (room, user)
        before = self.user_conns.get(key, 0)
        after = before + delta
        self.user_conns[key] = after
        if room in self.unknown_rooms:
            return
        self.flag_checks += 1
        want = before == 0 if delta > 0 else after == 0
        if obj[flag] != want or after < 0:
            self.bad("%s is %s, but the user had %d connection(s) before"
                     % (flag, obj[flag], before), payload)
            self.unknown_rooms.add(room)    # report a wrong count once

    def handle(self, payload):
        try:
            ev = json.loads(payload)
        except ValueError as e:
            return self.bad("not JSON (%s)" % e, payload)
        if ev == {"marker": self.marker}:
            self.done.set()
            return
        self.events += 1
        room = ev.get("room")
        if not isinstance(room, str):
            return self.bad("no room", payload)
        if not signature_ok(payload, self.key):
            return self.bad("bad or missing signature", payload)
        keys = split_trailer(ev)
        if ev.get("bulk_change") is True:
            if keys != BULK_KEYS or ev["added"] is not None or \
                    ev["removed"] is not None or ev["updated"] is not None:
                return self.bad("malformed bulk_change event", payload)
            self.kinds["bulk_change"] += 1
            self.counter[room] = self.counter.get(room, 0) + ev["added_count"] - ev["removed_count"]
            if ev["added_count"] or ev["removed_count"]:
                self.unknown_rooms.add(room)
            return
        if keys != SINGLE_KEYS or ev["bulk_change"] is not False:
            return self.bad("malformed event (keys %s)" % list(ev), payload)
        present = [k for k in ("added", "removed", "updated") if ev[k] is not None]
        if len(present) != 1:
            return self.bad("not exactly one of added/removed/updated", payload)
        kind = present[0]
        self.kinds[kind] += 1
        obj = ev[kind]
        if not isinstance(obj, dict) or not isinstance(obj.get("channel"), str):
            return self.bad("malformed %s object" % kind, payload)
        if kind == "added":
            self.counter[room] = self.counter.get(room, 0) + 1
            self.check_flag(room, obj, "user_joined", +1, payload)
        elif kind == "removed":
            self.counter[room] = self.counter.get(room, 0) - 1
            self.check_flag(room, obj, "user_left", -1, payload)

    def run(self):
        try:
            conn = connect("listener")
            cur = conn.cursor()
            cur.execute("SELECT presence.event_key()")
            self.key = bytes.fromhex(cur.fetchone()[0])
            cur.execute("LISTEN " + NOTIFY_CHANNEL)
        except psycopg2.Error as e:
            self.failures.add(self.name, "cannot listen: %s" % e)
            self.ready.set()
            return
        self.ready.set()
        try:
            while not self.quit.is_set() and not self.done.is_set():
                if select.select([conn], [], [], 0.2) != ([], [], []):
                    conn.poll()
                    while conn.notifies:
                        n = conn.notifies.pop(0)
                        if n.channel == NOTIFY_CHANNEL:
                            self.handle(n.payload)
        except psycopg2.Error as e:
            self.failures.add(self.name, "listener connection failed: %s" % e)
        conn.close()


def table_state(cur):
    """{(room, channel): (user_id, meta)} of presence.presences, and duplicates."""
    cur.execute("SELECT room, channel, user_id, meta FROM presence.presences")
    state, dups = {}, []
    for room, ch, user, meta in cur.fetchall():
        if (room, ch) in state:
            dups.append((room, ch))
        state[(room, ch)] = (user, meta)
    return state, dups


def check_integrity(cur, failures, who="final"):
    """No presence without its room, no duplicate (room, channel)."""
    cur.execute("SELECT p.room, p.channel FROM presence.presences p"
                " WHERE NOT EXISTS (SELECT 1 FROM presence.rooms r WHERE r.name = p.room)")
    for room, ch in cur.fetchall():
        failures.add(who, "presence (%r, %r) without its room" % (room, ch))
    cur.execute("SELECT room, channel, count(*) FROM presence.presences"
                " GROUP BY room, channel HAVING count(*) > 1")
    for room, ch, n in cur.fetchall():
        failures.add(who, "(%r, %r) is there %d times" % (room, ch, n))


def compare_state(got, want, failures, who="final", limit=20):
    """Compare {(room, channel): (user, meta)} maps; returns the differences."""
    diffs = 0
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            diffs += 1
            if diffs <= limit:
                if key not in got:
                    what = "lost: model has %r" % (want[key],)
                elif key not in want:
                    what = "extra: table has %r" % (got[key],)
                else:
                    what = "table has %r, model %r" % (got[key], want[key])
                failures.add(who, "presence %r %s" % (key, what))
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("PRESENCE_STRESS_SECONDS", "45")))
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--channels", type=int, default=3, help="channels per worker")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("PRESENCE_STRESS_SEED", "0")) or None)
    args = ap.parse_args()
    seed = args.seed or random.randrange(1, 1 << 30)
    print("stress: %d workers x %d channels, %d rooms, %.0f s, seed %d"
          % (args.workers, args.channels, len(ROOMS), args.seconds, seed), flush=True)

    failures = Failures()
    marker = uuid.uuid4().hex
    listener = Listener(failures, marker)
    listener.start()
    listener.ready.wait(30)

    admin = connect("stress-admin")
    cur = admin.cursor()
    cur.execute("SELECT count(*) FROM presence.presences")
    if cur.fetchone()[0] != 0:
        print("stress: presence.presences is not empty to begin with", file=sys.stderr)
        return 2

    stop = threading.Event()
    workers = [Worker(i, args.channels, seed * 1000 + i, stop, failures, touch_write=(i % 2 == 1))
               for i in range(args.workers)]
    pruner = Pruner(stop, failures)
    start = time.monotonic()
    for t in workers + [pruner]:
        t.start()
    deadline = start + args.seconds
    next_report = start + 15
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.2)
        if time.monotonic() >= next_report:
            next_report += 15
            print("stress: %.0f s, %d ops, %d events"
                  % (time.monotonic() - start, sum(sum(w.ops.values()) for w in workers),
                     listener.events), flush=True)
    stop.set()
    for t in workers + [pruner]:
        t.join(60)
        if t.is_alive():
            failures.add(t.name, "did not stop within 60 s (stuck in a query?)")
    duration = time.monotonic() - start

    # Everything committed before the marker is queued before it (in worker
    # mode once the worker has sent it: flush_events waits for that).
    cur.execute("SELECT presence.flush_events('60 seconds')")
    if not cur.fetchone()[0]:
        failures.add("listener", "the worker did not send the events within 60 s")
    cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps({"marker": marker})))
    if not listener.done.wait(30):
        failures.add("listener", "the end marker did not arrive within 30 s")
    listener.quit.set()
    listener.join(10)

    # Final state against the models.
    want = {}
    for w in workers:
        for ch, rooms in w.model.items():
            for room, meta in rooms.items():
                want[(room, ch)] = (w.user[ch], meta)
    got, dups = table_state(cur)
    for d in dups:
        failures.add("final", "duplicate presence %r" % (d,))
    check_integrity(cur, failures)
    diffs = compare_state(got, want, failures)

    per_room = {}
    for (room, _ch) in got:
        per_room[room] = per_room.get(room, 0) + 1
    for room in sorted(set(per_room) | set(listener.counter)):
        if listener.counter.get(room, 0) != per_room.get(room, 0):
            failures.add("events", "room %r: events add up to %d presences, the table has %d"
                         % (room, listener.counter.get(room, 0), per_room.get(room, 0)))

    backdated = sum(w.backdated for w in workers)
    vanish_pruned = sum(w.vanish_pruned for w in workers)
    if backdated != vanish_pruned:
        failures.add("vanish", "%d presences backdated, prune('10 minutes') deleted %d"
                     % (backdated, vanish_pruned))

    # One more prune_rooms: no empty room left, no presence lost.
    cur.execute("SELECT presence.prune_rooms()")
    final_rooms_pruned = cur.fetchone()[0]
    cur.execute("SELECT name FROM presence.rooms r WHERE NOT EXISTS"
                " (SELECT 1 FROM presence.presences p WHERE p.room = r.name)")
    for (room,) in cur.fetchall():
        failures.add("final", "room %r is empty after prune_rooms()" % room)
    after, _ = table_state(cur)
    if after != got:
        failures.add("final", "prune_rooms() with no worker running changed presences")
    admin.close()

    ops = {}
    for w in workers:
        for op, n in w.ops.items():
            ops[op] = ops.get(op, 0) + n
    total_ops = sum(ops.values())
    print("stress: duration %.1f s, %d ops (%.0f/s): %s"
          % (duration, total_ops, total_ops / duration,
             ", ".join("%s %d" % (k, v) for k, v in sorted(ops.items()))))
    print("stress: %d return values checked against the models; errors: workers %d, pruner %d"
          % (sum(w.checks for w in workers), sum(w.errors for w in workers), pruner.errors))
    print("stress: pruner %d loops, prune_rooms() deleted %d rooms (+%d at the end);"
          " vanish: %d presences backdated, %d pruned"
          % (pruner.loops, pruner.rooms_pruned, final_rooms_pruned, backdated, vanish_pruned))
    print("stress: %d events received (%s); %d user_joined/user_left flags checked"
          % (listener.events, ", ".join("%s %d" % kv for kv in sorted(listener.kinds.items())),
             listener.flag_checks))
    print("stress: final table %d presences in %d rooms, %d differ from the models"
          % (len(got), len(per_room), diffs))
    if failures:
        print("stress: FAILED, %d problem(s):" % failures.count, file=sys.stderr)
        for item in failures.items:
            print("  " + item, file=sys.stderr)
        if failures.count > len(failures.items):
            print("  ... and %d more (at most %d shown per thread or check)"
                  % (failures.count - len(failures.items), failures.limit), file=sys.stderr)
        print("stress: seed %d" % seed, file=sys.stderr)
        return 1
    print("stress: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
