#!/usr/bin/env bash
# The main job on the embedded local default: deploy the lab stack into the emulator, submit an
# array of 100, watch it, summarize. Stops the emulator afterwards only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
runner=.venv/bin/runner

if "$runner" local status >/dev/null 2>&1; then
  started_here=0
else
  started_here=1
fi
stop_emulator() {
  if [ "$started_here" = 1 ]; then "$runner" local down; fi
}
trap stop_emulator EXIT

"$runner" local up --stack dev
"$runner" --local --stack dev submit --array 100 --wait
