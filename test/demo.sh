#!/usr/bin/env bash
# The README's first command: install what is missing, build and install
# presence, start a throwaway PostgreSQL 15 cluster and run test/demo.sql in it.
#
#   ./test/demo.sh          run the demo, then stop and delete the cluster
#   ./test/demo.sh --keep   leave the cluster running to play with it
#
# PRESENCE_DEMO_PORT (default 54329) picks the port.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/lib.sh"

keep=false
case "${1-}" in
    --keep) keep=true ;;
    "") ;;
    *) presence_die "usage: $0 [--keep]" ;;
esac

presence_ensure_deps
presence_build_install

dir=$(presence_mktemp)
cleanup() { presence_stop_cluster "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
presence_start_cluster "$dir" "${PRESENCE_DEMO_PORT:-54329}" presence_demo

psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pg_cron' -c 'CREATE EXTENSION presence'
psql -X -v ON_ERROR_STOP=1 -e -f "$PRESENCE_REPO/test/demo.sql"

if $keep; then
    trap - EXIT
    stop="$PRESENCE_PGBIN/pg_ctl -D $dir/data stop"
    if [ "$(id -u)" -eq 0 ]; then stop="runuser -u postgres -- $stop"; fi
    cat <<MSG

The cluster is still running. Connect with:
    psql -h $PGHOST -p $PGPORT -U $PGUSER $PGDATABASE
Stop and delete it with:
    $stop && rm -rf $dir
MSG
fi
