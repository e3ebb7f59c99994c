#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# In CI a missing PostgreSQL must fail the PostgreSQL tests, never skip them.
if [ "${CI:-}" = "true" ]; then export SHIPYARD_REQUIRE_POSTGRES=1; fi
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
# The dashboard's browser tests drive Debian's Chromium (packages/shipyard/tests/browser).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing chromium for the dashboard's browser tests…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: the browser tests need /usr/bin/chromium" \
      "(sudo apt-get install -y chromium); they are skipped outside CI and fail in CI." >&2
  fi
fi
# Dependencies compiled to bytecode once, at install (uv leaves them as source by default):
# on a fresh clone each of the suite's processes otherwise compiled what it imported.
uv sync --frozen --compile-bytecode
# Bytecode caches on (git ignores them): with PYTHONDONTWRITEBYTECODE set, as in many container
# images, every pytest process rewrote and compiled all 450 test modules (~9 s CPU each) and
# every engine, worker and CLI subprocess the suite starts compiled the stack from source
# (~0.8 s CPU each): a quarter of the suite's CPU on a 2-core machine.
unset PYTHONDONTWRITEBYTECODE
# The project's own modules and tests compiled once here, not by each pytest process at its
# start (a fresh clone's suite: 306 s of pytest before these two steps, 292 s after).
# Only a speed-up: a file that does not compile fails in ruff and pytest, with its name.
uv run python -m compileall -q -j 0 packages apps scripts >/dev/null || true
uv run ruff format --check .
uv run ruff check .
uv run mypy
# Independent tests run in parallel (pytest-xdist); most of their time is spent waiting on
# subprocesses, servers and the database, so 4 processes pay off on 2 cores (6 was slower).
# Work stealing keeps every process busy to the end instead of one finishing a long tail.
uv run pytest -n "${SHIPYARD_TEST_PROCESSES:-4}" --dist worksteal "$@"
