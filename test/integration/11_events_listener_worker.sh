#!/usr/bin/env bash
# 10_events_listener.sh again, in worker mode (presence in
# shared_preload_libraries, so a background worker sends the events): every
# payload of the scripted session must come out the same as with direct
# NOTIFY.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_rerun_in_worker_mode test/integration/10_events_listener.sh
