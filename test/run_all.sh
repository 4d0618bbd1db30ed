#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): install what is
# missing, build and install presence, run the regression and isolation suites
# (make installcheck), then every executable test/integration/*.sh.  With
# --all, the slower suites of test/slow/*.sh run after them (same conventions
# as test/integration).  A NAME argument runs only the integration and slow
# suites whose file name contains NAME (the regression and isolation suites
# still run).
# Ends with "N passed, N failed"; exits non-zero if anything failed.
#
# PRESENCE_TEST_PORT (default 54339) picks the integration cluster's port.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/lib.sh"

LC_COLLATE=C  # sorted globs, locale-independent
dirs=(integration) only=""
for arg in "$@"; do
    case $arg in
        --all) dirs=(integration slow) ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) presence_die "unknown option $arg (see --help)" ;;
        *) only=$arg ;;
    esac
done
passed=0 failed=0 tmp=""
cleanup() {
    if [ -n "$tmp" ]; then presence_stop_cluster "$tmp/cluster"; rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME CMD... runs a step that must succeed and prints how long it took.
step() {
    local start=$SECONDS
    presence_log "$1"
    "${@:2}"
    presence_log "$1: done in $((SECONDS - start))s"
}

# suite NAME CMD... runs one test suite, times it, counts it passed or failed.
suite() {
    local start=$SECONDS result=passed
    presence_log "$1"
    if "${@:2}"; then passed=$((passed + 1)); else failed=$((failed + 1)) result=FAILED; fi
    presence_log "$1: $result in $((SECONDS - start))s"
}

# installcheck OTHER [VAR=VALUE...] runs `make installcheck` in the copy as
# postgres with the OTHER suite switched off (so one failing suite does not
# skip the next), and prints the regression.diffs on failure (the isolation
# suite's is in output_iso).
installcheck() {
    local f
    (cd "$tmp/src" && rm -f regression.diffs output_iso/regression.diffs &&
        presence_run_as_pg make -s installcheck "$1=" "${@:2}" "PG_CONFIG=$PRESENCE_PGBIN/pg_config") &&
        return 0
    for f in "$tmp/src/regression.diffs" "$tmp/src/output_iso/regression.diffs"; do
        if [ -s "$f" ]; then printf '\n----- %s -----\n' "${f#"$tmp/src/"}"; cat "$f"; fi
    done
    return 1
}

# isolation_worker runs the isolation suite in worker mode (presence
# preloaded).  Events then come from the worker's process, which
# isolationtester names "PID <n>" instead of the session that made the
# change; everything else must match the expected output exactly.
isolation_worker() {
    local spec name rc=0
    (cd "$tmp/src" && rm -rf results &&
        presence_run_as_pg make -s installcheck REGRESS= PRESENCE_WORKER=1 \
            "PG_CONFIG=$PRESENCE_PGBIN/pg_config" >/dev/null 2>&1) || true
    for spec in "$tmp/src"/test/specs/*.spec; do
        name=$(basename "$spec" .spec)
        if [ ! -f "$tmp/src/results/$name.out" ]; then
            echo "no result for $name (see $tmp/src/results)"; rc=1; continue
        fi
        diff -u <(normalize_sender <"$tmp/src/expected/$name.out") \
            <(normalize_sender <"$tmp/src/results/$name.out") || rc=1
    done
    return "$rc"
}

# normalize_sender replaces who sent a notification by "(sender)".
normalize_sender() {
    sed -E '/^[A-Za-z0-9_]+: NOTIFY "/ s/ from (PID [0-9]+|[A-Za-z0-9_]+)$/ from (sender)/'
}

step "dependencies" presence_ensure_deps
step "build and install" presence_build_install

# pg_regress and initdb run as postgres, which may not be able to read the
# repo: test a copy of the work tree in a temp dir it owns.
tmp=$(presence_mktemp)
mkdir "$tmp/src"
tar -C "$PRESENCE_REPO" --exclude=./.git -cf - . | tar -C "$tmp/src" -xf -
if [ "$(id -u)" -eq 0 ]; then chown -R "$PRESENCE_OS_USER:" "$tmp/src"; fi

if compgen -G "$PRESENCE_REPO/test/sql/*.sql" >/dev/null; then
    suite "regression tests (test/sql)" installcheck ISOLATION
fi
if compgen -G "$PRESENCE_REPO/test/specs/*.spec" >/dev/null; then
    suite "isolation tests (test/specs)" installcheck REGRESS
fi
# The same suites in worker mode (presence in shared_preload_libraries).
if compgen -G "$PRESENCE_REPO/test/sql/*.sql" >/dev/null; then
    suite "regression tests, worker mode" installcheck ISOLATION PRESENCE_WORKER=1
fi
if compgen -G "$PRESENCE_REPO/test/specs/*.spec" >/dev/null; then
    suite "isolation tests, worker mode" isolation_worker
fi

# Integration tests share one cluster; each gets a fresh database of its own
# (PGDATABASE) and PRESENCE_REPO. pg_cron runs in the database presence_cron
# (cron.database_name), created here before the tests and empty: a test that
# needs pg_cron connects to it and runs CREATE EXTENSION IF NOT EXISTS pg_cron.
tests=()
for d in "${dirs[@]}"; do
    for t in "$PRESENCE_REPO/test/$d"/*.sh; do
        case $(basename "$t") in *"$only"*) ;; *) continue ;; esac
        if [ -f "$t" ] && [ -x "$t" ]; then tests+=("$t"); fi
    done
done
if [ "${#tests[@]}" -gt 0 ]; then
    mkdir "$tmp/cluster"
    if [ "$(id -u)" -eq 0 ]; then chown "$PRESENCE_OS_USER:" "$tmp/cluster"; fi
    step "integration cluster" \
        presence_start_cluster "$tmp/cluster" "${PRESENCE_TEST_PORT:-54339}" presence_cron
    for t in "${tests[@]}"; do
        name=$(basename "$t" .sh)
        db="it_${name//[^A-Za-z0-9_]/_}"
        createdb "$db"
        suite "$(basename "$(dirname "$t")"): $name" env PGDATABASE="$db" PRESENCE_REPO="$PRESENCE_REPO" "$t"
    done
fi

presence_log "total: ${SECONDS}s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
