"""Realtime benchmark: SSE fan-out latency, server memory per idle subscriber, stream throughput.

* **Fan-out latency**: ``--subscribers`` (200) SSE connections to one run on a real
  ``shipyard server`` process while this process makes ``--updates`` (100) metadata updates
  to the run (the same store call a task's ``metadata.flush`` makes), ``--gap-ms`` apart. The
  latency of an update at a subscriber is the time it was read there minus the time its
  write returned (its commit). Every subscriber must see every update, in order.
* **Memory**: the server's RSS after ``--idle`` (1000) more subscribers connected and went
  idle, minus its RSS before, per subscriber.
* **Streams**: ``--chunks`` (10,000) chunks appended by ``pipe`` (batched writes) and one by
  one, then read back over SSE: chunks/s each way.

The SSE clients are minimal raw-socket readers (HTTP/1.1, chunked), so 1,200 of them cost this
process little. One JSON line, then a human summary.

    uv run python bench/realtime.py --backend sqlite
    uv run python bench/realtime.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import Env, add_backend_arg

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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


def profile_server(pid: int, output: str) -> None:
    """Sample the server for 4 s with py-spy (when installed) while updates fan out."""
    subprocess.Popen(
        ["py-spy", "record", "-r", "250", "-f", "raw", "-d", "4", "-p", str(pid), "-o", output],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class SseClient:
    """One SSE connection on a raw socket: request, headers, then chunked event lines."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.port, self.path, self.token = port, path, token
        self.events: list[tuple[float, str, str]] = []  # (time read, event, data)
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer = writer
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"SSE connect failed: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.connected.set()
        buffer = b""
        event, data = "message", ""
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            now = time.time()
            *lines, buffer = buffer.split(b"\r\n")
            for raw in lines:
                line = raw.decode()
                if line == "":
                    if data:
                        self.events.append((now, event, data))
                    event, data = "message", ""
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.writer is not None:
            self.writer.close()


def _failed(client: SseClient) -> bool:
    return client.task is not None and client.task.done() and client.task.exception() is not None


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def bench(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    from shipyard.engine.metadata import apply_metadata_ops
    from shipyard.metadata_ops import MetadataOp

    engine = env.engine()
    await engine.start()
    port = free_port()
    server = start_server(env, port)
    clients: list[SseClient] = []
    try:
        token = engine.secret_key()
        handle = await engine.trigger("noop", {"i": 0}, {})
        path = f"/realtime/v1/runs/{handle.id}?stopOnCompletion=false"

        async def connect(count: int) -> list[SseClient]:
            made = [SseClient(port, path, token) for _ in range(count)]
            for i, client in enumerate(made):
                client.start()
                if i % 50 == 49:
                    await asyncio.sleep(0.05)
            await wait_for(
                lambda: all(len(c.events) >= 1 or _failed(c) for c in made), 120, "snapshots"
            )
            for client in made:
                if _failed(client):
                    assert client.task is not None
                    raise RuntimeError(f"a subscriber failed: {client.task.exception()!r}")
            return made

        deadline = time.monotonic() + 60
        while True:  # the server is up when its port accepts
            try:
                _, probe = await asyncio.open_connection("127.0.0.1", port)
                probe.close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start (see server.log)") from None
                await asyncio.sleep(0.2)
        clients += await connect(1)
        # -- fan-out latency ----------------------------------------------------------------
        subscribers = await connect(args.subscribers)
        clients += subscribers
        committed: list[float] = []
        if os.environ.get("BENCH_SERVER_PROFILE"):  # a py-spy output path
            profile_server(server.pid, os.environ["BENCH_SERVER_PROFILE"])
            await asyncio.sleep(1.0)
        for k in range(args.updates):
            await apply_metadata_ops(engine, handle.id, [MetadataOp("set", "k", k)])
            committed.append(time.time())
            await asyncio.sleep(args.gap_ms / 1000)
        expected = args.updates + 1  # the snapshot, then each update
        await wait_for(
            lambda: all(len(c.events) >= expected for c in subscribers), 120, "every update"
        )
        latencies: list[float] = []
        in_order = True
        for client in subscribers:
            seen = [json.loads(d)["run"]["metadata"].get("k") for _, e, d in client.events[1:]]
            in_order = in_order and seen == list(range(args.updates))
            for (at, _, _), k in zip(client.events[1:], range(args.updates), strict=False):
                latencies.append((at - committed[k]) * 1000)
        latencies.sort()

        # -- memory per idle subscriber ------------------------------------------------------
        await asyncio.sleep(0.5)
        before = rss_kb(server.pid)
        idle = await connect(args.idle)
        clients += idle
        await asyncio.sleep(1.0)
        after = rss_kb(server.pid)

        # -- streams ----------------------------------------------------------------------
        values = [{"i": i, "text": "token"} for i in range(args.chunks)]
        t0 = time.perf_counter()
        for start in range(0, args.chunks, 500):
            await engine.append_stream(handle.id, "bench", values[start : start + 500])
        batched = args.chunks / (time.perf_counter() - t0)
        singles = min(args.chunks, 2000)
        t0 = time.perf_counter()
        for i in range(singles):
            await engine.append_stream(handle.id, "single", [values[i]])
        one_by_one = singles / (time.perf_counter() - t0)
        reader = SseClient(
            port, f"/realtime/v1/streams/{handle.id}/bench?timeoutInSeconds=2", token
        )
        t0 = time.perf_counter()
        reader.start()
        await wait_for(
            lambda: len([e for e in reader.events if e[1] == "chunk"]) >= args.chunks,
            300,
            "stream read",
        )
        read_rate = args.chunks / (time.perf_counter() - t0)
        clients.append(reader)
        return {
            "bench": "realtime",
            "backend": env.backend,
            "subscribers": args.subscribers,
            "updates": args.updates,
            "all_in_order": in_order,
            "latency_ms_p50": round(statistics.median(latencies), 2),
            "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
            "latency_ms_max": round(latencies[-1], 2),
            "idle_subscribers": args.idle,
            "rss_kb_before": before,
            "rss_kb_after": after,
            "rss_kb_per_idle_subscriber": round((after - before) / args.idle, 1),
            "stream_append_batched_per_s": round(batched),
            "stream_append_one_by_one_per_s": round(one_by_one),
            "stream_read_sse_per_s": round(read_rate),
            "loadavg_1m": os.getloadavg()[0],
        }
    finally:
        for client in clients:
            await client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        await engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arg(ap)
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--gap-ms", type=float, default=20)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--chunks", type=int, default=10_000)
    args = ap.parse_args()
    env = Env("realtime", args.backend)
    try:
        result = asyncio.run(bench(args, env))
    finally:
        env.cleanup()
    print(json.dumps(result))
    print(
        f"{result['backend']}: {result['subscribers']} subscribers × {result['updates']} updates:"
        f" p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms (max"
        f" {result['latency_ms_max']}), in order: {result['all_in_order']}; "
        f"{result['rss_kb_per_idle_subscriber']} KB RSS per idle subscriber; streams: append"
        f" {result['stream_append_batched_per_s']}/s batched, "
        f"{result['stream_append_one_by_one_per_s']}/s one by one, read over SSE"
        f" {result['stream_read_sse_per_s']}/s"
    )


if __name__ == "__main__":
    main()
