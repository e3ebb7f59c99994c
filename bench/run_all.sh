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
for rep in $(seq "$reps"); do
  for w in 1 2; do
    timeout -k 5 120 uv run python bench/burndown.py --backend "$backend" --runs 10000 --workers "$w" --concurrency 100 | head -1 >>"$out"
  done
  timeout -k 5 120 uv run python bench/trigger_throughput.py --backend "$backend" --runs 10000 | head -1 >>"$out"
  timeout -k 5 120 uv run python bench/latency.py --backend "$backend" --rate 100 --duration 20 | head -1 >>"$out"
done
uv run python bench/summarize.py "$out"
