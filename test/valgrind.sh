#!/usr/bin/env bash
# The regression (test/sql) and isolation (test/specs) suites with the server
# under valgrind memcheck: reports every valgrind error, and in particular
# those with a frame in presence.so (our code), with their stacks. Slow (tens
# of minutes on 2 cores); not part of test/run_all.sh. Run it as root (the
# server runs as the OS user postgres; initdb refuses root) after
# `make install`; it tests the presence.so that is installed.
#
# pg_regress's temporary instance cannot wrap postgres in valgrind, so this
# starts a cluster of its own (temp dir, PRESENCE_VALGRIND_PORT, default
# 54349, socket only) as `valgrind ... postgres -D ...`, with
# test/presence.conf, and runs `make installcheck` against it with
# REGRESS_OPTS / ISOLATION_OPTS pointing at it (--use-existing: the script
# drops and recreates the test database presence_test before each suite,
# WITH (FORCE) because pg_cron's launcher stays connected to it).
#
# Suppressions: test/valgrind.supp (known false positives of an unmodified,
# non-USE_VALGRIND PostgreSQL build). --error-exitcode makes a process with
# an error exit with PRESENCE_VALGRIND_EXITCODE (default 128), which the
# postmaster treats as a crash, so an error also shows as a failed test.
#
# Output: valgrind logs (one per process) and the suites' results in
# PRESENCE_VALGRIND_KEEP (default: a temp dir, kept and printed at the end).
# Exits 0 only if both suites passed and valgrind reported no error.
#
# In worker mode, a presence worker that starts in the bgworker slot pg_cron's
# launcher left (it exits when its database, the test database, is dropped)
# draws errors everywhere: the postmaster reads that shared slot, which
# valgrind still sees as pg_cron's _PG_init stack variable (not initialized
# in full) because it cannot see the backend that wrote the slot since;
# --track-origins names pg_cron's _PG_init as the origin of each such error.
# Read them with that in mind (2026-11-29: 130 errors, 121 with that origin,
# the rest copies of it made by the postmaster; 0 errors in normal mode).
#
# PRESENCE_VALGRIND_WORKER=1 runs the server in worker mode (presence
# preloaded: test/worker.conf), so that the background worker and the queue
# run under valgrind too.  The isolation suite's notifications then come
# from the worker's pid, which its expected output does not show (run_all.sh
# compares them without the sender), so in that mode only valgrind's errors
# and the regression suite decide the exit status.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PRESENCE_PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PRESENCE_VALGRIND_PORT:-54349}
EXITCODE=${PRESENCE_VALGRIND_EXITCODE:-128}
DB=presence_test
export PATH="$PGBIN:$PATH"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (the server runs as the OS user postgres)"
command -v valgrind >/dev/null || {
    log "installing valgrind"
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 valgrind >/dev/null
} || die "valgrind is missing and could not be installed"
[ -f "$(pg_config --pkglibdir)/presence.so" ] || die "presence.so is not installed: make install first"

# as_pg runs a command as postgres, from / unless PG_CWD names a directory.
as_pg() { (cd "${PG_CWD:-/}" && runuser -u postgres -- env "PATH=$PATH" "$@"); }

