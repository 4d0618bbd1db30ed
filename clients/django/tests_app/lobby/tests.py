"""The lobby's tests, written as for django-channels-presence: they build
state with the ORM, expect the presence_changed receiver to broadcast at
once (also inside TestCase's transaction), drive the consumers with
Channels' WebsocketCommunicator, use the admin and the management commands."""

import json
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.test import TestCase, TransactionTestCase
from django.utils.timezone import now

from channels_presence.models import Presence, Room
from lobby.routing import websocket_urlpatterns


class Inbox:
    """A channel in a room's group, as a watching client's consumer."""

    def __init__(self, room):
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(room, self.channel)

    def messages(self):
        async def drain():
            import asyncio
            out = []
            while True:
                try:
                    event = await asyncio.wait_for(self.layer.receive(self.channel), 0.1)
                except asyncio.TimeoutError:
                    return out
                out.append(json.loads(event["message"])["payload"])
        return async_to_sync(drain)()


class PresenceSignalTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.ann = User.objects.create_user("ann")
        cls.bob = User.objects.create_user("bob")

    def setUp(self):
        async_to_sync(get_channel_layer().flush)()

    def test_join_and_leave_broadcast_members(self):
        inbox = Inbox("lobby")
        Room.objects.add("lobby", "ann-channel", self.ann)
        Room.objects.add("lobby", "anon-channel", AnonymousUser())
        Room.objects.add("lobby", "bob-channel", self.bob)
        Room.objects.remove("lobby", "bob-channel")
        got = [(m["members"], m["lurkers"]) for m in inbox.messages()]
        self.assertEqual(got, [(["ann"], 0), (["ann"], 1), (["ann", "bob"], 1), (["ann"], 1)])

    def test_state_built_with_the_orm(self):
        room = Room.objects.create(channel_name="lobby")
        Presence.objects.create(room=room, channel_name="ann-channel", user=self.ann)
        Presence.objects.create(room=room, channel_name="anon-channel")
        self.assertEqual(list(room.get_users()), [self.ann])
        self.assertEqual(room.get_anonymous_count(), 1)
        self.assertEqual(Presence.objects.filter(room=room, user=self.ann).count(), 1)
        self.assertEqual(room.presence_set.filter(user__isnull=False).count(), 1)
        self.assertEqual(list(get_user_model().objects.filter(presence__room=room)), [self.ann])
        other, created = Room.objects.get_or_create(channel_name="lobby")
        self.assertEqual((other, created), (room, False))

    def test_stale_presences_are_pruned_with_one_bulk_change(self):
        Room.objects.add("lobby", "ann-channel", self.ann)
        Room.objects.add("lobby", "bob-channel", self.bob)
        inbox = Inbox("lobby")
        Presence.objects.filter(channel_name="bob-channel").update(
            last_seen=now() - timedelta(minutes=5))
        Room.objects.prune_presences()
        Room.objects.prune_rooms()
        [message] = inbox.messages()
        self.assertEqual((message["members"], message["bulk_change"]), (["ann"], True))

    def test_management_commands(self):
        Room.objects.add("lobby", "ann-channel", self.ann)
        Presence.objects.all().update(last_seen=now() - timedelta(minutes=5))
        call_command("prune_presences")
        call_command("prune_rooms")
        self.assertFalse(Room.objects.exists())

    def test_online_view(self):
        Room.objects.add("lobby", "ann-channel", self.ann)
        Room.objects.add("lobby", "ann-tab2", self.ann)
        Room.objects.add("lobby", "anon-channel")
        self.assertEqual(self.client.get("/online/lobby/").json(),
                         {"users": ["ann"], "anonymous": 1})

    def test_admin_delete_selected(self):
        admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
        self.client.force_login(admin)
        Room.objects.add("lobby", "ann-channel", self.ann)
        Room.objects.add("lobby", "bob-channel", self.bob)
        inbox = Inbox("lobby")
        self.assertContains(self.client.get("/admin/channels_presence/presence/"), "ann-channel")
        bob = Presence.objects.get(channel_name="bob-channel")
        self.assertContains(self.client.get("/admin/channels_presence/presence/%s/change/" % bob.pk),
                            "bob-channel")
        response = self.client.post("/admin/channels_presence/presence/", {
            "action": "delete_selected", "_selected_action": [bob.pk], "post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(list(Presence.objects.values_list("channel_name", flat=True)),
                         ["ann-channel"])
        self.assertEqual([m["members"] for m in inbox.messages()], [["ann"]])
        # A whole room from the admin.
        room = Room.objects.get(channel_name="lobby")
        response = self.client.post("/admin/channels_presence/room/", {
            "action": "delete_selected", "_selected_action": [room.pk], "post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertFalse(Room.objects.filter(channel_name="lobby").exists())


class ConsumerTests(TransactionTestCase):
    def setUp(self):
        async_to_sync(get_channel_layer().flush)()

    async def connect(self, path, user=None):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user or AnonymousUser()
        connected, _ = await communicator.connect(timeout=5)
        self.assertTrue(connected)
        return communicator

    async def test_lobby_consumer(self):
        ann = await sync_to_async(get_user_model().objects.create_user)("ann")
        watcher = await self.connect("/ws/lobby/main/")
        first = json.loads(await watcher.receive_from(timeout=5))["payload"]
        self.assertEqual((first["members"], first["lurkers"]), ([], 1))
        tab = await self.connect("/ws/lobby/main/", ann)
        for communicator in (watcher, tab):
            joined = json.loads(await communicator.receive_from(timeout=5))["payload"]
            self.assertEqual((joined["members"], joined["added"]["user"]), (["ann"], "ann"))
            self.assertTrue(await communicator.receive_nothing(timeout=0.5))  # once, not twice
        await tab.send_json_to("heartbeat")
        await tab.send_json_to({"type": "who"})
        self.assertEqual(await tab.receive_json_from(timeout=5),
                         {"type": "who", "users": ["ann"], "anonymous": 1})
        await tab.disconnect()
        left = json.loads(await watcher.receive_from(timeout=5))["payload"]
        self.assertEqual((left["members"], left["removed"]["user"]), ([], "ann"))
        self.assertTrue(await watcher.receive_nothing(timeout=0.5))  # once, not twice
        await watcher.disconnect()

    async def test_channels2_style_consumer(self):
        User = get_user_model()
        ann = await sync_to_async(User.objects.create_user)("ann")
        bob = await sync_to_async(User.objects.create_user)("bob")
        tabs = [await self.connect("/ws/legacy/", ann), await self.connect("/ws/legacy/", ann),
                await self.connect("/ws/legacy/", bob), await self.connect("/ws/legacy/")]
        for communicator in tabs:  # the join broadcasts
            while not await communicator.receive_nothing(timeout=0.3):
                await communicator.receive_from()
        await tabs[0].send_to(text_data='"heartbeat"')
        self.assertTrue(await tabs[0].receive_nothing(timeout=0.3))
        await tabs[0].send_to(text_data="hello")
        self.assertEqual(json.loads(await tabs[0].receive_from(timeout=5)),
                         {"said": "hello", "my_tabs": 2, "others": ["bob"], "anonymous": 1})
        for communicator in tabs:
            await communicator.disconnect()
        self.assertEqual(await sync_to_async(Presence.objects.count)(), 0)
