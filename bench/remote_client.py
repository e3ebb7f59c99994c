"""The remote client over HTTP: ``shipyard server`` (one process) on a fresh database, driven
from this process through :class:`shipyard.client.RemoteClient` — what ``tasks.trigger`` and
``runs.retrieve`` cost an app that knows only ``SHIPYARD_API_URL``.

* single: ``--runs`` triggers awaited one at a time (runs/s; p50/p99 of each round trip);
* batch: ``--batches`` batch triggers of 1,000 items (runs/s);
* retrieve: ``--retrieves`` ``retrieve_run`` calls (p50/p99 round trip).

No worker runs: the runs wait (PENDING_VERSION). Every run is counted in the database after.

    uv run python bench/remote_client.py --runs 2000
    uv run python bench/remote_client.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from _common import BENCH_DIR, Env, add_backend_arg, emit, make_payload, pct


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(env: Env, port: int) -> subprocess.Popen[bytes]:
    with open(env.dir / "server.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard", "server", "--port", str(port)],
            cwd=BENCH_DIR,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


async def _wait_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server did not start (see server.log)")
            await asyncio.sleep(0.2)


async def _measure(url: str, key: str, args: argparse.Namespace) -> dict[str, float]:
    from shipyard.client import RemoteClient

    client = RemoteClient(url, key)
    try:
        for i in range(50):  # warm-up: connections, imports, the server's first requests
            await client.trigger("noop", make_payload(i), {})
        single: list[float] = []
        t0 = time.perf_counter()
        ids = []
        for i in range(args.runs):
            start = time.perf_counter()
            handle = await client.trigger("noop", make_payload(i), {})
            single.append((time.perf_counter() - start) * 1000)
            ids.append(handle.id)
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in range(args.batches):
            entries = [
                {"task": "noop", "payload": make_payload(b * 1000 + i), "options": {}}
                for i in range(1000)
            ]
            await client.batch_trigger(entries, {})
        batch_s = time.perf_counter() - t0
        retrieve: list[float] = []
        for i in range(args.retrieves):
            start = time.perf_counter()
            await client.retrieve_run(ids[i % len(ids)])
            retrieve.append((time.perf_counter() - start) * 1000)
    finally:
        await client.close()
    return {
        "single_per_s": round(args.runs / single_s, 1),
        "single_p50_ms": round(pct(single, 0.5) or 0, 2),
        "single_p99_ms": round(pct(single, 0.99) or 0, 2),
        "batch_per_s": round(args.batches * 1000 / batch_s, 1) if args.batches else 0.0,
        "retrieve_p50_ms": round(pct(retrieve, 0.5) or 0, 2),
        "retrieve_p99_ms": round(pct(retrieve, 0.99) or 0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--retrieves", type=int, default=1000)
    add_backend_arg(ap)
    args = ap.parse_args()
    env = Env("remote-client", args.backend)
    port = _free_port()
    server = _start_server(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_up(url, server))
        numbers = asyncio.run(_measure(url, os.environ["SHIPYARD_SECRET_KEY"], args))
        conn = env.connect()
        created = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        env.cleanup()
    expected = 50 + args.runs + args.batches * 1000
    result = {"bench": "remote_client", "backend": args.backend, **numbers, "runs": created}
    result["runs_ok"] = created == expected
    emit(
        result,
        f"remote client [{args.backend}]: single {numbers['single_per_s']}/s "
        f"(p50 {numbers['single_p50_ms']} ms, p99 {numbers['single_p99_ms']} ms), "
        f"batch of 1,000 {numbers['batch_per_s']}/s, retrieve p50 {numbers['retrieve_p50_ms']} ms"
        f" — {created}/{expected} runs",
    )


if __name__ == "__main__":
    main()
