#!/usr/bin/env bash
# Change events as a real LISTENer sees them (DESIGN.md section 6): a second
# connection (test/tools/presence_listen) listens on channel presence while
# psql joins, leaves, updates, deletes as an admin, rolls back, switches
# events off, uses awkward names and a large meta. Every event must carry a
# valid signature (test/tools/verify_events.py checks it against
# presence.event_key()); without their "ts" and "sig", the payloads received
# must equal, line by line, the list below, and each must be valid JSON. Steps that must send no event are in that list by their absence:
# an extra event shifts every line after it.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_psycopg2
it_psql -c 'CREATE EXTENSION presence'

# The expected payloads, in commit order. The last line is not an event but
# a marker this test sends itself after the last step, so that an unexpected
# event from the last step also shows up as a difference.
cat >"$IT_TMP/expected" <<'EOF'
{"room":"lobby","added":{"channel":"c1","user_id":"42","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"lobby","added":{"channel":"c2","user_id":"42","meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"lobby","added":{"channel":"a1","user_id":null,"meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"lobby","added":null,"removed":null,"updated":{"channel":"c1","user_id":"42","meta":{"status":"away"}},"bulk_change":false}
{"room":"lobby","added":null,"removed":{"channel":"c1","user_id":"42","meta":{"status":"away"},"user_left":false},"updated":null,"bulk_change":false}
{"room":"lobby","added":null,"removed":{"channel":"c2","user_id":"42","meta":null,"user_left":true},"updated":null,"bulk_change":false}
{"room":"bulk","added":{"channel":"b1","user_id":"u1","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"bulk","added":{"channel":"b2","user_id":"u2","meta":{"n":2},"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"bulk","added":{"channel":"b3","user_id":null,"meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"bulk","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":3}
{"room":"doomed","added":{"channel":"d1","user_id":"7","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"doomed","added":null,"removed":{"channel":"d1","user_id":"7","meta":null,"user_left":true},"updated":null,"bulk_change":false}
{"room":"ro\"om\\ é\u0001","added":{"channel":"ch\nan\tnel\"\\","user_id":"us\u001fer é\"'","meta":{"k\"\\\n":"v é\u0002"},"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"big","added":{"channel":"m1","user_id":"5","meta":null,"meta_omitted":true,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"test":"end"}
EOF
count=$(wc -l <"$IT_TMP/expected")

# The listener: a connection of its own, stopping after $count payloads, or
# after 20 s (then it exits non-zero and the test fails instead of hanging).
it_start_listener "$IT_TMP/received" presence 20 "$count"
it_log "listener started, expecting $count payloads"

# The steps, one autocommit statement each unless said otherwise, on one
# psql connection. Results are printed for the reader; the events are checked.
it_psql -e <<'SQL'
-- A join: user 42's first connection in lobby (user_joined true).
SELECT presence.add('lobby', 'c1', '42');
-- A second tab of the same user (user_joined false).
SELECT presence.add('lobby', 'c2', '42');
-- An anonymous join (user_joined is always false for anonymous presences).
SELECT presence.add('lobby', 'a1');
-- A rejoin of c1: refreshes last_seen, returns false, no event.
SELECT presence.add('lobby', 'c1', '42');
-- A touch, both kinds: within touch_interval (a read only), and one that
-- writes last_seen (touch_interval 0). Neither sends an event.
SELECT presence.touch('c1');
SET presence.touch_interval = 0;
SELECT presence.touch('c1');
RESET presence.touch_interval;
-- A meta update: an updated event.
SELECT presence.update('lobby', 'c1', '{"status": "away"}');
-- The same meta again: nothing changed, no event.
SELECT presence.update('lobby', 'c1', '{"status": "away"}');
-- c1 leaves: user 42 still has c2 here (user_left false).
SELECT presence.remove('lobby', 'c1');
-- c2 leaves: user 42's last connection (user_left true).
SELECT presence.remove('lobby', 'c2');

-- An admin's plain DELETE of the 3 presences of room bulk: one statement
-- that removes several presences of a room sends one bulk_change event.
SELECT presence.add('bulk', 'b1', 'u1');
SELECT presence.add('bulk', 'b2', 'u2', '{"n": 2}');
SELECT presence.add('bulk', 'b3');
DELETE FROM presence.presences WHERE room = 'bulk';

-- Deleting a room cascades to its one presence: a removed event.
SELECT presence.add('doomed', 'd1', '7');
DELETE FROM presence.rooms WHERE name = 'doomed';

-- A rolled back transaction: its join and leave never happened, no event.
BEGIN;
SELECT presence.add('lobby', 'r1', '9');
SELECT presence.remove('lobby', 'a1');
ROLLBACK;

-- presence.notify = off: this session's changes send no event.
SET presence.notify = off;
SELECT presence.add('quiet', 'q1', '1');
RESET presence.notify;

-- Names with a double quote, a backslash, a blank, a newline, a tab, a
-- single quote, control characters (U+0001, U+001F) and a non-ASCII letter,
-- in the room, the channel, the user_id and meta: the payload escapes them
-- as JSON does, and keeps the non-ASCII letter as it is.
SELECT presence.add(E'ro"om\\ \u00e9\x01', E'ch\nan\tnel"\\',
                    E'us\x1fer \u00e9"''', jsonb_build_object(E'k"\\\n', E'v \u00e9\x02'));

-- A join with a meta of about 10000 bytes: the payload would pass NOTIFY's
-- 8000-byte limit, so meta is left out ("meta":null,"meta_omitted":true).
SELECT presence.add('big', 'm1', '5', jsonb_build_object('blob', repeat('x', 10000)));

-- The end marker (not a presence event), once every event before it has
-- been sent (in worker mode the worker sends them after commit).
SELECT presence.flush_events();
SELECT pg_notify('presence', '{"test":"end"}');
SQL

# Wait for the listener: it exits once it has $count payloads.
listener_ok=true
it_wait_listener "$IT_TMP/received" || listener_ok=false
it_log "listener received $(wc -l <"$IT_TMP/received") payloads"

/usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$IT_TMP/received" >"$IT_TMP/verified" ||
    it_fail "an event's signature does not verify (above)"
if ! diff -u "$IT_TMP/expected" "$IT_TMP/verified"; then
    it_fail "the payloads received differ from the expected ones (diff above: - expected, + received)"
fi
"$listener_ok" || it_fail "the listener did not finish cleanly"
it_check_json "$IT_TMP/received"

it_log "ok: $count payloads as expected, in order, each signed and valid JSON (joins, second tab, anonymous," \
    "update, leaves with user_left, bulk DELETE, cascade, escaping, meta_omitted);" \
    "rejoin, touch, unchanged meta, rollback and presence.notify = off sent nothing"
