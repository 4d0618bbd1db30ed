"""The listener: signals the changes made elsewhere (pg_cron's prune, psql,
another service), once in the whole deployment.

Changes made through this package are signalled by the call that made them
(see signals.py) and carry this deployment's origin (presence.origin); the
listener skips those.  The other events must be signalled by exactly one
running process of the deployment: each listening process opens a
connection per database it listens on (CHANNELS_PRESENCE_LISTEN: database
aliases, default the one the models write to; one per shard; a direct
connection, not through pgbouncer in transaction pooling) and tries to take
an advisory lock there, keyed by the origin.  The process that holds it
LISTENs and signals; the others try again every second, so that when the
holder dies (its connection closes, PostgreSQL releases the lock) another
takes over.

Events are checked before anything is signalled: an event whose signature
(HMAC-SHA256 with presence.event_key()) does not verify is forged and
dropped, and so is one seen before (a replay).  NOTIFY is not durable: after
the holder reconnects (a restart, a failover) or takes over from one that
died, it sends presence_changed(bulk_change=True) for every room it knows
(the rooms in the database and those it signalled), so receivers re-read.

It starts by itself in a process that serves websockets: the first time this
package is called from a Channels consumer, inside the ASGI server's event
loop; receivers then run in that loop's thread, as consumers' code does (the
in-memory channel layer needs that).  It stops, closing its connections,
when that loop closes, and starts again with the next one.  Elsewhere (a
worker that should take part), start_listener() runs it until stop().
"""

import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import logging
import os
import select
import threading
import time

import psycopg2
import psycopg2.extensions
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from . import db
from .models import Presence, Room, _room
from .signals import presence_changed

log = logging.getLogger("channels_presence")

LOCK_RETRY = 1.0        # seconds between tries of the election lock
RECONNECT_DELAY = 1.0   # seconds before reconnecting a lost connection
REPLAY_WINDOW = 120.0   # seconds an event's signature is remembered
KEY_REFRESH = 1.0       # at most one presence.event_key() per second

NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold", "server_side_binding",
             "isolation_level", "assume_role", "pool", "autocommit"}

_lock = threading.Lock()
_current = None
_warned_unsigned = False


def listen_aliases():
    """The database aliases to listen on (CHANNELS_PRESENCE_LISTEN)."""
    aliases = getattr(settings, "CHANNELS_PRESENCE_LISTEN", None)
    if aliases is None:
        return [db.write_alias(Room)]
    if isinstance(aliases, str):
        return [aliases]
    return list(aliases)


