#!/usr/bin/env bash
# presence behind pgbouncer in transaction pooling (DESIGN.md section 12).
#
# Starts Debian's pgbouncer on a free port in front of the test cluster,
# pool_mode = transaction with 2 server connections for 6 client
# connections of an app role, so that a client's calls run on whichever
# server connection is free. Through it: joins, touches, updates, leaves,
# the readers, and prunes by an admin, one autocommit call at a time, round
# robin over the clients. No session SET: touch_interval comes from ALTER
# ROLE, max_age from ALTER DATABASE or prune()'s argument, and the test
# checks that they took effect. LISTEN needs a session, which transaction
# pooling does not keep: two LISTENers, one on a direct connection, one
# through a second pgbouncer database in session pooling (the README's
# pgbouncer.ini), each receive the events of all of it.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

app=presence_pgbouncer_app
db=$PGDATABASE
started=$SECONDS
it_apt_install pgbouncer
it_ensure_psycopg2
command -v pgbouncer >/dev/null || PATH=$PATH:/usr/sbin
pgbouncer --version | head -n 1

# pgbouncer runs as postgres when we are root (it refuses root), in a
# directory of its own that it can write.
pgb_dir=$(mktemp -d "${TMPDIR:-/tmp}/presence-pgbouncer.XXXXXX")
pgb_pid=""
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pgb_dir"; fi

# it_on_exit (called by the EXIT trap) stops pgbouncer and drops the role.
it_on_exit() {
    if [ -n "$pgb_pid" ]; then
        kill "$pgb_pid" 2>/dev/null || true
        wait "$pgb_pid" 2>/dev/null || true
    fi
    rm -rf "$pgb_dir"
    psql -X -q -d "$db" -c "DROP OWNED BY $app" >/dev/null 2>&1 || true
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $app" >/dev/null 2>&1 || true
}

# The database: presence, an app role with the README's GRANTs, and the
# settings the calls need, per role and per database (a transaction pooler
# does not keep a session's SETs).
it_psql -o /dev/null <<SQL
CREATE EXTENSION presence;
SET client_min_messages = warning;
DROP ROLE IF EXISTS $app;
CREATE ROLE $app LOGIN;
$(it_app_grants "$app")
-- Every touch of this role writes last_seen (the default, 1s, would skip).
ALTER ROLE $app IN DATABASE $db SET presence.touch_interval = 0;
-- prune() without an argument prunes what is older than 30 s (default 60 s).
ALTER DATABASE $db SET presence.max_age = '30s';
SQL

# pgbouncer: transaction pooling, 2 server connections per (database, user),
# trust (the test cluster trusts local connections).
port=$(it_free_port)
cat >"$pgb_dir/pgbouncer.ini" <<EOF
[databases]
$db = host=$PGHOST port=$PGPORT dbname=$db
${db}_listen = host=$PGHOST port=$PGPORT dbname=$db pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $pgb_dir/userlist.txt
admin_users = $PGUSER
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
max_client_conn = 50
logfile = $pgb_dir/pgbouncer.log
pidfile = $pgb_dir/pgbouncer.pid
EOF
printf '"%s" ""\n"%s" ""\n' "$PGUSER" "$app" >"$pgb_dir/userlist.txt"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pgb_dir"/*
    pgbouncer -u postgres "$pgb_dir/pgbouncer.ini" >"$pgb_dir/stdout" 2>&1 &
else
    pgbouncer "$pgb_dir/pgbouncer.ini" >"$pgb_dir/stdout" 2>&1 &
fi
pgb_pid=$!
for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pgb_pid" 2>/dev/null || break
    sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    cat "$pgb_dir/stdout" "$pgb_dir/pgbouncer.log" >&2 || true
    it_fail "pgbouncer did not start on port $port"
fi
it_log "pgbouncer (pid $pgb_pid) on 127.0.0.1:$port, pool_mode transaction, 2 server connections, in front of $PGHOST:$PGPORT"

# The listeners: on a direct connection to the cluster, and through
# pgbouncer's session-pooled database.
it_start_listener "$IT_TMP/received" presence 60
PGHOST=127.0.0.1 PGPORT=$port PGDATABASE=${db}_listen it_start_listener "$IT_TMP/received_pooled" presence 60

