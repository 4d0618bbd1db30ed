"""The listener: changes made elsewhere (another connection standing for
psql, pg_cron or another service) are signalled once in the deployment, by
the process that holds the election lock; changes made through the package
are not signalled again; takeover when the holder stops; reconnect and
resync; several databases (shards); forged and replayed events dropped; a
listener bound to an event loop stops with it; forwarding is opt-in.

These need the extension's presence.origin, "pruned" and signed events: on
an extension without them the tests fail and say so."""

import asyncio
import threading
import time

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.test import TransactionTestCase

from channels_presence import forward, listener
from channels_presence.models import Room
from channels_presence.signals import presence_changed

from .helpers import Signals, listener_backends, make_stale, other_connection, sql


def require(feature):
    """Fail (not skip) when the installed extension lacks a feature."""
    checks = {
        "origin": "SELECT presence.anonymous_count('x'); "
                  "SELECT current_setting('presence.origin', true) IS NOT NULL",
        "signed events": "SELECT presence.anonymous_count('x'); "
                         "SELECT current_setting('presence.sign_events', true) IS NOT NULL",
    }
    if not sql(checks[feature])[0][0]:
        raise AssertionError("the installed presence extension has no %s (not yet on main): "
                             "this drop-in needs it" % feature)


def foreign(query, params=(), using="default"):
    """A change made elsewhere: its own connection, as psql or pg_cron."""
    conn = other_connection(using)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
    finally:
        conn.close()


def settle(seconds=0.7):
    """Time for an event that should not come to arrive anyway."""
    time.sleep(seconds)


