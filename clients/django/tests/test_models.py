"""The API a django-channels-presence user relies on, in Django TestCases
(each test is a transaction that is rolled back, as in projects' own tests):
presence_changed sent by the call itself, in this thread, before it returns;
the original's return values and signal arguments; ORM use; the settings;
the tasks and management commands; errors that name the replacement."""

import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import IntegrityError, ProgrammingError, transaction
from django.db.models import QuerySet
from django.test import TestCase

from channels_presence import tasks
from channels_presence.models import Presence, Room

from .helpers import Signals, make_stale, sql


def group(name):
    return set(get_channel_layer().groups.get(name, {}))


class SignalTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.ann = User.objects.create(username="ann")
        cls.bob = User.objects.create(username="bob")

    def setUp(self):
        async_to_sync(get_channel_layer().flush)()

    def test_add_signals_before_returning_in_this_thread(self):
        with Signals() as signals:
            room = Room.objects.add("lobby", "c1", self.ann)
            [call] = signals.calls  # already there: sent before add() returned
        self.assertEqual(call["thread"], threading.get_ident())
        self.assertEqual(set(call) - {"thread", "signal"},
                         {"sender", "room", "added", "removed", "bulk_change"})
        self.assertIs(call["sender"], Room)
        self.assertEqual(call["room"], room)
        self.assertEqual(room.id, Room.objects.get(channel_name="lobby").id)
        added = call["added"]
        self.assertIsInstance(added, Presence)
        self.assertEqual((added.room, added.channel_name, added.user),
                         (room, "c1", self.ann))
        self.assertEqual(added.pk, Presence.objects.get(room=room, channel_name="c1").pk)
        self.assertIsNotNone(added.last_seen)
        self.assertTrue(added.user_joined)
        self.assertEqual((call["removed"], call["bulk_change"]), (None, False))
        self.assertEqual(group("lobby"), {"c1"})

    def test_join_again_or_leave_twice_signals_nothing(self):
        Room.objects.add("lobby", "c1", self.ann)
        with Signals() as signals:
            Room.objects.add("lobby", "c1", self.ann)
            self.assertIsNone(Room.objects.remove("lobby", "nobody"))
            self.assertIsNone(Room.objects.remove("nowhere", "c1"))
        self.assertEqual(signals.calls, [])

    def test_remove_and_user_flags(self):
        Room.objects.add("lobby", "ann-tab1", self.ann)
        Room.objects.add("lobby", "ann-tab2", self.ann)
        with Signals() as signals:
            self.assertIsNone(Room.objects.remove("lobby", "ann-tab2"))
            Room.objects.remove("lobby", "ann-tab1")
        first, last = [c["removed"] for c in signals.calls]
        self.assertEqual((first.channel_name, first.user, first.user_left), ("ann-tab2", self.ann, False))
        self.assertEqual((last.channel_name, last.user_left), ("ann-tab1", True))
        self.assertEqual([c["added"] for c in signals.calls], [None, None])
        self.assertEqual(group("lobby"), set())

    def test_leave_all_one_signal_per_room(self):
        for room in ("a", "b", "c"):
            Room.objects.add(room, "c1", self.bob)
        Room.objects.add("b", "c2", self.ann)
        with Signals() as signals:
            self.assertIsNone(Presence.objects.leave_all("c1"))
        self.assertEqual([(c["room"].channel_name, c["removed"].channel_name, c["removed"].user_left)
                          for c in signals.calls], [("a", "c1", True), ("b", "c1", True), ("c", "c1", True)])
        self.assertEqual((group("a"), group("b")), (set(), {"c2"}))

    def test_signals_even_when_the_transaction_rolls_back(self):
        with Signals() as signals:
            try:
                with transaction.atomic():
                    Room.objects.add("lobby", "c1", self.ann)
                    raise RuntimeError("the view failed")
            except RuntimeError:
                pass
        self.assertEqual(len(signals.calls), 1)
        self.assertFalse(Presence.objects.filter(channel_name="c1").exists())

    def test_prune_presences_is_a_bulk_change_per_room(self):
        Room.objects.add("lobby", "fresh", self.ann)
        Room.objects.add("lobby", "stale", self.bob)
        Room.objects.add("other", "stale2", self.bob)
        Room.objects.add("quiet", "fresh2")
        make_stale("stale", "10 minutes")
        make_stale("stale2", "2 hours")
        with Signals() as signals:
            # age in seconds, as in the original; returns None like it
            self.assertIsNone(Room.objects.prune_presences(age=3600))
            self.assertEqual([(c["room"].channel_name, c["bulk_change"], c["added"], c["removed"])
                              for c in signals.calls], [("other", True, None, None)])
            # no age: CHANNELS_PRESENCE_MAX_AGE (30 s), even one presence is a bulk change
            Room.objects.prune_presences()
            self.assertEqual([c["room"].channel_name for c in signals.calls], ["other", "lobby"])
        self.assertEqual(sorted(Presence.objects.values_list("channel_name", flat=True)),
                         ["fresh", "fresh2"])

    def test_max_age_is_an_argument_not_a_session_setting(self):
        """pgbouncer in transaction pooling keeps no SET: none is made."""
        Room.objects.add("lobby", "c1")
        make_stale("c1", "40 seconds")  # older than CHANNELS_PRESENCE_MAX_AGE = 30
        Room.objects.prune_presences()
        self.assertFalse(Presence.objects.filter(channel_name="c1").exists())
        self.assertEqual(sql("SHOW presence.max_age"), [("1min",)])
        self.assertIn(sql("SELECT current_setting('presence.origin', true)"), [[("",)], [(None,)]])

    def test_room_prune_presences(self):
        Room.objects.add("lobby", "stale1")
        Room.objects.add("other", "stale2")
        make_stale("stale1")
        make_stale("stale2")
        with Signals() as signals:
            Room.objects.get(channel_name="lobby").prune_presences()
        self.assertEqual([(c["room"].channel_name, c["bulk_change"]) for c in signals.calls],
                         [("lobby", True)])
        self.assertEqual(Presence.objects.filter(room="other").count(), 1)

    def test_prune_rooms(self):
        Room.objects.add("emptied", "c1")
        Room.objects.remove("emptied", "c1")
        Room.objects.add("busy", "c2")
        with Signals() as signals:
            self.assertIsNone(Room.objects.prune_rooms())
        self.assertEqual(signals.calls, [])
        self.assertEqual(list(Room.objects.filter(channel_name__in=["emptied", "busy"])),
                         [Room.objects.get(channel_name="busy")])

    def test_tasks_and_commands(self):
        Room.objects.add("lobby", "stale")
        make_stale("stale")
        with Signals() as signals:
            self.assertIsNone(tasks.prune_presence())
            self.assertEqual(len(signals.calls), 1)
        self.assertIsNone(tasks.prune_rooms())
        self.assertFalse(Room.objects.filter(channel_name="lobby").exists())
        Room.objects.add("lobby", "stale")
        make_stale("stale")
        call_command("prune_presences")
        call_command("prune_rooms")
        self.assertFalse(Room.objects.filter(channel_name="lobby").exists())

    def test_touch(self):
        Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("other", "c1", self.ann)
        make_stale("c1")
        with Signals() as signals:
            self.assertIsNone(Presence.objects.touch("c1"))
        self.assertEqual(signals.calls, [])
        self.assertEqual(sql("SELECT bool_and(now() - last_seen < interval '1 minute') "
                             "FROM presence.presences WHERE channel = 'c1'"), [(True,)])
        self.assertEqual(Presence.objects.touch_count("gone"), 0)