# The calls, through pgbouncer only. Checks every result; prints what it did.
/usr/bin/python3 - "$port" "$db" "$app" "$PGUSER" "$IT_NAME" <<'PY' || it_fail "the calls through pgbouncer (above)"
import sys
import time
import psycopg2

port, db, app, admin, name = sys.argv[1:6]
CLIENTS = 6


def connect(user):
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname=db, user=user)
    conn.autocommit = True
    return conn


clients = [connect(app) for _ in range(CLIENTS)]
admin_conn = connect(admin)
turn = 0
backends = set()


def call(sql, *args):
    """Run one autocommit statement on the next client, return its rows."""
    global turn
    conn = clients[turn % CLIENTS]
    turn += 1
    with conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
        cur.execute("SELECT pg_backend_pid()")
        backends.add(cur.fetchone()[0])
    return rows


def check(what, got, expected):
    if got != expected:
        sys.exit("FAIL: %s returned %r, expected %r" % (what, got, expected))
    print("%s:   %s -> %r" % (name, what, got))


def one(sql, *args):
    return call(sql, *args)[0][0]


# Joins, a touch, an update, a leave, the readers.
check("add pb_lobby c1 ann", one("SELECT presence.add('pb_lobby', 'c1', 'ann')"), True)
check("add pb_lobby c2 ann", one("SELECT presence.add('pb_lobby', 'c2', 'ann')"), True)
check("add pb_lobby c3 anonymous",
      one("SELECT presence.add('pb_lobby', 'c3', NULL, %s)", '{"device": "phone"}'), True)
check("add pb_side c1 ann", one("SELECT presence.add('pb_side', 'c1', 'ann')"), True)
check("add again pb_lobby c1 ann", one("SELECT presence.add('pb_lobby', 'c1', 'ann')"), False)

# touch_interval = 0 from ALTER ROLE: two touches in a row both write.
before = one("SELECT last_seen FROM presence.members('pb_lobby') WHERE channel = 'c2'")
check("touch c2", one("SELECT presence.touch('c2')"), 1)
mid = one("SELECT last_seen FROM presence.members('pb_lobby') WHERE channel = 'c2'")
check("touch c2 again", one("SELECT presence.touch('c2')"), 1)
after = one("SELECT last_seen FROM presence.members('pb_lobby') WHERE channel = 'c2'")
if not before < mid < after:
    sys.exit("FAIL: touches within 1 s did not both write last_seen (%s, %s, %s): "
             "touch_interval from ALTER ROLE not in effect" % (before, mid, after))
print(name + ":   two touches within a second both wrote last_seen (touch_interval 0 from ALTER ROLE)")
check("touch c1", one("SELECT presence.touch('c1')"), 2)
check("touch unknown", one("SELECT presence.touch('nobody')"), 0)

check("update pb_lobby c2", one("SELECT presence.update('pb_lobby', 'c2', %s)", '{"status": "away"}'), True)
check("remove pb_lobby c3", one("SELECT presence.remove('pb_lobby', 'c3')"), True)
check("remove pb_lobby c3 again", one("SELECT presence.remove('pb_lobby', 'c3')"), False)

check("members pb_lobby",
      call("SELECT channel, user_id, meta FROM presence.members('pb_lobby')"),
      [("c1", "ann", None), ("c2", "ann", {"status": "away"})])
check("users pb_lobby", call("SELECT * FROM presence.users('pb_lobby')"), [("ann",)])
check("anonymous_count pb_lobby", one("SELECT presence.anonymous_count('pb_lobby')"), 0)
check("rooms_of c1", call("SELECT * FROM presence.rooms_of('c1')"), [("pb_lobby",), ("pb_side",)])
check("stats pb_lobby", call("SELECT * FROM presence.stats('pb_lobby')"), [(2, 1, 0)])
check("leave_all c1", one("SELECT presence.leave_all('c1')"), 2)

# Pruning by an admin through pgbouncer: max_age from ALTER DATABASE (30 s),
# then from the argument. The admin ages the presences as a vanished
# connection's would be (an UPDATE of last_seen only, which sends nothing).
for ch, user in (("p1", "x"), ("p2", "y"), ("p3", "z")):
    check("add pb_prune %s %s" % (ch, user),
          one("SELECT presence.add('pb_prune', %s, %s)", ch, user), True)
