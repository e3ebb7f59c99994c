"""The dashboard's server time with many runs: 100,000 runs in a fresh database, then each
page rendered 20 times in process (httpx over ASGI: the time the server takes to answer, no
network, no browser); prints the median and p95 of each page in ms.

    uv run python bench/dashboard.py [--runs 100000] [--backend sqlite|postgres]

Runs are made with ``batch_trigger`` (1,000 a call) of ``noop``: every 10th is tagged
``tenth``, every 100th canceled (so a status filter has rare matches to find). The database is
analyzed before timing (what autovacuum does shortly after a bulk load on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _common import Env, add_backend_arg, emit, make_payload, pct


async def main(env: Env, runs: int, reps: int) -> dict[str, Any]:
    """Fill ``env``'s database with ``runs`` runs, then time each page ``reps`` times."""
    import httpx

    from shipyard.server.app import create_app

    engine = env.engine()
    await engine.start()
    made: list[str] = []
    started = time.perf_counter()
    for offset in range(0, runs, 1000):
        entries = [
            {
                "task": "noop",
                "payload": make_payload(i),
                "options": {"tags": ["tenth"]} if i % 10 == 0 else {},
            }
            for i in range(offset, min(offset + 1000, runs))
        ]
        batch = await engine.batch_trigger(entries, {})
        made.extend(batch.runs)
    for run_id in made[::100]:
        await engine.cancel_run(run_id)
    fill_s = time.perf_counter() - started
    # Planner statistics as autovacuum leaves them a minute after a bulk load (PostgreSQL would
    # otherwise plan for the empty table it last analyzed); SQLite's planner needs none.
    env.connect().execute("ANALYZE")
    app = create_app(engine, dashboard_open=True)
    transport = httpx.ASGITransport(app=app)
    timings: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        first = await http.get("/dashboard/runs")
        deep = first.text.split('href="/dashboard/runs?cursor=')[1].split('"')[0]
        pages = {
            "runs": "/dashboard/runs",
            "runs_next_page": f"/dashboard/runs?cursor={deep}",
            "runs_tag": "/dashboard/runs?tag=tenth",
            "runs_task_period": "/dashboard/runs?task=noop&period=1d",
            "runs_status_rare": "/dashboard/runs?status=CANCELED",
            "runs_status_none": "/dashboard/runs?status=COMPLETED",
            "run": f"/dashboard/runs/{made[-1]}",
            "overview_1d": "/dashboard/overview?period=1d",
            "queues": "/dashboard/queues",
        }
        for name, path in pages.items():
            seen = []
            for _ in range(reps):
                t0 = time.perf_counter()
                response = await http.get(path)
                seen.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            timings[name] = {
                "p50_ms": round(statistics.median(seen), 1),
                "p95_ms": round(pct(seen, 0.95) or 0, 1),
            }
    await engine.close()
    return {
        "bench": "dashboard",
        "backend": env.backend,
        "runs": runs,
        "fill_s": round(fill_s, 1),
        "pages": timings,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=20)
    add_backend_arg(ap)
    args = ap.parse_args()
    env = Env("dashboard", args.backend)
    try:
        result = asyncio.run(main(env, args.runs, args.reps))
    finally:
        env.cleanup()
    lines = [f"dashboard, {result['runs']:,} runs ({result['backend']}), server ms p50 / p95:"]
    for name, t in result["pages"].items():
        lines.append(f"  {name:<20} {t['p50_ms']:>8} / {t['p95_ms']}")
    emit(result, "\n".join(lines))
