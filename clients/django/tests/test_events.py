"""presence_changed and the channel layer messages, sent by the NOTIFY
listener from the database's events after commit: for changes made through
the models, by another connection (another server, pg_cron), and by a prune
(bulk_change).  Also the management command without pg_cron."""

import threading

import psycopg2
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TransactionTestCase

from channels_presence.listener import start_listener
from channels_presence.models import Presence, Room
from channels_presence.signals import presence_changed


class Received:
    """Collects presence_changed calls; wait() blocks until one matches."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def __call__(self, sender, **kwargs):
        with self.cond:
            self.calls.append(dict(kwargs, sender=sender))
            self.cond.notify_all()

    def wait(self, predicate, timeout=5):
        with self.cond:
            found = self.cond.wait_for(
                lambda: next((c for c in self.calls if predicate(c)), None), timeout)
        if not found:
            raise AssertionError("no matching presence_changed within %ss; got %r"
                                 % (timeout, self.calls))
        with self.cond:
            self.calls.remove(found)
        return found


def in_room(name, kind):
    """Predicate: an event of room name with an `added` / `removed` / bulk."""
    if kind == "bulk_change":
        return lambda c: c["room"].channel_name == name and c["bulk_change"]
    return lambda c: c["room"].channel_name == name and c[kind] is not None


class EventTests(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.listener = start_listener()

    @classmethod
    def tearDownClass(cls):
        cls.listener.stop()
        super().tearDownClass()

    def setUp(self):
        self.received = Received()
        presence_changed.connect(self.received)
        self.ann, _ = get_user_model().objects.get_or_create(username="ann")

    def tearDown(self):
        presence_changed.disconnect(self.received)
        with connection.cursor() as cursor:  # an admin's cleanup of our rooms
            cursor.execute("DELETE FROM presence.rooms WHERE name LIKE 'ev-%'")

    def test_added_and_removed(self):
        Room.objects.add("ev-lobby", "tab1", self.ann)
        call = self.received.wait(in_room("ev-lobby", "added"))
        self.assertIs(call["sender"], Room)
        self.assertIsInstance(call["room"], Room)
        added = call["added"]
        self.assertIsInstance(added, Presence)
        self.assertEqual((added.channel_name, added.user_id, added.room.channel_name),
                         ("tab1", str(self.ann.pk), "ev-lobby"))
        self.assertEqual(added.user, self.ann)
        self.assertTrue(added.user_joined)
        self.assertEqual((call["removed"], call["bulk_change"]), (None, False))

        Room.objects.add("ev-lobby", "tab2", self.ann)  # Ann's second tab
        self.assertFalse(self.received.wait(in_room("ev-lobby", "added"))["added"].user_joined)
        Room.objects.remove("ev-lobby", "tab2")
        removed = self.received.wait(in_room("ev-lobby", "removed"))["removed"]
        self.assertEqual((removed.channel_name, removed.user_left), ("tab2", False))
        Presence.objects.leave_all("tab1")
        removed = self.received.wait(in_room("ev-lobby", "removed"))["removed"]
        self.assertEqual((removed.channel_name, removed.user_left), ("tab1", True))

    def test_forwarded_to_the_room_group(self):
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        Room.objects.add("ev-group", channel)  # also joins the group
        self.received.wait(in_room("ev-group", "added"))  # sent after the forward
        message = async_to_sync(layer.receive)(channel)
        self.assertEqual(message["type"], "presence.changed")
        self.assertEqual(message["room"], "ev-group")
        self.assertEqual(message["added"], {"channel": channel, "user_id": None, "meta": None,
                                            "user_joined": False})

    def test_change_by_another_connection(self):
        """Another server, pg_cron or an admin: its change reaches us too."""
        params = connection.get_connection_params()
        other = psycopg2.connect(**params)
        try:
            with other, other.cursor() as cursor:
                cursor.execute("SELECT presence.add('ev-remote', 'far-away', '12345')")
        finally:
            other.close()
        added = self.received.wait(in_room("ev-remote", "added"))["added"]
        self.assertEqual((added.channel_name, added.user_id, added.user), ("far-away", "12345", None))

    def test_prune_is_one_bulk_change(self):
        for channel in ("s1", "s2", "s3"):
            Room.objects.add("ev-prune", channel)
        for _ in range(3):
            self.received.wait(in_room("ev-prune", "added"))
        with connection.cursor() as cursor:
            cursor.execute("UPDATE presence.presences SET last_seen = now() - interval '1 hour' "
                           "WHERE room = 'ev-prune'")
        self.assertEqual(Room.objects.prune_presences(), 3)
        call = self.received.wait(in_room("ev-prune", "bulk_change"))
        self.assertEqual((call["added"], call["removed"], call["removed_count"]), (None, None, 3))

    def test_schedule_command_without_pg_cron(self):
        """The test database has no pg_cron: the extension's error and HINT."""
        with self.assertRaisesRegex(CommandError, "pg_cron"):
            call_command("presence_schedule_prune")
