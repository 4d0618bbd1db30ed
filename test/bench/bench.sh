#!/usr/bin/env bash
# The benchmark of DESIGN.md section 10: presence against the bare PostgreSQL
# operation it stands on, measured in the same run on the same throwaway
# cluster, reported as ratios.  Not a test: it asserts nothing about time.
#
#   ./test/bench/bench.sh            the full run (about 45 minutes)
#   ./test/bench/bench.sh --smoke    tiny sizes, one second per point (CI)
#   ./test/bench/bench.sh --worker-only   only the worker mode part (about
#                                    12 minutes), e.g. to measure it again
#
# The events are measured in both transports: direct NOTIFY (the cluster as
# installed), and worker mode (the same cluster restarted with presence in
# shared_preload_libraries), next to presence.notify = off, the ceiling
# that the worker mode is measured against.
#
# PRESENCE_BENCH_PORT (default 54349) picks the port.  Writes the table to
# stdout and keeps the raw pgbench figures in $PRESENCE_BENCH_OUT (default: a
# temp dir, removed at the end).
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dir=$PRESENCE_REPO/test/bench

smoke=false worker_only=false
[ $# -le 1 ] || presence_die "usage: $0 [--smoke | --worker-only]"
case "${1-}" in
    --smoke) smoke=true ;;
    --worker-only) worker_only=true ;;
    "") ;;
    *) presence_die "usage: $0 [--smoke | --worker-only]" ;;
esac

if $smoke; then
    secs=1 reps=1 clients="1 4" presences=1000 storm=100 touches=20000
    prune_rows=20000 prune_rooms=200 latency_n=200 worker_storm=160
else
    secs=10 reps=3 clients="1 4 8 16" presences=10000 storm=1000 touches=1000000
    prune_rows=1000000 prune_rooms=10000 latency_n=2000 worker_storm=10000
fi

presence_ensure_deps
presence_build_install

dir=$(presence_mktemp)
out=${PRESENCE_BENCH_OUT:-$dir/out}
mkdir -p "$out"
cleanup() { presence_stop_cluster "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
presence_start_cluster "$dir" "${PRESENCE_BENCH_PORT:-54349}" presence_bench ''
listen_tool=$dir/presence_listen
gcc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$listen_tool" \
    "$PRESENCE_REPO/test/tools/presence_listen.c" -lpq

# Commits do not wait for the disk here: with a flush per commit both sides of
# every pair would measure the same fsync, hiding what presence adds.
psql -X -q -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
# No checkpoint starts in the middle of a point (each point starts after
# one, below): a checkpoint's writes and the full-page images after it
# slowed whichever runs they overlapped, by up to ten times here.
psql -X -q -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c "ALTER SYSTEM SET max_wal_size = '20GB'" \
    -c "SELECT pg_reload_conf()" >/dev/null
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
q -f "$bench_dir/setup.sql" -v presences="$presences" >/dev/null

# drained: wait (60 s at most) until listeners have read the queued events
# (to within a few pages: the queue tail moves in steps),
# so that a slow listener's backlog does not eat into the next measurement.
drained() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(q -c 'SELECT pg_notification_queue_usage() < 0.00001')" = t ] && return 0
        sleep 0.1
    done
}

