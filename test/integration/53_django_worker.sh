#!/usr/bin/env bash
# channels_presence in worker mode (presence in shared_preload_libraries, so
# a background worker sends the events, not the writers' commits), about
# 40 s: the package's own tests (signals by the calls, the listener's
# election, failover, reconnect, shards, forged events) and the pgbouncer
# test (51_django_pgbouncer.sh) on a worker-mode cluster of their own.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=examples/chat/lib.sh
. "$PRESENCE_REPO/examples/chat/lib.sh"
started=$SECONDS

chat_ensure_deps || it_fail "could not install ${CHAT_PACKAGES[*]}"
it_worker_cluster
it_log "worker-mode cluster on port $PGPORT (shared_preload_libraries = $(it_value 'SHOW shared_preload_libraries'))"
if ! (cd "$PRESENCE_REPO/clients/django" && PYTHONPATH=. timeout 300 "$CHAT_PYTHON" -m django test \
    --settings=tests.settings --noinput) >"$IT_TMP/django.log" 2>&1; then
    cat "$IT_TMP/django.log" >&2
    it_fail "clients/django tests failed in worker mode (output above)"
fi
it_log "clients/django tests in worker mode: $(grep -E '^Ran ' "$IT_TMP/django.log"): $(grep -E '^(OK|FAILED)' "$IT_TMP/django.log")"
"$PRESENCE_REPO/test/integration/51_django_pgbouncer.sh" ||
    it_fail "51_django_pgbouncer.sh failed in worker mode"
it_log "ok in $((SECONDS - started))s"
