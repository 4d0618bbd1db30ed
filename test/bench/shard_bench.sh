#!/usr/bin/env bash
# What routing through PL/Proxy costs (clients/plproxy, DESIGN.md section
# 13): pgbench against the router with 1, 2 and 4 shards, and against a
# single cluster holding the same data, in the same run.  Not a test: it
# asserts nothing about time.
#
#   ./test/bench/shard_bench.sh            the full run (about 12 minutes)
#   ./test/bench/shard_bench.sh --smoke    one second per point
#
# Five throwaway clusters on loopback (free ports): four shard clusters and
# one for the routers and the single-cluster reference.  Shard cluster 0
# holds the databases of the 1-, 2- and 4-shard layouts, cluster 1 those of
# the 2- and 4-shard layouts, clusters 2 and 3 those of the 4-shard layout;
# the routers router1, router2 and router4 (each with clients/plproxy/
# router.sql and its own shard list) and the database single are on the
# fifth.  pgbench connects to that cluster's Unix socket, as an app server
# would to its database; the router reaches the shards over TCP on
# 127.0.0.1, as it would other hosts.  Every database has the same 10000
# channels, each in one of 1000 rooms; touch_interval is 0 (every touch
# writes, as a heartbeat every 30 s does), synchronous_commit off, and
# autovacuum off: a vacuum started by one point's writes would be counted in
# the CPU of whichever point runs next (touch's updates are HOT and prune
# their pages themselves).
#
# Measured, with 1 and 4 clients: touch(channel) (fan-out: one call per
# shard), touch(channel, ARRAY[its room]) (one call), add + remove of a new
# presence (one shard each); for each, the throughput and the CPU time all
# five servers spent per call (router and shards together, from /proc: see
# cpu_ticks), and how much of it the router's cluster spent.  All clusters share this machine's cores, so the figures are
# the cost of the extra hop and work, not a scale-out; on a busy machine
# the throughput moves with the load, the CPU per call much less.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dir=$PRESENCE_REPO/test/bench
kit=$PRESENCE_REPO/clients/plproxy

smoke=false
case "${1-}" in
    --smoke) smoke=true ;;
    "") ;;
    *) presence_die "usage: $0 [--smoke]" ;;
esac
if $smoke; then secs=1 reps=1; else secs=10 reps=3; fi
clients="1 4" presences=10000 rooms=1000 nshards=4

presence_ensure_deps
presence_build_install
if [ ! -f "$("$PRESENCE_PGBIN/pg_config" --sharedir)/extension/plproxy.control" ]; then
    presence_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 postgresql-15-plproxy
fi

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