with admin_conn.cursor() as cur:
    cur.execute("""UPDATE presence.presences
                      SET last_seen = now() - CASE channel WHEN 'p3' THEN interval '20 s'
                                                           ELSE interval '45 s' END
                    WHERE room = 'pb_prune'""")
    cur.execute("SELECT presence.prune()")
    check("prune() by the admin (max_age 30s from ALTER DATABASE)", cur.fetchone()[0], 2)
    cur.execute("SELECT presence.prune_rooms()")
    check("prune_rooms() by the admin", cur.fetchone()[0], 1)
    cur.execute("SELECT presence.prune('10 s')")
    check("prune('10 s') by the admin", cur.fetchone()[0], 1)
    cur.execute("SELECT name FROM presence.rooms WHERE name LIKE 'pb\\_%%' ORDER BY name")
    check("rooms left", cur.fetchall(), [("pb_lobby",), ("pb_prune",)])

if len(backends) > 2:
    sys.exit("FAIL: the clients ran on %d server connections, pool size is 2" % len(backends))
print("%s: %d calls by %d clients ran on %d server connection(s)"
      % (name, turn, CLIENTS, len(backends)))
PY

# pgbouncer says it pooled the app's calls by transaction and the
# listener's session by session.
pool_mode() {
    psql -X -At -h 127.0.0.1 -p "$port" -d pgbouncer -c 'SHOW POOLS' |
        awk -F'|' -v db="$1" -v u="$2" '$1 == db && $2 == u {print $NF}'
}
mode=$(pool_mode "$db" "$app")
[ "$mode" = transaction ] || it_fail "the pool of $db/$app is in mode '$mode', expected transaction"
mode=$(pool_mode "${db}_listen" "$PGUSER")
[ "$mode" = session ] || it_fail "the pool of ${db}_listen/$PGUSER is in mode '$mode', expected session"
it_log "SHOW POOLS: $db/$app in transaction mode, ${db}_listen/$PGUSER (the listener) in session mode"

# The events of all of it, on both listeners.
it_value "SELECT presence.flush_events()" >/dev/null  # worker mode: events first
it_value "SELECT pg_notify('presence', '{\"test\":\"end\"}')" >/dev/null
for ((i = 0; i < 100; i++)); do
    grep -qx '{"test":"end"}' "$IT_TMP/received" && grep -qx '{"test":"end"}' "$IT_TMP/received_pooled" && break
    sleep 0.1
done
cat >"$IT_TMP/expected" <<'EOF'
{"room":"pb_lobby","added":{"channel":"c1","user_id":"ann","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_lobby","added":{"channel":"c2","user_id":"ann","meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_lobby","added":{"channel":"c3","user_id":null,"meta":{"device":"phone"},"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_side","added":{"channel":"c1","user_id":"ann","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_lobby","added":null,"removed":null,"updated":{"channel":"c2","user_id":"ann","meta":{"status":"away"}},"bulk_change":false}
{"room":"pb_lobby","added":null,"removed":{"channel":"c3","user_id":null,"meta":{"device":"phone"},"user_left":false},"updated":null,"bulk_change":false}
{"room":"pb_lobby","added":null,"removed":{"channel":"c1","user_id":"ann","meta":null,"user_left":false},"updated":null,"bulk_change":false}
{"room":"pb_side","added":null,"removed":{"channel":"c1","user_id":"ann","meta":null,"user_left":true},"updated":null,"bulk_change":false}
{"room":"pb_prune","added":{"channel":"p1","user_id":"x","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_prune","added":{"channel":"p2","user_id":"y","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_prune","added":{"channel":"p3","user_id":"z","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"pb_prune","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":2}
{"room":"pb_prune","added":null,"removed":{"channel":"p3","user_id":"z","meta":null,"user_left":true},"updated":null,"bulk_change":false}
EOF
python3 "$PRESENCE_REPO/test/tools/events_match.py" "$IT_TMP/expected" "$IT_TMP/received" pb_ ||
    it_fail "the events received on the direct connection differ (above)"
it_log "ok: the listener on a direct connection received the $(wc -l <"$IT_TMP/expected") events, in order"
python3 "$PRESENCE_REPO/test/tools/events_match.py" "$IT_TMP/expected" "$IT_TMP/received_pooled" pb_ ||
    it_fail "the events received through pgbouncer's session pool differ (above)"
it_log "ok: the listener through pgbouncer's session-pooled database received them too"
it_log "ok: presence works behind pgbouncer in transaction pooling ($((SECONDS - started))s)"
