"""Room and Presence: django-channels-presence's models and managers, backed
by the PostgreSQL extension presence.

The models read two views that the app's migration creates over the
extension's tables (channels_presence_room, channels_presence_presence, the
tables' names in django-channels-presence): Room.id and Presence.id are
stable hashes of their keys, Presence.user_id is the extension's text user_id
cast to the type of the user model's key, so ``filter(user=u)``,
``select_related('user')``, ``User.objects.filter(presence__room=room)`` work
as before.  Every write goes through the extension's functions (creates
become presence.add, deletes presence.remove), in one round trip that also
reads what is needed to send presence_changed at once, in this thread,
before the call returns, as django-channels-presence did (see db.py).

What the extension cannot do raises an error that names what to use instead.
"""

import json
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models
from django.utils.timezone import now

from . import db
from .signals import presence_changed


# As in django-channels-presence, which some projects import from here.
channel_layer = get_channel_layer()


def _max_age():
    return getattr(settings, "CHANNELS_PRESENCE_MAX_AGE", 60)


def _user_key(user):
    """The extension's user_id for a Django user: str(pk); None if anonymous."""
    if user is None:
        return None
    authenticated = getattr(user, "is_authenticated", False)
    if callable(authenticated):  # Django < 1.10 style
        authenticated = authenticated()
    if not authenticated or getattr(user, "pk", None) is None:
        return None
    return str(user.pk)


def _user_pk(user_key):
    """The user model's key for a text user_id; None if it cannot be one."""
    if user_key is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(user_key)
    except (ValidationError, ValueError, TypeError):
        return None


