#!/usr/bin/env bash
# The main job on the embedded local default, as a story: deploy the lab stack into the emulator,
# run 100 real tasks (a few fail the first time, some Spot attempts are reclaimed), read the
# summary and a failed task's log, retry only the failures, and end with every task succeeded;
# then a sweep over a table's rows with its script (--code) and inputs (--input) shipped to the
# tasks, its results by row, the script fixed and exactly the rows not done rerun on the new code,
# and collect.
# Stops the emulator afterwards only if this script started it.
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
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "Deploy the lab stack (Spot, 0-32 vCPUs) into the local emulator; 5% of Spot attempts get reclaimed"
"$runner" local up --stack dev --spot-interruptions 0.05 --seed 7

# Each task works out its logical index, "computes" for a moment, and writes its result.
# One in 23 fails the first time (a flaky input); its retry (RUNNER_PARENT_RUN_ID set) succeeds.
task='i=$(( ${RUNNER_INDEX_OFFSET:-0} + ${AWS_BATCH_JOB_ARRAY_INDEX:-0} ))
echo "task $i of $RUNNER_ARRAY_SIZE, attempt $AWS_BATCH_JOB_ATTEMPT"
sleep 0.$(( (i * 37) % 5 + 1 ))
if [ $(( i % 23 )) -eq 7 ] && [ -z "${RUNNER_PARENT_RUN_ID:-}" ]; then
  echo "input $i: checksum mismatch" >&2; exit 3
fi
echo "result $i: $(( i * i ))"'

step "Submit an array of 100 tasks and watch them run"
set +e
"$runner" --local --stack dev submit --array 100 --command "sh -c '$task'" --wait --interval 1
set -e
run=$("$runner" runs --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[0]["runId"])')
failed=$("$runner" summary "$run" --json | .venv/bin/python -c \
  'import json, sys; print(next((f["index"] for f in json.load(sys.stdin)["failures"]), ""))') || true

if [ -n "$failed" ]; then
  step "The log of failed task $failed"
  "$runner" logs "$run" --index "$failed"
  step "Retry only the failed tasks (each keeps its logical index) and watch the retry"
  retry=$("$runner" retry "$run" --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["runId"])')
  "$runner" watch "$retry" --interval 1
fi

step "The run: every task's latest outcome, every attempt counted (Spot reclaims included)"
"$runner" summary "$run" --attempts

step "The run's report: one HTML file with the timeline, runtimes, failures and retries"
mkdir -p reports
"$runner" report "$run" --out "reports/$run.html" --png "reports/$run"
echo "Open it in a browser: $(pwd)/reports/$run.html"

step "A sweep over data: 12 samples, one task per 3 rows; the QC script and its inputs ship with the run"
# Your analysis folder (outside this repository, as yours would be).
analysis="${TMPDIR:-/tmp}/batch-stacks-demo/analysis"
rm -rf "$analysis" && mkdir -p "$analysis"
# The script, as you would edit it locally: it counts a sample's reads and their GC bases.
# Version 1 has a bug: it takes any base but A, C, G, T for corruption, and rows 4 and 9 have N.
cat > "$analysis/qc.py" <<'PY'
import os
reads = open(os.environ["reads"]).read().split()  # $reads: the staged input's local path
gc = sum(base in "GC" for read in reads for base in read)
assert all(base in "ACGT" for read in reads for base in read), f"unexpected base in {os.environ['reads_URI']}"
with open(os.path.join(os.environ["RUNNER_OUTPUT_DIR"], "qc.txt"), "w") as out:
    out.write(f"{os.environ['sample']}: {len(reads)} reads, GC {gc}\n")
print(f"{os.environ['sample']}: {len(reads)} reads")
PY
eval "$("$runner" local env)"
printf 'sample,reads\n' > reports/samples.csv
for i in $(seq 0 11); do
  name=$(printf 'sample-%02d' "$i")
  bases=ACGTACGTAC; if [ "$i" = 4 ] || [ "$i" = 9 ]; then bases=ACGTNACGTA; fi
  for r in $(seq 1 $(( (i * 7) % 5 + 2 ))); do echo "$bases"; done > "reports/$name.fq"
  .venv/bin/aws s3 cp --quiet "reports/$name.fq" "s3://batch-stacks-lab-data/runs/inputs/$name.fq"
  printf '%s,s3://batch-stacks-lab-data/runs/inputs/%s.fq\n' "$name" "$name" >> reports/samples.csv
done
head -3 reports/samples.csv
"$runner" --local --stack dev submit --tasks reports/samples.csv --per-task 3 --code "$analysis" \
  --input reads --command 'python3 qc.py'
sweep=$("$runner" runs --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[0]["runId"])')
"$runner" watch "$sweep" --interval 1 || true   # two rows fail: exit code 3
"$runner" results "$sweep" || true

step "Fix the script locally, then rerun exactly the rows not done with the new code (no image rebuild)"
sed -i 's/^assert all(base in "ACGT"/assert all(base in "ACGTN"/' "$analysis/qc.py"
"$runner" retry "$sweep" --skip-existing --code "$analysis"
retry=$("$runner" runs --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[0]["runId"])')
"$runner" watch "$retry" --interval 1
"$runner" results "$sweep"

step "Gather every row's outputs, checked against their manifests"
"$runner" collect "$sweep" --to "reports/$sweep-outputs"
cat "reports/$sweep-outputs/4/qc.txt"