def lock_key(origin):
    """The election lock's key: a bigint from the origin."""
    digest = hashlib.sha256(("channels_presence.listener:" + origin).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def server_loop():
    """The event loop of the ASGI server this thread works for, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is not None and loop.is_running() and not loop.is_closed():
        return loop
    return None


def ensure_started():
    """Start a listener bound to the current ASGI server's event loop,
    unless one runs for it already, or listening is off
    (CHANNELS_PRESENCE_LISTEN = [])."""
    global _current
    current = _current
    loop = server_loop()
    if loop is None or (current is not None and current.loop is loop and current.alive()):
        return current
    if not listen_aliases():
        return None
    with _lock:
        current = _current
        if current is not None and current.loop is loop and current.alive():
            return current
        if current is not None:
            # Its loop closed (the previous test's, say): let it close its
            # connection first, so that the new one finds the lock free and
            # has nothing to catch up on.
            current.stop(wait=True)
        _current = PresenceListener(loop=loop)
        _current.start(wait=False)
        return _current


def start_listener(aliases=None, timeout=10):
    """Run a listener in a thread of its own, not bound to an event loop,
    until .stop(); returns it once it has tried the election lock on every
    database (check .holding())."""
    return PresenceListener(aliases=aliases).start(wait=True, timeout=timeout)


def current_listener():
    return _current


class Source:
    """One database the listener listens on."""

    def __init__(self, listener, alias):
        self.listener = listener
        self.alias = alias
        self.conn = None
        self.holder = False
        self.next_try = 0.0
        self.tried = False          # the lock was tried at least once
        self.held_before = False    # this source held the lock before
        self.waited = False         # someone else held it when we tried
        self.key = None
        self.key_fetched = 0.0
        self.signed = False
        self.channel = None
        self.seen = {}              # sig -> receive time
        self.rooms = set()          # rooms it has signalled or seen

    # -- connection and lock --------------------------------------------

    def connect(self):
        # libpq's keywords only (Django's psycopg 3 backend adds objects).
        params = {k: v for k, v in connections[self.alias].get_connection_params().items()
                  if isinstance(v, (str, int, float)) and k not in NOT_LIBPQ}
        # Which process holds the lock shows in pg_stat_activity.
        params["application_name"] = "channels_presence listener pid=%d" % os.getpid()
        params.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        conn = psycopg2.connect(**params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW server_encoding")
            encoding = cur.fetchone()[0]
        if encoding.upper() in psycopg2.extensions.encodings:
            conn.set_client_encoding(encoding)
        self.conn = conn

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None
        if self.holder:
            self.held_before = True
        self.holder = False

    def try_lock(self):
        """Try the election lock; on success LISTEN and, when events may
        have been missed, resync."""
        if self.conn is None:
            self.connect()
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", [self.listener.key])
            got = cur.fetchone()[0]
        first = not self.tried
        self.tried = True
        if not got:
            self.waited = True
            return False
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.current_setting('presence.notify_channel', true)")
            self.channel = (getattr(settings, "CHANNELS_PRESENCE_NOTIFY_CHANNEL", None)
                            or cur.fetchone()[0] or "presence")
            cur.execute("LISTEN " + psycopg2.extensions.quote_ident(self.channel, self.conn))
        self.holder = True
        self.load_signing()
        log.info("presence: this process signals the changes made elsewhere in %s (pid %s)",
                 self.alias, self.conn.get_backend_pid())
        # A first start with the lock free has nothing to catch up on; a
        # reconnection or a takeover may have missed events.
        if self.held_before or self.waited or not first:
            self.listener.resync(self)
        return True

    def load_signing(self):
        """Whether events must be signed, and the key (presence.event_key())."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT presence.anonymous_count('channels_presence'); "
                        "SELECT pg_catalog.current_setting('presence.sign_events', true)")
            sign = cur.fetchone()[0]
        if sign is None:
            global _warned_unsigned
            if not _warned_unsigned:
                log.error("presence: the installed extension does not sign its events "
                          "(no presence.sign_events): forged events cannot be told from real "
                          "ones; upgrade it (ALTER EXTENSION presence UPDATE)")
                _warned_unsigned = True
            self.signed = False
            return
        self.signed = sign == "on"
        if self.signed:
            self.fetch_key()

    def fetch_key(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT presence.event_key()")
            self.key = bytes.fromhex(cur.fetchone()[0])
        self.key_fetched = time.monotonic()

    # -- events ----------------------------------------------------------

    def received(self):
        """The notifications that arrived, as (payload, pid)."""
        self.conn.poll()
        out = [(n.payload, n.pid) for n in self.conn.notifies]
        del self.conn.notifies[:]
        return out

    def verify(self, payload, event):
        """True if the event is genuine and new; "stale" if genuine but too
        old to tell from a replay; False if forged or seen before."""
        if not self.signed:
            return True
        sig = event.get("sig")
        cut = payload.rfind(',"sig":"')
        if not isinstance(sig, str) or cut < 0 or not isinstance(event.get("ts"), int):
            log.warning("presence: dropped an unsigned event on %s: %.200s", self.alias, payload)
            return False
        codec = psycopg2.extensions.encodings.get(self.conn.encoding, "utf-8")
        message = payload[:cut].encode(codec)
        if not self.good_sig(message, sig):
            if time.monotonic() - self.key_fetched >= KEY_REFRESH:
                self.fetch_key()  # rotated by presence.rotate_event_key()?
            if not self.good_sig(message, sig):
                log.warning("presence: dropped a forged event on %s: %.200s", self.alias, payload)
                return False
        now = time.time()
        for old in [s for s, t in self.seen.items() if now - t > REPLAY_WINDOW]:
            del self.seen[old]
        if sig in self.seen:
            log.warning("presence: dropped a replayed event on %s: %.200s", self.alias, payload)
            return False
        self.seen[sig] = now
        if event["ts"] / 1e6 < now - REPLAY_WINDOW:
            # Genuine but too old to tell from a replay (a long transaction,
            # or a replay after the window): not trusted as it is, but its
            # room is re-read.
            log.warning("presence: an event older than %ss on %s: its room is re-read",
                        REPLAY_WINDOW, self.alias)
            return "stale"
        return True

    def good_sig(self, message, sig):
        expected = hmac.new(self.key or b"", message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, sig)


class PresenceListener:
    def __init__(self, loop=None, aliases=None):
        self.loop = loop
        self.origin = db.origin()
        self.key = lock_key(self.origin)
        self.sources = [Source(self, a) for a in (aliases or listen_aliases())]
        self.ready = threading.Event()
        self._stopping = False
        self._thread = None

    def alive(self):
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def holding(self):
        """The aliases where this process holds the election lock."""
        return [s.alias for s in self.sources if s.holder]

    def start(self, wait=True, timeout=10):
        self._thread = threading.Thread(target=self.run, name="presence-listener", daemon=True)
        self._thread.start()
        if wait and not self.ready.wait(timeout):
            raise RuntimeError("presence listener: could not reach its databases in %ss" % timeout)
        return self

    def stop(self, wait=True):
        self._stopping = True
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    # -- the thread ------------------------------------------------------

    def run(self):
        try:
            while not self._stopping:
                if self.loop is not None and self.loop.is_closed():
                    break
                now = time.monotonic()
                for source in self.sources:
                    if not source.holder and now >= source.next_try:
                        try:
                            source.try_lock()
                            source.next_try = now + LOCK_RETRY
                        except psycopg2.Error as e:
                            log.warning("presence: listener on %s: %s; retrying",
                                        source.alias, str(e).strip())
                            source.close()
                            source.tried = True
                            source.next_try = now + RECONNECT_DELAY
                if all(s.tried for s in self.sources):
                    self.ready.set()
                holders = [s for s in self.sources if s.holder]
                timeout = max(0.0, min([0.25] + [s.next_try - time.monotonic()
                                                for s in self.sources if not s.holder]))
                if not holders:
                    time.sleep(timeout)
                    continue
                try:
                    ready = select.select([s.conn for s in holders], [], [], timeout)[0]
                except (OSError, ValueError):
                    ready = [s.conn for s in holders]
                for source in holders:
                    if source.conn not in ready:
                        continue
                    try:
                        notes = source.received()
                    except psycopg2.Error as e:
                        log.warning("presence: listener connection to %s lost (%s); reconnecting",
                                    source.alias, str(e).strip())
                        source.close()
                        source.next_try = time.monotonic() + RECONNECT_DELAY
                        continue
                    for payload, pid in notes:
                        self.handle(source, payload, pid)
        except Exception:  # noqa: BLE001 - never die silently
            log.exception("presence: listener failed")
        finally:
            for source in self.sources:
                source.close()
            self.ready.set()
            try:
                connections.close_all()  # this thread's Django connections
            except Exception:  # noqa: BLE001
                pass

    def handle(self, source, payload, pid):
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("presence: dropped a payload that is not JSON: %.200s", payload)
            return
        if not isinstance(event, dict) or not isinstance(event.get("room"), str):
            log.warning("presence: dropped a payload that is not an event: %.200s", payload)
            return
        try:
            genuine = source.verify(payload, event)
        except psycopg2.Error:
            log.warning("presence: cannot check an event's signature", exc_info=True)
            genuine = False
        if not genuine:
            return
        source.rooms.add(event["room"])
        if genuine == "stale":
            event = {"room": event["room"], "added": None, "removed": None, "updated": None,
                     "bulk_change": True, "added_count": 0, "removed_count": 0}
        if event.get("origin") == self.origin:
            return  # signalled by the process that made it
        self.signal(event)

    def resync(self, source):
        """A bulk_change for every room it knows, after events may have
        been lost."""
        try:
            with source.conn.cursor() as cur:
                cur.execute("SELECT name FROM presence.rooms")
                source.rooms.update(name for (name,) in cur.fetchall())
        except psycopg2.Error as e:
            log.warning("presence: cannot list the rooms of %s to resync: %s",
                        source.alias, str(e).strip())
        for name in sorted(source.rooms):
            self.signal({"room": name, "added": None, "removed": None, "updated": None,
                         "bulk_change": True, "added_count": 0, "removed_count": 0})

    # -- signalling ------------------------------------------------------

    def signal(self, event):
        if self.loop is None:
            self._signal(event)
            return
        if self.loop.is_closed():
            self._stopping = True
            return
        coroutine = sync_to_async(self._signal)(event)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
            while True:
                try:
                    future.result(timeout=1)
                    return
                except concurrent.futures.TimeoutError:
                    if self.loop.is_closed() or not self.loop.is_running():
                        future.cancel()
                        raise RuntimeError("event loop closed")
        except RuntimeError:  # the loop closed: run() stops
            coroutine.close()
            log.info("presence: the event loop closed; the listener stops")
            self._stopping = True

    def _signal(self, event):
        try:
            send_event(event)
        finally:
            close_old_connections()


def send_event(event):
    """presence_changed for one event of the extension (send_robust: a
    failing receiver is logged, the others still run)."""
    room = _room(event["room"])
    if event.get("pruned"):
        # As django-channels-presence: a prune is a bulk change.
        removed = event.get("removed_count", 1 if event.get("removed") else 0)
        kwargs = dict(added=None, removed=None, bulk_change=True, added_count=0,
                      removed_count=removed, pruned=True)
    elif event.get("bulk_change"):
        kwargs = dict(added=None, removed=None, bulk_change=True,
                      added_count=event.get("added_count", 0),
                      removed_count=event.get("removed_count", 0))
    else:
        kwargs = dict(added=Presence.from_event(room, event.get("added")),
                      removed=Presence.from_event(room, event.get("removed")),
                      bulk_change=False)
        if event.get("updated") is not None:
            kwargs["updated"] = Presence.from_event(room, event["updated"])
    for receiver, result in presence_changed.send_robust(sender=Room, room=room, **kwargs):
        if isinstance(result, Exception):
            log.error("presence: presence_changed receiver %r failed", receiver,
                      exc_info=(type(result), result, result.__traceback__))


class PresenceListenerMiddleware:
    """Optional ASGI middleware: starts the listener with the server's first
    connection rather than its first presence call."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await sync_to_async(ensure_started)()
        return await self.app(scope, receive, send)
