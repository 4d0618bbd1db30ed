#!/usr/bin/python3
"""The Django drop-in's listener through a failover (test/slow/80_failover.sh).

    django_listener.py --hosts H1,H2 --ports P1,P2 --dbname DB --out FILE --ready FILE

Configures Django with one database whose HOST and PORT name both nodes and
OPTIONS target_session_attrs=read-write (what a Django project behind Patroni
would write), starts channels_presence.listener.start_listener() and
appends one JSON line to FILE per presence_changed signal it receives:
{"t": epoch, "room": name, "added": channel or null, "removed": channel or
null, "bulk_change": bool}.  Touches --ready once listening; runs until
SIGTERM.  SIGUSR1 prints the stack of every thread to stderr.

Only the drop-in's documented API is used (start_listener, the
presence_changed signal and its room/added/removed/bulk_change arguments),
so that its internals may change.
"""

import argparse
import faulthandler
import json
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "clients", "django"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--dbname", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()

    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="failover-test",
        USE_TZ=True,
        DATABASES={"default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": args.dbname, "USER": "postgres",
            "HOST": args.hosts, "PORT": args.ports,
            "OPTIONS": {"target_session_attrs": "read-write", "connect_timeout": 3},
        }},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "channels_presence"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    from channels_presence.listener import start_listener
    from channels_presence.signals import presence_changed

    out = open(args.out, "a", encoding="utf-8")
    lock = threading.Lock()

    def channel_of(presence):
        return None if presence is None else presence.channel_name

    def received(sender, room, added=None, removed=None, bulk_change=False, **kwargs):
        line = json.dumps({"t": time.time(), "room": room.channel_name, "added": channel_of(added),
                           "removed": channel_of(removed), "bulk_change": bool(bulk_change)})
        with lock:
            out.write(line + "\n")
            out.flush()

    presence_changed.connect(received, weak=False)
    # SIGUSR1 prints every thread's stack (the test sends it when it fails).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stopping.set())
    listener = start_listener()  # no CHANNEL_LAYERS: nothing to forward to
    open(args.ready, "w").close()
    while not stopping.wait(0.5):
        pass
    del listener  # a daemon thread: it ends with the process


if __name__ == "__main__":
    main()
