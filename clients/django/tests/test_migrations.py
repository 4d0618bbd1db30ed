"""manage.py migrate on a database where django-channels-presence's own
migration ran (its tables, migration 0001 recorded): the extension takes
over, the live presences are carried across, the old tables give way to
views of the same names; migrating back restores empty old tables; and
makemigrations finds nothing to do."""

from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import TransactionTestCase

from channels_presence.models import Presence, Room

from .helpers import sql


def kind(name):
    return sql("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)", [name])[0][0]


class TakeOverTests(TransactionTestCase):
    def tearDown(self):
        call_command("migrate", "channels_presence", verbosity=0)
        sql("DELETE FROM presence.rooms")

    def test_a_database_of_the_original_package(self):
        ann = get_user_model().objects.create(username="ann")
        call_command("migrate", "channels_presence", "0001", verbosity=0)
        self.assertEqual((kind("channels_presence_room"), kind("channels_presence_presence")),
                         ("r", "r"))
        # What django-channels-presence left: one live presence, one stale.
        sql("INSERT INTO channels_presence_room (id, channel_name) VALUES (1, 'lobby')")
        sql("""INSERT INTO channels_presence_presence (room_id, channel_name, user_id, last_seen)
               VALUES (1, 'specific.live!1', %s, now() - interval '5 seconds'),
                      (1, 'specific.gone!2', NULL, now() - interval '2 hours')""", [ann.pk])
        out = StringIO()
        call_command("migrate", "channels_presence", stdout=out)
        self.assertIn("0002_presence_extension... OK", out.getvalue())
        self.assertEqual((kind("channels_presence_room"), kind("channels_presence_presence")),
                         ("v", "v"))
        self.assertEqual(sql("SELECT room, channel, user_id FROM presence.presences"),
                         [("lobby", "specific.live!1", str(ann.pk))])
        room = Room.objects.get(channel_name="lobby")
        self.assertEqual(list(room.get_users()), [ann])
        self.assertEqual(Presence.objects.get(room=room).channel_name, "specific.live!1")

        # Back to the original's schema: its tables, empty (presence is live state).
        call_command("migrate", "channels_presence", "0001", verbosity=0)
        self.assertEqual(sql("SELECT count(*) FROM channels_presence_presence"), [(0,)])

    def test_models_and_migrations_agree(self):
        out = StringIO()
        call_command("makemigrations", "channels_presence", check=True, dry_run=True, stdout=out)
        self.assertIn("No changes detected", out.getvalue())
