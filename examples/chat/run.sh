#!/usr/bin/env bash
# The chat demo's one command:   ./examples/chat/run.sh
#
# Installs what is missing (PostgreSQL 15's build deps and pg_cron, Debian's
# Django, Channels, Daphne and psycopg2), builds and installs presence, starts
# a throwaway PostgreSQL with pg_cron (port CHAT_PG_PORT, default 54319),
# migrates the demo, schedules the pg_cron prune, and serves the chat with
# Daphne on http://127.0.0.1:8000 (CHAT_PORT) until Ctrl-C, which stops it
# all and removes the cluster.  Open http://127.0.0.1:8000/?name=ann and
# ?name=bob in two tabs; CHAT_MAX_AGE (default 10 s) is presence.max_age.
# CHAT_NO_BUILD=1 uses the presence already installed instead of building it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lib.sh
. "$here/../../test/lib.sh"
# shellcheck source=examples/chat/lib.sh
. "$here/lib.sh"

pg_port=${CHAT_PG_PORT:-54319}
port=${CHAT_PORT:-8000}
export CHAT_MAX_AGE=${CHAT_MAX_AGE:-10}
tmp="" tail_pid=""

cleanup() {
    if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
    if [ -n "${CHAT_DAPHNE_PID:-}" ]; then kill "$CHAT_DAPHNE_PID" 2>/dev/null || true; fi
    if [ -n "$tmp" ]; then presence_stop_cluster "$tmp"; rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

presence_ensure_deps
chat_ensure_deps ""  # no browser: the demo needs none
if [ -z "${CHAT_NO_BUILD:-}" ]; then presence_build_install; fi

tmp=$(presence_mktemp)
# pg_cron's database (cron.database_name) is the demo's database.
presence_start_cluster "$tmp" "$pg_port" presence_chat
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pg_cron'
presence_log "migrating (the channels_presence migration creates the extension presence)"
chat_manage migrate -v 0
chat_manage presence_schedule_prune
chat_start_daphne "$port" "$tmp/daphne.log" || presence_die "Daphne did not start"

cat <<EOT

  The chat is served on http://127.0.0.1:$port/ (Ctrl-C stops it).
  Open  http://127.0.0.1:$port/?name=ann  and  http://127.0.0.1:$port/?name=bob
  (&room=NAME for another room; no name: an anonymous visitor).
  Close a tab: it leaves at once.  A tab that goes silent without closing
  (kill -STOP its browser) is pruned by pg_cron after ${CHAT_MAX_AGE}s, at the next minute.
  psql: PGHOST=$PGHOST PGPORT=$PGPORT psql -U postgres presence_chat

EOT
tail -n +1 -f "$tmp/daphne.log" &
tail_pid=$!
wait "$CHAT_DAPHNE_PID" || true
