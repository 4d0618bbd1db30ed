"""How the drop-in talks to the extension: every change is one round trip
and one transaction (a multi-statement query), safe behind pgbouncer in
transaction pooling, and marked with this deployment's origin so that the
listener does not signal it a second time.

A change runs as three statements sent at once, which PostgreSQL executes as
one transaction (or inside the caller's, e.g. a TestCase):

    SELECT set_config('presence.origin', <origin>, true);
    SELECT set_config('channels_presence.out', <what the call did, as JSON>, true);
    SELECT <that JSON>, <the rows as they are now>, set_config('presence.origin', '', true);

The second statement calls the extension's function and records what it
did; the third, with a new snapshot, reads the presences as they are after
the call (and how many presences each user has left in the room, which gives
user_joined / user_left exactly: the extension holds a lock per (room, user)
until commit).  Nothing is kept on the connection: no SET survives the call.
"""

import json
import logging
import threading

from django.conf import settings
from django.db import connections, router
from django.utils.crypto import salted_hmac
from django.utils.dateparse import parse_datetime

log = logging.getLogger("channels_presence")

# The ids the views give rooms and presences (see migrations/0002): stable
# 63-bit hashes of the keys, so that Room.id and Presence.id exist as in
# django-channels-presence.
ROOM_ID = "(pg_catalog.hashtextextended(%s, 0) & 9223372036854775807)"
PRESENCE_ID = "(pg_catalog.hashtextextended(%s || E'\\n' || %s, 0) & 9223372036854775807)"

# A presence row of presence.presences p as JSON.
ROW = ("pg_catalog.json_build_object('id', " + PRESENCE_ID % ("p.room", "p.channel") + ", "
       "'room', p.room, 'channel', p.channel, "
       "'user_id', p.user_id, 'meta', p.meta, 'joined_at', p.joined_at, "
       "'last_seen', p.last_seen)")

_support = {}
_support_lock = threading.Lock()


def origin():
    """This deployment's origin: the presence.origin its changes carry.
    CHANNELS_PRESENCE_ORIGIN, else derived from SECRET_KEY (every process
    of a deployment shares it, other projects do not)."""
    value = getattr(settings, "CHANNELS_PRESENCE_ORIGIN", None)
    if value:
        return str(value)
    return "django:" + salted_hmac("channels_presence.origin", "origin").hexdigest()[:16]


def write_alias(model):
    return router.db_for_write(model)


def supports_origin(using):
    """Whether the installed extension has presence.origin (checked once
    per database alias and process)."""
    with _support_lock:
        if using in _support:
            return _support[using]
    with connections[using].cursor() as cursor:
        # Calling any function of the extension loads its library, which
        # defines its settings.
        cursor.execute("SELECT presence.anonymous_count('channels_presence'); "
                       "SELECT pg_catalog.current_setting('presence.origin', true) IS NOT NULL")
        supported = bool(cursor.fetchone()[0])
    if not supported:
        log.error("presence: the installed extension has no presence.origin setting: changes "
                  "made here cannot be told from changes made elsewhere, so the listener "
                  "signals them a second time; upgrade the extension "
                  "(ALTER EXTENSION presence UPDATE)")
    with _support_lock:
        _support[using] = supported
    return supported


def change(using, record_sql, params, items_key="items"):
    """Run a change: record_sql is an expression yielding the JSON text of
    {"items": [{"done": bool, "room": r, "channel": c, "user_id": u,
    "before": row or null}, ...], ...}.  Returns (recorded, after) where
    after[i] = {"after": row or None, "users": n, "room_id": id,
    "room_created_at": ts} for each item, in order."""
    marked = supports_origin(using)
    sql = []
    args = []
    if marked:
        sql.append("SELECT pg_catalog.set_config('presence.origin', %s, true)")
        args.append(origin())
    sql.append("SELECT pg_catalog.set_config('channels_presence.out', (%s)::text, true)" % record_sql)
    args.extend(params)
    sql.append("""
        SELECT o.v, (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                   'after', (SELECT %(row)s FROM presence.presences p
                              WHERE p.room = x.e->>'room' AND p.channel = x.e->>'channel'),
                   'users', (SELECT pg_catalog.count(*) FROM presence.presences p
                              WHERE p.room = x.e->>'room' AND p.user_id = x.e->>'user_id'),
                   'room_id', %(room_id)s,
                   'room_created_at', (SELECT r.created_at FROM presence.rooms r
                                        WHERE r.name = x.e->>'room'))
                   ORDER BY x.n), '[]')
                 FROM pg_catalog.json_array_elements(o.v::json->'%(key)s') WITH ORDINALITY AS x(e, n))%(reset)s
          FROM (SELECT pg_catalog.current_setting('channels_presence.out') AS v) o"""
               % {"row": ROW, "room_id": ROOM_ID % "(x.e->>'room')", "key": items_key,
                  "reset": ", pg_catalog.set_config('presence.origin', '', true)" if marked else ""})
    with connections[using].cursor() as cursor:
        cursor.execute(";\n".join(sql), args)
        row = cursor.fetchone()
    recorded = _json(row[0])
    after = _json(row[1])
    return recorded, after


def query(using, sql, params=()):
    """One read-only statement; all rows."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def timestamp(value):
    """A timestamptz from a JSON row."""
    if value is None or not isinstance(value, str):
        return value
    return parse_datetime(value)
