"""Consumers as projects wrote them for django-channels-presence."""

import json

from channels.generic.websocket import JsonWebsocketConsumer, WebsocketConsumer

from channels_presence.decorators import remove_presence, touch_presence
from channels_presence.models import Presence, Room


class LobbyConsumer(JsonWebsocketConsumer):
    """Joins the room of its URL; the members list comes from the
    presence_changed receiver (lobby/signals.py) as forward.message."""

    def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.accept()
        Room.objects.add(self.room, self.channel_name, self.scope["user"])

    @touch_presence
    def receive_json(self, content, **kwargs):
        if content == "heartbeat":  # the original decorator passes it on here
            return
        if content.get("type") == "who":
            room = Room.objects.get(channel_name=self.room)
            self.send_json({"type": "who", "users": sorted(u.username for u in room.get_users()),
                            "anonymous": room.get_anonymous_count()})

    @remove_presence
    def disconnect(self, code):
        pass

    def forward_message(self, event):
        self.send(text_data=event["message"])


class LegacyConsumer(WebsocketConsumer):
    """Channels 2 style: receive(self, text_data), both decorators, and ORM
    filters on the presence's user."""

    room = "legacy"

    def connect(self):
        self.accept()
        Room.objects.add(self.room, self.channel_name, self.scope["user"])

    @touch_presence
    def receive(self, text_data):
        user = self.scope["user"]
        presences = Presence.objects.filter(room__channel_name=self.room)
        mine = presences.filter(user=user).count() if user.is_authenticated else 0
        others = (presences.filter(user__isnull=False).exclude(user=user.pk)
                  .select_related("user").order_by("user__username"))
        self.send(text_data=json.dumps({
            "said": text_data,
            "my_tabs": mine,
            "others": sorted({p.user.username for p in others}),
            "anonymous": presences.filter(user=None).count(),
        }))

    @remove_presence
    def disconnect(self, close_code):
        pass

    def forward_message(self, event):
        self.send(text_data=event["message"])
