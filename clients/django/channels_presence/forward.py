"""Opt-in forwarding of presence_changed to the room's channel layer group
(CHANNELS_PRESENCE_FORWARD = True): a receiver sends

    {"type": "presence.changed", "room": name, "added": {...} or None,
     "removed": {...} or None, "bulk_change": bool, ...}

to the group named like the room, so a consumer's presence_changed(self,
message) method gets it.  Off by default: Channels raises on a message type
a consumer has no handler for.  As a receiver of the signal, it forwards
each change once in the whole deployment."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from .signals import presence_changed

MESSAGE_TYPE = "presence.changed"


def as_dict(presence):
    """The event form of a Presence (the extension's JSON object)."""
    if presence is None:
        return None
    obj = {"channel": presence.channel_name, "user_id": presence.user_key, "meta": presence.meta}
    if presence.user_joined is not None:
        obj["user_joined"] = bool(presence.user_joined)
    if presence.user_left is not None:
        obj["user_left"] = bool(presence.user_left)
    return obj


def forward(sender, room, added=None, removed=None, bulk_change=False, **kwargs):
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": MESSAGE_TYPE, "room": room.channel_name, "added": as_dict(added),
               "removed": as_dict(removed), "updated": as_dict(kwargs.get("updated")),
               "bulk_change": bulk_change}
    for key in ("added_count", "removed_count", "pruned"):
        if key in kwargs:
            message[key] = kwargs[key]
    async_to_sync(layer.group_send)(room.channel_name, message)


def connect_forwarding():
    if getattr(settings, "CHANNELS_PRESENCE_FORWARD", False):
        presence_changed.connect(forward, dispatch_uid="channels_presence.forward")
