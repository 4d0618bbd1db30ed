#!/usr/bin/env python3
"""What the drop-in costs per call over the bare SQL function, in one run:

    PGDATABASE=... ./manage.py migrate && PGDATABASE=... python3 bench.py [N]

add + remove through Room.objects (one round trip each, reading what it
needs to signal) against SELECT presence.add / presence.remove on a cursor,
without receivers or a channel layer (the app's own cost), then touch."""

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacyproject.settings")
import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

import channels_presence.models as models  # noqa: E402
from channels_presence.models import Presence, Room  # noqa: E402
from channels_presence.signals import presence_changed  # noqa: E402
from lobby.signals import broadcast_presence  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
presence_changed.disconnect(broadcast_presence)
models._group = lambda *args: None  # no channel layer
user = get_user_model().objects.get_or_create(username="bench")[0]


def measure(label, call):
    call(-1)
    start = time.perf_counter()
    for i in range(N):
        call(i)
    print("%-50s %8.3f ms per call" % (label, (time.perf_counter() - start) / N * 1000))


def bare_pair(i):
    with connection.cursor() as cursor:
        cursor.execute("SELECT presence.add('bench', %s, %s)", ["c%d" % i, str(user.pk)])
        cursor.execute("SELECT presence.remove('bench', %s)", ["c%d" % i])


def dropin_pair(i):
    Room.objects.add("bench", "c%d" % i, user)
    Room.objects.remove("bench", "c%d" % i)


def bare_touch(i):
    with connection.cursor() as cursor:
        cursor.execute("SELECT presence.touch('t')")


for _ in range(2):
    measure("bare presence.add + presence.remove (pair)", bare_pair)
    measure("Room.objects.add + Room.objects.remove (pair)", dropin_pair)
Room.objects.add("bench", "t", user)
measure("bare presence.touch", bare_touch)
measure("Presence.objects.touch", lambda i: Presence.objects.touch("t"))
Presence.objects.leave_all("t")
