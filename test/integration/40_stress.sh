#!/usr/bin/env bash
# Stress (DESIGN.md sections 4, 6, 8): test/stress/stress.py runs, for
# PRESENCE_STRESS_SECONDS (default 45), 8 worker connections doing random
# add / touch / update / remove / leave_all / members / rooms_of / "vanish"
# (backdate + prune('10 minutes')) on 6 shared rooms, each worker checking
# every return value against an exact model of the channels it owns; a
# pruner looping prune('1 hour') + prune_rooms() (add vs prune_rooms: no
# presence may be lost); and a listener counting every event per room.
# At the end the table must equal the union of the models, no presence may
# lack its room, and per room the events must add up to the presences.
# Needs psycopg2 for /usr/bin/python3 (Debian: python3-psycopg2, installed
# here when missing). PRESENCE_STRESS_SEED fixes the workers' random choices
# (not the interleaving, which the scheduler decides).
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

PY=/usr/bin/python3


it_ensure_psycopg2
it_psql -c 'CREATE EXTENSION presence'
it_log "running test/stress/stress.py for ${PRESENCE_STRESS_SECONDS:-45} s"
"$PY" "$PRESENCE_REPO/test/stress/stress.py" || it_fail "stress.py found problems (above)"
it_log "passed"
