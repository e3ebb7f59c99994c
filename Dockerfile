# syntax=docker/dockerfile:1
# The Shipyard engine and workers as one image: `shipyard server` (default) or `shipyard worker`,
# both against SHIPYARD_DATABASE_URL (PostgreSQL). Your task code (trigger/) is baked in.
#
#   docker build -t shipyard-engine:dev .
#   docker run -e SHIPYARD_DATABASE_URL=postgresql://… -e SHIPYARD_SECRET_KEY=… shipyard-engine:dev
#   docker run -e SHIPYARD_DATABASE_URL=… -e SHIPYARD_SECRET_KEY=… shipyard-engine:dev \
#       shipyard worker --wait-for-db
#
# No secret is ever part of the image: the database URL and the secret key come from the
# environment at run time (compose.yaml, your orchestrator). See docs/scaling.md.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- build: resolve from uv.lock into /app/.venv -------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a layer that changes only with uv.lock), then the engine itself: the base
# and every extra (server, worker, CLI, PostgreSQL) — `shipyard[all]`.
COPY pyproject.toml uv.lock ./
COPY packages/shipyard/pyproject.toml packages/shipyard/README.md packages/shipyard/
COPY apps/api/pyproject.toml apps/api/
RUN uv sync --frozen --no-dev --package shipyard --extra all --no-install-workspace
COPY packages/shipyard/src packages/shipyard/src
RUN uv sync --frozen --no-dev --package shipyard --extra all --no-editable

# --- runtime: the virtualenv, your tasks, a non-root user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 shipyard \
    && useradd --system --uid 10001 --gid shipyard --home-dir /app --no-create-home shipyard
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY pyproject.toml /app/pyproject.toml
COPY trigger /app/trigger
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHIPYARD_PROJECT_ROOT=/app \
    SHIPYARD_ENVIRONMENT=production \
    SHIPYARD_SERVER_HOST=0.0.0.0 \
    SHIPYARD_SERVER_PORT=3030
USER shipyard:shipyard
EXPOSE 3030
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SHIPYARD_SERVER_PORT', '3030') + '/healthz', timeout=4)"]
CMD ["shipyard", "server"]
