#!/usr/bin/python3
"""Load, measurements and checks of the failover test (test/slow/80_failover.sh).

    failover.py wait-http    --url URL [--timeout S]
    failover.py setup        --dsn ADMIN
    failover.py wait-primary --dsn DSN [--since EPOCH] [--timeout S]
    failover.py wait-standby --primary ADMIN --standby ADMIN [--sync] [--rest URL] [--timeout S]
    failover.py load         --dsn APP --admin-dsn ADMIN --journal F --status F --stop F
    failover.py wait-load    --status F [--min-acked N] [--reconnected] [--timeout S]
    failover.py wait-django  --events F --kill-at EPOCH [--timeout S]
    failover.py check        --journal F --dsn ADMIN --kill-at EPOCH [--django-events F] [--allow-loss]
    failover.py standby      --primary ADMIN --standby ADMIN --standby-app APP
    failover.py cron         --primary ADMIN --standby ADMIN --since EPOCH [--timeout S]

DSNs are libpq connection strings.  The clients (load) use one naming both
nodes, `host=127.0.0.1,127.0.0.1 port=P1,P2 target_session_attrs=read-write`,
as an application would: libpq tries each host in turn and keeps the one that
accepts writes.  Needs psycopg2 (/usr/bin/python3, Debian's python3-psycopg2).

wait-http: polls URL (etcd's /health, Patroni's REST API) until it answers 200.

setup: in the database of ADMIN (cron.database_name) creates pg_cron and
presence, the role `app` with the README's GRANTs (no table access), the
pg_cron job (presence.schedule_prune()), presence.max_age = 30min for the
job's sessions (so that it prunes only the backdated "ghosts" of the cron
check, never the load's presences), and a few seed presences.

wait-primary: polls DSN until it answers pg_is_in_recovery() = false; prints
the seconds since --since (the kill), the time to a new primary.

wait-standby: polls until --standby is in recovery, streams from --primary
and has replayed the primary's current WAL position; with --sync, until the
primary also lists it as its synchronous standby (sync_state = 'sync'); with
--rest, until that URL (the standby's Patroni /sync or /replica) answers 200.

load: writer threads (--workers, 4), each with its own connection and
channels, do random add / touch / update / remove / leave_all on shared
rooms (autocommit, synchronous_commit on) and keep an exact model of their
channels: each return value is checked against it, and each acknowledged
change is recorded.  When a call fails because the server went away (or
the session turned read-only), the writer reconnects (the same multi-host
DSN, every 0.2 s) and then re-reads all of its channels through the API
(rooms_of, members): a channel must be exactly as modelled, except the one
whose call was in flight, which may be as before or as after that call.
Anything else is an acknowledged write that was lost.
A listener thread (psycopg2, the README's recipe) LISTENs on the same DSN,
keeps a view of every room's members from the events (a bulk_change or a
reconnection re-reads the rooms with members()), reconnects on error,
LISTENs again and re-reads.  On --stop (a file appearing) the writers stop;
then a sentinel presence is added, and once the listener has its event, its
view must equal members() of every room.  Writes --journal (JSON) and
--status (JSON, every 0.2 s, for wait-load).

wait-load: polls --status until every writer has --min-acked acknowledged
calls (with --reconnected: since its last reconnection, and the listener
has reconnected too).

wait-django: polls the Django listener's events file (django_listener.py)
until it shows the bulk_change the listener sends once it listens again
after the kill.  The sentinel is added after that, so that its join must
come as an event (added before, it would only be covered by the re-read).

check: after the load, on the new primary: every writer channel exactly as
modelled (so nothing acknowledged was lost), seeds intact, no presence
without its room, no duplicate, no channel nobody wrote; the writers saw no
error other than losing the server; the listener reconnected, re-read and
its view matched; the Django listener's events file (--django-events)
shows signals before the kill, a bulk_change for every room after it (its
re-read prompt) and the sentinel's join.  Prints the figures: time to the
new primary as each client saw it, errors and reconnection attempts per
client.  --allow-loss (the async run) reports lost writes instead of failing.

standby: readers (members, users, anonymous_count, stats, rooms_of) on the
standby, as the app role, equal the primary's once it has replayed; touch,
and every other writing function, fails with SQLSTATE 25006 there, whatever
presence.touch_interval says and whether the row is fresh or stale; LISTEN
fails with 25006 too; no pg_cron scheduler runs there.

cron: backdates ghost presences on the primary and waits for the pg_cron
job to prune them and their rooms (a LISTENer gets their events);
cron.job_run_details must show a succeeded run that started after --since
and no failed one; then no room is left empty and no presence without its
room; the primary must run the pg_cron scheduler and the standby must not.
"""

import argparse
import collections
import copy
import json
import os
import random
import select
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True     # no __pycache__ in the work tree
import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402
import psycopg2.extras  # noqa: E402

psycopg2.extensions.register_type(psycopg2.extensions.UNICODE)

ROOMS = ["lobby", "room-1", "room-2", "room-3", "quiet", 'salle "é" \\ ü']
USERS = ["u1", "u2", "u3", None, "u4", "u1", None, "u2"]
SENTINEL_ROOM = "ha-sentinel"
SEEDS = [("lobby", "seed-1", "u9", {"seed": 1}), ("room-1", "seed-2", None, None),
         ("quiet", "seed-3", "u9", None)]
APP_FUNCTIONS = """presence.add(text, text, text, jsonb), presence.remove(text, text),
    presence.leave_all(text), presence.touch(text),
    presence.update(text, text, jsonb), presence.members(text),
    presence.users(text), presence.anonymous_count(text),
    presence.rooms_of(text), presence.stats(text)"""
