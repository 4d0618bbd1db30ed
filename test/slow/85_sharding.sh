#!/usr/bin/env bash
# Sharding by room with PL/Proxy (DESIGN.md section 13), on loopback: four
# shard clusters of their own (presence and pg_cron in each, free ports),
# the router kit clients/plproxy/router.sql in this test's database of the
# shared cluster, and a single-cluster reference database next to it.
#
# With 2 shards, then with 4 (the same clusters, emptied, the router's
# shard list replaced):
#   - routing: each single-room call (add, remove, update, members, users,
#     anonymous_count, stats) reaches exactly one shard, the room's; the
#     channel-keyed calls (touch, leave_all, rooms_of) reach every shard;
#     their room-scoped forms only the shards of the rooms given
#     (pg_stat_user_functions on every shard);
#   - the same scripted session (test/shard: joins, moves, meta, readers,
#     errors, concurrent joins from 4 connections, disconnects, prune) runs
#     as an application role through the router and on the single cluster:
#     the transcripts, the final state of every room, and the events (one
#     LISTENer per shard, one on the single cluster; per room in order,
#     conc_* rooms as multisets) must be equal, and each room's events come
#     from its shard only;
# then, with 4 shards, each shard's own pg_cron job (scheduled through the
# router) prunes that shard.  Shards 2 and 3 run in worker mode.  Takes 35 s
# to 2.5 minutes on a loaded 2-core machine, mostly waiting for pg_cron's
# next minute boundary.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/../integration/helpers.bash"
# shellcheck source=test/lib.sh
. "$PRESENCE_REPO/test/lib.sh"

started=$SECONDS
kit=$PRESENCE_REPO/clients/plproxy
sess=$PRESENCE_REPO/test/shard
router_db=$PGDATABASE
ref_db=${PGDATABASE}_ref
app=presence_shard_app
shard_db=presence_shard
nshards=4
shard_dirs=() shard_ports=() listener_pids=() start_pids=()

# it_on_exit (helpers.bash's EXIT trap, also on failure): stop the shard
# clusters and remove them.
it_on_exit() {
    local dir pid
    for pid in "${start_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for dir in "${shard_dirs[@]}"; do
        presence_stop_cluster "$dir"
        rm -rf "$dir"
    done
}

# PL/Proxy: Debian's postgresql-15-plproxy, in the PostgreSQL the tests run.
if [ "$(it_value "SELECT count(*) FROM pg_available_extensions WHERE name = 'plproxy'")" = 0 ]; then
    it_apt_install postgresql-15-plproxy
    [ "$(it_value "SELECT count(*) FROM pg_available_extensions WHERE name = 'plproxy'")" = 1 ] ||
        it_fail "plproxy is not available in $PRESENCE_PGBIN (postgresql-15-plproxy installs it into /usr/lib/postgresql/15)"
fi
it_build_listen
it_ensure_psycopg2

# psql helpers: on the router (this test's database), on the reference, on
# shard I, each as ROLE (postgres unless said).
q_router() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$router_db" "$@"; }
q_ref() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$ref_db" "$@"; }
q_shard() {
    local i=$1
    shift
    psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${shard_ports[$i]}" -d "$shard_db" "$@"
}
connstr() { printf 'host=127.0.0.1 port=%s dbname=%s' "${shard_ports[$1]}" "$shard_db"; }

# The shard clusters: presence_start_cluster (test/lib.sh) with pg_cron in
# the shard database, on 127.0.0.1 and a free port; in a subshell, so that
# its PG* exports stay there.  Shards 2 and 3 run in worker mode (presence
# preloaded: a background worker sends the events), so the 4-shard session
# mixes both transports and must still match the single cluster.
# The four start at once (initdb and start take a few seconds each).
for ((i = 0; i < nshards; i++)); do
    shard_dirs+=("$(presence_mktemp)")
    shard_ports+=("$(it_free_port)")
    extra=""
    if [ "$i" -ge 2 ]; then extra=test/worker.conf; fi
    (PRESENCE_EXTRA_CONF=$extra presence_start_cluster "${shard_dirs[$i]}" "${shard_ports[$i]}" "$shard_db" \
        2>"$IT_TMP/start$i.err") &
    start_pids+=($!)
