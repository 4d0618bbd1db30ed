#!/usr/bin/env bash
# Events a listener can trust (DESIGN.md section 6), a few seconds.  Any role
# that can connect may NOTIFY on channel presence; events of the extension
# are signed with presence.event_key() (HMAC-SHA256), so a listener tells
# them apart:
#  - a role with no grant at all cannot read the key (42501), and the event
#    it forges with NOTIFY fails verification (test/tools/verify_events.py);
#  - a real event verifies; replayed by that role, it is the same payload
#    with an old "ts", which a listener can refuse;
#  - after presence.rotate_event_key(), new events verify under the new key
#    and not under the old one.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_psycopg2
it_psql -q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION presence;
DROP ROLE IF EXISTS nobody_special;
CREATE ROLE nobody_special LOGIN;
SQL
it_on_exit() { it_psql -q -c 'DROP ROLE IF EXISTS nobody_special' >/dev/null 2>&1 || true; }

verify() { /usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$@"; }

# A role with no grants cannot read the key.
out=$(PGUSER=nobody_special psql -X -At -c 'SELECT presence.event_key()' 2>&1 || true)
case $out in *"permission denied"*) ;; *) it_fail "a role without grants read the key: $out" ;; esac

it_start_listener "$IT_TMP/received" presence 20 3
it_psql -q -c "SELECT presence.add('trust', 'c1', 'ann')" >/dev/null
# The forger: a copy of a real event's body with a made-up signature.
PGUSER=nobody_special it_psql -q -o /dev/null -c "SELECT pg_notify('presence',
  '{\"room\":\"trust\",\"added\":{\"channel\":\"evil\",\"user_id\":\"mallory\",\"meta\":null,\"user_joined\":true},\"removed\":null,\"updated\":null,\"bulk_change\":false,\"ts\":1,\"sig\":\"$(printf '0%.0s' {1..64})\"}')"
# And one that replays the real event as it was received.
it_wait_for_lines() { for ((i = 0; i < 100; i++)); do [ "$(wc -l <"$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
it_wait_for_lines "$IT_TMP/received" 2 || it_fail "the listener did not receive the first two payloads"
real=$(head -n 1 "$IT_TMP/received")
echo "SELECT pg_notify('presence', :'p')" |
    PGUSER=nobody_special psql -X -q -v ON_ERROR_STOP=1 -v p="$real" >/dev/null
it_wait_listener "$IT_TMP/received" || it_fail "the listener did not get 3 payloads"

head -n 1 "$IT_TMP/received" >"$IT_TMP/real"
verify "$IT_TMP/real" >/dev/null || it_fail "the real event does not verify"
sed -n 2p "$IT_TMP/received" >"$IT_TMP/forged"
if verify "$IT_TMP/forged" >/dev/null 2>"$IT_TMP/forged.err"; then it_fail "the forged event verified"; fi
grep -q "forged event" "$IT_TMP/forged.err" || it_fail "the forged event was not reported as forged: $(cat "$IT_TMP/forged.err")"
sed -n 3p "$IT_TMP/received" >"$IT_TMP/replayed"
cmp -s "$IT_TMP/real" "$IT_TMP/replayed" || it_fail "the replayed payload differs from the real one"
it_log "ok: a real event verifies, a forged one does not, a replay is byte-identical (same ts: refuse repeats)"

# Rotation: the key changes; a new event verifies under the new key only.
old=$(it_value 'SELECT presence.event_key()')
it_psql -q -c 'SELECT presence.rotate_event_key()' >/dev/null
new=$(it_value 'SELECT presence.event_key()')
[ "$old" != "$new" ] && [ ${#new} = 64 ] || it_fail "rotate_event_key() did not give a new 64-digit key"
it_start_listener "$IT_TMP/after" presence 20 1
it_psql -q -c "SELECT presence.remove('trust', 'c1')" >/dev/null
it_wait_listener "$IT_TMP/after" || it_fail "no event after the rotation"
verify "$IT_TMP/after" >/dev/null || it_fail "an event after the rotation does not verify under the new key"
/usr/bin/python3 - "$old" "$(cat "$IT_TMP/after")" <<'PY' || it_fail "an event after the rotation verifies under the old key"
import hashlib, hmac, sys
key, payload = bytes.fromhex(sys.argv[1]), sys.argv[2]
at = payload.rindex(',"sig":"')
sys.exit(1 if hmac.new(key, payload[:at].encode(), hashlib.sha256).hexdigest() == payload[at + 8:-2] else 0)
PY
it_log "ok: after rotate_event_key() events verify under the new key, not the old one"
