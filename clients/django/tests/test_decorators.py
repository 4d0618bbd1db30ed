"""touch_presence and remove_presence on real consumers, with the wrapper
signatures of django-channels-presence: Channels 2's receive(self,
text_data), JsonWebsocketConsumer's receive_json(self, content) and
receive_json(self, content, **kwargs), and async handlers.  A heartbeat
touches and stops; other messages touch and reach the handler; disconnect
leaves every room."""

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import (AsyncJsonWebsocketConsumer, JsonWebsocketConsumer,
                                        WebsocketConsumer)
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import TransactionTestCase

from channels_presence.decorators import remove_presence, touch_presence
from channels_presence.models import Room

ROOM = "deco"


class Channels2Consumer(WebsocketConsumer):
    def connect(self):
        self.accept()
        Room.objects.add(ROOM, self.channel_name)

    @touch_presence
    def receive(self, text_data):
        self.send(text_data=text_data)

    @remove_presence
    def disconnect(self, close_code):
        pass


class JsonConsumer(JsonWebsocketConsumer):
    def connect(self):
        self.accept()
        Room.objects.add(ROOM, self.channel_name)

    @touch_presence
    def receive_json(self, content):
        self.send_json({"echo": content})

    @remove_presence
    def disconnect(self, code):
        pass


class JsonKwargsConsumer(JsonConsumer):
    @touch_presence
    def receive_json(self, content, **kwargs):
        self.send_json({"echo": content})


class AsyncJsonConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await database_sync_to_async(Room.objects.add)(ROOM, self.channel_name)

    @touch_presence
    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content})

    @remove_presence
    async def disconnect(self, code):
        pass

    async def presence_pruned(self):
        await database_sync_to_async(Room.objects.add)(ROOM, self.channel_name)


@sync_to_async(thread_sensitive=False)
def ages():
    """{channel: seconds since last_seen} in the test room."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT channel, extract(epoch FROM now() - last_seen) "
                           "FROM presence.presences WHERE room = %s", [ROOM])
            return {channel: float(age) for channel, age in cursor.fetchall()}
    finally:
        connection.close()


@sync_to_async(thread_sensitive=False)
def admin_sql(query):
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, [ROOM])
    finally:
        connection.close()


AGE = "UPDATE presence.presences SET last_seen = now() - interval '1 hour' WHERE room = %s"


class DecoratorTests(TransactionTestCase):
    async def check(self, consumer, message, echo, heartbeat=None):
        """heartbeat: what the handler answers to a heartbeat, which reaches
        receive_json as the string "heartbeat" (not '"heartbeat"'), exactly
        as with django-channels-presence."""
        await admin_sql("DELETE FROM presence.rooms WHERE name = %s")
        communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
        connected, _ = await communicator.connect(timeout=5)
        self.assertTrue(connected)
        for _ in range(50):
            if await ages():
                break
        [channel] = (await ages()).keys()

        await admin_sql(AGE)
        await communicator.send_to(text_data='"heartbeat"')
        if heartbeat is None:
            self.assertTrue(await communicator.receive_nothing(timeout=0.3))
        else:
            self.assertEqual(await communicator.receive_from(timeout=5), heartbeat)
        self.assertLess((await ages())[channel], 60)

        await admin_sql(AGE)
        await communicator.send_to(text_data=message)
        self.assertEqual(await communicator.receive_from(timeout=5), echo)
        self.assertLess((await ages())[channel], 60)

        await communicator.disconnect()
        self.assertEqual(await ages(), {})

    async def test_channels2_receive_text_data(self):
        await self.check(Channels2Consumer, "hello", "hello")

    async def test_receive_json_content(self):
        await self.check(JsonConsumer, '{"a": 1}', '{"echo": {"a": 1}}', '{"echo": "heartbeat"}')

    async def test_receive_json_content_kwargs(self):
        await self.check(JsonKwargsConsumer, '[1, 2]', '{"echo": [1, 2]}', '{"echo": "heartbeat"}')

    async def test_async_receive_json_and_presence_pruned(self):
        await self.check(AsyncJsonConsumer, '"hi"', '{"echo": "hi"}', '{"echo": "heartbeat"}')
        # Pruned while silent: the next heartbeat re-joins (presence_pruned).
        communicator = WebsocketCommunicator(AsyncJsonConsumer.as_asgi(), "/ws/")
        await communicator.connect(timeout=5)
        for _ in range(50):
            if await ages():
                break
        [channel] = (await ages()).keys()
        await admin_sql("DELETE FROM presence.presences WHERE room = %s")
        await communicator.send_to(text_data='"heartbeat"')
        await communicator.receive_from(timeout=5)
        self.assertEqual(list(await ages()), [channel])
        await communicator.disconnect()