done
for ((i = 0; i < nshards; i++)); do
    wait "${start_pids[$i]}" || { cat "$IT_TMP/start$i.err" >&2; it_fail "shard cluster $i did not start"; }
    q_shard "$i" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE ROLE $app LOGIN;
SQL
done
for i in 2 3; do
    [ "$(q_shard "$i" -c "SHOW shared_preload_libraries")" = pg_cron,presence ] ||
        it_fail "shard $i is not in worker mode"
done
it_log "$nshards shard clusters on ports ${shard_ports[*]}, shards 2 and 3 in worker mode ($((SECONDS - started))s)"

# The router: the kit, the application role with grant_app and a user
# mapping of its own, a mapping for the admin (postgres).  The reference: a
# database with the extension.  sqlstate_of(sql) (both sides) runs sql and
# returns its SQLSTATE, so that the transcripts show errors in line.
it_value "DO \$\$BEGIN CREATE ROLE $app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$" >/dev/null
q_router -f "$kit/router.sql" >/dev/null
PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$ref_db"
createdb "$ref_db"
helper_sql="CREATE FUNCTION public.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS
  \$\$BEGIN EXECUTE stmt; RETURN 'no error'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END\$\$;"
q_router -c "$helper_sql"
q_ref -c "$helper_sql"

# The extension's GRANTs for the app role (README), on every shard and the reference.
app_grants=$(it_app_grants "$app")

