"""Room and Presence with django-channels-presence's managers and methods.

Both models are unmanaged and read the extension's tables
presence.rooms(name, created_at) and presence.presences(room, channel,
user_id, meta, joined_at, last_seen).  Every write goes through the
extension's SQL functions (presence.add, remove, leave_all, touch, prune,
prune_rooms); save(), delete() and queryset updates are refused, except
Presence.delete() which calls presence.remove().

Differences from django-channels-presence (see clients/django/README.md):
- Room's primary key is channel_name (the room name); there is no integer id.
- Presence's table has a composite key (room, channel), which Django 3.2
  cannot express: the model declares channel_name as primary key for
  reading only.  A channel in several rooms yields several rows with the same
  "pk": read presences through a room (room.presence_set, .filter(room=...)),
  never with .get(pk=...).
- Presence.user_id is the extension's text user_id (str(user.pk)); user is a
  read-only property that loads the user.
- Reading the models directly (querysets, room.presence_set) needs SELECT on
  the two tables; the manager and Room methods only call the functions, so
  the README's GRANTs (USAGE and EXECUTE) are enough for them.
  Room.objects.add() returns Room.named(name), not a row it read.
"""

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, models, router


def _call(model, sql, params, write=True):
    """Run one SQL statement on the model's database; return all rows."""
    using = router.db_for_write(model) if write else router.db_for_read(model)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _user_key(user):
    """The extension's user_id for a Django user: str(pk), None if anonymous."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def _group(method, group, channel_name):
    """group_add / group_discard on the channel layer, if one is configured."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(getattr(layer, method))(group, channel_name)


class ReadOnlyQuerySet(models.QuerySet):
    """Refuses bulk writes: the extension's functions do those."""

    def _refuse(self, *args, **kwargs):
        raise NotImplementedError(
            "presence tables are written only through the extension's functions "
            "(Room.objects.add/remove/prune_presences/prune_rooms, Presence.objects.leave_all)")

    update = delete = bulk_create = bulk_update = create = get_or_create = _refuse
    update_or_create = _refuse


