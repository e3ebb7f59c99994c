"""The repository's docs are true to the code and stand alone.

* every ``Settings`` field is in ``docs/configuration.md`` with its ``SHIPYARD_<NAME>``, and
  every variable named there is a setting;
* the state machine drawn in ``docs/runs.md`` is ``TRANSITIONS`` of ``engine/transitions.py``;
* every relative link in the docs resolves (file and ``#anchor``);
* nothing in the repository points at files outside it;
* every Python snippet of the README, ``docs/`` and the agent brief runs as written: the blocks
  of one page are executed in order in one namespace (a page's later blocks may use the names its
  earlier ones define), each page with its own task definitions. A block that runs a script
  (``asyncio.run(...)``) is compiled only here; the README's is run for real below.
* the README's snippets work: its tasks run on a worker, and its "try it" script, run from the
  repository root as the README says, triggers a template task and prints the finished run.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from shipyard.engine.definitions import Definitions, default_definitions, use_definitions
from shipyard.engine.transitions import TRANSITIONS
from shipyard.testing.eventually import eventually

REPO_ROOT = Path(__file__).resolve().parents[4]
DOCS = REPO_ROOT / "docs"
PAGES = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "CLAUDE.md",
        REPO_ROOT / "plan.md",
        REPO_ROOT / "bench" / "README.md",
        REPO_ROOT / "packages" / "shipyard" / "README.md",
        *DOCS.glob("*.md"),
        *(REPO_ROOT / ".claude").rglob("*.md"),
    ]
)
SNIPPET_PAGES = [
    REPO_ROOT / "README.md",
    *sorted(DOCS.glob("*.md")),
    *sorted((REPO_ROOT / ".claude" / "agents").glob("*.md")),
]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


# -- configuration ------------------------------------------------------------------------


def test_every_setting_is_documented_with_its_variable() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text or f"SHIPYARD_{name.upper()}" not in text
    ]
    assert not missing, f"docs/configuration.md does not document: {missing}"
    named = set(re.findall(r"SHIPYARD_([A-Z][A-Z_]*[A-Z])", text))
    unknown = sorted(n for n in named if n.lower() not in Settings.model_fields)
    assert not unknown, f"docs/configuration.md names variables that are no setting: {unknown}"


# -- the state machine ----------------------------------------------------------------------


def test_the_state_machine_drawing_is_the_transition_table() -> None:
    text = (DOCS / "runs.md").read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert block, "docs/runs.md has no mermaid drawing"
    drawn = set(re.findall(r"^\s*([A-Z_]+) --> ([A-Z_]+)", block.group(1), re.MULTILINE))
    table = {(str(src), str(dst)) for src, targets in TRANSITIONS.items() for dst in targets}
    assert drawn - table == set(), f"drawn but not allowed: {sorted(drawn - table)}"
    assert table - drawn == set(), f"allowed but not drawn: {sorted(table - drawn)}"


# -- links and references -------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = CODE_FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page: Path) -> None:
    text = CODE_FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        assert resolved.exists(), f"{rel(page)} links to {target}, which does not exist"
        assert REPO_ROOT in resolved.parents or resolved == REPO_ROOT, (
            f"{rel(page)} links outside the repository: {target}"
        )
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), (
                f"{rel(page)} links to {target}: no heading with that anchor"
            )


# Spelled in pieces so this file does not match itself.
OUTSIDE = [
    "/work" + "/",
    "../" + "shared",
    "SEMANTICS" + ".md",
    "SEMANTICS" + " §",
    "DESIGN" + ".md",
    "DESIGN" + " §",
    "STYLE" + ".md",
]
SKIPPED_DIRS = {".git", ".venv", "node_modules", ".shipyard", "__pycache__", "results"}
TEXT_SUFFIXES = {".md", ".py", ".sql", ".toml", ".sh", ".yaml", ".yml", ".jsonc", ".txt"}


def repository_text_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith("_cache")]
        for name in files:
            path = Path(folder) / name
            if path.suffix in TEXT_SUFFIXES or name in {"Dockerfile", "run"}:
                yield path


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in repository_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found.extend(f"{rel(path)}: {needle}" for needle in OUTSIDE if needle in text)
    assert not found, "restate what matters instead of pointing outside the repository:\n" + (
        "\n".join(found)
    )


# -- snippets -------------------------------------------------------------------------------


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))


def is_script(block: str) -> bool:
    return "asyncio.run(" in block


@pytest.mark.parametrize("page", [p for p in SNIPPET_PAGES if python_blocks(p)], ids=rel)
def test_python_snippets_run_as_written(page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": f"snippets_{page.stem}"}
    with use_definitions(Definitions()):
        for index, block in enumerate(python_blocks(page), start=1):
            code = compile(block, f"{rel(page)} block {index}", "exec")
            if not is_script(block):
                exec(code, namespace)


def test_python_snippets_type_check_strictly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snippets are meant to be copied into ``trigger/`` or ``apps/api``, which mypy checks
    strictly: each page's blocks, joined, must pass ``mypy --strict`` too."""
    from mypy import api

    files = []
    for page in SNIPPET_PAGES:
        if blocks := python_blocks(page):
            path = tmp_path / f"{page.stem.replace('-', '_').lower()}_snippets.py"
            path.write_text("\n\n".join(blocks), encoding="utf-8")
            files.append(str(path))
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")
    # The README's script imports the template's trigger/ from the repository root.
    monkeypatch.setenv(
        "MYPYPATH",
        os.pathsep.join([str(REPO_ROOT / "packages" / "shipyard" / "src"), str(REPO_ROOT)]),
    )
    out, err, status = api.run(
        [
            "--config-file",
            str(config),
            "--strict",
            "--python-version",
            "3.11",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            *files,
        ]
    )
    assert status == 0, out + err