READ_ONLY = "25006"


def log(*args):
    print("failover.py:", *args, flush=True)


def fail(msg):
    print("failover.py: FAIL: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def report(problems):
    """Prints each problem once (with how many times it happened) and exits
    1, if there are any."""
    if not problems:
        return
    for p, n in collections.Counter(problems).items():
        print("failover.py: FAIL: %s%s" % (p, " (%d times)" % n if n > 1 else ""), file=sys.stderr)
    sys.exit(1)


def connect(dsn, autocommit=True, **kw):
    conn = psycopg2.connect(dsn, **kw)
    conn.autocommit = autocommit
    return conn


def value(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row else None


def rows(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


def poll(what, timeout, interval, fn):
    """Calls fn() every interval seconds until it returns a true value
    (returned) or timeout seconds passed (fails, naming what)."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            got = fn()
            if got:
                return got
        except psycopg2.Error as e:
            last = str(e).strip()
        if time.time() > deadline:
            fail("timed out after %ss waiting for %s%s" % (timeout, what,
                 " (last error: %s)" % last if last else ""))
        time.sleep(interval)


def lost_server(conn, e):
    """Whether error e means this connection must be made again: the server
    went away (no SQLSTATE, or shutdown codes), or the session is read-only
    (the node was demoted under us)."""
    if isinstance(e, psycopg2.InterfaceError) or conn is None or conn.closed:
        return True
    return e.pgcode in (None, "57P01", "57P02", "57P03", READ_ONLY)


def random_meta(rng):
    return rng.choice([None, {"status": "away"}, {"status": "typing"},
                       {"status": "online", "device": rng.choice(["web", "phone"])},
                       {"n": rng.randint(1, 1000)}])


# -- setup ---------------------------------------------------------------

def http_ok(url):
    """Whether GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def cmd_wait_http(args):
    poll(args.url, args.timeout, 0.2, lambda: http_ok(args.url))


def cmd_setup(args):
    conn = connect(args.dsn)
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        cur.execute("CREATE EXTENSION IF NOT EXISTS presence")
        cur.execute("DO $$BEGIN CREATE ROLE app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$")
        cur.execute("GRANT USAGE ON SCHEMA presence TO app")
        cur.execute("GRANT EXECUTE ON FUNCTION " + APP_FUNCTIONS + " TO app")
        cur.execute("ALTER DATABASE " + psycopg2.extensions.quote_ident(
            value(conn, "SELECT current_database()"), conn) + " SET presence.max_age = '30min'")
        cur.execute("SELECT presence.schedule_prune()")
        for room, ch, user, meta in SEEDS:
            cur.execute("SELECT presence.add(%s, %s, %s, %s)",
                        (room, ch, user, psycopg2.extras.Json(meta) if meta is not None else None))
    log("setup done: pg_cron job %s, app role, %d seed presences" % (
        value(conn, "SELECT jobid FROM cron.job WHERE jobname = 'presence-prune'"), len(SEEDS)))


# -- waiting for roles ---------------------------------------------------

def cmd_wait_primary(args):
    start = args.since or time.time()

    def primary():
        conn = connect(args.dsn, connect_timeout=2)
        try:
            return value(conn, "SELECT NOT pg_is_in_recovery()")
        finally:
            conn.close()
    poll("a primary at %s" % args.dsn, args.timeout, 0.05, primary)
    print("%.2f" % (time.time() - start))


def cmd_wait_standby(args):
    def ready():
        s = connect(args.standby, connect_timeout=2)
        p = connect(args.primary, connect_timeout=2)
        try:
            if not value(s, "SELECT pg_is_in_recovery()"):
                return False
            sync = rows(p, "SELECT application_name, state, sync_state FROM pg_stat_replication")
            if not any(st == "streaming" and (ss == "sync" or not args.sync) for _, st, ss in sync):
                return False
            lsn = value(p, "SELECT pg_current_wal_lsn()")
            return value(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
        finally:
            s.close()
            p.close()
    def patroni_agrees():
        # Patroni records the synchronous standby in etcd a loop after
        # pg_stat_replication says so; only then may it promote that node.
        return ready() and (not args.rest or http_ok(args.rest))
    poll("a %sstandby streaming from the primary%s" % (
        "synchronous " if args.sync else "", " and %s answering 200" % args.rest if args.rest else ""),
        args.timeout, 0.2, patroni_agrees)


# -- the load ------------------------------------------------------------

def apply_op(state, op):
    """The channel state ({room: meta}) after op."""
    state = copy.deepcopy(state)
    kind = op["op"]
    if kind == "add":
        if op["room"] not in state or op["meta"] is not None:
            state[op["room"]] = op["meta"]
    elif kind == "update":
        if op["room"] in state:
            state[op["room"]] = op["meta"]
    elif kind == "remove":
        state.pop(op["room"], None)
    elif kind == "leave_all":
        state = {}
    return state


def read_channels(conn, channels):
    """{channel: {room: meta}} and {channel: {user_id}} as the API shows them."""
    state = {ch: {} for ch in channels}
    users = {ch: set() for ch in channels}
    for ch, room, user, meta in rows(conn, """
            SELECT c, r, m.user_id, m.meta
              FROM unnest(%s::text[]) AS c, LATERAL presence.rooms_of(c) AS r,
                   LATERAL presence.members(r) AS m
             WHERE m.channel = c""", (list(channels),)):
        state[ch][room] = meta
        users[ch].add(user)
    return state, users


class Writer(threading.Thread):
    OPS = {"add": 30, "touch": 25, "remove": 15, "update": 15, "leave_all": 5}

    def __init__(self, idx, dsn, nchannels, stop):
        super().__init__(name="writer-%d" % idx, daemon=True)
        self.dsn = dsn + " application_name=writer-%d" % idx
        self.stop = stop
        self.rng = random.Random()
        self.channels = ["w%d-c%d" % (idx, k) for k in range(nchannels)]
        self.user = {ch: USERS[(idx * nchannels + k) % len(USERS)]
                     for k, ch in enumerate(self.channels)}
        self.model = {ch: {} for ch in self.channels}
        # Per channel, the states its acknowledged calls produced, newest
        # last, with their times: to tell how many acknowledged changes a
        # mismatch lost (async replication).
        self.history = {ch: collections.deque([(0.0, {})], maxlen=500) for ch in self.channels}
        self.conn = None
        self.acked = collections.Counter()
        self.acked_total = 0
        self.acked_since_reconnect = 0
        self.last_ok = None
        self.errors = []            # errors that are not a lost server
        self.outages = []           # one per lost connection
        self.lost = []              # acknowledged changes not found after reconnecting
        self.inflight_committed = 0
        self.inflight_not_committed = 0
        self.connected = False
        self.done = False

    def open(self):
        """Connects, retrying every 0.2 s; returns the failed attempts."""
        failed = 0
        while True:
            try:
                self.conn = connect(self.dsn, connect_timeout=3,
                                    options="-c synchronous_commit=on")
                self.cur = self.conn.cursor()
                self.connected = True
                return failed
            except psycopg2.Error as e:
                failed += 1
                self.last_connect_error = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                if self.stop.is_set() and failed > 50:
                    raise
                time.sleep(0.2)

    def call(self, op):
        ch = op["channel"]
        meta = psycopg2.extras.Json(op["meta"]) if op.get("meta") is not None else None
        sql = {"add": ("SELECT presence.add(%s, %s, %s, %s)", (op.get("room"), ch, self.user[ch], meta)),
               "update": ("SELECT presence.update(%s, %s, %s)", (op.get("room"), ch, meta)),
               "remove": ("SELECT presence.remove(%s, %s)", (op.get("room"), ch)),
               "leave_all": ("SELECT presence.leave_all(%s)", (ch,)),
               "touch": ("SELECT presence.touch(%s)", (ch,))}[op["op"]]
        self.cur.execute(*sql)
        return self.cur.fetchone()[0]

    def expected(self, op):
        state = self.model[op["channel"]]
        return {"add": op.get("room") not in state, "update": op.get("room") in state,
                "remove": op.get("room") in state, "leave_all": len(state),
                "touch": len(state)}[op["op"]]

    def next_op(self):
        ch = self.rng.choice(self.channels)
        names = list(self.OPS)
        op = {"op": self.rng.choices(names, weights=[self.OPS[n] for n in names])[0], "channel": ch}
        if op["op"] in ("add", "update", "remove"):
            present = list(self.model[ch])
            op["room"] = self.rng.choice(present) if present and self.rng.random() < 0.6 \
                else self.rng.choice(ROOMS)
        if op["op"] in ("add", "update"):
            op["meta"] = random_meta(self.rng)
        return op

    def recheck(self, inflight):
        """After reconnecting: every channel as modelled, the in-flight
        call's channel as before or after that call."""
        state, users = read_channels(self.conn, self.channels)
        for ch in self.channels:
            got = state[ch]
            before = self.model[ch]
            allowed = [before]
            if inflight is not None and inflight["channel"] == ch:
                allowed.append(apply_op(before, inflight))
            if users[ch] - {self.user[ch]}:
                self.errors.append("%s: user_id %r on the server, %r modelled" % (
                    ch, sorted(users[ch], key=str), self.user[ch]))
            if got in allowed:
                if inflight is not None and inflight["channel"] == ch and len(allowed) == 2 \
                        and allowed[0] != allowed[1]:
                    if got == allowed[1]:
                        self.inflight_committed += 1
                    else:
                        self.inflight_not_committed += 1
                if got != before:
                    self.model[ch] = got
                    self.history[ch].append((time.time(), copy.deepcopy(got)))
                continue
            # Lost: how many acknowledged changes back does the server stand?
            hist = list(self.history[ch])
            back = None
            for k in range(len(hist) - 1, -1, -1):
                if hist[k][1] == got:
                    back = k
                    break
            lost_ops = None if back is None else len(hist) - 1 - back
            first_lost_at = None if back is None or back + 1 >= len(hist) else hist[back + 1][0]
            self.lost.append({"channel": ch, "modelled": before, "server": got,
                              "lost_acknowledged_changes": lost_ops,
                              "first_lost_acknowledged_at": first_lost_at,
                              "inflight": inflight if inflight and inflight["channel"] == ch else None})
            self.model[ch] = got
            self.history[ch].append((time.time(), copy.deepcopy(got)))

    def run(self):
        try:
            self.open()
        except psycopg2.Error as e:
            self.errors.append("cannot connect: %s" % e)
            self.done = True
            return
        while not self.stop.is_set():
            op = self.next_op()
            try:
                got = self.call(op)
            except psycopg2.Error as e:
                if not lost_server(self.conn, e):
                    self.errors.append("%s: ERROR %s: %s" % (op, e.pgcode, (e.pgerror or str(e)).strip()))
                    continue
                outage = {"lost_at": time.time(), "error": (str(e).strip() or repr(e)).splitlines()[0],
                          "sqlstate": e.pgcode, "op": op["op"], "acked_before": self.acked_total}
                self.connected = False
                try:
                    self.conn.close()
                except psycopg2.Error:
                    pass
                try:
                    outage["failed_connects"] = self.open()
                except psycopg2.Error as e2:
                    outage["failed_connects"] = -1
                    self.errors.append("could not reconnect before the end: %s" % e2)
                    self.outages.append(outage)
                    break
                outage["reconnected_at"] = time.time()
                outage["host_port"] = "%s:%s" % (self.conn.info.host, self.conn.info.port)
                self.acked_since_reconnect = 0
                try:
                    self.recheck(op)
                except psycopg2.Error as e3:
                    self.errors.append("re-reading channels after reconnecting: %s" % e3)
                self.outages.append(outage)
                continue
            want = self.expected(op)
            if got != want:
                self.errors.append("%s returned %r, the model says %r" % (op, got, want))
            new = apply_op(self.model[op["channel"]], op)
            if new != self.model[op["channel"]]:
                self.history[op["channel"]].append((time.time(), copy.deepcopy(new)))
            self.model[op["channel"]] = new
            self.acked[op["op"]] += 1
            self.acked_total += 1
            self.acked_since_reconnect += 1
            self.last_ok = time.time()
            if self.outages and "first_ok_at" not in self.outages[-1]:
                self.outages[-1]["first_ok_at"] = self.last_ok
        self.done = True
        if self.conn is not None:
            self.conn.close()

    def status(self):
        return {"acked": self.acked_total, "acked_since_reconnect": self.acked_since_reconnect,
                "reconnects": len(self.outages), "connected": self.connected,
                "errors": len(self.errors)}

    def journal(self):
        return {"name": self.name, "channels": self.channels, "user": self.user,
                "model": self.model, "acked": dict(self.acked), "acked_total": self.acked_total,
                "errors": self.errors, "outages": self.outages, "lost": self.lost,
                "inflight_committed": self.inflight_committed,
                "inflight_not_committed": self.inflight_not_committed}


class Listener(threading.Thread):
    """A plain psycopg2 listener: LISTEN, then re-read the rooms it shows;
    apply events; on error reconnect, LISTEN again and re-read."""

    def __init__(self, dsn, rooms, sentinel_channel):
        super().__init__(name="listener", daemon=True)
        self.dsn = dsn + " application_name=listener"
        self.rooms = rooms
        self.sentinel_channel = sentinel_channel
        self.view = {}
        self.events = 0
        self.bulk = 0
        self.rereads = 0
        self.outages = []
        self.errors = []
        self.listening = False
        self.sentinel_seen = threading.Event()
        self.stopping = threading.Event()

    def reread(self, conn, room):
        self.view[room] = {ch: {"user_id": u, "meta": m}
                           for ch, u, m in rows(conn, "SELECT channel, user_id, meta FROM presence.members(%s)", (room,))}

    def apply(self, conn, event):
        room = event.get("room")
        if not isinstance(event, dict) or room is None:
            self.errors.append("not an event: %r" % (event,))
            return
        self.events += 1
        if event.get("bulk_change"):
            self.bulk += 1
            self.reread(conn, room)
            return
        members = self.view.setdefault(room, {})
        if event.get("added"):
            a = event["added"]
            members[a["channel"]] = {"user_id": a["user_id"], "meta": a["meta"]}
            if a["channel"] == self.sentinel_channel:
                self.sentinel_seen.set()
        if event.get("removed"):
            members.pop(event["removed"]["channel"], None)
        if event.get("updated"):
            u = event["updated"]
            members[u["channel"]] = {"user_id": u["user_id"], "meta": u["meta"]}

    def run(self):
        outage = None
        while not self.stopping.is_set():
            conn = None
            try:
                conn = connect(self.dsn, connect_timeout=3)
                conn.cursor().execute("LISTEN presence")
                # LISTEN first, then read: nothing committed after the read is missed.
                for room in self.rooms:
                    self.reread(conn, room)
                self.rereads += 1
                if outage is not None:
                    outage["listening_again_at"] = time.time()
                    outage["host_port"] = "%s:%s" % (conn.info.host, conn.info.port)
                    self.outages.append(outage)
                    outage = None
                self.listening = True
                while not self.stopping.is_set():
                    if select.select([conn], [], [], 0.5) == ([], [], []):
                        continue
                    conn.poll()
                    while conn.notifies:
                        payload = conn.notifies.pop(0).payload
                        try:
                            event = json.loads(payload)
                        except ValueError:
                            self.errors.append("payload is not JSON: %r" % payload)
                            continue
                        self.apply(conn, event)
            except psycopg2.Error as e:
                self.listening = False
                if outage is None:
                    outage = {"lost_at": time.time(), "error": (str(e).strip() or repr(e)).splitlines()[0],
                              "failed_connects": 0}
                else:
                    outage["failed_connects"] += 1
                time.sleep(0.2)
            finally:
                if conn is not None:
                    conn.close()

    def status(self):
        return {"listening": self.listening, "events": self.events, "reconnects": len(self.outages)}


def cmd_load(args):
    stop = threading.Event()
    writers = [Writer(i, args.dsn, args.channels, stop) for i in range(args.workers)]
    sentinel = "sentinel-%d" % os.getpid()
    listener = Listener(args.dsn, ROOMS + [SENTINEL_ROOM], sentinel)
    listener.start()
    poll("the listener to LISTEN", 60, 0.1, lambda: listener.listening)
    started = time.time()
    for w in writers:
        w.start()

    def status():
        write_json(args.status, {"t": time.time(), "writers": [w.status() for w in writers],
                                 "listener": listener.status()})
    while not os.path.exists(args.stop):
        status()
        time.sleep(0.2)
        if all(w.done for w in writers):
            break
    stop.set()
    for w in writers:
        w.join(120)
    stopped = time.time()
    status()

    # Every writer has stopped: the sentinel's event is the last before the
    # comparison, so the listener has every earlier one once it has that.
    view_ok = False
    view_diff = []
    admin = connect(args.admin_dsn, connect_timeout=5)
    with admin.cursor() as cur:
        cur.execute("SELECT presence.add(%s, %s)", (SENTINEL_ROOM, sentinel))
    sentinel_at = time.time()
    seen = listener.sentinel_seen.wait(60)
    if seen:
        listener_lag = time.time() - sentinel_at
        for room in ROOMS + [SENTINEL_ROOM]:
            truth = {ch: {"user_id": u, "meta": m} for ch, u, m in
                     rows(admin, "SELECT channel, user_id, meta FROM presence.members(%s)", (room,))}
            got = listener.view.get(room, {})
            if got != truth:
                view_diff.append({"room": room, "listener": got, "members": truth})
        view_ok = not view_diff
    else:
        listener_lag = None
    listener.stopping.set()
    listener.join(5)
    admin.close()
    write_json(args.journal, {
        "started": started, "stopped": stopped, "sentinel": sentinel,
        "writers": [w.journal() for w in writers],
        "listener": {"events": listener.events, "bulk": listener.bulk, "rereads": listener.rereads,
                     "outages": listener.outages, "errors": listener.errors,
                     "sentinel_seen": seen, "sentinel_lag": listener_lag,
                     "view_ok": view_ok, "view_diff": view_diff[:5]}})
    log("load: %d calls acknowledged in %.1f s by %d writers; listener: %d events" % (
        sum(w.acked_total for w in writers), stopped - started, len(writers), listener.events))


def cmd_wait_load(args):
    def ready():
        try:
            with open(args.status, encoding="utf-8") as f:
                s = json.load(f)
        except (OSError, ValueError):
            return False
        key = "acked_since_reconnect" if args.reconnected else "acked"
        for w in s["writers"]:
            if w[key] < args.min_acked or (args.reconnected and w["reconnects"] < 1):
                return False
        if not s["listener"]["listening"]:
            return False
        if args.reconnected and s["listener"]["reconnects"] < 1:
            return False
        return s
    s = poll("every writer to have %d acknowledged calls%s" % (
        args.min_acked, " since reconnecting" if args.reconnected else ""), args.timeout, 0.2, ready)
    log("load: " + ", ".join("writer %d: %d calls" % (i, w["acked"]) for i, w in enumerate(s["writers"])))


# -- checks --------------------------------------------------------------

def cmd_check(args):
    with open(args.journal, encoding="utf-8") as f:
        j = json.load(f)
    problems = []
    conn = connect(args.dsn)
    kill = args.kill_at

    # Nothing acknowledged lost: each writer's channels as modelled.
    lost_total = 0
    lost_changes = 0
    lost_windows = []
    for w in j["writers"]:
        state, users = read_channels(conn, w["channels"])
        for ch in w["channels"]:
            if state[ch] != w["model"][ch]:
                problems.append("%s: the new primary has %r, the acknowledged calls gave %r" % (
                    ch, state[ch], w["model"][ch]))
            if users[ch] - {w["user"][ch]}:
                problems.append("%s: user_id %r, expected %r" % (ch, sorted(users[ch], key=str), w["user"][ch]))
        for lost in w["lost"]:
            lost_total += 1
            lost_changes += lost["lost_acknowledged_changes"] or 1
            if lost["first_lost_acknowledged_at"]:
                lost_windows.append(lost["first_lost_acknowledged_at"] - kill)
            msg = "%s: after reconnecting, the server had %r; acknowledged calls gave %r (%s acknowledged change(s) lost)" % (
                lost["channel"], lost["server"], lost["modelled"], lost["lost_acknowledged_changes"])
            if not args.allow_loss:
                problems.append(msg)
            else:
                log("lost: " + msg)
        for e in w["errors"]:
            problems.append("%s: %s" % (w["name"], e))
        if not w["outages"]:
            problems.append("%s never lost its connection: was the primary killed?" % w["name"])
        for o in w["outages"]:
            if "first_ok_at" not in o:
                problems.append("%s: no call succeeded after reconnecting" % w["name"])
            if o["lost_at"] < kill - 0.5:
                problems.append("%s lost its connection before the kill (%s)" % (w["name"], o["error"]))

    # Seeds, integrity, nothing else.
    for room, ch, user, meta in SEEDS:
        got = rows(conn, "SELECT user_id, meta FROM presence.members(%s) WHERE channel = %s", (room, ch))
        if got != [(user, meta)]:
            problems.append("seed %s in %s: %r, expected %r" % (ch, room, got, [(user, meta)]))
    orphans = value(conn, """SELECT count(*) FROM presence.presences p
                              WHERE NOT EXISTS (SELECT 1 FROM presence.rooms r WHERE r.name = p.room)""")
    if orphans:
        problems.append("%d presences without their room" % orphans)
    dups = value(conn, "SELECT count(*) FROM (SELECT room, channel FROM presence.presences "
                       "GROUP BY 1, 2 HAVING count(*) > 1) d")
    if dups:
        problems.append("%d duplicate (room, channel)" % dups)
    known = {ch for w in j["writers"] for ch in w["channels"]} | {s[1] for s in SEEDS} | {j["sentinel"]}
    strangers = [r[0] for r in rows(conn, "SELECT DISTINCT channel FROM presence.presences")
                 if r[0] not in known]
    if strangers:
        problems.append("presences of channels nobody wrote: %r" % strangers[:10])
    empty = value(conn, """SELECT count(*) FROM presence.rooms r
                            WHERE NOT EXISTS (SELECT 1 FROM presence.presences p WHERE p.room = r.name)""")

    # The listener.
    li = j["listener"]
    if li["errors"]:
        problems.append("listener: %s" % li["errors"][:5])
    if not li["outages"]:
        problems.append("the listener never lost its connection")
    elif "listening_again_at" not in li["outages"][-1]:
        problems.append("the listener did not LISTEN again")
    if li["rereads"] < 2:
        problems.append("the listener did not re-read the rooms after reconnecting")
    if not li["sentinel_seen"]:
        problems.append("the listener did not receive the sentinel's event within 60 s")
    elif not li["view_ok"]:
        problems.append("the listener's view differs from members(): %s" % li["view_diff"][:2])

    # Figures.
    ack = sum(w["acked_total"] for w in j["writers"])
    log("%d calls acknowledged by %d writers in %.1f s (%s)" % (
        ack, len(j["writers"]), j["stopped"] - j["started"],
        ", ".join("%s %d" % (k, sum(w["acked"].get(k, 0) for w in j["writers"]))
                  for k in Writer.OPS)))
    before = sum(w["outages"][0]["acked_before"] for w in j["writers"] if w["outages"])
    if kill > j["started"]:
        log("before the kill: %d calls in %.1f s, %.0f calls/s" % (
            before, kill - j["started"], before / (kill - j["started"])))
    for w in j["writers"]:
        for o in w["outages"]:
            log("%s: lost the server %.2f s after the kill (%s: %s), %d failed connection attempts, "
                "reconnected to %s after %.2f s, first call acknowledged %.2f s after the kill" % (
                    w["name"], o["lost_at"] - kill, o["op"], o["error"], o.get("failed_connects", -1),
                    o.get("host_port"), o.get("reconnected_at", kill) - kill,
                    o.get("first_ok_at", kill) - kill))
    for o in li["outages"]:
        log("listener: lost the server %.2f s after the kill (%s), %d failed connection attempts, "
            "listening again on %s %.2f s after the kill" % (
                o["lost_at"] - kill, o["error"], o["failed_connects"], o.get("host_port"),
                o.get("listening_again_at", kill) - kill))
    committed = sum(w["inflight_committed"] for w in j["writers"])
    not_committed = sum(w["inflight_not_committed"] for w in j["writers"])
    log("calls in flight at the kill (unacknowledged): %d had committed, %d had not" % (committed, not_committed))
    log("listener: %d events, %d bulk, view equal to members() after the sentinel: %s (sentinel event after %s s)" % (
        li["events"], li["bulk"], li["view_ok"],
        "%.3f" % li["sentinel_lag"] if li["sentinel_lag"] is not None else "-"))
    if args.django_events:
        log("django listener: " + check_django(args.django_events, kill, j["sentinel"], problems, conn))
    log("acknowledged changes lost: %d (channels: %d)%s" % (
        lost_changes, lost_total,
        "; acknowledged from %+.3f to %+.3f s after the kill" % (min(lost_windows), max(lost_windows))
        if lost_windows else ""))
    log("rooms without presences now (pg_cron's prune_rooms removes them): %d" % empty)
    report(problems)
    log("check passed")


def check_django(path, kill, sentinel, problems, conn):
    """The Django listener's signals (one JSON line each, see django_listener.py)."""
    deadline = time.time() + 60
    while True:
        events = read_django_events(path)
        if any(e.get("added") == sentinel for e in events):
            break
        if time.time() > deadline:
            after = [e for e in events if e["t"] >= kill]
            problems.append("the Django listener sent no presence_changed for the sentinel's join "
                            "within 60 s; %d signals before the kill, %d after it, the last: %s" % (
                                len(events) - len(after), len(after), events[-3:]))
            return "no sentinel"
        time.sleep(0.2)
    before = [e for e in events if e["t"] < kill and not e["bulk_change"]]
    after = [e for e in events if e["t"] >= kill]
    resync = {e["room"] for e in after if e["bulk_change"] and e["added"] is None and e["removed"] is None}
    rooms = {r[0] for r in rows(conn, "SELECT name FROM presence.rooms")}
    sentinel_at = min(e["t"] for e in events if e.get("added") == sentinel)
    if not before:
        problems.append("the Django listener sent no presence_changed before the kill")
    # Rooms that existed throughout (the seeds' rooms) must have been re-read.
    missing = {s[0] for s in SEEDS} - resync
    if missing:
        problems.append("after the failover the Django listener sent no bulk_change for %r" % sorted(missing))
    singles_after = [e for e in after if not e["bulk_change"] and e["t"] < sentinel_at]
    return ("%d signals before the kill; after it: bulk_change (re-read) for %d rooms (%d exist now), "
            "%d single-presence signals, then the sentinel's join" % (
                len(before), len(resync), len(rooms), len(singles_after)))


def read_django_events(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def cmd_wait_django(args):
    """Waits until the Django listener has re-read after the kill (a
    bulk_change with no presences, sent once it listens again)."""
    def resynced():
        return any(e["t"] >= args.kill_at and e["bulk_change"] and e["added"] is None
                   for e in read_django_events(args.events))
    poll("the Django listener to reconnect and send its bulk_change", args.timeout, 0.2, resynced)


def cmd_standby(args):
    p = connect(args.primary)
    s = connect(args.standby)
    a = connect(args.standby_app)
    problems = []
    if not value(s, "SELECT pg_is_in_recovery()"):
        fail("%s is not a standby" % args.standby)

    def replayed():
        lsn = value(p, "SELECT pg_current_wal_lsn()")
        return poll("the standby to replay %s" % lsn, 60, 0.1,
                    lambda: value(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)))

    # Readers: same answers, as the app role.
    replayed()
    rooms = sorted({r[0] for r in rows(p, "SELECT name FROM presence.rooms")} | set(ROOMS) | {"no-such-room"})
    channels = sorted({r[0] for r in rows(p, "SELECT channel FROM presence.presences")} | {"no-such-channel"})
    queries = [("members", "SELECT * FROM presence.members(%s)", rooms),
               ("users", "SELECT * FROM presence.users(%s)", rooms),
               ("anonymous_count", "SELECT presence.anonymous_count(%s)", rooms),
               ("stats", "SELECT * FROM presence.stats(%s)", rooms),
               ("rooms_of", "SELECT * FROM presence.rooms_of(%s)", channels)]
    compared = 0
    for name, sql, keys in queries:
        for k in keys:
            want = rows(p, sql, (k,))
            try:
                got = rows(a, sql, (k,))
            except psycopg2.Error as e:
                problems.append("%s(%r) on the standby: ERROR %s %s" % (name, k, e.pgcode, str(e).strip()))
                continue
            if got != want:
                problems.append("%s(%r): standby %r, primary %r" % (name, k, got, want))
            compared += 1
    nonempty = value(p, "SELECT count(*) FROM presence.presences")

    # touch: 25006 every time, fresh row or stale, any touch_interval.
    live = [r[0] for r in rows(p, "SELECT DISTINCT channel FROM presence.presences ORDER BY 1 LIMIT 3")]
    attempts = []
    for ch in live:
        with p.cursor() as cur:
            cur.execute("SET presence.touch_interval = 0")
            cur.execute("SELECT presence.touch(%s)", (ch,))       # fresh on the primary
            cur.execute("RESET presence.touch_interval")
        replayed()
        for interval in (None, "1h", "0"):
            attempts.append(("touch(%r) of a fresh row%s" % (ch, ", touch_interval %s" % interval if interval else ""),
                             "SELECT presence.touch(%s)", (ch,), interval))
    attempts.append(("touch of an unknown channel", "SELECT presence.touch(%s)", ("no-such-channel",), None))
    if live:
        ch = live[0]
        room = rows(p, "SELECT room FROM presence.presences WHERE channel = %s LIMIT 1", (ch,))[0][0]
        attempts += [
            ("add", "SELECT presence.add(%s, %s)", ("standby-room", "standby-c"), None),
            ("add of an existing presence", "SELECT presence.add(%s, %s)", (room, ch), None),
            ("remove", "SELECT presence.remove(%s, %s)", (room, ch), None),
            ("update", "SELECT presence.update(%s, %s, '{}')", (room, ch), None),
            ("leave_all", "SELECT presence.leave_all(%s)", (ch,), None)]
    results = collections.Counter()
    for what, sql, params, interval in attempts:
        for _ in range(3):
            try:
                with a.cursor() as cur:
                    if interval is not None:
                        cur.execute("SET presence.touch_interval = %s", (interval,))
                    cur.execute(sql, params)
                    got = cur.fetchone()[0]
                    problems.append("%s on the standby returned %r instead of failing with SQLSTATE 25006"
                                    % (what, got))
                    results["returned"] += 1
            except psycopg2.Error as e:
                if e.pgcode != READ_ONLY:
                    problems.append("%s on the standby: SQLSTATE %s (%s), expected 25006" % (
                        what, e.pgcode, str(e).strip().splitlines()[0]))
                results[e.pgcode] += 1
            finally:
                if interval is not None:
                    a.cursor().execute("RESET presence.touch_interval")
    # The admin functions, and LISTEN: 25006 as well.
    for what, sql in (("prune", "SELECT presence.prune()"), ("prune_rooms", "SELECT presence.prune_rooms()"),
                      ("LISTEN", "LISTEN presence")):
        try:
            s.cursor().execute(sql)
            problems.append("%s on the standby succeeded" % what)
        except psycopg2.Error as e:
            results[e.pgcode] += 1
            if e.pgcode != READ_ONLY:
                problems.append("%s on the standby: SQLSTATE %s, expected 25006" % (what, e.pgcode))
    sched = value(s, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_cron scheduler'")
    if sched:
        problems.append("a pg_cron scheduler runs on the standby")
    log("standby %s: %d reader calls equal to the primary's (%d presences); writes: %s; pg_cron scheduler: %d" % (
        s.info.port, compared, nonempty, dict(results), sched))
    report(problems)


def cmd_cron(args):
    p = connect(args.primary)
    s = connect(args.standby)
    listener = connect(args.primary)
    listener.cursor().execute("LISTEN presence")
    ghosts = [("ghost-%d" % i, "ghost-c%d" % i) for i in range(3)]
    with p.cursor() as cur:
        for room, ch in ghosts:
            cur.execute("SELECT presence.add(%s, %s, 'ghost')", (room, ch))
        # Vanished two hours ago; the job prunes what is older than 30 min.
        cur.execute("UPDATE presence.presences SET last_seen = now() - interval '2 hours' "
                    "WHERE room LIKE 'ghost-%'")
    start = time.time()
    log("ghosts backdated at %s; waiting for the pg_cron job (up to %d s)" % (
        time.strftime("%H:%M:%S"), args.timeout))

    events = collections.Counter()

    def pruned():
        if select.select([listener], [], [], 0) != ([], [], []):
            listener.poll()
            while listener.notifies:
                ev = json.loads(listener.notifies.pop(0).payload)
                if ev["room"].startswith("ghost-") and (ev.get("bulk_change") or ev.get("removed")):
                    events[ev["room"]] += 1
        left = value(p, "SELECT count(*) FROM presence.presences WHERE room LIKE 'ghost-%'")
        rooms_left = value(p, "SELECT count(*) FROM presence.rooms WHERE name LIKE 'ghost-%'")
        return left == 0 and rooms_left == 0 and len(events) == len(ghosts)
    poll("the pg_cron job to prune the ghosts and their rooms on the new primary", args.timeout, 0.5, pruned)
    took = time.time() - start
    runs = rows(p, """SELECT runid, status, start_time, return_message FROM cron.job_run_details d
                       JOIN cron.job j USING (jobid)
                      WHERE j.jobname = 'presence-prune' AND d.start_time >= to_timestamp(%s)
                      ORDER BY runid""", (args.since,))
    problems = []
    if not any(r[1] == "succeeded" for r in runs):
        problems.append("no succeeded run of presence-prune since the failover: %r" % runs)
    failed = [r for r in runs if r[1] not in ("succeeded", "running", "starting")]
    if failed:
        problems.append("failed runs since the failover: %r" % failed)
    # The job's prune_rooms() ran after the load stopped: no room is left
    # empty, and no presence lost its room.
    empty = value(p, """SELECT count(*) FROM presence.rooms r
                         WHERE NOT EXISTS (SELECT 1 FROM presence.presences q WHERE q.room = r.name)""")
    if empty:
        problems.append("%d rooms without presences after the job's prune_rooms()" % empty)
    orphans = value(p, """SELECT count(*) FROM presence.presences q
                           WHERE NOT EXISTS (SELECT 1 FROM presence.rooms r WHERE r.name = q.room)""")
    if orphans:
        problems.append("%d presences without their room" % orphans)
    if not value(p, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_cron scheduler'"):
        problems.append("no pg_cron scheduler on the new primary")
    if value(s, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_cron scheduler'"):
        problems.append("a pg_cron scheduler runs on the standby")
    allruns = rows(p, """SELECT status, count(*) FROM cron.job_run_details GROUP BY 1 ORDER BY 1""")
    log("pg_cron job pruned the ghosts %.1f s after they were backdated; runs since the failover: %s; "
        "all runs: %s; ghost-room events: %d" % (took, [(r[0], r[1]) for r in runs], allruns, sum(events.values())))
    report(problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("wait-http")
    x.add_argument("--url", required=True)
    x.add_argument("--timeout", type=float, default=60)
    x = sub.add_parser("setup")
    x.add_argument("--dsn", required=True)
    x = sub.add_parser("wait-primary")
    x.add_argument("--dsn", required=True)
    x.add_argument("--since", type=float)
    x.add_argument("--timeout", type=float, default=120)
    x = sub.add_parser("wait-standby")
    x.add_argument("--primary", required=True)
    x.add_argument("--standby", required=True)
    x.add_argument("--sync", action="store_true")
    x.add_argument("--rest")
    x.add_argument("--timeout", type=float, default=180)
    x = sub.add_parser("load")
    x.add_argument("--dsn", required=True)
    x.add_argument("--admin-dsn", required=True)
    x.add_argument("--journal", required=True)
    x.add_argument("--status", required=True)
    x.add_argument("--stop", required=True)
    x.add_argument("--workers", type=int, default=4)
    x.add_argument("--channels", type=int, default=4)
    x = sub.add_parser("wait-load")
    x.add_argument("--status", required=True)
    x.add_argument("--min-acked", type=int, default=50)
    x.add_argument("--reconnected", action="store_true")
    x.add_argument("--timeout", type=float, default=120)
    x = sub.add_parser("check")
    x.add_argument("--journal", required=True)
    x.add_argument("--dsn", required=True)
    x.add_argument("--kill-at", type=float, required=True)
    x.add_argument("--django-events")
    x.add_argument("--allow-loss", action="store_true")
    x = sub.add_parser("wait-django")
    x.add_argument("--events", required=True)
    x.add_argument("--kill-at", type=float, required=True)
    x.add_argument("--timeout", type=float, default=60)
    x = sub.add_parser("standby")
    x.add_argument("--primary", required=True)
    x.add_argument("--standby", required=True)
    x.add_argument("--standby-app", required=True)
    x = sub.add_parser("cron")
    x.add_argument("--primary", required=True)
    x.add_argument("--standby", required=True)
    x.add_argument("--since", type=float, required=True)
    x.add_argument("--timeout", type=float, default=150)
    args = ap.parse_args()
    {"wait-http": cmd_wait_http, "setup": cmd_setup, "wait-primary": cmd_wait_primary, "wait-standby": cmd_wait_standby,
     "load": cmd_load, "wait-load": cmd_wait_load, "wait-django": cmd_wait_django, "check": cmd_check,
     "standby": cmd_standby, "cron": cmd_cron}[args.cmd](args)


if __name__ == "__main__":
    main()
