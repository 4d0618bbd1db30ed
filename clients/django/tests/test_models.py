"""The manager and model API a django-channels-presence user relies on:
add / remove with the channel layer group, get_users, get_anonymous_count,
touch, leave_all, prune_presences, prune_rooms, the max_age setting, the
celery task functions, that the models never write the tables, and that an
application role with only the README's GRANTs can use the API."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import ProgrammingError, connection, transaction
from django.db.models import QuerySet
from django.test import TestCase

from channels_presence import tasks
from channels_presence.models import Presence, Room


def sql(query, params=()):
    """Run SQL as the test's (superuser) connection: an admin's statement."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def make_stale(channel, age="1 hour"):
    """What a vanished connection looks like later: an old last_seen."""
    sql("UPDATE presence.presences SET last_seen = now() - %s::interval WHERE channel = %s",
        [age, channel])


def group(name):
    return set(get_channel_layer().groups.get(name, {}))


class ModelTests(TestCase):
    """Each test runs in a transaction that is rolled back."""

    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.ann = User.objects.create(username="ann")
        cls.bob = User.objects.create(username="bob")

    def setUp(self):
        async_to_sync(get_channel_layer().flush)()  # groups of earlier tests

    def test_add_creates_room_presence_and_group(self):
        room = Room.objects.add("lobby", "c1", self.ann)
        self.assertIsInstance(room, Room)
        self.assertEqual(room.channel_name, "lobby")
        self.assertIsNotNone(Room.objects.get(channel_name="lobby").created_at)
        presence = Presence.objects.filter(room=room).get()
        self.assertEqual((presence.channel_name, presence.user_id), ("c1", str(self.ann.pk)))
        self.assertEqual(presence.user, self.ann)
        self.assertIsNotNone(presence.last_seen)
        self.assertEqual(group("lobby"), {"c1"})
        # Joining again: still one presence.
        Room.objects.add("lobby", "c1", self.ann)
        self.assertEqual(room.presence_set.count(), 1)
        self.assertEqual(Room.objects.filter(channel_name="lobby").count(), 1)

    def test_remove(self):
        Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("lobby", "c2")
        self.assertTrue(Room.objects.remove("lobby", "c1"))
        self.assertEqual([p.channel_name for p in Presence.objects.filter(room="lobby")], ["c2"])
        self.assertEqual(group("lobby"), {"c2"})
        # Unknown channel or room: not an error.
        self.assertFalse(Room.objects.remove("lobby", "c1"))
        self.assertFalse(Room.objects.remove("nowhere", "c1"))

    def test_get_users_and_anonymous_count(self):
        Room.objects.add("lobby", "ann-tab1", self.ann)
        Room.objects.add("lobby", "ann-tab2", self.ann)
        Room.objects.add("lobby", "bob-tab1", self.bob)
        Room.objects.add("lobby", "anon1")
        Room.objects.add("lobby", "anon2", AnonymousUser())
        Room.objects.add("elsewhere", "bob-tab2", self.bob)
        room = Room.objects.get(channel_name="lobby")
        users = room.get_users()
        self.assertIsInstance(users, QuerySet)
        self.assertEqual(users.model, get_user_model())
        self.assertEqual(sorted(users.values_list("username", flat=True)), ["ann", "bob"])
        self.assertEqual(room.get_anonymous_count(), 2)
        Room.objects.remove("lobby", "bob-tab1")
        self.assertEqual(list(room.get_users()), [self.ann])
        empty = Room(channel_name="nobody-here")
        self.assertEqual((empty.get_users().count(), empty.get_anonymous_count()), (0, 0))

    def test_touch(self):
        Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("other", "c1", self.ann)
        make_stale("c1")
        self.assertEqual(Presence.objects.touch("c1"), 2)
        ages = sql("SELECT now() - last_seen < interval '1 minute' FROM presence.presences "
                   "WHERE channel = 'c1'")
        self.assertEqual(ages, [(True,), (True,)])
        # 0: the channel has no presence left (pruned): the app re-joins.
        self.assertEqual(Presence.objects.touch("gone"), 0)

    def test_leave_all(self):
        Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("other", "c1", self.ann)
        Room.objects.add("other", "c2", self.bob)
        self.assertEqual(Presence.objects.leave_all("c1"), 2)
        self.assertEqual(list(Presence.objects.filter(channel_name="c1")), [])
        self.assertEqual((group("lobby"), group("other")), (set(), {"c2"}))
        self.assertEqual(Presence.objects.leave_all("c1"), 0)

    def test_max_age_setting_is_presence_max_age(self):
        self.assertEqual(sql("SHOW presence.max_age"), [("30s",)])

    def test_prune_presences(self):
        Room.objects.add("lobby", "fresh", self.ann)
        Room.objects.add("lobby", "stale", self.bob)
        Room.objects.add("lobby", "older", self.bob)
        make_stale("stale", "10 minutes")
        make_stale("older", "2 hours")
        # age in seconds, as in the original
        self.assertEqual(Room.objects.prune_presences(age=3600), 1)
        # no age: CHANNELS_PRESENCE_MAX_AGE (30 s)
        self.assertEqual(Room.objects.prune_presences(), 1)
        self.assertEqual([p.channel_name for p in Room(channel_name="lobby").members()], ["fresh"])

    def test_room_prune_presences(self):
        Room.objects.add("lobby", "stale1")
        Room.objects.add("other", "stale2")
        make_stale("stale1")
        make_stale("stale2")
        self.assertEqual(Room.objects.get(channel_name="lobby").prune_presences(), 1)
        self.assertEqual(Presence.objects.filter(room="other").count(), 1)

    def test_prune_rooms(self):
        Room.objects.add("emptied", "c1")
        Room.objects.remove("emptied", "c1")
        Room.objects.add("busy", "c2")
        self.assertGreaterEqual(Room.objects.prune_rooms(), 1)
        self.assertEqual(list(Room.objects.filter(channel_name__in=["emptied", "busy"])),
                         [Room.objects.get(channel_name="busy")])

    def test_tasks(self):
        Room.objects.add("lobby", "stale")
        make_stale("stale")
        self.assertEqual(tasks.prune_presence(), 1)
        self.assertGreaterEqual(tasks.prune_rooms(), 1)
        self.assertFalse(Room.objects.filter(channel_name="lobby").exists())

    def test_models_do_not_write_tables(self):
        with self.assertRaises(NotImplementedError):
            Room(channel_name="x").save()
        with self.assertRaises(NotImplementedError):
            Room.objects.filter(channel_name="x").delete()
        with self.assertRaises(NotImplementedError):
            Presence.objects.filter(room="x").update(user_id="1")
        # Presence.delete() leaves the room through presence.remove().
        Room.objects.add("lobby", "c1")
        Presence.objects.filter(room="lobby").get().delete()
        self.assertEqual(Presence.objects.filter(room="lobby").count(), 0)

    def test_members_and_meta(self):
        sql("SELECT presence.add('lobby', 'c1', NULL, '{\"status\": \"away\"}')")
        [member] = Room(channel_name="lobby").members()
        self.assertEqual((member.channel_name, member.meta), ("c1", {"status": "away"}))
        self.assertEqual(Presence.objects.filter(room="lobby").get().meta, {"status": "away"})


