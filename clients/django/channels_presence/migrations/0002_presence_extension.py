"""Hands presence over to the PostgreSQL extension presence.

- CREATE EXTENSION IF NOT EXISTS presence (a superuser must have run it
  first, and granted the app's role what clients/django/README.md lists,
  if that role may not).
- The live presences of the old tables (last_seen within
  CHANNELS_PRESENCE_MAX_AGE) are carried over with presence.add (their
  last_seen restarts now; a connection that is gone is pruned max_age
  later), marked with this deployment's origin so that no listener signals
  them as joins.
- The old tables channels_presence_presence and channels_presence_room are
  dropped, and views of the same names over presence.rooms and
  presence.presences take their place, which the models read.

Reversing it drops the views and recreates the old, empty tables (presences
are live state: connections join again)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from channels_presence import db as presence_db

INTEGER_RANGES = {"smallint": (-32768, 32767), "integer": (-2147483648, 2147483647),
                  "bigint": (-9223372036854775808, 9223372036854775807)}
UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def user_id_expression(user_pk, connection):
    """p.user_id (text) as the user model's key type; NULL where it cannot
    be one (a user_id written by another service)."""
    db_type = (user_pk.rel_db_type(connection) or "text").lower()
    if db_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[db_type]
        return ("CASE WHEN p.user_id ~ '^-?[0-9]{1,19}$' AND p.user_id::numeric BETWEEN %d AND %d "
                "THEN p.user_id::%s END" % (low, high, db_type))
    if db_type == "uuid":
        return "CASE WHEN p.user_id ~ '%s' THEN p.user_id::uuid END" % UUID_PATTERN
    if db_type.startswith(("varchar", "character varying", "text", "char")):
        return "p.user_id"
    raise ValueError("channels_presence: a user model key of type %s is not supported" % db_type)


VIEWS = """
CREATE VIEW channels_presence_room AS
    SELECT %(room_id)s AS id, r.name AS channel_name, r.created_at
      FROM presence.rooms r;
CREATE VIEW channels_presence_presence AS
    SELECT %(presence_id)s AS id, p.room AS room_id, p.channel AS channel_name,
           %(user_id)s AS user_id, p.last_seen, p.user_id AS user_key, p.meta, p.joined_at
      FROM presence.presences p;
COMMENT ON VIEW channels_presence_room IS 'channels_presence.Room: presence.rooms';
COMMENT ON VIEW channels_presence_presence IS 'channels_presence.Presence: presence.presences';
"""


def relkind(cursor, name):
    cursor.execute("SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(%s)",
                   [name])
    row = cursor.fetchone()
    return row[0] if row else None


def take_over(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        raise RuntimeError("channels_presence needs PostgreSQL with the extension presence")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    max_age = getattr(settings, "CHANNELS_PRESENCE_MAX_AGE", 60)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS presence")
        if relkind(cursor, "channels_presence_presence") == "r":
            cursor.execute("""
                SELECT r.channel_name, p.channel_name, p.user_id::text
                  FROM channels_presence_presence p
                  JOIN channels_presence_room r ON r.id = p.room_id
                 WHERE p.last_seen >= pg_catalog.now() - pg_catalog.make_interval(secs => %s)
                 ORDER BY r.channel_name, p.channel_name""", [float(max_age)])
            live = cursor.fetchall()
            if live:
                origin = presence_db.origin() if presence_db.supports_origin(connection.alias) else ""
                cursor.execute("""
                    SELECT pg_catalog.set_config('presence.origin', %s, true)
                     WHERE %s <> '';
                    SELECT pg_catalog.count(presence.add(l.room, l.channel, l.user_id))
                      FROM unnest(%s::text[], %s::text[], %s::text[])
                           AS l(room, channel, user_id)""",
                               [origin, origin, [r for r, _, _ in live], [c for _, c, _ in live],
                                [u for _, _, u in live]])
            cursor.execute("DROP TABLE channels_presence_presence")
        if relkind(cursor, "channels_presence_room") == "r":
            cursor.execute("DROP TABLE channels_presence_room")
        for name in ("channels_presence_presence", "channels_presence_room"):
            if relkind(cursor, name) == "v":
                cursor.execute("DROP VIEW %s" % name)
        cursor.execute(VIEWS % {
            "room_id": presence_db.ROOM_ID % "r.name",
            "presence_id": presence_db.PRESENCE_ID % ("p.room", "p.channel"),
            "user_id": user_id_expression(User._meta.pk, connection)})


def give_back(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP VIEW IF EXISTS channels_presence_presence, channels_presence_room")
    schema_editor.create_model(apps.get_model("channels_presence", "Room"))
    schema_editor.create_model(apps.get_model("channels_presence", "Presence"))


class Migration(migrations.Migration):
    dependencies = [
        ("channels_presence", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(take_over, give_back)],
            state_operations=[
                migrations.AlterModelOptions(name="room", options={"managed": False}),
                migrations.AlterModelOptions(name="presence", options={"managed": False}),
                migrations.AlterField("room", "id", models.BigAutoField(primary_key=True,
                                                                        serialize=False)),
                migrations.AddField("room", "created_at",
                                    models.DateTimeField(default=django.utils.timezone.now)),
                migrations.AlterField("presence", "id", models.BigAutoField(primary_key=True,
                                                                            serialize=False)),
                migrations.AlterField("presence", "room", models.ForeignKey(
                    db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING,
                    to="channels_presence.room", to_field="channel_name")),
                migrations.AlterField("presence", "user", models.ForeignKey(
                    db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING,
                    to=settings.AUTH_USER_MODEL)),
                migrations.AddField("presence", "user_key", models.CharField(
                    editable=False, help_text="the extension's text user_id", max_length=255,
                    null=True)),
                migrations.AddField("presence", "meta", models.JSONField(blank=True, null=True)),
                migrations.AddField("presence", "joined_at", models.DateTimeField(editable=False,
                                                                                  null=True)),
            ],
        ),
    ]
