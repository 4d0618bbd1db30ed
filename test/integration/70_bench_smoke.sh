#!/usr/bin/env bash
# The benchmark's smoke mode (test/bench/bench.sh --smoke: tiny sizes, one
# second per point), so that the benchmark cannot rot.  It starts a cluster
# of its own and asserts nothing about speed: only that every part ran and
# printed its figures, that join storms and prune delivered their events,
# and that the latency probe received every event.
set -euo pipefail
repo=${PRESENCE_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$repo/test/bench/bench.sh" --smoke >"$out" 2>&1 || { cat "$out"; echo "FAIL: bench.sh --smoke failed" >&2; exit 1; }
grep -v '^==>' "$out"

check() { grep -Eq "$1" "$out" || { echo "FAIL: no line matching: $1" >&2; exit 1; }; }
check '^\| touch inside touch_interval vs SELECT 1 \| 4 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|$'
check '^\| touch that writes vs bare UPDATE by key \| 4 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|$'
for mode in "direct NOTIFY" "worker mode"; do
    check "^\\| add \\+ remove \\($mode, 1 listener\\) vs bare INSERT \\+ DELETE \\| 4 \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+ \\|\$"
done
check '^\| add \+ remove \(presence.notify = off: the ceiling\) vs bare INSERT \+ DELETE \| 4 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|$'
check '^\| \(reference\) bare INSERT \+ DELETE with a foreign key to the room vs without \| 4 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|$'
check '^join storm, one room: 96 joins by 8 connections in [0-9.]+ s, 96 events received$'
check '^join storm, 1000 rooms: 96 joins by 8 connections in [0-9.]+ s, 96 events received$'
check '^20000 touches that write on 1000 presences: .* 20000 updates, [0-9.]+% HOT'
check '^prune of 20000 stale presences in 200 rooms: [0-9.]+ s, 200 notifications,'
check '^summary: events received 200/200;'
check '^summary \(worker mode\): events received 200/200;'
check '^worker join storm: 160 joins by 16 connections in [0-9.]+ s, 160 events received; worker at most [0-9.]+ kB behind, all sent [0-9]+ ms after'
echo "ok: the benchmark's smoke run printed every figure"
