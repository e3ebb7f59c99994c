"""The triggering side of ``chaos.py``: an application that keeps triggering runs while the
faults hit, on a thread of its own (its own event loop and engine).

It queues the first ``preload`` runs at once, then (once the workers drain) the rest in batches
at a steady rate. Each batch carries an idempotency key, so a batch whose call failed is
retried as is until it is accepted (what a careful application does): a batch is never lost,
nor created twice. The errors it met are counted by type, with the first message of each (what
the application saw).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from _common import Env

BATCH = 50


class TriggerLoad:
    """Triggers ``runs`` runs of the ``chaos`` task (``payload.i`` = 0 … runs − 1)."""

    def __init__(self, env: Env, runs: int, preload: int, rate: float, task_ms: float) -> None:
        self.env = env
        self.runs = runs
        self.preload = preload
        self.rate = rate
        self.task_ms = task_ms
        self.preloaded = threading.Event()
        self.go = threading.Event()  # set by chaos.py once the workers drain
        self.done = threading.Event()
        self.triggered = 0
        self.errors: dict[str, int] = {}
        self.messages: dict[str, str] = {}
        self.retries = 0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="chaos-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._trigger_all())
        except BaseException as exc:  # reported by chaos.py
            self.failure = exc
        finally:
            self.preloaded.set()
            self.done.set()

    async def _trigger_all(self) -> None:
        engine = self.env.engine()
        import tasks.chaos  # noqa: F401  (defines "chaos" in this process)

        await engine.start()
        try:
            for start in range(0, self.preload, 1000):
                await self._batch(engine, start, min(start + 1000, self.preload))
            self.preloaded.set()
            await asyncio.to_thread(self.go.wait)
            began = time.monotonic()
            for start in range(self.preload, self.runs, BATCH):
                due = began + (start - self.preload) / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await self._batch(engine, start, min(start + BATCH, self.runs))
        finally:
            await engine.close()

    async def _batch(self, engine: Any, start: int, end: int) -> None:
        entries = [
            {"task": "chaos", "payload": {"i": i, "ms": self.task_ms}, "options": {}}
            for i in range(start, end)
        ]
        delay = 0.05
        while True:
            try:
                await engine.batch_trigger(entries, {"idempotency_key": f"chaos-{start}"})
            except Exception as exc:
                kind = f"{type(exc).__module__}.{type(exc).__name__}"
                self.errors[kind] = self.errors.get(kind, 0) + 1
                self.messages.setdefault(kind, str(exc).strip().splitlines()[0][:300])
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.triggered = end
            return

    def report(self) -> dict[str, Any]:
        return {
            "triggered": self.triggered,
            "trigger_errors": self.errors,
            "trigger_error_messages": self.messages,
            "trigger_retries": self.retries,
            "trigger_failure": None if self.failure is None else repr(self.failure),
        }
