"""Consumers as django-channels-presence's README writes them (sync), and
the same with async methods (joining before accept(), so that the test sees
the presence once connected); they echo every message that is not a heartbeat."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from channels_presence.decorators import remove_presence, touch_presence
from channels_presence.models import Room

ROOM = "deco"


class SyncPresenceConsumer(WebsocketConsumer):
    def connect(self):
        Room.objects.add(ROOM, self.channel_name, self.scope.get("user"))
        self.accept()

    @touch_presence
    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data)

    @remove_presence
    def disconnect(self, close_code):
        pass

    def presence_pruned(self):
        Room.objects.add(ROOM, self.channel_name, self.scope.get("user"))


class AsyncPresenceConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await database_sync_to_async(Room.objects.add)(ROOM, self.channel_name)
        await self.accept()

    @touch_presence
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data)

    @remove_presence
    async def disconnect(self, close_code):
        pass

    async def presence_pruned(self):
        await database_sync_to_async(Room.objects.add)(ROOM, self.channel_name)