work=${PRESENCE_VALGRIND_KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/presence-valgrind.XXXXXX")}
mkdir -p "$work" && chown postgres: "$work"
vg_pid=""

# cleanup stops the server (fast, then immediate) and valgrind.
cleanup() {
    if [ -n "$vg_pid" ] && kill -0 "$vg_pid" 2>/dev/null; then
        as_pg pg_ctl -D "$work/data" -m fast -w -t 300 stop >/dev/null 2>&1 ||
            as_pg pg_ctl -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
        wait "$vg_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A copy of the work tree that postgres may write its results into.
rm -rf "$work/src" "$work/data" "$work/sock" "$work/vg"
mkdir "$work/src" "$work/sock" "$work/vg"
tar -C "$REPO" --exclude=./.git -cf - . | tar -C "$work/src" -xf -
chown -R postgres: "$work/src" "$work/sock" "$work/vg"

log "initdb in $work/data"
as_pg initdb -D "$work/data" -U postgres -A trust --no-locale -E UTF8 >"$work/initdb.log"
{
    printf '\n# test/presence.conf\n'
    cat "$REPO/test/presence.conf"
    printf '\n# test/regress.conf\n'
    cat "$REPO/test/regress.conf"
    if [ -n "${PRESENCE_VALGRIND_WORKER:-}" ]; then
        printf '\n# test/worker.conf\n'
        cat "$REPO/test/worker.conf"
    fi
    printf '\n# test/valgrind.sh\n'
    printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$PORT" "$work/sock"
    # Fewer processes to run under valgrind; nothing the suites rely on.
    printf 'max_connections = 30\nautovacuum = off\nmax_wal_senders = 0\n'
} >>"$work/data/postgresql.conf"

log "starting postgres under valgrind on port $PORT (logs: $work/vg)"
runuser -u postgres -- valgrind --quiet --trace-children=yes --leak-check=no \
    --track-origins=yes --read-var-info=no --num-callers=30 \
    --error-exitcode="$EXITCODE" --gen-suppressions=all \
    --suppressions="$REPO/test/valgrind.supp" \
    --log-file="$work/vg/%p.log" \
    "$PGBIN/postgres" -D "$work/data" >"$work/postmaster.log" 2>&1 &
vg_pid=$!
for ((i = 0; i < 600; i++)); do
    pg_isready -q -h "$work/sock" -p "$PORT" && break
    kill -0 "$vg_pid" 2>/dev/null || { tail -n 30 "$work/postmaster.log" >&2; die "postgres did not start"; }
    sleep 1
done
pg_isready -q -h "$work/sock" -p "$PORT" || die "postgres did not accept connections within 10 minutes"
log "started in ${SECONDS}s"

# wait_ready waits until the server accepts connections (after a crash, a
# process that hit a valgrind error makes it restart and recover).
wait_ready() {
    local i
    for ((i = 0; i < 600; i++)); do
        psql -X -q -h "$work/sock" -p "$PORT" -U postgres -d postgres -c 'SELECT 1' \
            >/dev/null 2>&1 && return 0
        kill -0 "$vg_pid" 2>/dev/null || die "postgres is gone (log: $work/postmaster.log)"
        sleep 1
    done
    die "postgres did not accept connections within 10 minutes"
}

# recreate_db drops (FORCE: pg_cron is connected) and creates the test
# database with the settings pg_regress gives the databases it creates.
recreate_db() {
    psql -X -q -h "$work/sock" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
DROP DATABASE IF EXISTS $DB WITH (FORCE);
CREATE DATABASE $DB TEMPLATE template0;
ALTER DATABASE $DB SET lc_messages TO 'C';
ALTER DATABASE $DB SET lc_monetary TO 'C';
ALTER DATABASE $DB SET lc_numeric TO 'C';
ALTER DATABASE $DB SET lc_time TO 'C';
ALTER DATABASE $DB SET bytea_output TO 'hex';
ALTER DATABASE $DB SET timezone_abbreviations TO 'Default';
SQL
}

conn_opts="--use-existing --host=$work/sock --port=$PORT --dbname=$DB"
# Each step under valgrind can take long; isolationtester's default is 300 s.
export PGISOLATIONTIMEOUT=3600
results=()
run_suite() {
    local name=$1 start=$SECONDS rc=0
    shift
    wait_ready
    recreate_db
    log "$name suite"
    (PG_CWD=$work/src as_pg make -s installcheck "PG_CONFIG=$PGBIN/pg_config" "$@") || rc=$?
    results+=("$name: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start))s")
    log "${results[-1]}"
    return 0
}
run_suite regression ISOLATION= \
    "REGRESS_OPTS=--inputdir=test $conn_opts"
run_suite isolation REGRESS= \
    "ISOLATION_OPTS=--inputdir=test --outputdir=. $conn_opts"

log "stopping postgres"
as_pg pg_ctl -D "$work/data" -m fast -w -t 600 stop >/dev/null || true
wait "$vg_pid" || true
vg_pid=""

# The report. With --quiet a log holds only errors, each a block of
# "==pid==" lines (message, stack, origin) ended by an empty "==pid== "
# line, followed by the suppression --gen-suppressions=all proposes.
report=$work/errors.txt ours_report=$work/presence-errors.txt
# A frame of ours shows as "(in .../presence.so)", or, with debug info, as
# "(worker.c:631)": match our source files' names too (no backslashes: awk
# -v would take them as escapes).  Debian's postgres has no debug info, so
# its own worker.c (logical replication) does not show by name.
ours_src="[(]($(cd "$REPO/src" && ls -- *.c | sed 's/\.c$//; s/[.]/[.]/g' | paste -sd '|'))[.]c:[0-9]+[)]"
: >"$report"
: >"$ours_report"
for f in "$work"/vg/*.log; do
    [ -s "$f" ] || continue
    awk -v file="$(basename "$f")" -v ours="$ours_report" -v ours_src="$ours_src" '
        /^==[0-9]+== [^ ]/ && block == "" { block = $0 "\n"; next }
        block != "" && /^==[0-9]+== *$/ {
            printf "--- %s\n%s\n", file, block
            if (block ~ /presence\.so/ || block ~ ours_src) printf "--- %s\n%s\n", file, block >>ours
            block = ""; next }
        block != "" { block = block $0 "\n" }' "$f" >>"$report"
done
errors=$(grep -c '^--- ' "$report" || true)
ours=$(grep -c '^--- ' "$ours_report" || true)
logs=$(find "$work/vg" -name '*.log' | wc -l)

printf '\n'
for r in "${results[@]}"; do printf '%s\n' "$r"; done
printf 'presence.so: %s\n' "$(md5sum <"$(pg_config --pkglibdir)/presence.so" | cut -c1-12) (md5, installed)"
printf 'valgrind: %d processes ran, %d errors reported, %d with a frame in presence.so\n' \
    "$logs" "$errors" "$ours"
if [ "$errors" -gt 0 ]; then
    printf '\nvalgrind errors (first lines; all in %s):\n' "$report"
    grep -A4 '^--- ' "$report" | awk 'NR <= 60' # (head would end grep with SIGPIPE)
fi
if [ "$ours" -gt 0 ]; then
    printf '\nvalgrind errors with a frame in presence.so:\n'
    cat "$ours_report"
fi
printf '\nlogs and results kept in %s\n' "$work"
if [ -n "${PRESENCE_VALGRIND_WORKER:-}" ]; then
    [ "$errors" -eq 0 ] && ! printf '%s\n' "${results[@]}" | grep -q 'regression: FAILED'
else
    [ "$errors" -eq 0 ] && ! printf '%s\n' "${results[@]}" | grep -q FAILED
fi