def _group(method, group, channel_name):
    """group_add / group_discard on the channel layer, if one is configured."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(getattr(layer, method))(group, channel_name)


def _notify_listener():
    """Start this process's listener if it runs in an ASGI server (see
    listener.ensure_started); cheap when it runs already."""
    from .listener import ensure_started
    ensure_started()


def _room(name, room_id=None, created_at=None, using=None):
    room = Room(id=room_id, channel_name=name, created_at=created_at)
    room._state.adding = False
    room._state.db = using
    return room


def _presence(room, row, using=None, user_joined=None, user_left=None):
    """A Presence for a JSON row of presence.presences."""
    presence = Presence(
        id=row.get("id"), room=room, channel_name=row["channel"], user_id=_user_pk(row.get("user_id")),
        user_key=row.get("user_id"), meta=row.get("meta"),
        joined_at=db.timestamp(row.get("joined_at")),
        last_seen=db.timestamp(row.get("last_seen")))
    presence._state.adding = False
    presence._state.db = using
    presence.user_joined = user_joined
    presence.user_left = user_left
    return presence


def _send(room, added=None, removed=None, bulk_change=False, **extra):
    presence_changed.send(sender=Room, room=room, added=added, removed=removed,
                          bulk_change=bulk_change, **extra)


# -- the changes ---------------------------------------------------------

def _add(using, room_name, channel_name, user_key, meta=None, signal=True):
    """presence.add; sends presence_changed(added=...) if it created the
    presence.  Returns (room, presence, created)."""
    if meta is None:
        call = "presence.add(%s, %s, %s)"
        params = [room_name, channel_name, user_key]
    else:
        call = "presence.add(%s, %s, %s, %s::jsonb)"
        params = [room_name, channel_name, user_key, json.dumps(meta)]
    recorded, [after] = db.change(using, """
        pg_catalog.json_build_object('items', pg_catalog.json_build_array(
            pg_catalog.json_build_object('done', %s, 'room', %%s::text, 'channel', %%s::text,
                                         'user_id', %%s::text)))""" % call,
                                  params + [room_name, channel_name, user_key])
    created = recorded["items"][0]["done"]
    room = _room(room_name, after["room_id"], db.timestamp(after["room_created_at"]), using)
    row = after["after"] or {"channel": channel_name, "user_id": user_key}
    presence = _presence(room, row, using,
                         user_joined=bool(created and user_key is not None and after["users"] == 1),
                         user_left=False)
    if created and signal:
        _send(room, added=presence)
    return room, presence, created


def _remove(using, pairs, signal=True):
    """presence.remove of each (room, channel) in pairs, in room order;
    presence_changed(removed=...) for each that was there.  Returns the
    removed Presence instances."""
    if not pairs:
        return []
    rooms = [r for r, _ in pairs]
    channels = [c for _, c in pairs]
    recorded, after = db.change(using, """
        SELECT pg_catalog.json_build_object('items', COALESCE(pg_catalog.json_agg(
                   pg_catalog.json_build_object(
                       'done', presence.remove(k.room, k.channel), 'room', k.room,
                       'channel', k.channel, 'user_id', b.row->>'user_id', 'before', b.row)
                   ORDER BY k.room, k.channel), '[]'))
          FROM (SELECT DISTINCT * FROM unnest(%%s::text[], %%s::text[]) AS u(room, channel)
                ORDER BY 1, 2) k
          LEFT JOIN LATERAL (SELECT %s AS row FROM presence.presences p
                              WHERE p.room = k.room AND p.channel = k.channel) b ON true""" % db.ROW,
                                  [rooms, channels])
    removed = []
    for item, state in zip(recorded["items"], after):
        if not item["done"]:
            continue
        room = _room(item["room"], state["room_id"], db.timestamp(state["room_created_at"]), using)
        row = item["before"] or {"channel": item["channel"], "user_id": None}
        presence = _presence(room, row, using, user_joined=False,
                             user_left=bool(row.get("user_id") is not None and state["users"] == 0))
        _group("group_discard", room.channel_name, presence.channel_name)
        presence.id = None  # deleted, as a deleted model instance
        removed.append(presence)
        if signal:
            _send(room, removed=presence)
    return removed


def _stale_pairs(using, room_name, age):
    return [tuple(r) for r in db.query(
        using, "SELECT room, channel FROM presence.presences WHERE room = %s "
               "AND last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => %s) "
               "ORDER BY channel", [room_name, float(age)])]


# -- querysets ------------------------------------------------------------

class PresenceQuerySet(models.QuerySet):
    """Reads the view; deletes and creates go through the extension."""

    def delete(self):
        """Each presence leaves its room (presence.remove), with its
        presence_changed, as the admin's "delete selected" expects."""
        using = self.db
        pairs = [(r, c) for r, c in self.values_list("room_id", "channel_name")]
        removed = _remove(using, pairs)
        return len(removed), {Presence._meta.label: len(removed)}

    delete.alters_data = True
    delete.queryset_only = True

    def _raw_delete(self, using):
        return self.using(using).delete()[0]

    def update(self, **kwargs):
        """Only last_seen can be set directly (tests age presences so);
        anything else has a function of the extension."""
        if set(kwargs) - {"last_seen"}:
            raise NotImplementedError(
                "Presence rows change only through the extension: use Room.objects.remove() "
                "and Room.objects.add() to move a presence, presence.update(room, channel, meta) "
                "(Presence.save()) for meta, Presence.objects.touch() for last_seen")
        return super().update(**kwargs)

    update.alters_data = True

    def create(self, **kwargs):
        """presence.add (joining the room, creating it if needed), with its
        presence_changed.  IntegrityError if the presence exists, as before."""
        presence = Presence(**kwargs)
        presence.save(force_insert=True, using=self.db)
        return presence

    def bulk_create(self, objs, *args, **kwargs):
        for obj in objs:
            obj.save(force_insert=True, using=self.db)
        return objs

    def bulk_update(self, *args, **kwargs):
        raise NotImplementedError("Presence rows change only through the extension: "
                                  "save() each presence (presence.update) instead")