dirs=() ports=()
cleanup() {
    local d
    for d in "${dirs[@]}"; do presence_stop_cluster "$d"; rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Cluster i < nshards is shard cluster i; cluster nshards the routers' one.
for ((i = 0; i <= nshards; i++)); do
    dirs+=("$(presence_mktemp)")
    ports+=("$(free_port)")
    (presence_start_cluster "${dirs[$i]}" "${ports[$i]}" bench_cron >/dev/null)
done
# The routers' cluster, by its Unix socket, for psql and pgbench below.
export PGHOST=${dirs[$nshards]}/sock PGPORT=${ports[$nshards]} PGUSER=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
qs() { local i=$1; shift; q -h 127.0.0.1 -p "${ports[$i]}" "$@"; }
for ((i = 0; i <= nshards; i++)); do
    qs "$i" -d postgres -c "ALTER SYSTEM SET synchronous_commit = off" \
        -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
done

# setup_db PSQL-ARGS... N SHARD: creates a database with the extension and
# the channels of shard SHARD of N.
setup_db() {
    local n=${*: -2:1} shard=${*: -1} db=${*: -3:1}
    local args=("${@:1:$(($# - 3))}")
    "${args[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
    "${args[@]}" -d "$db" -c "CREATE EXTENSION presence" \
        -c "ALTER DATABASE $db SET presence.touch_interval = 0" >/dev/null
    "${args[@]}" -d "$db" -v presences="$presences" -v rooms="$rooms" -v n="$n" -v shard="$shard" \
        -f "$bench_dir/shard_load.sql" >/dev/null
}

setup_db q single 1 0
for n in 1 2 4; do
    list=()
    for ((i = 0; i < n; i++)); do
        setup_db qs "$i" "shards$n" "$n" "$i"
        list+=("'host=127.0.0.1 port=${ports[$i]} dbname=shards$n'")
    done
    q -d postgres -c "CREATE DATABASE router$n" >/dev/null
    q -d "router$n" -f "$kit/router.sql" >/dev/null
    q -d "router$n" >/dev/null <<SQL
CALL presence_router.set_shards(ARRAY[$(IFS=,; echo "${list[*]}")]);
CREATE USER MAPPING FOR postgres SERVER presence_shards OPTIONS (user 'postgres');
SQL
    got=$(q -d "router$n" -c "SELECT count(*) FROM presence_router.shards()")
    [ "$got" = "$n" ] || presence_die "router$n has $got shards"
    total=$(q -d "router$n" -c "SELECT sum((SELECT count(*) FROM presence_router.rooms_on(s.shard)))
                                  FROM presence_router.shards() s")
    [ "$total" = "$rooms" ] || presence_die "router$n sees $total rooms on its shards, expected $rooms"
done

# cpu_ticks DIR... prints the CPU time (clock ticks, user + system) the
# clusters in DIR... have used: each postmaster's own, that of its children that have
# exited (the postmaster reaps its backends: cutime + cstime) and that of
# its children alive now.  Backends that served a pgbench run have exited
# (and been reaped) by the time it is read again, so the difference is the
# run's CPU on every server involved, whatever else this machine is doing.
cpu_ticks() {
    local d pm
    for d in "$@"; do
        pm=$(head -n 1 "$d/data/postmaster.pid")
        awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat"
        for c in $(pgrep -P "$pm"); do
            awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$c/stat" 2>/dev/null || true
        done
    done | awk '{ t += $1 } END { print t }'
}
clk_tck=$(getconf CLK_TCK)

# run DB SCRIPT CLIENTS: one pgbench run (-M prepared); prints its
# throughput and the servers' CPU milliseconds per call.
log=${dirs[$nshards]}/pgbench.log
run() {
    local out before after rbefore rafter n
    before=$(cpu_ticks "${dirs[@]}") rbefore=$(cpu_ticks "${dirs[$nshards]}")
    out=$(pgbench -n -M prepared -c "$3" -j "$(($3 < 2 ? 1 : 2))" -T "$secs" \
        -D presences="$presences" -D rooms="$rooms" -f "$bench_dir/$2" "$1" 2>&1) ||
        { printf '%s\n' "$out" >&2; presence_die "pgbench $2 on $1 failed"; }
    sleep 0.5  # the run's backends (and their PL/Proxy connections) exit
    after=$(cpu_ticks "${dirs[@]}") rafter=$(cpu_ticks "${dirs[$nshards]}")
    printf '%s\n' "$out" >>"$log"
    n=$(printf '%s\n' "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
    printf '%s %s %s\n' "$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')" \
        "$(awk -v a="$after" -v b="$before" -v n="$n" -v hz="$clk_tck" 'BEGIN { printf "%.4f", (a - b) * 1000 / hz / n }')" \
        "$(awk -v a="$rafter" -v b="$rbefore" -v n="$n" -v hz="$clk_tck" 'BEGIN { printf "%.4f", (a - b) * 1000 / hz / n }')"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The points: label, database, script, shard calls per call.
points=(
    "touch(channel), single cluster|single|touch.sql|-"
    "touch(channel), router, 1 shard|router1|touch.sql|1"
    "touch(channel), router, 2 shards|router2|touch.sql|2"
    "touch(channel), router, 4 shards|router4|touch.sql|4"
    "touch(channel, rooms), router, 1 shard|router1|shard_touch_rooms.sql|1"
    "touch(channel, rooms), router, 2 shards|router2|shard_touch_rooms.sql|1"
    "touch(channel, rooms), router, 4 shards|router4|shard_touch_rooms.sql|1"
    "add + remove, single cluster|single|add_remove.sql|-"
    "add + remove, router, 1 shard|router1|add_remove.sql|1 + 1"
    "add + remove, router, 2 shards|router2|add_remove.sql|1 + 1"
    "add + remove, router, 4 shards|router4|add_remove.sql|1 + 1"
)

echo
echo "presence through PL/Proxy: $(nproc) cores, $(psql -X -At -d postgres -c 'SHOW server_version')," \
    "plproxy $(q -d router1 -c "SELECT extversion FROM pg_extension WHERE extname = 'plproxy'")," \
    "$presences channels in $rooms rooms, ${secs}s per point, median of $reps, touch_interval 0," \
    "synchronous_commit off, autovacuum off; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| operation | shard calls per call | clients | ops/s | vs single cluster | server CPU per call (ms) | vs single cluster | of which router / shards (ms) |"
echo "|---|---|---|---|---|---|---|---|"
for c in $clients; do
    # Every point once per round, rounds reps times: drifts in the machine's
    # load spread over all points alike.
    declare -A tput=() cpu=() rcpu=()
    for ((r = 0; r < reps; r++)); do
        for p in "${points[@]}"; do
            IFS='|' read -r label db script calls <<<"$p"
            read -r t u ru <<<"$(run "$db" "$script" "$c")"
            tput[$label]+="$t"$'\n' cpu[$label]+="$u"$'\n' rcpu[$label]+="$ru"$'\n'
        done
    done
    for p in "${points[@]}"; do
        IFS='|' read -r label db script calls <<<"$p"
        case $label in
            touch*) base="touch(channel), single cluster" ;;
            *) base="add + remove, single cluster" ;;
        esac
        t=$(printf '%s' "${tput[$label]}" | median) u=$(printf '%s' "${cpu[$label]}" | median)
        ru=$(printf '%s' "${rcpu[$label]}" | median)
        bt=$(printf '%s' "${tput[$base]}" | median) bu=$(printf '%s' "${cpu[$base]}" | median)
        awk -v l="$label" -v k="$calls" -v c="$c" -v t="$t" -v bt="$bt" -v u="$u" -v bu="$bu" -v ru="$ru" 'BEGIN {
            split_ = (l ~ /single cluster/) ? "-" : sprintf("%.3f / %.3f", ru, u - ru)
            printf "| %s | %s | %d | %.0f | %.2f | %.3f | %.1f | %s |\n", l, k, c, t, t / bt, u, u / bu, split_ }'
    done
    unset tput cpu rcpu
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
