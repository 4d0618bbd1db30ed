#!/usr/bin/env bash
# Commit-to-listener event latency (DESIGN.md section 10): runs
# `presence_listen latency 1000` (test/tools/presence_listen.c), which joins
# and leaves room 'latency' 1000 times on one connection while a second one
# LISTENs, and prints p50/p90/p99/max. The figures are printed, never
# asserted (wall-clock limits make flaky tests); the test checks only that
# all 1000 events arrived and that the room was left empty.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

n=1000
it_psql -c 'CREATE EXTENSION presence'
it_build_listen

rc=0
"$PRESENCE_LISTEN" latency "$n" | tee "$IT_TMP/latency" || rc=$?
[ "$rc" -eq 0 ] || it_fail "presence_listen latency exited with status $rc"

grep -q "^summary: events received $n/$n;" "$IT_TMP/latency" ||
    it_fail "not all $n events arrived"
left=$(it_value "SELECT count(*) FROM presence.presences WHERE room = 'latency'")
[ "$left" = 0 ] || it_fail "$left presences left in room latency, expected 0"

it_log "ok: all $n events arrived (figures above are informative, not asserted)"
