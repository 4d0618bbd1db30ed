# shellcheck shell=bash
# Helpers for the integration tests test/integration/*.sh, which source this
# file (it is not a test: test/run_all.sh runs only executable *.sh files).
# Each test gets PGHOST, PGPORT, PGUSER, PGDATABASE and PRESENCE_REPO from
# test/run_all.sh; run by hand, point the PG* variables at a cluster that
# preloads pg_cron (see test/presence.conf) and run the script.
#
# Sourcing this file makes a temp dir ($IT_TMP) and installs an EXIT trap
# that stops the background processes started through it_start_listener,
# calls the test's own it_on_exit function if it defines one, and removes
# the temp dir.

IT_NAME=$(basename "$0" .sh)
PRESENCE_REPO=${PRESENCE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export PRESENCE_REPO
# Payloads carry non-ASCII names: read and write them as UTF-8.
export PGCLIENTENCODING=UTF8

IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/presence-it.XXXXXX")
IT_PIDS=()
IT_CLUSTERS=()
IT_LISTENER_PID=""

# it_cleanup stops our background processes and removes the temp dir.
it_cleanup() {
    local pid dir
    if declare -F it_on_exit >/dev/null; then it_on_exit || true; fi
    for pid in "${IT_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for dir in "${IT_CLUSTERS[@]}"; do
        presence_stop_cluster "$dir"
        rm -rf "$dir"
    done
    rm -rf "$IT_TMP"
}
trap it_cleanup EXIT
trap 'exit 130' INT TERM

# it_log prints what the test is doing or checked.
it_log() { printf '%s: %s\n' "$IT_NAME" "$*"; }

# it_fail prints why the test failed and exits 1.
it_fail() {
    printf '%s: FAIL: %s\n' "$IT_NAME" "$*" >&2
    exit 1
}

# it_psql runs psql without ~/.psqlrc, stopping at the first error.
it_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# it_app_grants ROLE prints the GRANTs the README gives an application role
# (the API's functions, no table), for the tests that call as such a role.
it_app_grants() {
    local app=$1
    cat <<SQL
GRANT USAGE ON SCHEMA presence TO $app;
GRANT EXECUTE ON FUNCTION
    presence.add(text, text, text, jsonb), presence.remove(text, text),
    presence.leave_all(text), presence.touch(text),
    presence.update(text, text, jsonb), presence.members(text),
    presence.users(text), presence.anonymous_count(text),
    presence.rooms_of(text), presence.stats(text)
TO $app;
SQL
}

# it_value SQL prints the single value SQL returns (unaligned, no header).
it_value() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# it_apt_install PKG... installs Debian packages that are missing (with sudo
# when not root), or fails the test.
it_apt_install() {
    local pkg missing=()
    command -v dpkg >/dev/null || return 0
    for pkg in "$@"; do
        dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' ||
            missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    it_log "installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    else
        sudo apt-get update >/dev/null &&
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    fi || it_fail "could not install ${missing[*]}"
}

# it_ensure_build_deps installs the C compiler and libpq's headers and
# library (Debian: gcc, libpq-dev) when missing; PGXS builds already need
# them (postgresql-server-dev-15 depends on libpq-dev).
it_ensure_build_deps() { it_apt_install gcc libpq-dev; }

# it_ensure_psycopg2 makes psycopg2 importable by /usr/bin/python3 (Debian's
# python3-psycopg2; the python3 first on PATH does not see Debian's packages).
it_ensure_psycopg2() {
    /usr/bin/python3 -c 'import psycopg2' 2>/dev/null && return 0
    it_apt_install python3-psycopg2
    /usr/bin/python3 -c 'import psycopg2' || it_fail "/usr/bin/python3 still cannot import psycopg2"
}

# it_build_listen compiles test/tools/presence_listen.c into the temp dir and
# sets PRESENCE_LISTEN to it, unless PRESENCE_LISTEN already names a binary.
it_build_listen() {
    local inc
    if [ -n "${PRESENCE_LISTEN:-}" ] && [ -x "$PRESENCE_LISTEN" ]; then return 0; fi
    it_ensure_build_deps
    inc=$(pg_config --includedir 2>/dev/null) || inc=/usr/include/postgresql
    gcc -O2 -Wall -Wextra -Werror -I"$inc" -o "$IT_TMP/presence_listen" \
        "$PRESENCE_REPO/test/tools/presence_listen.c" -lpq ||
        it_fail "could not build test/tools/presence_listen.c"
    PRESENCE_LISTEN=$IT_TMP/presence_listen
}

# it_start_listener OUT CHANNEL SECONDS [COUNT] starts presence_listen in the
# background on a connection of its own, payloads to OUT and messages to
# OUT.err, and returns once its LISTEN is in effect (IT_LISTENER_PID).
it_start_listener() {
    local out=$1 i
    shift
    it_build_listen
    "$PRESENCE_LISTEN" listen "$@" >"$out" 2>"$out.err" &
    IT_LISTENER_PID=$!
    IT_PIDS+=("$IT_LISTENER_PID")
    for ((i = 0; i < 100; i++)); do
        grep -qs 'listening on' "$out.err" && return 0
        kill -0 "$IT_LISTENER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$out.err" >&2
    it_fail "the listener did not start listening"
}

# it_wait_listener OUT waits for the listener started with OUT to exit;
# returns non-zero (after printing its messages) if it timed out before its
# COUNT or could not run.
it_wait_listener() {
    local rc=0 pid keep=()
    wait "$IT_LISTENER_PID" || rc=$?
    for pid in "${IT_PIDS[@]}"; do
        if [ "$pid" != "$IT_LISTENER_PID" ]; then keep+=("$pid"); fi
    done
    IT_PIDS=("${keep[@]}")
    if [ "$rc" -ne 0 ]; then
        cat "$1.err" >&2
        return 1
    fi
}

# it_check_json FILE fails unless every line of FILE is one valid JSON value.
it_check_json() {
    python3 -c '
import json, sys
bad = 0
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        json.loads(line)
    except ValueError as e:
        print("line %d is not valid JSON (%s): %r" % (n, e, line), file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
' "$1" || it_fail "$1 holds payloads that are not valid JSON"
}

# it_free_port prints a TCP port on 127.0.0.1 that nothing listens on now.
# Tests that start servers of their own (pgbouncer, redis, standbys) take
# their ports from here, never hard-coded, so that runs can share a machine.
it_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# it_cluster MODE [SETTING...] starts a throwaway cluster of the test's own,
# in MODE direct (test/presence.conf) or worker (presence also in
# shared_preload_libraries: test/worker.conf), plus the settings given, e.g.
# "presence.queue_size = '64kB'"; with pg_cron in database presence_cron, on
# a free port.  It points PGHOST, PGPORT and PGDATABASE at it (database
# presence_worker_it), sets IT_CLUSTER_LOG to its log, and is stopped when
# the test exits.
it_cluster() {
    local mode=$1 dir port extra=""
    shift
    # shellcheck source=test/lib.sh
    . "$PRESENCE_REPO/test/lib.sh"
    dir=$(presence_mktemp)
    IT_CLUSTERS+=("$dir")
    port=$(it_free_port)
    [ "$mode" = worker ] && extra=test/worker.conf
    PRESENCE_EXTRA_CONF=$extra presence_start_cluster "$dir" "$port" presence_cron '' >/dev/null ||
        it_fail "the $mode-mode cluster did not start"
    if [ "$#" -gt 0 ]; then
        printf '%s\n' "$@" >>"$dir/data/postgresql.conf"
        (cd "$dir" && presence_run_as_pg pg_ctl -D data -l log -w restart >/dev/null) ||
            it_fail "the $mode-mode cluster did not restart with: $*"
    fi
    createdb presence_worker_it
    export PGDATABASE=presence_worker_it
    IT_CLUSTER_LOG=$dir/log
    IT_WORKER_LOG=$dir/log
    if [ "$mode" = worker ]; then
        [ "$(it_value "SHOW shared_preload_libraries")" = "pg_cron,presence" ] ||
            it_fail "presence is not preloaded in the worker-mode cluster"
    fi
}

# it_worker_cluster [SETTING...] is it_cluster worker.
it_worker_cluster() { it_cluster worker "$@"; }

# it_rerun_in_worker_mode runs the integration test SCRIPT (a path relative
# to the repository) again on a worker-mode cluster of its own, so that it
# proves the same behaviour in both modes.
it_rerun_in_worker_mode() {
    it_worker_cluster
    it_log "running $1 in worker mode (presence preloaded)"
    "$PRESENCE_REPO/$1" || it_fail "$1 failed in worker mode"
}