# tps SCRIPT CLIENTS [PGOPTIONS]: pgbench throughput of SCRIPT, -M prepared.
tps() {
    drained
    q -c "SELECT presence.flush_events('60 seconds')" -c "CHECKPOINT" >/dev/null
    PGOPTIONS="${3-}" pgbench -n -M prepared -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$secs" \
        -D presences="$presences" -f "$bench_dir/$1" 2>&1 | tee -a "$out/pgbench.log" |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# pair NAME PRESENCE_SCRIPT PRESENCE_OPTS BASE_SCRIPT BASE_OPTS: for each
# client count, alternate the two runs reps times and print the medians.
pair() {
    local name=$1 c r a b ta tb
    for c in $clients; do
        ta="" tb=""
        for ((r = 0; r < reps; r++)); do
            a=$(tps "$2" "$c" "$3"); b=$(tps "$4" "$c" "$5")
            ta+="$a"$'\n' tb+="$b"$'\n'
        done
        a=$(printf '%s' "$ta" | median); b=$(printf '%s' "$tb" | median)
        printf '| %s | %d | %.0f | %.0f | %.2f |\n' "$name" "$c" "$a" "$b" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')"
    done
}

# add + remove send two events.  First with nobody listening (NOTIFY still
# queues them), then with a listener consuming them as an app server would:
# on this 2-core machine the listener process competes for the same cores,
# and each commit signals it.
# add_remove_pairs MODE: the add + remove pairs with no listener and with one.
add_remove_pairs() {
    pair "add + remove ($1, no listener) vs bare INSERT + DELETE" \
        add_remove.sql "" bare_insert_delete.sql ""
    "$listen_tool" listen presence 3600 >/dev/null 2>&1 &
    listener=$!
    pair "add + remove ($1, 1 listener) vs bare INSERT + DELETE" \
        add_remove.sql "" bare_insert_delete.sql ""
    kill "$listener" 2>/dev/null || true; wait "$listener" 2>/dev/null || true
}
echo
echo "presence benchmark: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
    "$(psql -X -At -c 'SHOW server_version'), $presences presences, ${secs}s per point," \
    "median of $reps, synchronous_commit off"
# Direct NOTIFY: the cluster as installed (all but --worker-only).
if ! $worker_only; then
echo
echo "| operation | clients | presence ops/s | bare ops/s | ratio |"
echo "|---|---|---|---|---|"
# max_age too: the interval in effect is at most half of it (60 s by
# default), and after 30 s every presence would be written once again.
pair "touch inside touch_interval vs SELECT 1" \
    touch.sql "-c presence.touch_interval=1h -c presence.max_age=2h" select1.sql ""
pair "touch that writes vs bare UPDATE by key" \
    touch.sql "-c presence.touch_interval=0" bare_update.sql ""

add_remove_pairs "direct NOTIFY"
pair "add + remove (presence.notify = off: the ceiling) vs bare INSERT + DELETE" \
    add_remove.sql "-c presence.notify=off" bare_insert_delete.sql ""
# Not presence: the bare pair with the foreign key presences have, against
# the bare pair without it, to tell integrity's share of the gap.
pair "(reference) bare INSERT + DELETE with a foreign key to the room vs without" \
    bare_insert_delete_fk.sql "" bare_insert_delete.sql ""

# storm SCRIPT LABEL: $storm joins by 8 clients at once, with a listener
# counting the events.
storm() {
    local events start elapsed
    "$listen_tool" listen presence 120 $((storm / 8 * 8)) >"$out/storm_events" 2>/dev/null &
    listener=$!
    sleep 0.5
    start=$(date +%s.%N)
    pgbench -n -M prepared -c 8 -j 2 -t $((storm / 8)) -f "$bench_dir/$1" >>"$out/pgbench.log" 2>&1
    elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}')
    wait "$listener" 2>/dev/null || true
    events=$(wc -l <"$out/storm_events")
    echo "join storm, $2: $((storm / 8 * 8)) joins by 8 connections in ${elapsed} s, $events events received"
}
echo
storm storm_one_room.sql "one room"
storm storm_rooms.sql "1000 rooms"

# 1M touches that all write (touch_interval 0) on the presences.
echo
before=$(q -c "SELECT pg_table_size('presence.presences')")
hot0=$(q -c "SELECT n_tup_hot_upd || ' ' || n_tup_upd FROM pg_stat_user_tables WHERE relid = 'presence.presences'::regclass")
per_client=$((touches / 8))
start=$(date +%s.%N)
PGOPTIONS="-c presence.touch_interval=0" pgbench -n -M prepared -c 8 -j 2 -t "$per_client" \
    -D presences="$presences" -f "$bench_dir/touch.sql" >>"$out/pgbench.log" 2>&1
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
q -c "SELECT pg_stat_force_next_flush()" >/dev/null; sleep 1
hot1=$(q -c "SELECT n_tup_hot_upd || ' ' || n_tup_upd FROM pg_stat_user_tables WHERE relid = 'presence.presences'::regclass")
after=$(q -c "SELECT pg_table_size('presence.presences')")
read -r h0 u0 <<<"$hot0"; read -r h1 u1 <<<"$hot1"
awk -v n=$((per_client * 8)) -v p="$presences" -v s="$elapsed" -v h=$((h1 - h0)) -v u=$((u1 - u0)) \
    -v b="$before" -v a="$after" 'BEGIN {
    printf "%d touches that write on %d presences: %.1f s, %d updates, %.1f%% HOT, table %.1f MB -> %.1f MB (x%.2f)\n",
        n, p, s, u, (u ? 100 * h / u : 0), b / 1048576, a / 1048576, a / b }'