class OrmTests(TestCase):
    """The queries and writes that apps and their tests contain."""

    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.ann = User.objects.create(username="ann")
        cls.bob = User.objects.create(username="bob")

    def test_queries_on_user(self):
        User = get_user_model()
        room = Room.objects.add("lobby", "ann-tab1", self.ann)
        Room.objects.add("lobby", "ann-tab2", self.ann)
        Room.objects.add("lobby", "bob-tab1", self.bob)
        Room.objects.add("lobby", "anon1")
        Room.objects.add("lobby", "anon2", AnonymousUser())
        Room.objects.add("elsewhere", "bob-tab2", self.bob)
        self.assertEqual(Presence.objects.filter(room=room, user=self.ann).count(), 2)
        self.assertEqual(room.presence_set.filter(user__isnull=False).count(), 3)
        self.assertEqual(room.presence_set.filter(user=None).count(), 2)
        self.assertEqual(room.get_anonymous_count(), 2)
        with self.assertNumQueries(1):
            names = sorted(p.user.username for p in
                           Presence.objects.select_related("user").filter(room=room, user__isnull=False))
        self.assertEqual(names, ["ann", "ann", "bob"])
        users = User.objects.filter(id__in=Presence.objects.filter(room=room).values_list("user_id"))
        self.assertEqual(sorted(users.values_list("username", flat=True)), ["ann", "bob"])
        self.assertEqual(set(User.objects.filter(presence__room=room).distinct()), {self.ann, self.bob})
        got = room.get_users()
        self.assertIsInstance(got, QuerySet)
        self.assertEqual(sorted(got.values_list("username", flat=True)), ["ann", "bob"])
        self.assertEqual(list(Room.objects.filter(presence__user=self.bob).order_by("channel_name")),
                         [Room.objects.get(channel_name="elsewhere"), room])

    def test_a_user_id_of_another_service_is_no_user(self):
        sql("SELECT presence.add('lobby', 'far', 'alice@example.com')")
        p = Presence.objects.get(channel_name="far")
        self.assertEqual((p.user_id, p.user, p.user_key), (None, None, "alice@example.com"))
        self.assertEqual(Room.objects.get(channel_name="lobby").get_anonymous_count(), 0)

    def test_create_and_get_or_create_as_tests_use_them(self):
        with Signals() as signals:
            room = Room.objects.create(channel_name="made")
            self.assertEqual(Room.objects.get(channel_name="made"), room)
            self.assertEqual(Room.objects.get_or_create(channel_name="made"), (room, False))
            other, created = Room.objects.get_or_create(channel_name="new")
            self.assertTrue(created)
            with self.assertRaises(IntegrityError), transaction.atomic():
                Room.objects.create(channel_name="made")
            self.assertEqual(signals.calls, [])  # empty rooms: no presence changed
            p = Presence.objects.create(room=room, channel_name="c1", user=self.ann)
            [call] = signals.calls
        self.assertEqual(call["added"], p)
        self.assertEqual(Presence.objects.get(room=room, channel_name="c1").user, self.ann)
        self.assertEqual(Presence.objects.get_or_create(room=room, channel_name="c1",
                                                        user=self.ann), (p, False))
        with self.assertRaises(IntegrityError), transaction.atomic():
            Presence.objects.create(room=room, channel_name="c1", user=self.ann)
        self.assertEqual(list(room.get_users()), [self.ann])

    def test_deletes_become_removes(self):
        Room.objects.add("lobby", "c1", self.ann)
        Room.objects.add("lobby", "c2", self.bob)
        Room.objects.add("lobby", "c3")
        Room.objects.add("other", "c4")
        with Signals() as signals:
            self.assertEqual(Presence.objects.filter(room="lobby", user__isnull=False).delete(),
                             (2, {"channels_presence.Presence": 2}))
            self.assertEqual(sorted(c["removed"].channel_name for c in signals.calls), ["c1", "c2"])
            Presence.objects.get(channel_name="c3").delete()
            self.assertEqual(len(signals.calls), 3)
            Room.objects.get(channel_name="other").delete()
            self.assertEqual(signals.calls[-1]["removed"].channel_name, "c4")
        self.assertFalse(Room.objects.filter(channel_name="other").exists())
        self.assertFalse(Presence.objects.exists())

    def test_deleting_a_user_removes_their_presences(self):
        Room.objects.add("lobby", "c1", self.bob)
        Room.objects.add("lobby", "c2", self.ann)
        with Signals() as signals:
            self.bob.delete()
        self.assertEqual([c["removed"].channel_name for c in signals.calls], ["c1"])
        self.assertEqual(list(Presence.objects.values_list("channel_name", flat=True)), ["c2"])

    def test_age_presences_in_tests(self):
        """Projects' prune tests set last_seen directly."""
        from datetime import timedelta
        from django.utils.timezone import now
        Room.objects.add("lobby", "c1")
        Presence.objects.filter(channel_name="c1").update(last_seen=now() - timedelta(hours=1))
        with Signals() as signals:
            Room.objects.prune_presences()
        self.assertEqual(len(signals.calls), 1)

    def test_meta_save_is_an_update(self):
        Room.objects.add("lobby", "c1", self.ann)
        p = Presence.objects.get(channel_name="c1")
        p.meta = {"status": "away"}
        with Signals() as signals:
            p.save()
            p.save()  # unchanged: no second signal
        [call] = signals.calls
        self.assertEqual((call["added"], call["removed"], call["updated"].meta),
                         (None, None, {"status": "away"}))
        self.assertEqual(Presence.objects.get(channel_name="c1").meta, {"status": "away"})
        self.assertEqual([m.meta for m in Room.objects.get(channel_name="lobby").members()],
                         [{"status": "away"}])

    def test_what_cannot_work_names_the_replacement(self):
        Room.objects.add("lobby", "c1")
        with self.assertRaisesRegex(NotImplementedError, "Room.objects.remove"):
            Presence.objects.filter(room="lobby").update(channel_name="c9")
        with self.assertRaisesRegex(NotImplementedError, "Room.objects.add"):
            Room.objects.filter(channel_name="lobby").update(channel_name="x")
        room = Room.objects.get(channel_name="lobby")
        room.channel_name = "renamed"
        with self.assertRaisesRegex(NotImplementedError, "cannot be renamed"):
            room.save()

    def test_apps_config_and_settings(self):
        from django.apps import apps

        from channels_presence.apps import RoomsConfig
        self.assertIsInstance(apps.get_app_config("channels_presence"), RoomsConfig)