class LeastPrivilegeTests(TestCase):
    """The API through a role that has only the README's GRANTs (USAGE on
    the schema, EXECUTE on the API functions) and SELECT on auth_user: the
    methods work, reading the tables directly is refused."""

    @classmethod
    def setUpTestData(cls):
        # Rolled back with the class's transaction, like the rest.
        sql("CREATE ROLE channels_presence_app NOLOGIN")
        sql("""GRANT USAGE ON SCHEMA presence TO channels_presence_app;
               GRANT EXECUTE ON FUNCTION
                   presence.add(text, text, text, jsonb), presence.remove(text, text),
                   presence.leave_all(text), presence.touch(text),
                   presence.update(text, text, jsonb), presence.members(text),
                   presence.users(text), presence.anonymous_count(text),
                   presence.rooms_of(text), presence.stats(text)
               TO channels_presence_app;
               GRANT SELECT ON auth_user TO channels_presence_app""")
        cls.ann = get_user_model().objects.create(username="ann")

    def test_api_with_the_readme_grants(self):
        sql("SET LOCAL ROLE channels_presence_app")
        room = Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("lobby", "c2")
        self.assertEqual(list(room.get_users()), [self.ann])
        self.assertEqual(room.get_anonymous_count(), 1)
        self.assertEqual([m.channel_name for m in room.members()], ["c1", "c2"])
        self.assertEqual(Presence.objects.touch("c1"), 1)
        self.assertTrue(Room.objects.remove("lobby", "c2"))
        self.assertEqual(Presence.objects.leave_all("c1"), 1)
        with self.assertRaisesRegex(ProgrammingError, "permission denied"), transaction.atomic():
            list(Presence.objects.filter(room="lobby"))
        with self.assertRaisesRegex(ProgrammingError, "permission denied"), transaction.atomic():
            Room.objects.prune_presences()