# Prune of many stale presences in many rooms, with a listener counting the
# events and a sampler reading the backend's private memory (RssAnon).
echo
q -v rows="$prune_rows" -v rooms="$prune_rooms" -f "$bench_dir/prune_setup.sql" >/dev/null
"$listen_tool" listen presence 600 >"$out/prune_events" 2>/dev/null &
listener=$!
sleep 0.5
PGAPPNAME=bench-prune psql -X -At -c "SELECT pg_sleep(0.5)" -c '\timing on' \
    -c "SELECT presence.prune('1 minute')" >"$out/prune_result" &
pruner=$!
pid=""
for ((i = 0; i < 50; i++)); do
    pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench-prune'")
    [ -z "$pid" ] || break
    sleep 0.05
done
peak=0
while kill -0 "$pruner" 2>/dev/null; do
    kb=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    sleep 0.02
done
wait "$pruner"
sleep 1
kill "$listener" 2>/dev/null || true; wait "$listener" 2>/dev/null || true
deleted=$(grep -E "^[0-9]+$" "$out/prune_result")
ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$out/prune_result")
awk -v d="$deleted" -v r="$prune_rooms" -v ms="$ms" -v n="$(wc -l <"$out/prune_events")" -v kb="$peak" 'BEGIN {
    printf "prune of %d stale presences in %d rooms: %.2f s, %d notifications, backend peak private memory %.1f MB\n",
        d, r, ms / 1000, n, kb / 1024 }'

echo
"$listen_tool" latency "$latency_n"
fi

# --- Worker mode: the same cluster, restarted with presence preloaded -------
echo
echo "worker mode (shared_preload_libraries = 'pg_cron,presence'):"
echo "shared_preload_libraries = 'pg_cron,presence'" >>"$dir/data/postgresql.conf"
(cd "$dir" && presence_run_as_pg pg_ctl -D data -l log -w restart >/dev/null)
[ "$(q -c 'SHOW shared_preload_libraries')" = pg_cron,presence ] || presence_die "presence is not preloaded"
echo
echo "| operation | clients | presence ops/s | bare ops/s | ratio |"
echo "|---|---|---|---|---|"
add_remove_pairs "worker mode"

echo
"$listen_tool" latency "$latency_n" | sed 's/^summary:/summary (worker mode):/'

# A join storm by 16 connections: how far behind the worker gets (the most
# bytes of events not yet sent, sampled every 20 ms) and how long after the
# last join commits it has sent everything.
q -c "SELECT presence.flush_events('60 seconds')" >/dev/null
"$listen_tool" listen presence 300 $((worker_storm / 16 * 16)) >"$out/worker_storm_events" 2>/dev/null &
listener=$!
sleep 0.5
(while :; do q -c "SELECT coalesce(max(unsent_bytes), 0) FROM presence.queue_status()"; sleep 0.02; done) \
    >"$out/worker_backlog" 2>/dev/null &
sampler=$!
start=$(date +%s.%N)
pgbench -n -M prepared -c 16 -j 2 -t $((worker_storm / 16)) -f "$bench_dir/storm_rooms.sql" >>"$out/pgbench.log" 2>&1
end=$(date +%s.%N)
q -c "SELECT presence.flush_events('120 seconds')" >/dev/null
caught=$(date +%s.%N)
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
wait "$listener" 2>/dev/null || true
awk -v n=$((worker_storm / 16 * 16)) -v s="$start" -v e="$end" -v c="$caught" \
    -v ev="$(wc -l <"$out/worker_storm_events")" -v max="$(sort -n "$out/worker_backlog" | tail -n 1)" 'BEGIN {
    printf "worker join storm: %d joins by 16 connections in %.2f s, %d events received; worker at most %.1f kB behind, all sent %.0f ms after the last commit\n",
        n, e - s, ev, max / 1024, (c - e) * 1000 }'