class LeastPrivilegeTests(TestCase):
    """A role with the GRANTs of clients/django/README.md: the API works;
    without SELECT on the tables, the error says which GRANT is missing."""

    @classmethod
    def setUpTestData(cls):
        sql("CREATE ROLE channels_presence_app NOLOGIN")
        sql("""GRANT USAGE ON SCHEMA presence TO channels_presence_app;
               GRANT EXECUTE ON FUNCTION
                   presence.add(text, text, text, jsonb), presence.remove(text, text),
                   presence.leave_all(text), presence.touch(text),
                   presence.update(text, text, jsonb), presence.members(text),
                   presence.users(text), presence.anonymous_count(text),
                   presence.rooms_of(text), presence.stats(text),
                   presence.prune(interval), presence.prune_rooms()
               TO channels_presence_app;
               GRANT SELECT ON presence.rooms, presence.presences TO channels_presence_app;
               GRANT INSERT ON presence.rooms TO channels_presence_app;
               GRANT SELECT ON auth_user, channels_presence_room, channels_presence_presence
                  TO channels_presence_app""")
        cls.ann = get_user_model().objects.create(username="ann")

    def test_api_with_the_readme_grants(self):
        sql("SET LOCAL ROLE channels_presence_app")
        with Signals() as signals:
            room = Room.objects.add("lobby", "c1", self.ann)
            Room.objects.add("lobby", "c2")
            self.assertEqual(list(room.get_users()), [self.ann])
            self.assertEqual(room.get_anonymous_count(), 1)
            self.assertEqual([m.channel_name for m in room.members()], ["c1", "c2"])
            Presence.objects.touch("c1")
            Room.objects.remove("lobby", "c2")
            Presence.objects.leave_all("c1")
            Room.objects.create(channel_name="empty")
            Room.objects.prune_presences()
            Room.objects.prune_rooms()
        self.assertEqual(len(signals.calls), 4)
        sql("RESET ROLE")
        sql("REVOKE SELECT ON presence.presences FROM channels_presence_app")
        sql("SET LOCAL ROLE channels_presence_app")
        with self.assertRaisesRegex(ProgrammingError, "permission denied"), transaction.atomic():
            Room.objects.remove("lobby", "c1")
