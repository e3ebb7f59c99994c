#!/usr/bin/env bash
# Run every benchmark REPS times (default 3) on BACKEND (sqlite, the default, or postgres);
# raw JSON lines go to bench/results/raw-[<backend>-]<time>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
backend=${BACKEND:-sqlite}
mkdir -p bench/results
if [ "$backend" = sqlite ]; then tag=""; else tag="$backend-"; fi
out=bench/results/raw-$tag$(date -u +%Y%m%dT%H%M%SZ).jsonl
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The first output line is the JSON result (no `| head -1`: a closed pipe made the script's
# second print fail and, with pipefail, stopped the whole run).
run() { timeout -k 5 120 uv run python "$@" --backend "$backend" >"$tmp"; head -1 "$tmp" >>"$out"; }
for rep in $(seq "$reps"); do
  for w in 1 2; do
    run bench/burndown.py --runs 10000 --workers "$w" --concurrency 100
  done
  run bench/trigger_throughput.py --runs 10000
  run bench/latency.py --rate 100 --duration 20
done
uv run python bench/summarize.py "$out"
