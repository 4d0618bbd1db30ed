#!/usr/bin/env bash
# 40_stress.sh again, in worker mode (presence in shared_preload_libraries,
# so a background worker sends the events): the stress load, model-checked,
# with every event reconciled must come out the same as with direct NOTIFY.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

export PRESENCE_STRESS_SECONDS=${PRESENCE_STRESS_SECONDS:-30}
it_rerun_in_worker_mode test/integration/40_stress.sh
