"""touch_presence and remove_presence, django-channels-presence's consumer
decorators, with its wrapper signatures: touch_presence wraps
receive(self, text_data, ...), including Channels 2's receive(self,
text_data), JsonWebsocketConsumer's receive_json(self, content[, **kwargs]);
remove_presence wraps any handler.  Async handlers get async wrappers.

touch_presence touches the consumer's channel on every message; a message
that is exactly the JSON string '"heartbeat"' stops there.  New: when the
touch finds the channel has no presence left (pruned while the client was
silent) it calls the consumer's presence_pruned() method, if it has one, so
that it can join again.
"""

import functools
import inspect

from channels.db import database_sync_to_async

from .models import Presence

HEARTBEAT = '"heartbeat"'


def _touch(consumer):
    """Touch; the consumer's presence_pruned if the channel was pruned."""
    if Presence.objects.touch_count(consumer.channel_name) == 0:
        return getattr(consumer, "presence_pruned", None)
    return None


def touch_presence(func):
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def inner_async(consumer, text_data=None, *args, **kwargs):
            pruned = await database_sync_to_async(_touch)(consumer)
            if pruned is not None:
                if inspect.iscoroutinefunction(pruned):
                    await pruned()
                else:
                    await database_sync_to_async(pruned)()
            if text_data == HEARTBEAT:
                return None
            return await func(consumer, text_data, *args, **kwargs)
        return inner_async

    @functools.wraps(func)
    def inner(consumer, text_data=None, *args, **kwargs):
        pruned = _touch(consumer)
        if pruned is not None and not inspect.iscoroutinefunction(pruned):
            pruned()
        if text_data == HEARTBEAT:
            return None
        return func(consumer, text_data, *args, **kwargs)
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
