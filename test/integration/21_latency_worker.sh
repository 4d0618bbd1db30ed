#!/usr/bin/env bash
# 20_latency.sh again, in worker mode (presence in shared_preload_libraries,
# so a background worker sends the events): commit-to-listener latency must
# come out the same as with direct NOTIFY.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_rerun_in_worker_mode test/integration/20_latency.sh
