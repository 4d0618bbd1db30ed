#!/usr/bin/env bash
# channels_presence behind pgbouncer (Debian's 1.18) in transaction pooling,
# about 15 s.  The test project (clients/django/tests_app) connects through
# a pgbouncer started here on a free port, with 2 server connections for
# many clients, so consecutive statements of one client land on different
# server sessions; its listener connects directly (CHANNELS_PRESENCE_LISTEN
# names a database alias without pgbouncer).  Checked, as app code runs it:
# joins, touches, leaves, leave_all and a prune through pgbouncer, with the
# prune's max_age from CHANNELS_PRESENCE_MAX_AGE (an argument, not a session
# SET, which the pooler would not keep); each change signalled once, by the
# call (not again by the listener); a change made by psql signalled once by
# the listener; no presence.* setting left on any server session.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=examples/chat/lib.sh
. "$PRESENCE_REPO/examples/chat/lib.sh"
started=$SECONDS

chat_ensure_deps || it_fail "could not install ${CHAT_PACKAGES[*]}"
it_apt_install pgbouncer

# pgbouncer refuses to run as root: it runs as postgres, from a directory
# of its own.
bouncer_dir=$(mktemp -d "${TMPDIR:-/tmp}/presence-bouncer.XXXXXX")
bouncer_port=$(it_free_port)
cat >"$bouncer_dir/pgbouncer.ini" <<EOF
[databases]
* = host=$PGHOST port=$PGPORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $bouncer_dir/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
logfile = $bouncer_dir/pgbouncer.log
pidfile = $bouncer_dir/pgbouncer.pid
EOF
printf '"%s" ""\n' "${PGUSER:-postgres}" >"$bouncer_dir/users.txt"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$bouncer_dir"; fi
it_on_exit() {
    if [ -f "$bouncer_dir/pgbouncer.pid" ]; then
        kill "$(cat "$bouncer_dir/pgbouncer.pid")" 2>/dev/null || true
    fi
    rm -rf "$bouncer_dir"
}
if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- pgbouncer -d "$bouncer_dir/pgbouncer.ini"
else
    pgbouncer -d "$bouncer_dir/pgbouncer.ini"
fi
for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$bouncer_port") 2>/dev/null && break
    sleep 0.1
done
bouncer_version=$(pgbouncer --version | head -n 1)
it_log "$bouncer_version on 127.0.0.1:$bouncer_port, pool_mode = transaction, 2 server connections"

it_psql -o /dev/null -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS presence'

cd "$PRESENCE_REPO/clients/django/tests_app"
export DJANGO_SETTINGS_MODULE=legacyproject.settings LOBBY_MAX_AGE=3
export LOBBY_LISTEN_HOST=$PGHOST LOBBY_LISTEN_PORT=$PGPORT
direct_host=$PGHOST direct_port=$PGPORT
# The app's own database connections go through pgbouncer.
PGHOST=127.0.0.1 PGPORT=$bouncer_port "$CHAT_PYTHON" manage.py migrate -v 0 ||
    it_fail "manage.py migrate through pgbouncer failed"

if ! PGHOST=127.0.0.1 PGPORT=$bouncer_port PSQL_HOST=$direct_host PSQL_PORT=$direct_port \
    timeout 120 "$CHAT_PYTHON" - <<'PY'; then
import os, subprocess, sys, threading, time

import django
django.setup()

from django.contrib.auth import get_user_model
from django.db import connections

from channels_presence.listener import start_listener
from channels_presence.models import Presence, Room
from channels_presence.signals import presence_changed

failures = []
def check(ok, what):
    print("  %s %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures.append(what)

calls = []
lock = threading.Condition()
def record(sender, room, **kw):
    with lock:
        calls.append((room.channel_name, kw.get("added") and kw["added"].channel_name,
                      kw.get("removed") and kw["removed"].channel_name, kw["bulk_change"]))
        lock.notify_all()
presence_changed.connect(record, weak=False)

def wait_for(n, timeout=5):
    with lock:
        return lock.wait_for(lambda: len(calls) >= n, timeout)

def psql(sql):
    env = dict(os.environ, PGHOST=os.environ["PSQL_HOST"], PGPORT=os.environ["PSQL_PORT"])
    subprocess.run(["psql", "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, env=env)

from channels_presence import db
check(db.supports_origin("default"), "the extension marks changes with presence.origin "
      "(without it, changes made here are signalled again by the listener)")
bouncer = connections["default"].get_connection_params()
check(str(bouncer.get("port")) != os.environ["PSQL_PORT"], "the app connects through pgbouncer")
listener = start_listener()
check(listener.holding() == ["direct"], "the listener holds the lock on its direct connection")

ann = get_user_model().objects.get_or_create(username="ann")[0]
Room.objects.add("pooled", "tab1", ann)
Room.objects.add("pooled", "tab2", ann)
Room.objects.add("other", "tab1", ann)
check(calls == [("pooled", "tab1", None, False), ("pooled", "tab2", None, False),
                ("other", "tab1", None, False)], "three joins, each signalled by its call: %r" % calls)
Presence.objects.touch("tab1")
check(Presence.objects.touch_count("tab1") == 2, "touch through pgbouncer")
Room.objects.remove("pooled", "tab2")
Presence.objects.leave_all("tab1")
check(len(calls) == 6, "a remove and a leave_all of two rooms: 3 more signals")
# A stale presence: CHANNELS_PRESENCE_MAX_AGE is 3 s, presence.max_age 60 s.
Room.objects.add("pooled", "stale")
psql("UPDATE presence.presences SET last_seen = now() - interval '10 seconds' WHERE channel = 'stale'")
Room.objects.prune_presences()
check(not Presence.objects.filter(channel_name="stale").exists(),
      "prune_presences() used CHANNELS_PRESENCE_MAX_AGE (3 s) through pgbouncer")
check(calls[-1] == ("pooled", None, None, True), "the prune: one bulk_change")
n = len(calls)
psql("SELECT presence.add('pooled', 'from-psql')")
check(wait_for(n + 1), "a change made by psql is signalled by the listener")
time.sleep(1)  # anything signalled twice would be here by now
check(calls[n:] == [("pooled", "from-psql", None, False)],
      "... once, and nothing made through the app was signalled again: %r" % calls[n:])
settings = set()
for _ in range(6):  # different server sessions
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting('presence.max_age'), "
                       "coalesce(current_setting('presence.origin', true), '')")
        settings.add(cursor.fetchone())
check(settings == {("1min", "")}, "no presence setting left on the server sessions: %r" % settings)
listener.stop()
psql("DELETE FROM presence.rooms")
sys.exit(1 if failures else 0)
PY
    tail -n 20 "$bouncer_dir/pgbouncer.log" >&2
    it_fail "the app behind pgbouncer failed (see above)"
fi
it_log "ok in $((SECONDS - started))s"