def wait_until(predicate, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class ListenerTests(TransactionTestCase):
    databases = {"default", "shard2"}

    def setUp(self):
        self.listeners = []
        # A listener that an earlier test's consumers started stops with its
        # loop; wait for it to let go of the lock.
        self.assertTrue(wait_until(lambda: not listener_backends()), "a listener is left over")

    def tearDown(self):
        for lst in self.listeners:
            lst.stop()
        for alias in ("default", "shard2"):
            sql("DELETE FROM presence.rooms", using=alias)
        connections.close_all()

    def start(self, aliases=None, holder=True):
        lst = listener.start_listener(aliases)
        self.listeners.append(lst)
        if holder:
            self.assertTrue(wait_until(lambda: len(lst.holding()) == len(lst.sources)),
                            "the listener did not take the lock")
        return lst

    def test_a_change_made_elsewhere_is_signalled_once(self):
        self.start()
        with Signals() as signals:
            foreign("SELECT presence.add('far', 'c1', '42')")
            call = signals.wait(lambda c: c["room"].channel_name == "far")
            settle()
        self.assertEqual(len(signals.calls), 1)
        self.assertNotEqual(call["thread"], threading.get_ident())
        self.assertEqual((call["added"].channel_name, call["added"].user_key,
                          call["added"].user_joined, call["bulk_change"]), ("c1", "42", True, False))

    def test_a_change_made_here_is_not_signalled_again(self):
        require("origin")
        self.start()
        with Signals() as signals:
            Room.objects.add("here", "c1")
            Room.objects.remove("here", "c1")
            self.assertEqual(len(signals.calls), 2)  # by the calls themselves
            foreign("SELECT presence.add('far', 'marker')")  # events arrive in order
            signals.wait(lambda c: c["room"].channel_name == "far")
            settle(0.3)
        self.assertEqual([c["room"].channel_name for c in signals.calls], ["here", "here", "far"])

    def test_pg_cron_prune_is_a_bulk_change_per_room(self):
        self.start()
        with Signals() as signals:
            foreign("SELECT presence.add('r1', 'a'), presence.add('r1', 'b'), presence.add('r2', 'c')")
            for channel in "abc":
                signals.wait(lambda c: c["added"] and c["added"].channel_name == channel)
            make_stale("a")
            make_stale("b")
            make_stale("c")
            del signals.calls[:]
            foreign("SELECT presence.prune('1 minute')")
            signals.wait(lambda c: c["room"].channel_name == "r2")
            signals.wait(lambda c: c["room"].channel_name == "r1")
            settle(0.3)
        self.assertEqual(sorted((c["room"].channel_name, c["bulk_change"], c["added"], c["removed"],
                                 c.get("pruned")) for c in signals.calls),
                         [("r1", True, None, None, True), ("r2", True, None, None, True)],
                         "one bulk_change per pruned room, as django-channels-presence sent "
                         "(needs the extension's \"pruned\" marker)")

    def test_one_holder_and_failover(self):
        first = self.start()
        second = self.start(holder=False)
        self.assertEqual((first.holding(), second.holding()), (["default"], []))
        with Signals() as signals:
            foreign("SELECT presence.add('room', 'before')")
            signals.wait(lambda c: c["added"] and c["added"].channel_name == "before")
            del signals.calls[:]
            foreign("SELECT presence.add('room', 'c1')")
            signals.wait(lambda c: c["added"] and c["added"].channel_name == "c1")
            settle()
            self.assertEqual(len(signals.calls), 1)
            first.stop()
            self.assertTrue(wait_until(lambda: second.holding() == ["default"]),
                            "the second listener did not take over")
            # Events may have been missed in between: every room is re-read.
            resync = signals.wait(lambda c: c["bulk_change"])
            self.assertEqual(resync["room"].channel_name, "room")
            del signals.calls[:]
            foreign("SELECT presence.add('room', 'c2')")
            signals.wait(lambda c: c["added"] and c["added"].channel_name == "c2")
            settle()
        self.assertEqual(len(signals.calls), 1)

    def test_reconnects_listens_again_and_resyncs(self):
        lst = self.start()
        foreign("SELECT presence.add('kept', 'c1')")
        [pid] = listener_backends()
        with Signals() as signals:
            settle(0.3)
            del signals.calls[:]
            sql("SELECT pg_terminate_backend(%s)", [pid])
            resync = signals.wait(lambda c: c["bulk_change"], timeout=8)
            self.assertEqual(resync["room"].channel_name, "kept")
            self.assertEqual(lst.holding(), ["default"])
            self.assertNotEqual(listener_backends(), [pid])
            foreign("SELECT presence.add('kept', 'c2')")
            signals.wait(lambda c: c["added"] and c["added"].channel_name == "c2")

    def test_listens_on_every_shard(self):
        self.start(["default", "shard2"])
        with Signals() as signals:
            foreign("SELECT presence.add('on-one', 'c1')")
            foreign("SELECT presence.add('on-two', 'c2')", using="shard2")
            signals.wait(lambda c: c["room"].channel_name == "on-one")
            signals.wait(lambda c: c["room"].channel_name == "on-two")
            settle()
        self.assertEqual(len(signals.calls), 2)

    def test_forged_and_replayed_events_are_dropped(self):
        require("signed events")
        self.start()
        conn = other_connection()
        try:
            with Signals() as signals:
                with conn.cursor() as cur:
                    cur.execute("LISTEN presence")
                    cur.execute("SELECT presence.add('real', 'c1')")
                    deadline = time.monotonic() + 5
                    while not conn.notifies and time.monotonic() < deadline:
                        conn.poll()
                        time.sleep(0.05)
                    real = conn.notifies[0].payload
                signals.wait(lambda c: c["room"].channel_name == "real")
                del signals.calls[:]
                unsigned = ('{"room":"forged","added":{"channel":"x","user_id":"1","meta":null,'
                            '"user_joined":true},"removed":null,"updated":null,"bulk_change":false}')
                badsig = unsigned[:-1] + ',"ts":%d,"sig":"%s"}' % (time.time() * 1e6, "0" * 64)
                with conn.cursor() as cur:
                    for payload in (unsigned, badsig, real):  # real: a replay
                        cur.execute("SELECT pg_notify('presence', %s)", [payload])
                    cur.execute("SELECT presence.add('real', 'c2')")
                signals.wait(lambda c: c["added"] and c["added"].channel_name == "c2")
                settle(0.3)
            self.assertEqual([c["added"].channel_name for c in signals.calls], ["c2"])
        finally:
            conn.close()

    def test_bound_to_an_event_loop_it_stops_with_it(self):
        got = []

        async def server():
            # As a consumer's code: in the loop's thread for sync code.
            lst = await sync_to_async(listener.ensure_started)()
            side = sync_to_async(thread_sensitive=False)  # not that thread: receivers run there
            self.assertTrue(await side(wait_until)(lambda: lst.holding() == ["default"]))
            with Signals() as signals:
                await side(foreign)("SELECT presence.add('looped', 'c1')")
                await side(signals.wait)(lambda c: c["room"].channel_name == "looped")
                got.extend(signals.calls)
            return lst

        lst = asyncio.run(server())
        self.assertEqual(len(got), 1)
        self.assertTrue(wait_until(lambda: not lst.alive() and not listener_backends()),
                        "the listener kept its connection after its loop closed")
        # The next loop (the next test of pytest-asyncio, say) gets a new one.
        sql("DELETE FROM presence.rooms")
        again = asyncio.run(server())
        self.assertIsNot(again, lst)
        self.assertEqual(len(got), 2)
        self.assertTrue(wait_until(lambda: not again.alive() and not listener_backends()))

    def test_forwarding_to_groups_is_opt_in(self):
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()

        def inbox():
            async def drain():
                out = []
                while True:
                    try:
                        out.append(await asyncio.wait_for(layer.receive(channel), 0.2))
                    except asyncio.TimeoutError:
                        return out
            return async_to_sync(drain)()

        Room.objects.add("fwd", channel)
        self.assertEqual(inbox(), [])  # nothing a consumer did not ask for
        presence_changed.connect(forward.forward, dispatch_uid="test.forward")
        try:
            Room.objects.add("fwd", "other")
        finally:
            presence_changed.disconnect(dispatch_uid="test.forward")
        [message] = inbox()
        self.assertEqual((message["type"], message["room"], message["added"]["channel"],
                          message["bulk_change"]), ("presence.changed", "fwd", "other", False))
