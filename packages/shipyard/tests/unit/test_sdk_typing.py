"""Tasks are typed for their callers: mypy (strict) rejects a wrong payload, an unknown or
mistyped trigger option, and a misuse of the output, and accepts correct calls."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

SAMPLE = """
from pydantic import BaseModel
from shipyard import Context, schema_task, task


class Order(BaseModel):
    order_id: str


@task(id="typed")
async def typed(payload: int, ctx: Context) -> str:
    return str(payload)


@task
def sync_bare(payload: dict[str, int]) -> int:
    return 1


@schema_task(id="schema", schema=Order)
async def with_schema(order: Order) -> dict[str, str]:
    return {"id": order.order_id}


async def main() -> None:
    await typed.trigger(1, tags=["a"], delay="5m", priority=2.5)  # ok
    await typed.trigger("wrong")  # E: payload
    await typed.trigger(1, tagz=["a"])  # E: unknown option
    await typed.trigger(1, max_attempts="3")  # E: option type
    result = await typed.trigger_and_wait(2)  # ok
    out: str = result.unwrap()  # ok
    bad: int = result.unwrap()  # E: output type
    await sync_bare.trigger({"a": 1})  # ok
    await sync_bare.batch_trigger([{"a": 1}, {"payload": {"b": 2}, "options": {}}])  # ok
    await with_schema.trigger(Order(order_id="x"))  # ok
    await with_schema.trigger({"order_id": "x"})  # ok
    await with_schema.trigger(5)  # E: schema payload
"""


def test_mypy_checks_payloads_options_and_outputs(tmp_path: Path) -> None:
    sample = tmp_path / "sample_tasks.py"
    sample.write_text(SAMPLE)
    # In a subprocess: mypy raises the interpreter's recursion limit, which would leak into
    # the other tests of this xdist process.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            str(sample),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    stdout, stderr = result.stdout, result.stderr
    errors = {int(m.group(1)) for m in re.finditer(r"sample_tasks\.py:(\d+): error", stdout)}
    expected = {
        number for number, line in enumerate(SAMPLE.splitlines(), start=1) if "# E:" in line
    }
    assert errors == expected, stdout + stderr