class ReadOnlyModel(models.Model):
    """Base of the unmanaged models: no save(), no delete()."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        ReadOnlyQuerySet._refuse(None)

    def delete(self, *args, **kwargs):
        ReadOnlyQuerySet._refuse(None)


class RoomManager(models.Manager.from_queryset(ReadOnlyQuerySet)):
    def add(self, room_channel_name, user_channel_name, user=None):
        """Join (presence.add) and add the channel to the room's group.
        Returns the Room.  Joining again refreshes last_seen.  The group
        first: the join event may reach a listener before this returns."""
        _group("group_add", room_channel_name, user_channel_name)
        try:
            _call(Room, "SELECT presence.add(%s, %s, %s)",
                  [room_channel_name, user_channel_name, _user_key(user)])
        except Exception:
            _group("group_discard", room_channel_name, user_channel_name)
            raise
        return Room.named(room_channel_name)

    def remove(self, room_channel_name, user_channel_name):
        """Leave one room (presence.remove) and its group; True if the
        presence existed.  An unknown room or channel is not an error."""
        removed = _call(Room, "SELECT presence.remove(%s, %s)",
                        [room_channel_name, user_channel_name])[0][0]
        _group("group_discard", room_channel_name, user_channel_name)
        return removed

    def prune_presences(self, channel_layer=None, age=None):
        """Delete presences not seen for age seconds (None:
        CHANNELS_PRESENCE_MAX_AGE, i.e. presence.max_age); number deleted.
        channel_layer is accepted for compatibility and unused: the layer's
        group memberships of pruned channels expire by themselves."""
        if age is None:
            return _call(Room, "SELECT presence.prune()", [])[0][0]
        return _call(Room, "SELECT presence.prune(pg_catalog.make_interval(secs => %s))",
                     [float(age)])[0][0]

    def prune_rooms(self):
        """Delete rooms without presences; number deleted."""
        return _call(Room, "SELECT presence.prune_rooms()", [])[0][0]


class Room(ReadOnlyModel):
    channel_name = models.CharField(max_length=255, primary_key=True, db_column="name",
                                    help_text="Group channel name for this room")
    created_at = models.DateTimeField(null=True)

    objects = RoomManager()

    class Meta:
        managed = False
        db_table = 'presence"."rooms'

    def __str__(self):
        return self.channel_name

    @classmethod
    def named(cls, channel_name):
        """The Room of that name, without reading presence.rooms (which an
        application role may not be allowed to): created_at is not loaded."""
        room = cls(channel_name=channel_name)
        room._state.adding = False
        room._state.db = router.db_for_read(cls)
        return room

    def add_presence(self, channel_name, user=None):
        Room.objects.add(self.channel_name, channel_name, user)

    def remove_presence(self, channel_name=None, presence=None):
        if presence is not None:
            channel_name = presence.channel_name
        Room.objects.remove(self.channel_name, channel_name)

    def prune_presences(self, age=None):
        """Remove this room's presences older than age seconds (None:
        presence.max_age), one presence.remove() each; number removed."""
        stale = _call(Room, """
            SELECT m.channel FROM presence.members(%s) AS m
             WHERE m.last_seen < pg_catalog.now() - CASE WHEN %s::float8 IS NULL
                   THEN pg_catalog.current_setting('presence.max_age')::interval
                   ELSE pg_catalog.make_interval(secs => %s::float8) END""",
                      [self.channel_name, age, age], write=False)
        return sum(Room.objects.remove(self.channel_name, channel) for (channel,) in stale)

    def get_users(self):
        """Users present (presence.users): a queryset of the auth user model."""
        User = get_user_model()
        rows = _call(Room, "SELECT presence.users(%s)", [self.channel_name], write=False)
        pks = []
        for (user_id,) in rows:
            try:
                pks.append(User._meta.pk.to_python(user_id))
            except ValidationError:
                pass  # a user_id written by another app, not one of our users
        return User.objects.filter(pk__in=pks)

    def get_anonymous_count(self):
        """Presences without a user (presence.anonymous_count)."""
        return _call(Room, "SELECT presence.anonymous_count(%s)", [self.channel_name],
                     write=False)[0][0]

    def members(self):
        """Presence instances of the room (presence.members), ordered by channel."""
        rows = _call(Room, "SELECT channel, user_id, meta, joined_at, last_seen "
                           "FROM presence.members(%s)", [self.channel_name], write=False)
        # Django reads jsonb as text (JSONField decodes it); decode it here too.
        return [Presence(room=self, channel_name=c, user_id=u,
                         meta=json.loads(m) if isinstance(m, str) else m,
                         joined_at=j, last_seen=s)
                for c, u, m, j, s in rows]


class PresenceManager(models.Manager.from_queryset(ReadOnlyQuerySet)):
    def touch(self, channel_name):
        """Refresh last_seen of the channel's presences (presence.touch).
        Returns how many presences the channel has: 0 means it was pruned
        and should join again."""
        return _call(Presence, "SELECT presence.touch(%s)", [channel_name])[0][0]

    def leave_all(self, channel_name):
        """Leave every room (presence.leave_all) and their groups; number
        of presences removed."""
        rooms = [r for (r,) in _call(Presence, "SELECT presence.rooms_of(%s)", [channel_name])]
        count = _call(Presence, "SELECT presence.leave_all(%s)", [channel_name])[0][0]
        for room in rooms:
            _group("group_discard", room, channel_name)
        return count


class Presence(ReadOnlyModel):
    room = models.ForeignKey(Room, on_delete=models.DO_NOTHING, db_column="room",
                             db_constraint=False)
    channel_name = models.CharField(max_length=255, primary_key=True, db_column="channel",
                                    help_text="Reply channel for connection that is present")
    user_id = models.CharField(max_length=255, null=True)
    meta = models.JSONField(null=True)
    joined_at = models.DateTimeField(null=True)
    last_seen = models.DateTimeField(null=True)

    objects = PresenceManager()

    # Set on instances built from events (Presence.from_event).
    user_joined = None
    user_left = None

    class Meta:
        managed = False
        db_table = 'presence"."presences'

    def __str__(self):
        return self.channel_name

    @property
    def user(self):
        """The auth user of user_id (None if anonymous or unknown), loaded once."""
        if self.user_id is None:
            return None
        if not hasattr(self, "_user_cache"):
            User = get_user_model()
            try:
                self._user_cache = User.objects.filter(
                    pk=User._meta.pk.to_python(self.user_id)).first()
            except ValidationError:
                self._user_cache = None
        return self._user_cache

    def delete(self, *args, **kwargs):
        """Leave the room (presence.remove)."""
        return Room.objects.remove(self.room_id, self.channel_name)

    @classmethod
    def from_event(cls, room, obj):
        """An unsaved Presence for an event's added/removed/updated object:
        channel_name, user_id, meta, room, and user_joined / user_left."""
        if obj is None:
            return None
        presence = cls(room=room, channel_name=obj["channel"], user_id=obj["user_id"],
                       meta=obj.get("meta"))
        presence.user_joined = obj.get("user_joined")
        presence.user_left = obj.get("user_left")
        presence.meta_omitted = obj.get("meta_omitted", False)
        return presence
