"""The NOTIFY listener: turns the extension's events into presence_changed
signals and channel layer messages.

It LISTENs on presence.notify_channel (setting CHANNELS_PRESENCE_NOTIFY_CHANNEL,
else the database's presence.notify_channel, else "presence") on a psycopg2
connection of its own, and for each event:
- sends {"type": "presence.changed", **event} to the room's channel layer
  group (the group that Room.objects.add put the room's channels in), so a
  consumer's presence_changed(self, message) method can update its browser;
- sends presence_changed(sender=Room, room, added, removed, updated,
  bulk_change[, added_count, removed_count]) to this process's receivers.

Events are prompts, not a log: NOTIFY is not durable.  After the connection
to the database is lost and made again, the listener sends a bulk_change
(counts 0) for every room, so everyone re-reads what they show.

Two ways to run it, one per process:
- in an ASGI server (Daphne): wrap the application,
      application = PresenceListenerMiddleware(ProtocolTypeRouter({...}))
  and the listener runs as a task of the server's event loop (started by
  the first connection), which the in-memory channel layer needs;
- anywhere else (tests, workers, WSGI): start_listener() runs it in a
  daemon thread and returns once it is listening; .stop() ends it.
"""

import asyncio
import json
import logging
import select
import threading
import time

import psycopg2
import psycopg2.extensions
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connections

from .models import Presence, Room
from .signals import presence_changed

log = logging.getLogger(__name__)

MESSAGE_TYPE = "presence.changed"


class PresenceListener:
    def __init__(self, using="default", forward=True):
        self.using = using
        self.forward = forward
        self.channel = getattr(settings, "CHANNELS_PRESENCE_NOTIFY_CHANNEL", None)
        self.listening = threading.Event()
        self.conn = None
        self._stopping = False
        self._thread = None

    # -- one connection --------------------------------------------------

    def connect(self):
        """Open the listening connection and LISTEN."""
        conn = psycopg2.connect(**connections[self.using].get_connection_params())
        conn.autocommit = True
        with conn.cursor() as cur:
            if self.channel is None:
                cur.execute("SELECT pg_catalog.current_setting('presence.notify_channel', true)")
                self.channel = cur.fetchone()[0] or "presence"
            cur.execute("LISTEN " + psycopg2.extensions.quote_ident(self.channel, conn))
        self.conn = conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def received(self):
        """The events that arrived (decoded), after conn.poll()."""
        self.conn.poll()
        events = []
        while self.conn.notifies:
            payload = self.conn.notifies.pop(0).payload
            try:
                event = json.loads(payload)
            except ValueError:
                log.warning("presence: ignoring a payload that is not JSON: %r", payload)
                continue
            if isinstance(event, dict) and "room" in event:
                events.append(event)
        return events

    def resync_events(self):
        """A bulk_change per room, after a reconnection (events were lost).
        Needs SELECT on presence.rooms; without it, there is nothing to send."""
        try:
            names = list(Room.objects.values_list("channel_name", flat=True))
        except Exception:  # noqa: BLE001 - no privilege: nothing we can do
            log.warning("presence: cannot list rooms to resync", exc_info=True)
            names = []
        finally:
            close_old_connections()
        return [{"room": name, "added": None, "removed": None, "updated": None,
                 "bulk_change": True, "added_count": 0, "removed_count": 0}
                for name in names]

    # -- one event -------------------------------------------------------

    def send_signal(self, event):
        room = Room.named(event["room"])
        extra = {k: event[k] for k in ("added_count", "removed_count") if k in event}
        results = presence_changed.send_robust(
            sender=Room, room=room,
            added=Presence.from_event(room, event.get("added")),
            removed=Presence.from_event(room, event.get("removed")),
            updated=Presence.from_event(room, event.get("updated")),
            bulk_change=event.get("bulk_change", False), **extra)
        for receiver, result in results:
            if isinstance(result, Exception):
                log.error("presence: presence_changed receiver %r failed", receiver,
                          exc_info=(type(result), result, result.__traceback__))

    async def forward_async(self, event):
        layer = get_channel_layer() if self.forward else None
        if layer is not None:
            try:
                await layer.group_send(event["room"], dict(event, type=MESSAGE_TYPE))
            except Exception:  # noqa: BLE001 - e.g. a room name no group can have
                log.warning("presence: cannot forward to group %r", event["room"], exc_info=True)

    # -- thread mode -----------------------------------------------------

    def run_thread(self):
        first = True
        while not self._stopping:
            try:
                self.connect()
                events = [] if first else self.resync_events()
                first = False
                self.listening.set()
                while not self._stopping:
                    for event in events:
                        async_to_sync(self.forward_async)(event)
                        self.send_signal(event)
                    close_old_connections()
                    ready = select.select([self.conn], [], [], 0.5)[0]
                    events = self.received() if ready else []
            except psycopg2.Error:
                log.warning("presence: listener connection lost; reconnecting", exc_info=True)
                time.sleep(1)
            finally:
                self.close()
        connections.close_all()  # this thread's Django connections

    def start(self, timeout=10):
        self._thread = threading.Thread(target=self.run_thread, name="presence-listener",
                                        daemon=True)
        self._thread.start()
        if not self.listening.wait(timeout):
            raise RuntimeError("presence listener: no LISTEN after %ss" % timeout)
        return self

    def stop(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.join(5)

    # -- asyncio mode ----------------------------------------------------

    async def run_async(self):
        loop = asyncio.get_running_loop()
        first = True
        while True:
            try:
                await sync_to_async(self.connect, thread_sensitive=False)()
                readable = asyncio.Event()
                fd = self.conn.fileno()
                loop.add_reader(fd, readable.set)
                try:
                    events = [] if first else await sync_to_async(self.resync_events)()
                    first = False
                    self.listening.set()
                    while True:
                        for event in events:
                            await self.forward_async(event)
                            await sync_to_async(self.send_signal)(event)
                        await readable.wait()
                        readable.clear()
                        events = self.received()
                finally:
                    loop.remove_reader(fd)
            except psycopg2.Error:
                log.warning("presence: listener connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(1)
            finally:
                self.close()


def start_listener(using="default", forward=True):
    """Run a PresenceListener in a daemon thread; returns it once listening."""
    return PresenceListener(using, forward).start()


class PresenceListenerMiddleware:
    """ASGI middleware running a PresenceListener in the server's event loop.
    The first connection starts it and waits (up to 5 s) for its LISTEN."""

    def __init__(self, app, using="default", forward=True):
        self.app = app
        self.listener = PresenceListener(using, forward)
        self.task = None

    async def __call__(self, scope, receive, send):
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.listener.run_async())
            for _ in range(50):
                if self.listener.listening.is_set():
                    break
                await asyncio.sleep(0.1)
        return await self.app(scope, receive, send)