class RoomQuerySet(models.QuerySet):
    def delete(self):
        """Every presence of these rooms leaves (presence.remove, with its
        presence_changed); then the empty rooms go (presence.prune_rooms)."""
        using = self.db
        names = list(self.values_list("channel_name", flat=True))
        if not names:
            return 0, {}
        pairs = [tuple(r) for r in db.query(
            using, "SELECT room, channel FROM presence.presences WHERE room = ANY(%s) "
                   "ORDER BY room, channel", [names])]
        removed = _remove(using, pairs)
        db.query(using, "SELECT presence.prune_rooms()")
        gone = db.query(using, "SELECT pg_catalog.count(*) FROM pg_catalog.unnest(%s::text[]) n "
                               "WHERE NOT EXISTS (SELECT FROM presence.rooms r WHERE r.name = n)",
                        [names])[0][0]
        return gone + len(removed), {Room._meta.label: gone, Presence._meta.label: len(removed)}

    delete.alters_data = True
    delete.queryset_only = True

    def _raw_delete(self, using):
        return self.using(using).delete()[0]

    def bulk_create(self, objs, *args, **kwargs):
        for obj in objs:
            obj.save(force_insert=True, using=self.db)
        return objs

    def update(self, **kwargs):
        raise NotImplementedError("rooms are named once: Room.objects.add() joins a room "
                                  "(creating it), Room.objects.prune_rooms() deletes empty ones")

    update.alters_data = True


# -- managers ---------------------------------------------------------------

class PresenceManager(models.Manager.from_queryset(PresenceQuerySet)):
    def touch(self, channel_name):
        """Refresh last_seen of every presence of the channel (presence.touch)."""
        self.touch_count(channel_name)

    def touch_count(self, channel_name):
        """touch(), returning how many presences the channel has: 0 means
        it was pruned and should join again."""
        using = db.write_alias(Presence)
        _notify_listener()
        return db.query(using, "SELECT presence.touch(%s)", [channel_name])[0][0]

    def leave_all(self, channel_name):
        """Leave every room (presence.remove of each), with a presence_changed
        per room, and the rooms' channel layer groups."""
        using = db.write_alias(Presence)
        _notify_listener()
        pairs = [tuple(r) for r in db.query(
            using, "SELECT room, channel FROM presence.presences WHERE channel = %s ORDER BY room",
            [channel_name])]
        _remove(using, pairs)


class RoomManager(models.Manager.from_queryset(RoomQuerySet)):
    def add(self, room_channel_name, user_channel_name, user=None):
        """Join (presence.add), creating the room if needed, and add the
        channel to the room's group; presence_changed(added=...) if the
        presence is new.  Returns the Room."""
        using = db.write_alias(Room)
        _notify_listener()
        _group("group_add", room_channel_name, user_channel_name)
        try:
            room, _, _ = _add(using, room_channel_name, user_channel_name, _user_key(user))
        except Exception:
            _group("group_discard", room_channel_name, user_channel_name)
            raise
        return room

    def remove(self, room_channel_name, user_channel_name):
        """Leave one room (presence.remove) and its group; presence_changed
        (removed=...) if the presence was there."""
        using = db.write_alias(Room)
        _notify_listener()
        _remove(using, [(room_channel_name, user_channel_name)])

    def prune_presences(self, channel_layer=None, age=None):
        """Delete the presences not seen for age seconds (default
        CHANNELS_PRESENCE_MAX_AGE, 60) with presence.prune, and send
        presence_changed(bulk_change=True) once per room that lost any.
        channel_layer is accepted for compatibility and unused."""
        using = db.write_alias(Room)
        seconds = float(_max_age() if age is None else age)
        # The stale presences per room before the prune and after it, in one
        # transaction (same now(), so the same cutoff as the prune's).
        recorded, after = db.change(using, """
            pg_catalog.json_build_object(
                'pruned', presence.prune(pg_catalog.make_interval(secs => %s)),
                'items', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                              'room', s.room, 'stale', s.n) ORDER BY s.room), '[]')
                            FROM (SELECT p.room, pg_catalog.count(*) AS n FROM presence.presences p
                                   WHERE p.last_seen < pg_catalog.now()
                                         - pg_catalog.make_interval(secs => %s)
                                   GROUP BY p.room) s))""", [seconds, seconds])
        if not recorded["pruned"]:
            return None
        rooms = [item["room"] for item in recorded["items"]]
        left = dict(db.query(using, """
            SELECT p.room, pg_catalog.count(*) FROM presence.presences p
             WHERE p.room = ANY(%s)
               AND p.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => %s)
             GROUP BY p.room""", [rooms, seconds])) if rooms else {}
        for item, state in zip(recorded["items"], after):
            gone = item["stale"] - left.get(item["room"], 0)
            if gone > 0:
                room = _room(item["room"], state["room_id"],
                             db.timestamp(state["room_created_at"]), using)
                _send(room, bulk_change=True)
        return None

    def prune_rooms(self):
        """Delete the rooms that have no presences (presence.prune_rooms)."""
        db.query(db.write_alias(Room), "SELECT presence.prune_rooms()")
        return None