# -- the README, for real -------------------------------------------------------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the README's snippets say nothing about the backend."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


def readme_blocks() -> list[str]:
    return python_blocks(REPO_ROOT / "README.md")


async def test_readme_tasks_run_on_a_worker(engine: Any, start_worker: Any) -> None:
    from shipyard import runs

    namespace: dict[str, Any] = {"__name__": "readme_tasks"}
    for block in readme_blocks():
        if not is_script(block):
            exec(compile(block, "README.md", "exec"), namespace)
    await start_worker()

    sent = await namespace["send_welcome_email"].trigger({"email": "a@example.com"})
    run = await runs.poll(sent, poll_interval_ms=20)
    assert (run.status, run.output) == ("COMPLETED", {"sent": True})
    assert run.metadata == {"status": "sending"}

    refused = await namespace["send_welcome_email"].trigger({})
    run = await runs.poll(refused, poll_interval_ms=20)
    assert (run.status, run.attempt_count) == ("FAILED", 1)
    assert run.error is not None and run.error.name == "AbortTaskRunError"

    await namespace["on_sign_up"]("user_123", "a@example.com")
    delayed = [r async for r in runs.list(task_identifier="send-email")]
    assert [(r.status, r.queue, r.concurrency_key) for r in delayed] == [
        ("DELAYED", "email-processing", "user_123")
    ]


def _define_template_tasks() -> None:
    """Import trigger/example.py into this test's definitions, as a worker would."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    module = importlib.import_module("trigger.example")
    if default_definitions().task("fetch-and-summarise") is None:
        importlib.reload(module)


async def test_readme_try_it_script_runs_from_the_repository_root(
    engine: Any, start_worker: Any, database_url: str
) -> None:
    script = next(block for block in readme_blocks() if is_script(block))
    _define_template_tasks()
    worker = await start_worker()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.pop("PYTHONPATH", None)
    env.update(
        SHIPYARD_DATABASE_URL=database_url,
        # A key of its own, so the script never writes one into the repository's .shipyard/.
        SHIPYARD_SECRET_KEY="readme-try-it-secret-key-of-32-bytes-or-more",
    )
    # `uv run python try_it.py` in the repository root: the root is the script's sys.path[0].
    # Asynchronously: the worker executing the run lives on this event loop.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("COMPLETED {'summaries': ['…'], 'count': 1}"), out.decode()
    await eventually(lambda: worker.completed >= 1)
