"""HTTP API benchmark: triggers and retrieves over HTTP against a real ``shipyard server``.

One ``shipyard server`` process (its own session, killed by process group) on a fresh
database; this process is the client (httpx, keep-alive connections). Measures:

* single triggers one at a time (round trip p50/p99, runs/s), and with ``--concurrency``
  requests in flight (runs/s);
* the same with ``x-trigger-request-idempotency-key`` (each trigger claims a request id);
* batches of 1,000 over ``POST /api/v1/tasks/batch`` (runs/s);
* ``GET /api/v3/runs/{id}`` one at a time (p50/p99, per second) and concurrently.

No worker runs: runs stay queued (the task ``noop`` is defined by the benchmark project, so
triggers are QUEUED or PENDING_VERSION alike: the same insert).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import Env, add_backend_arg, emit, make_payload, pct

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: Env, port: int) -> subprocess.Popen[bytes]:
    """``shipyard server`` on ``port``, in its own session (killed by process group)."""
    with open(env.dir / "server.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard", "server", "--port", str(port)],
            cwd=BENCH_DIR,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(5)
            return
        except subprocess.TimeoutExpired:
            continue


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited; see its log")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start in 60 s")


async def sequential(http: httpx.AsyncClient, count: int, make: Any) -> tuple[float, list[float]]:
    """``count`` requests one at a time: requests/s and each round trip (ms)."""
    times: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        response = await make(i)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code >= 300:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
    return count / (time.perf_counter() - start), times


async def concurrent(http: httpx.AsyncClient, count: int, width: int, make: Any) -> float:
    """``count`` requests with ``width`` in flight: requests/s."""
    queue = iter(range(count))

    async def lane() -> None:
        for i in queue:
            response = await make(i)
            if response.status_code >= 300:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(width)))
    return count / (time.perf_counter() - start)


async def raw_load(port: int, key: str, count: int, width: int) -> float:
    """Triggers/s from ``width`` keep-alive connections writing prepared request bytes and
    reading each answer by its Content-Length: a client that costs almost no CPU, so the
    number is the server's (httpx spends about as much CPU per request as the server)."""
    body = json.dumps({"payload": make_payload(0)}).encode()
    request = (
        f"POST /api/v1/tasks/noop/trigger HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    remaining = [count]

    async def lane() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head[:200].decode(errors="replace"))
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(width)))
    return count / (time.perf_counter() - start)


async def bench(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    port = free_port()
    proc = start_server(env, port)
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    headers = {"Authorization": f"Bearer {os.environ['SHIPYARD_SECRET_KEY']}"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=60
        ) as http:
            await wait_ready(http, proc)
            url = "/api/v1/tasks/noop/trigger"
            ids: list[str] = []

            async def trigger(i: int) -> httpx.Response:
                response = await http.post(url, json={"payload": make_payload(i)})
                if len(ids) < 5000:
                    ids.append(response.json()["id"])
                return response

            async def trigger_with_id(i: int) -> httpx.Response:
                return await http.post(
                    url,
                    json={"payload": make_payload(i)},
                    headers={"x-trigger-request-idempotency-key": f"req-{i}"},
                )

            await sequential(http, 200, trigger)  # warm up (JWT signer, caches, pool)
            single_rate, single_ms = await sequential(http, args.runs, trigger)
            many_rate = await concurrent(http, args.runs, args.concurrency, trigger)
            key = os.environ["SHIPYARD_SECRET_KEY"]
            raw_rate = await raw_load(port, key, args.runs, args.concurrency)
            keyed_rate, keyed_ms = await sequential(http, args.runs // 2, trigger_with_id)

            batch = [{"task": "noop", "payload": make_payload(i)} for i in range(1000)]
            start = time.perf_counter()
            for _ in range(args.batches):
                response = await http.post("/api/v1/tasks/batch", json={"items": batch})
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
            batch_rate = args.batches * 1000 / (time.perf_counter() - start)

            async def retrieve(i: int) -> httpx.Response:
                return await http.get(f"/api/v3/runs/{ids[i % len(ids)]}")

            retrieve_rate, retrieve_ms = await sequential(http, args.runs, retrieve)
            retrieve_many = await concurrent(http, args.runs, args.concurrency, retrieve)
    finally:
        stop_server(proc)
    return {
        "bench": "http_api",
        "backend": env.backend,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "trigger_sequential_per_s": round(single_rate),
        "trigger_p50_ms": round(pct(single_ms, 0.5) or 0, 2),
        "trigger_p99_ms": round(pct(single_ms, 0.99) or 0, 2),
        "trigger_concurrent_per_s": round(many_rate),
        "trigger_raw_client_per_s": round(raw_rate),
        "trigger_request_id_per_s": round(keyed_rate),
        "trigger_request_id_p50_ms": round(pct(keyed_ms, 0.5) or 0, 2),
        "batch_1000_runs_per_s": round(batch_rate),
        "retrieve_sequential_per_s": round(retrieve_rate),
        "retrieve_p50_ms": round(pct(retrieve_ms, 0.5) or 0, 2),
        "retrieve_p99_ms": round(pct(retrieve_ms, 0.99) or 0, 2),
        "retrieve_concurrent_per_s": round(retrieve_many),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arg(ap)
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batches", type=int, default=5)
    args = ap.parse_args()
    env = Env("http", args.backend)
    try:
        result = asyncio.run(bench(args, env))
    except Exception:
        log = env.dir / "server.log"
        print(log.read_text()[-3000:] if log.exists() else "(no server log)", file=sys.stderr)
        raise
    finally:
        env.cleanup()
    emit(
        result,
        f"{result['backend']}: trigger {result['trigger_sequential_per_s']}/s one at a time "
        f"(p50 {result['trigger_p50_ms']} ms, p99 {result['trigger_p99_ms']} ms), "
        f"{result['trigger_concurrent_per_s']}/s with {result['concurrency']} in flight "
        f"({result['trigger_raw_client_per_s']}/s from a raw-socket client), "
        f"{result['trigger_request_id_per_s']}/s with a request id; batch of 1,000: "
        f"{result['batch_1000_runs_per_s']} runs/s; retrieve {result['retrieve_sequential_per_s']}"
        f"/s (p50 {result['retrieve_p50_ms']} ms, p99 {result['retrieve_p99_ms']} ms), "
        f"{result['retrieve_concurrent_per_s']}/s concurrently",
    )


if __name__ == "__main__":
    main()
