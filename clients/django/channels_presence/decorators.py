"""touch_presence and remove_presence, django-channels-presence's consumer
decorators, for sync consumers (as in the original) and async ones.

    class ChatConsumer(WebsocketConsumer):
        def connect(self):
            self.accept()
            Room.objects.add("lobby", self.channel_name, self.scope["user"])

        @touch_presence
        def receive(self, text_data=None, bytes_data=None):
            ...                       # never called for the '"heartbeat"' message

        @remove_presence
        def disconnect(self, close_code):
            ...

touch_presence touches the consumer's channel on every message; a message
that is exactly the JSON string "heartbeat" stops there.  New here: when the
touch finds no presence left (pruned while the client was silent), it calls
the consumer's presence_pruned() method if it has one, so it can join again.
"""

import functools
import inspect

from channels.db import database_sync_to_async

from .models import Presence

HEARTBEAT = '"heartbeat"'


def _touch(consumer):
    if Presence.objects.touch(consumer.channel_name) == 0:
        pruned = getattr(consumer, "presence_pruned", None)
        if pruned is not None and not inspect.iscoroutinefunction(pruned):
            pruned()
        return pruned
    return None


def touch_presence(func):
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def inner_async(consumer, text_data=None, bytes_data=None):
            pruned = await database_sync_to_async(_touch)(consumer)
            if pruned is not None and inspect.iscoroutinefunction(pruned):
                await pruned()
            if text_data == HEARTBEAT:
                return None
            return await func(consumer, text_data, bytes_data)
        return inner_async

    @functools.wraps(func)
    def inner(consumer, text_data=None, bytes_data=None):
        _touch(consumer)
        if text_data == HEARTBEAT:
            return None
        return func(consumer, text_data, bytes_data)
    return inner


def remove_presence(func):
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def inner_async(consumer, *args, **kwargs):
            await database_sync_to_async(Presence.objects.leave_all)(consumer.channel_name)
            return await func(consumer, *args, **kwargs)
        return inner_async

    @functools.wraps(func)
    def inner(consumer, *args, **kwargs):
        Presence.objects.leave_all(consumer.channel_name)
        return func(consumer, *args, **kwargs)
    return inner
