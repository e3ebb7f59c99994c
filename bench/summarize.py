"""Print median [min-max] of each metric from a raw-*.jsonl written by run_all.sh."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

METRICS = {
    "burndown-1": ["drain_per_s", "drain_db_per_s", "drain_wall_per_s"],
    "burndown-2": ["drain_per_s", "drain_db_per_s", "drain_wall_per_s"],
    "trigger_throughput": ["single_per_s", "batch_per_s"],
    "latency": ["p50_ms", "p95_ms", "p99_ms", "max_ms"],
}


def main() -> None:
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    ok: dict[str, list[bool]] = defaultdict(list)
    with open(sys.argv[1]) as f:
        for line in f:
            row = json.loads(line)
            name = row["bench"]
            if name == "burndown":
                name = f"burndown-{row['workers']}"
            backend = row.get("backend", "sqlite")
            key = f"{backend}/{name}"
            ok[key].append(bool(row.get("exactly_once", row.get("single_queued"))))
            for metric in METRICS[name]:
                if row.get(metric) is not None:
                    values[(key, metric)].append(float(row[metric]))
    for (name, metric), vs in values.items():
        print(
            f"{name:29s} {metric:18s} median {statistics.median(vs):9.1f} "
            f"[{min(vs):.1f}-{max(vs):.1f}] n={len(vs)} ok={all(ok[name])}"
        )


if __name__ == "__main__":
    main()
