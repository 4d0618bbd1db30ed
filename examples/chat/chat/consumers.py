"""The chat's WebSocket consumer, written as django-channels-presence's
README writes one: join on connect, @touch_presence on receive (the page
sends "heartbeat" every few seconds), @remove_presence on disconnect.

Every change of the room, whoever made it (this server, another one,
pg_cron's prune), arrives from the database as a "presence.changed" message
on the room's group (channels_presence.listener); the consumer then sends
its page the room's current list of who is here and a line for the log."""

import json
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import WebsocketConsumer
from django.contrib.auth import get_user_model

from channels_presence.decorators import remove_presence, touch_presence
from channels_presence.models import Presence, Room
from chat.views import clean


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        self.room = clean(self.scope["url_route"]["kwargs"]["room"], "lobby")
        name = clean(parse_qs(self.scope["query_string"].decode()).get("name", [""])[0], "")
        self.user = get_user_model().objects.get_or_create(username=name)[0] if name else None
        Room.objects.add(self.room, self.channel_name, self.user)
        self.accept()
        self.send_presence()

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

    def presence_changed(self, event):
        self.send_presence(event)

    def chat_message(self, message):
        self.send(json.dumps({"type": "message", "name": message["name"],
                              "text": message["text"]}))

    def send_presence(self, event=None):
        """Who is here, read with django-channels-presence's API."""
        room = Room(channel_name=self.room)
        users = {str(u.pk): u.username for u in room.get_users()}
        tabs = {}
        for member in room.members():
            if member.user_id in users:
                name = users[member.user_id]
                tabs[name] = tabs.get(name, 0) + 1
        self.send(json.dumps({
            "type": "presence",
            "people": [{"name": n, "tabs": t} for n, t in sorted(tabs.items())],
            "anonymous": room.get_anonymous_count(),
            "log": describe(event) if event else None,
        }))


def describe(event):
    """A log line for a presence event: who joined or left (once per user,
    however many tabs: user_joined / user_left), or what a prune did."""
    if event["bulk_change"]:
        return "%d connections removed at once (pruned)" % event["removed_count"] \
            if event["removed_count"] else None
    for key, verb, flag in (("added", "joined", "user_joined"), ("removed", "left", "user_left")):
        presence = Presence.from_event(Room(channel_name=event["room"]), event[key])
        if presence is None:
            continue
        if presence.user_id is None:
            return "an anonymous visitor %s" % verb
        name = presence.user.username if presence.user else "user %s" % presence.user_id
        return "%s %s" % (name, verb) if getattr(presence, flag) else \
            "%s %s a tab" % (name, "opened" if key == "added" else "closed")
    return None