# reset N: empties the first N shards and the reference (the extension
# dropped and created again, statistics reset) and points the router at the
# first N shards.  On the reference, the room-scoped forms the router adds
# mean what they mean on one server when every room of the channel is given:
# touch(channel) and leave_all(channel).
reset() {
    local n=$1 i list=()
    for ((i = 0; i < n; i++)); do
        q_shard "$i" >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS presence CASCADE;
CREATE EXTENSION presence;
$app_grants
SELECT pg_stat_reset();
SQL
        list+=("'$(connstr "$i")'")
    done
    q_ref >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS presence CASCADE;
CREATE EXTENSION presence;
$app_grants
CREATE FUNCTION presence.touch(channel text, rooms text[]) RETURNS integer
    LANGUAGE sql RETURN presence.touch(channel);
CREATE FUNCTION presence.leave_all(channel text, rooms text[]) RETURNS integer
    LANGUAGE sql RETURN presence.leave_all(channel);
GRANT EXECUTE ON FUNCTION presence.touch(text, text[]), presence.leave_all(text, text[]) TO $app;
SQL
    q_router -c "CALL presence_router.set_shards(ARRAY[$(IFS=,; echo "${list[*]}")])" >/dev/null
    if [ "$n" = 2 ]; then  # first time: the mappings and GRANTs
        q_router >/dev/null <<SQL
CREATE USER MAPPING FOR $app SERVER presence_shards OPTIONS (user '$app');
CREATE USER MAPPING FOR postgres SERVER presence_shards OPTIONS (user 'postgres');
CALL presence_router.grant_app('$app');
SQL
    fi
    [ "$(q_router -c "SELECT string_agg(connstr, ',' ORDER BY shard) FROM presence_router.shards()")" = \
        "$(IFS=,; echo "${list[*]//\'/}")" ] || it_fail "presence_router.shards() does not list the $n shards in order"
}

# start_listeners TAG N: a LISTENer on each of the first N shards
# ($IT_TMP/TAG.shardI) and on the reference ($IT_TMP/TAG.ref).
start_listeners() {
    local tag=$1 n=$2 i
    listener_pids=()
    for ((i = 0; i < n; i++)); do
        : >"$IT_TMP/$tag.shard$i.err"
        PGHOST=127.0.0.1 PGPORT=${shard_ports[$i]} PGDATABASE=$shard_db \
            it_start_listener "$IT_TMP/$tag.shard$i" presence 900
        listener_pids+=("$IT_LISTENER_PID")
    done
    : >"$IT_TMP/$tag.ref.err"
    PGDATABASE=$ref_db it_start_listener "$IT_TMP/$tag.ref" presence 900
    listener_pids+=("$IT_LISTENER_PID")
}

# stop_listeners TAG N: sends an end marker on every database listened to,
# waits (30 s at most) until each listener has received it, so that it has
# everything sent before, and stops the listeners.
stop_listeners() {
    local tag=$1 n=$2 i f pid marker='{"test":"end"}' files=()
    # flush_events() first: in worker mode the marker would overtake the
    # events the worker has not sent yet.
    for ((i = 0; i < n; i++)); do
        q_shard "$i" -c "SELECT presence.flush_events()" -c "SELECT pg_notify('presence', '$marker')" >/dev/null
        files+=("$IT_TMP/$tag.shard$i")
    done
    q_ref -c "SELECT presence.flush_events()" -c "SELECT pg_notify('presence', '$marker')" >/dev/null
    files+=("$IT_TMP/$tag.ref")
    for f in "${files[@]}"; do
        for ((i = 0; i < 300; i++)); do
            grep -qxF "$marker" "$f" && break
            sleep 0.1
        done
        grep -qxF "$marker" "$f" || it_fail "the listener writing $f did not receive the end marker"
        it_check_json "$f"
    done
    # Every event is signed with its own database's key (presence.event_key()
    # there): a listener verifies each shard's events with that shard's key.
    for ((i = 0; i < n; i++)); do
        PGHOST=127.0.0.1 PGPORT=${shard_ports[$i]} PGDATABASE=$shard_db \
            /usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$IT_TMP/$tag.shard$i" >/dev/null ||
            it_fail "shard $i: events whose signature does not verify with shard $i's key (above)"
    done
    PGDATABASE=$ref_db /usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$IT_TMP/$tag.ref" >/dev/null ||
        it_fail "single cluster: events whose signature does not verify (above)"
    # ...and only with it: the keys differ, so shard 1's events fail with shard 0's key.
    if PGHOST=127.0.0.1 PGPORT=${shard_ports[0]} PGDATABASE=$shard_db \
        /usr/bin/python3 "$PRESENCE_REPO/test/tools/verify_events.py" "$IT_TMP/$tag.shard1" >/dev/null 2>&1; then
        it_fail "shard 1's events verify with shard 0's key: the shards share a key, or nothing is checked"
    fi
    for pid in "${listener_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# wait_shards_idle N: waits until no session but ours is connected to the
# first N shard databases (the router's PL/Proxy connections end with the
# router session), so that their function statistics have been written.
wait_shards_idle() {
    local n=$1 i t busy
    for ((t = 0; t < 300; t++)); do
        busy=0
        for ((i = 0; i < n; i++)); do
            busy=$((busy + $(q_shard "$i" -c "SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND backend_type = 'client backend'
                  AND pid <> pg_backend_pid()")))
        done
        [ "$busy" = 0 ] && return 0
        sleep 0.1
    done
    it_fail "PL/Proxy's connections to the shards did not end"
}

# check_routing N: one call of each function for room probe and channel
# probe-1 through the router (as the app role), then the calls each shard
# executed (pg_stat_user_functions).  The reference gets the same calls.
check_routing() {
    local n=$1 probe i got want
    local calls="SET client_min_messages = warning;
SELECT presence.add('probe', 'probe-1', 'pat');
SELECT presence.update('probe', 'probe-1', '{\"probe\": true}');
SELECT count(*) FROM presence.members('probe');
SELECT count(*) FROM presence.users('probe');
SELECT presence.anonymous_count('probe');
SELECT connections FROM presence.stats('probe');
SELECT presence.touch('probe-1', ARRAY['probe']);
SELECT presence.leave_all('probe-1', ARRAY['probe']);
SELECT presence.add('probe', 'probe-1', 'pat');
SELECT presence.touch('probe-1');
SELECT count(*) FROM presence.rooms_of('probe-1');
SELECT presence.remove('probe', 'probe-1');
SELECT presence.leave_all('probe-1');"
    q_router -U "$app" -c "$calls" >"$IT_TMP/probe.router"
    q_ref -U "$app" -c "$calls" >"$IT_TMP/probe.ref"
    diff -u "$IT_TMP/probe.ref" "$IT_TMP/probe.router" ||
        it_fail "the probe calls returned other results through the router (diff: - single cluster, + router)"
    probe=$(q_router -c "SELECT presence_router.shard_of('probe')")
    wait_shards_idle "$n"
    for ((i = 0; i < n; i++)); do
        got=$(q_shard "$i" -c "SELECT string_agg(funcname || '=' || calls, ' ' ORDER BY funcname)
                                 FROM pg_stat_user_functions WHERE schemaname = 'presence'
                                  AND funcname IN ('add', 'remove', 'update', 'members', 'users',
                                                   'anonymous_count', 'stats', 'touch', 'leave_all',
                                                   'rooms_of')")
        if [ "$i" = "$probe" ]; then
            want="add=2 anonymous_count=1 leave_all=2 members=1 remove=1 rooms_of=1 stats=1 touch=2 update=1 users=1"
        else
            want="leave_all=1 rooms_of=1 touch=1"
        fi
        [ "$got" = "$want" ] ||
            it_fail "$n shards: shard $i (room probe lives on shard $probe) executed '$got', expected '$want'"
    done
    it_log "$n shards: routing: the single-room calls for room probe ran on shard $probe only," \
        "touch/leave_all/rooms_of of a channel on all $n shards, their room-scoped forms on shard $probe only"
}

# age_sql ages presences by hand, as if their connections had
# vanished ten minutes ago (an UPDATE of last_seen sends no event).
age_sql="UPDATE presence.presences SET last_seen = now() - interval '10 minutes'
          WHERE channel IN ('ann-1', 'eve-2', 'k2-1', 'k3-2', 'anon-k0-1') OR room = 'conc_5'"

# session N: the scripted session through the router and on the reference,
# then the comparisons.
session() {
    local n=$1 i k pids side
    check_routing "$n"
    start_listeners "s$n" "$n"
    for side in router ref; do
        "q_$side" -U "$app" -f "$sess/session1.sql" >"$IT_TMP/s$n.1.$side"
        pids=()
        for ((k = 0; k < 4; k++)); do
            "q_$side" -U "$app" -v k="$k" -f "$sess/concurrent.sql" >"$IT_TMP/s$n.conc$k.$side" &
            pids+=($!)
        done
        for k in "${!pids[@]}"; do
            wait "${pids[$k]}" || it_fail "$side: concurrent connection $k failed"
        done
        "q_$side" -U "$app" -f "$sess/session2.sql" >"$IT_TMP/s$n.2.$side"
        if [ "$side" = router ]; then
            for ((i = 0; i < n; i++)); do q_shard "$i" -c "$age_sql" >/dev/null; done
        else
            q_ref -c "$age_sql" >/dev/null
        fi
        "q_$side" -f "$sess/prune.sql" >"$IT_TMP/s$n.3.$side"
    done
    stop_listeners "s$n" "$n"

    # Transcripts: every result equal; the errors where they belong.
    for part in 1 conc0 conc1 conc2 conc3 2 3; do
        diff -u "$IT_TMP/s$n.$part.ref" "$IT_TMP/s$n.$part.router" ||
            it_fail "$n shards: results of $part differ (diff: - single cluster, + router)"
    done
    local errors
    errors=$(grep -c 'sqlstate_of(' "$sess/session1.sql")
    [ "$(grep -c '^[0-9A-Z]\{5\}$' "$IT_TMP/s$n.1.ref")" = "$errors" ] ||
        it_fail "$n shards: expected $errors SQLSTATEs in the session transcript, got:" \
            "$(grep '^[0-9A-Z]\{5\}$' "$IT_TMP/s$n.1.ref" | tr '\n' ' ')"
    if grep -q 'no error' "$IT_TMP/s$n.1.ref"; then it_fail "$n shards: a call that must fail did not"; fi
    [ "$(grep -c '^t$' "$IT_TMP/s$n.conc0.ref")" = "$(grep -c . "$IT_TMP/s$n.conc0.ref")" ] ||
        it_fail "$n shards: a concurrent call returned something else than true"

    # Final state: every presence (room, channel, user, meta) and room, the
    # single cluster against the union of the shards; each room stored on
    # the shard the router sends it to.
    local state="SELECT concat_ws(' ', room, channel, coalesce(user_id, '-'), coalesce(meta::text, '-'))
                   FROM presence.presences"
    q_ref -c "$state" | LC_ALL=C sort >"$IT_TMP/s$n.state.ref"
    q_ref -c "SELECT name FROM presence.rooms" | LC_ALL=C sort >"$IT_TMP/s$n.rooms.ref"
    for ((i = 0; i < n; i++)); do q_shard "$i" -c "$state"; done | LC_ALL=C sort >"$IT_TMP/s$n.state.router"
    for ((i = 0; i < n; i++)); do q_shard "$i" -c "SELECT name FROM presence.rooms"; done |
        LC_ALL=C sort >"$IT_TMP/s$n.rooms.router"
    diff -u "$IT_TMP/s$n.state.ref" "$IT_TMP/s$n.state.router" ||
        it_fail "$n shards: the presences differ (diff: - single cluster, + shards)"
    diff -u "$IT_TMP/s$n.rooms.ref" "$IT_TMP/s$n.rooms.router" ||
        it_fail "$n shards: the rooms differ (diff: - single cluster, + shards)"
    local misplaced empty
    misplaced=$(q_router -c "SELECT string_agg(format('%s on %s, routed to %s', room, stored_on, routed_to), '; ')
                               FROM presence_router.misplaced()")
    [ -z "$misplaced" ] || it_fail "$n shards: rooms stored on the wrong shard: $misplaced"
    for ((i = 0; i < n; i++)); do
        empty=$(q_shard "$i" -c "SELECT count(*) FROM presence.rooms")
        [ "$empty" -gt 0 ] || it_fail "$n shards: shard $i holds no room: the session does not exercise it"
    done

    # Events: routes of every room, then the comparison.
    python3 -c '
import json, sys
rooms = set()
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if "room" in e:
        rooms.add(e["room"])
print("\n".join(sorted(rooms)))' "$IT_TMP/s$n.ref" >"$IT_TMP/s$n.roomlist"
    q_router -v rooms="$(cat "$IT_TMP/s$n.roomlist")" >"$IT_TMP/s$n.routes" <<'SQL'
SELECT r || E'\t' || presence_router.shard_of(r) FROM unnest(string_to_array(:'rooms', E'\n')) r;
SQL
    local files=()
    for ((i = 0; i < n; i++)); do files+=("$IT_TMP/s$n.shard$i"); done
    python3 "$sess/compare_events.py" "$IT_TMP/s$n.routes" "$IT_TMP/s$n.ref" "${files[@]}" >"$IT_TMP/s$n.events" ||
        it_fail "$n shards: the events differ from the single cluster's (above)"
    it_log "$n shards: session through the router = single cluster:" \
        "$(wc -l <"$IT_TMP/s$n.state.ref") presences in $(wc -l <"$IT_TMP/s$n.rooms.ref") rooms," \
        "transcripts equal; $(cat "$IT_TMP/s$n.events")"
}

# check_router_errors: what only the router has: the room-scoped forms'
# checks, read-only transactions, the shard list's checks, privileges.
check_router_errors() {
    q_router -U "$app" >"$IT_TMP/errors.app" <<'SQL'
SET client_min_messages = warning;
SELECT sqlstate_of($$SELECT presence.touch('c', NULL)$$) AS touch_rooms_null;
SELECT sqlstate_of($$SELECT presence.touch('c', '{}')$$) AS touch_rooms_empty;
SELECT sqlstate_of($$SELECT presence.touch('c', ARRAY['lobby', NULL])$$) AS touch_rooms_null_room;
SELECT sqlstate_of($$SELECT presence.touch('c', ARRAY[''])$$) AS touch_rooms_empty_room;
SELECT sqlstate_of($$SELECT presence.touch('c', ARRAY[repeat('r', 256)])$$) AS touch_rooms_long_room;
SELECT sqlstate_of($$SELECT presence.touch(NULL, ARRAY['lobby'])$$) AS touch_rooms_null_channel;
SELECT sqlstate_of($$SELECT presence.leave_all('c', NULL)$$) AS leave_all_rooms_null;
SELECT sqlstate_of($$SELECT presence.leave_all('', ARRAY['lobby'])$$) AS leave_all_rooms_empty_channel;
SELECT sqlstate_of($$CALL presence_router.set_shards(ARRAY['dbname=x'])$$) AS set_shards_not_owner;
SELECT sqlstate_of($$SELECT * FROM presence_router.rooms_on(0)$$) AS rooms_on_not_granted;
SELECT sqlstate_of($$SELECT presence.schedule_prune()$$) AS schedule_prune_not_granted;
BEGIN READ ONLY;
SELECT sqlstate_of($$SELECT presence.touch('ann-1')$$) AS touch_read_only;
SELECT sqlstate_of($$SELECT presence.touch('ann-1', ARRAY['lobby'])$$) AS touch_rooms_read_only;
SELECT sqlstate_of($$SELECT presence.leave_all('ann-1', ARRAY['lobby'])$$) AS leave_all_rooms_read_only;
SELECT sqlstate_of($$SELECT presence.update('lobby', 'ann-1', '{}')$$) AS update_read_only;
ROLLBACK;
SQL
    q_router >"$IT_TMP/errors.admin" <<'SQL'
SET client_min_messages = warning;
SELECT sqlstate_of($$CALL presence_router.set_shards(ARRAY['dbname=a', 'dbname=b', 'dbname=c'])$$) AS three_shards;
SELECT sqlstate_of($$CALL presence_router.set_shards(ARRAY['dbname=a', 'dbname=a'])$$) AS same_shard_twice;
SELECT sqlstate_of($$CALL presence_router.set_shards('{}')$$) AS no_shard;
SELECT sqlstate_of($$CALL presence_router.set_shards(ARRAY['dbname=a', NULL])$$) AS null_shard;
SQL
    printf '%s\n' 22004 22023 22004 22023 22001 22004 22004 22023 42501 42501 42501 25006 25006 25006 25006 |
        diff -u - "$IT_TMP/errors.app" || it_fail "the router's own checks (app role) gave other SQLSTATEs (diff: - expected)"
    printf '%s\n' 22023 22023 22023 22004 | diff -u - "$IT_TMP/errors.admin" ||
        it_fail "set_shards' checks gave other SQLSTATEs (diff: - expected)"
    it_log "the router's own checks: rooms of the room-scoped forms, read-only transactions," \
        "the shard list, privileges: 19 SQLSTATEs as expected"
}

reset 2
check_router_errors
session 2
reset 4
session 4

# misplaced() is what tells an admin that the shard list does not match
# the data: with shards 0 and 1 swapped, every room of those two shards is
# listed (stored on one, routed to the other); put back, none is.
listed=$(q_router -c "SELECT string_agg(quote_literal(connstr), ',' ORDER BY shard) FROM presence_router.shards()")
swapped=$(q_router -c "SELECT string_agg(quote_literal(connstr), ',' ORDER BY CASE shard WHEN 0 THEN 1 WHEN 1 THEN 0 ELSE shard END)
                         FROM presence_router.shards()")
q_router -c "CALL presence_router.set_shards(ARRAY[$swapped])" >/dev/null
got=$(q_router -c "SELECT count(*) FILTER (WHERE stored_on IN (0, 1) AND routed_to IN (0, 1)) || ' ' || count(*)
                     FROM presence_router.misplaced()")
want=$(( $(q_shard 0 -c "SELECT count(*) FROM presence.rooms") + $(q_shard 1 -c "SELECT count(*) FROM presence.rooms") ))
[ "$got" = "$want $want" ] || it_fail "with shards 0 and 1 swapped, misplaced() lists '$got' rooms, expected all $want of theirs"
q_router -c "CALL presence_router.set_shards(ARRAY[$listed])" >/dev/null
[ -z "$(q_router -c "SELECT * FROM presence_router.misplaced()")" ] || it_fail "misplaced() lists rooms after the list was put back"
it_log "misplaced(): with shards 0 and 1 swapped in the list, it lists their $want rooms; put back, none"

# cron_prune: with 4 shards (emptied), each shard's own pg_cron job prunes it.  Rooms
# on every shard get stale presences (and cron_0 a live one, which
# heartbeats through the router with the room-scoped touch); the router's
# schedule_prune() creates one job per shard (twice: still one each); after
# the next minute boundary every shard has pruned its rooms, its job's run
# succeeded, its listener got its rooms' events, the emptied rooms are gone.
cron_prune() {
    local n=4 i t stale failed status jobs
    start_listeners cron "$n"
    [ "$(q_router -c "SELECT string_agg(presence_router.shard_of(r)::text, ',' ORDER BY r)
                        FROM unnest(ARRAY['cron_0', 'cron_1', 'cron_2', 'cron_6']) r")" = 2,1,0,3 ] ||
        it_fail "rooms cron_0, cron_1, cron_2, cron_6 are not on shards 2, 1, 0, 3: change the room names"
    q_router -U "$app" >/dev/null <<'SQL'
SELECT presence.add('cron_0', 'c0a', 'ann');
SELECT presence.add('cron_0', 'c0b', 'bob');
SELECT presence.add('cron_0', 'live', 'ann');
SELECT presence.add('cron_1', 'c1a', 'cat');
SELECT presence.add('cron_2', 'c2a');
SELECT presence.add('cron_2', 'c2b');
SELECT presence.add('cron_6', 'c6a', 'dan');
SQL
    for ((i = 0; i < n; i++)); do
        q_shard "$i" -c "UPDATE presence.presences SET last_seen = now() - interval '10 minutes'
                          WHERE room LIKE 'cron\_%' AND channel <> 'live'" >/dev/null
    done
    [ "$(q_router -c "SELECT presence.schedule_prune('* * * * *')")" = 4 ] || it_fail "schedule_prune() did not say 4 shards"
    [ "$(q_router -c "SELECT presence.schedule_prune('* * * * *')")" = 4 ] || it_fail "schedule_prune() did not say 4 shards"
    for ((i = 0; i < n; i++)); do
        jobs=$(q_shard "$i" -c "SELECT count(*) FROM cron.job WHERE jobname = 'presence-prune'")
        [ "$jobs" = 1 ] || it_fail "shard $i has $jobs presence-prune jobs after scheduling twice, expected 1"
    done
    it_log "4 shards: schedule_prune() through the router (twice): one pg_cron job on each shard;" \
        "waiting for the next minute boundary (at most ~150 s)"
    local wait_start=$SECONDS
    while :; do
        [ "$(q_router -U "$app" -c "SELECT presence.touch('live', ARRAY['cron_0'])")" = 1 ] ||
            it_fail "touch('live', ARRAY['cron_0']) did not return 1"
        stale=0
        for ((i = 0; i < n; i++)); do
            stale=$((stale + $(q_shard "$i" -c "SELECT count(*) FROM presence.presences
                                                 WHERE room LIKE 'cron\_%' AND channel <> 'live'")))
            failed=$(q_shard "$i" -c "SELECT string_agg(return_message, '; ') FROM cron.job_run_details
                                       WHERE status = 'failed'")
            [ -z "$failed" ] || it_fail "shard $i: pg_cron's job failed: $failed"
        done
        [ "$stale" = 0 ] && break
        [ $((SECONDS - wait_start)) -ge 150 ] && it_fail "after $((SECONDS - wait_start))s, $stale stale presences are left"
        sleep 2
    done
    it_log "4 shards: every shard's job pruned its stale presences after $((SECONDS - wait_start))s of waiting"
    for ((i = 0; i < n; i++)); do
        for ((t = 0; t < 20; t++)); do
            status=$(q_shard "$i" -c "SELECT string_agg(DISTINCT status, ',') FROM cron.job_run_details
                                       WHERE status IN ('succeeded', 'failed')")
            [ -n "$status" ] && break
            sleep 1
        done
        [ "$status" = succeeded ] || it_fail "shard $i: the job's runs: '$status', expected succeeded"
    done
    stop_listeners cron "$n"
    cat >"$IT_TMP/cron.expected" <<'EOF2'
{"room":"cron_0","added":{"channel":"c0a","user_id":"ann","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_0","added":{"channel":"c0b","user_id":"bob","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_0","added":{"channel":"live","user_id":"ann","meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_1","added":{"channel":"c1a","user_id":"cat","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_2","added":{"channel":"c2a","user_id":null,"meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_2","added":{"channel":"c2b","user_id":null,"meta":null,"user_joined":false},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_6","added":{"channel":"c6a","user_id":"dan","meta":null,"user_joined":true},"removed":null,"updated":null,"bulk_change":false}
{"room":"cron_0","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":2,"pruned":true}
{"room":"cron_1","added":null,"removed":{"channel":"c1a","user_id":"cat","meta":null,"user_left":true},"updated":null,"bulk_change":false,"pruned":true}
{"room":"cron_2","added":null,"removed":null,"updated":null,"bulk_change":true,"added_count":0,"removed_count":2,"pruned":true}
{"room":"cron_6","added":null,"removed":{"channel":"c6a","user_id":"dan","meta":null,"user_left":true},"updated":null,"bulk_change":false,"pruned":true}
EOF2
    printf 'cron_0\t2\ncron_1\t1\ncron_2\t0\ncron_6\t3\n' >"$IT_TMP/cron.routes"
    python3 "$sess/compare_events.py" "$IT_TMP/cron.routes" "$IT_TMP/cron.expected" \
        "$IT_TMP/cron.shard0" "$IT_TMP/cron.shard1" "$IT_TMP/cron.shard2" "$IT_TMP/cron.shard3" \
        >"$IT_TMP/cron.events" || it_fail "the events of the pg_cron prunes differ from the expected ones (above)"
    [ "$(q_router -U "$app" -c "SELECT string_agg(channel, ',') FROM presence.members('cron_0')")" = live ] ||
        it_fail "cron_0 does not hold just the live presence"
    for ((i = 0; i < n; i++)); do q_shard "$i" -c "SELECT name FROM presence.rooms WHERE name LIKE 'cron\_%'"; done \
        >"$IT_TMP/cron.rooms"
    [ "$(cat "$IT_TMP/cron.rooms")" = cron_0 ] || it_fail "rooms left: $(cat "$IT_TMP/cron.rooms"), expected cron_0 only"
    [ "$(q_router -c "SELECT presence.unschedule_prune()")" = t ] || it_fail "unschedule_prune() did not return true"
    for ((i = 0; i < n; i++)); do
        jobs=$(q_shard "$i" -c "SELECT count(*) FROM cron.job")
        [ "$jobs" = 0 ] || it_fail "shard $i still has $jobs pg_cron jobs after unschedule_prune()"
    done
    it_log "4 shards: each job succeeded; $(cat "$IT_TMP/cron.events") (expected, joins and prunes);" \
        "the live presence and its room survived; unschedule_prune() removed the 4 jobs"
}
reset 4
cron_prune

it_log "ok: in $((SECONDS - started))s"