# -- models -----------------------------------------------------------------

class Room(models.Model):
    id = models.BigAutoField(primary_key=True)
    channel_name = models.CharField(max_length=255, unique=True,
                                    help_text="Group channel name for this room")
    created_at = models.DateTimeField(default=now)

    objects = RoomManager()

    class Meta:
        managed = False

    def __str__(self):
        return self.channel_name

    def save(self, force_insert=False, force_update=False, using=None, update_fields=None):
        """A new Room is an empty room (INSERT INTO presence.rooms, which
        needs that privilege: rooms are otherwise made by joining).  An
        existing room cannot be renamed."""
        using = using or db.write_alias(Room)
        if self._state.adding or force_insert:
            [(room_id, created_at)] = db.query(
                using, "INSERT INTO presence.rooms (name) VALUES (%s) "
                       "RETURNING " + db.ROOM_ID % "name" + ", created_at",
                [self.channel_name])
            self.id, self.created_at = room_id, created_at
            self._state.adding = False
            self._state.db = using
            return
        stored = db.query(using, "SELECT name FROM presence.rooms WHERE "
                          + db.ROOM_ID % "name" + " = %s", [self.pk])
        if not stored or stored[0][0] != self.channel_name:
            raise NotImplementedError(
                "a room cannot be renamed: Room.objects.add() the channels to a room of the "
                "new name, then Room.objects.remove() them from this one")

    save.alters_data = True

    def delete(self, using=None, keep_parents=False):
        return Room.objects.using(using or self._state.db or db.write_alias(Room)).filter(
            channel_name=self.channel_name).delete()

    delete.alters_data = True

    def add_presence(self, channel_name, user=None):
        Room.objects.add(self.channel_name, channel_name, user)

    def remove_presence(self, channel_name=None, presence=None):
        if presence is not None:
            channel_name = presence.channel_name
        Room.objects.remove(self.channel_name, channel_name)

    def prune_presences(self, age_in_seconds=None):
        """Remove this room's presences older than age_in_seconds (default
        CHANNELS_PRESENCE_MAX_AGE), one presence.remove() each, and send one
        presence_changed(bulk_change=True) if any went."""
        using = db.write_alias(Room)
        age = _max_age() if age_in_seconds is None else age_in_seconds
        removed = _remove(using, _stale_pairs(using, self.channel_name, age), signal=False)
        if removed:
            _send(self, bulk_change=True)

    def get_users(self):
        """The users present: a queryset of the user model."""
        return get_user_model().objects.filter(presence__room=self).distinct()

    def get_anonymous_count(self):
        """Presences without a user (presence.anonymous_count)."""
        return db.query(db.write_alias(Room), "SELECT presence.anonymous_count(%s)",
                        [self.channel_name])[0][0]

    def members(self):
        """The room's presences (presence.members), ordered by channel."""
        using = db.write_alias(Room)
        rows = db.query(using, "SELECT " + db.ROW + " FROM (SELECT %s::text AS room, m.* "
                               "FROM presence.members(%s) AS m) p", [self.channel_name] * 2)
        return [_presence(self, db._json(r), using) for (r,) in rows]

    @classmethod
    def named(cls, channel_name):
        """The Room of that name, without reading the database (id unset)."""
        return _room(channel_name)

    def broadcast_changed(self, added=None, removed=None, bulk_change=False):
        """Send presence_changed for this room, as django-channels-presence did."""
        _send(self, added=added, removed=removed, bulk_change=bulk_change)


