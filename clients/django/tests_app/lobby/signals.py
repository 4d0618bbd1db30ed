"""The receiver of django-channels-presence's documentation: on every
change of a room, broadcast its members to the room's group."""

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from channels_presence.signals import presence_changed

channel_layer = get_channel_layer()


def describe(presence):
    if presence is None:
        return None
    return {"channel": presence.channel_name,
            "user": presence.user.username if presence.user else None}


@receiver(presence_changed)
def broadcast_presence(sender, room, **kwargs):
    """Broadcast the new list of present users to the room."""
    message = {
        "type": "presence",
        "payload": {
            "channel_name": room.channel_name,
            "members": sorted(user.username for user in room.get_users()),
            "lurkers": room.get_anonymous_count(),
            # Which change this is, so that clients can tell them apart.
            "added": describe(kwargs.get("added")),
            "removed": describe(kwargs.get("removed")),
            "bulk_change": kwargs.get("bulk_change"),
        },
    }
    async_to_sync(channel_layer.group_send)(room.channel_name, {
        "type": "forward.message",
        "message": json.dumps(message),
    })
