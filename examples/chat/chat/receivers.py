"""The chat's presence_changed receiver, the way django-channels-presence's
documentation writes one: on each change of a room, read who is here once
and broadcast it to the room's group, with a line for the log.

presence_changed is sent once per change in the whole deployment (by the
call that made it, or by the one server whose listener signals what pg_cron
or psql did), so every open tab gets each list once, whichever server it is
on: the channel layer is shared (redis) between servers."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from channels_presence.signals import presence_changed


def who_is_here(room):
    """[{"name", "tabs"}...] and the anonymous count, with the models' API."""
    tabs = {}
    for presence in room.presence_set.select_related("user"):
        if presence.user is not None:
            tabs[presence.user.username] = tabs.get(presence.user.username, 0) + 1
    people = [{"name": n, "tabs": t} for n, t in sorted(tabs.items())]
    return people, room.get_anonymous_count()


def describe(added, removed, bulk_change, **kwargs):
    """A log line: who joined or left (once per user, however many tabs:
    user_joined / user_left), or what a prune did."""
    if bulk_change:
        count = kwargs.get("removed_count")
        if count is None:  # a prune made by this package: per room, no count
            return "connections were pruned"
        if count == 0:  # a re-read after the listener reconnected
            return None
        return "%d connection%s removed at once%s" % (
            count, "" if count == 1 else "s", " (pruned)" if kwargs.get("pruned") else "")
    for presence, verb, flag in ((added, "joined", "user_joined"), (removed, "left", "user_left")):
        if presence is None:
            continue
        if presence.user is None:
            return "an anonymous visitor %s" % verb
        name = presence.user.username
        return "%s %s" % (name, verb) if getattr(presence, flag) else \
            "%s %s a tab" % (name, "opened" if presence is added else "closed")
    return None


@receiver(presence_changed)
def broadcast_presence(sender, room, added=None, removed=None, bulk_change=False, **kwargs):
    people, anonymous = who_is_here(room)
    async_to_sync(get_channel_layer().group_send)(room.channel_name, {
        "type": "chat.presence",
        "people": people,
        "anonymous": anonymous,
        "log": describe(added, removed, bulk_change, **kwargs),
        # Which change this is (the browser test counts them).
        "change": {"added": added.channel_name if added else None,
                   "removed": removed.channel_name if removed else None,
                   "bulk": bool(bulk_change)},
    })
