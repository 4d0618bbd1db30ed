"""The chat's WebSocket consumer, written as django-channels-presence's
README writes one: join on connect, @touch_presence on receive (the page
sends "heartbeat" every few seconds), @remove_presence on disconnect.

Who is here reaches the page from the presence_changed receiver
(chat/receivers.py) as a "chat.presence" message on the room's group: the
tab's own join included, so there is nothing to send on connect."""

import json
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import WebsocketConsumer
from django.contrib.auth import get_user_model

from channels_presence.decorators import remove_presence, touch_presence
from channels_presence.models import Room
from chat.views import clean


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        self.room = clean(self.scope["url_route"]["kwargs"]["room"], "lobby")
        name = clean(parse_qs(self.scope["query_string"].decode()).get("name", [""])[0], "")
        self.user = get_user_model().objects.get_or_create(username=name)[0] if name else None
        self.accept()
        Room.objects.add(self.room, self.channel_name, self.user)

    @touch_presence
    def receive(self, text_data=None, bytes_data=None):
        text = str(json.loads(text_data).get("text", ""))[:500]
        if text:
            async_to_sync(self.channel_layer.group_send)(self.room, {
                "type": "chat.message", "name": self.user.username if self.user else "anonymous",
                "text": text})

    @remove_presence
    def disconnect(self, close_code):
        pass

    def presence_pruned(self):
        """touch found no presence (pruned while we were silent): join again."""
        Room.objects.add(self.room, self.channel_name, self.user)

    # Messages on the room's group.

    def chat_presence(self, message):
        self.send(json.dumps({"type": "presence", "people": message["people"],
                              "anonymous": message["anonymous"], "log": message["log"],
                              "change": message["change"]}))

    def chat_message(self, message):
        self.send(json.dumps({"type": "message", "name": message["name"],
                              "text": message["text"]}))