class Presence(models.Model):
    id = models.BigAutoField(primary_key=True)
    room = models.ForeignKey(Room, to_field="channel_name", on_delete=models.DO_NOTHING,
                             db_constraint=False)
    channel_name = models.CharField(max_length=255,
                                    help_text="Reply channel for connection that is present")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING,
                             db_constraint=False)
    last_seen = models.DateTimeField(default=now)
    # New: the extension's own columns.
    user_key = models.CharField(max_length=255, null=True, editable=False,
                                help_text="the extension's text user_id")
    meta = models.JSONField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, editable=False)

    objects = PresenceManager()

    # Set on instances that come with presence_changed.
    user_joined = None
    user_left = None

    class Meta:
        managed = False
        unique_together = [("room", "channel_name")]

    def __str__(self):
        return self.channel_name

    def save(self, force_insert=False, force_update=False, using=None, update_fields=None):
        """New: presence.add (IntegrityError if it exists, as the table's
        unique constraint did).  Existing: presence.update(room, channel,
        meta), which also refreshes last_seen."""
        using = using or db.write_alias(Presence)
        if self._state.adding or force_insert:
            user_key = self.user_key if self.user_id is None else str(self.user_id)
            room, presence, created = _add(using, self.room_id, self.channel_name, user_key,
                                           self.meta)
            if not created:
                raise IntegrityError(
                    'duplicate key value violates unique constraint: the presence (%s, %s) '
                    'exists' % (self.room_id, self.channel_name))
            for field in ("id", "user_key", "joined_at", "last_seen"):
                setattr(self, field, getattr(presence, field))
            self.user_joined, self.user_left = presence.user_joined, False
            self._state.adding = False
            self._state.db = using
            return
        recorded, [after] = db.change(using, """
            SELECT pg_catalog.json_build_object('items', pg_catalog.json_build_array(
                       pg_catalog.json_build_object(
                           'done', presence.update(%%s, %%s, %%s::jsonb), 'room', %%s::text,
                           'channel', %%s::text, 'before', (SELECT %s FROM presence.presences p
                                WHERE p.room = %%s AND p.channel = %%s))))""" % db.ROW,
                                      [self.room_id, self.channel_name,
                                       None if self.meta is None else json.dumps(self.meta),
                                       self.room_id, self.channel_name,
                                       self.room_id, self.channel_name])
        item = recorded["items"][0]
        if not item["done"]:
            raise NotImplementedError(
                "presence (%s, %s) is not in the room: Room.objects.add() joins a room; a "
                "presence cannot move (remove it, then add it)" % (self.room_id, self.channel_name))
        if after["after"]:
            self.last_seen = db.timestamp(after["after"]["last_seen"])
            if (item["before"] or {}).get("meta") != after["after"].get("meta"):
                room = _room(self.room_id, after["room_id"],
                             db.timestamp(after["room_created_at"]), using)
                updated = _presence(room, after["after"], using)
                _send(room, updated=updated)

    save.alters_data = True

    def delete(self, using=None, keep_parents=False):
        """Leave the room (presence.remove), with its presence_changed."""
        removed = _remove(using or self._state.db or db.write_alias(Presence),
                          [(self.room_id, self.channel_name)])
        self.id = None
        return len(removed), {Presence._meta.label: len(removed)}

    delete.alters_data = True

    @classmethod
    def from_event(cls, room, obj):
        """An unsaved Presence for an event's added / removed / updated
        object (see the extension's README), or None."""
        if obj is None:
            return None
        presence = _presence(room, obj, user_joined=obj.get("user_joined"),
                             user_left=obj.get("user_left"))
        presence.id = None
        presence.meta_omitted = obj.get("meta_omitted", False)
        return presence


def _user_deleted(sender, instance, using, **kwargs):
    """A deleted user's presences leave their rooms (the foreign key's
    ON DELETE CASCADE of django-channels-presence)."""
    pairs = [tuple(r) for r in db.query(
        db.write_alias(Presence),
        "SELECT room, channel FROM presence.presences WHERE user_id = %s ORDER BY room, channel",
        [str(instance.pk)])]
    _remove(db.write_alias(Presence), pairs)

