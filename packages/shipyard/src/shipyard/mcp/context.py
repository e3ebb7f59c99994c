"""What every tool call shares: the server's flags, the engine, the dev server and the docs.

The engine is opened on first use (so ``search_docs`` works in a project whose settings are
broken) and installed as the process default, so the public SDK (``shipyard.runs`` …) that
the tools call reaches it. The flags decide which engine a tool may use at all:

* ``api_url`` (``--api-url`` / ``SHIPYARD_API_URL``) names a remote engine server: the tools
  reach it through the remote client (:class:`~shipyard.client.RemoteClient`, authenticated
  with ``SHIPYARD_SECRET_KEY``), installed as the process's SDK backend. The dev server tools
  need this project's own engine and refuse.
* ``dev_only`` (``--dev-only``) refuses any engine but the local development one: the
  environment must be ``development`` and the database SQLite or PostgreSQL on this machine.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shipyard.config import Settings, find_project_root, load_settings
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.client import RemoteClient
    from shipyard.engine.engine import Engine
    from shipyard.mcp.devserver import DevServer
    from shipyard.mcp.docs import DocsIndex

API_URL_ENV = "SHIPYARD_API_URL"
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class McpOptions:
    """The flags of ``shipyard mcp``."""

    readonly: bool = False
    """Hide every tool that changes something."""
    dev_only: bool = False
    """Refuse any engine that is not the local development one."""
    api_url: str | None = None
    """A remote engine server's URL: the tools go to it over HTTP."""
    project_root: Path | None = None
    """The project (``pyproject.toml`` with ``[tool.shipyard]``); found from the cwd if None."""

    @classmethod
    def from_flags(
        cls,
        *,
        readonly: bool = False,
        dev_only: bool = False,
        api_url: str | None = None,
        project_root: Path | None = None,
    ) -> McpOptions:
        """Options from the command line; ``SHIPYARD_API_URL`` when ``api_url`` is not given."""
        return cls(
            readonly=readonly,
            dev_only=dev_only,
            api_url=api_url or os.environ.get(API_URL_ENV) or None,
            project_root=project_root,
        )


def database_host(database_url: str) -> str | None:
    """The host a database URL points at; None for SQLite (always a local file)."""
    if database_url.startswith("sqlite:"):
        return None
    try:
        return urlsplit(database_url).hostname or ""
    except ValueError:
        return "(unparseable)"


def check_dev_only(settings: Settings) -> None:
    """Raise :class:`ConfigError` unless ``settings`` are the local development engine's."""
    problems = []
    if settings.environment != "development":
        problems.append(f"its environment is '{settings.environment}', not 'development'")
    host = database_host(settings.database_url)
    if host is not None and host not in LOCAL_HOSTS:
        # Only the host: a database URL can hold a password.
        problems.append(f"its database is on '{host}', not on this machine")
    if problems:
        raise ConfigError(
            "shipyard mcp runs with --dev-only and this engine is not the local development "
            f"one: {' and '.join(problems)}. Point SHIPYARD_ENVIRONMENT/SHIPYARD_DATABASE_URL "
            "at the local stack, or start the server without --dev-only."
        )


class ToolContext:
    """The state tools share within one MCP server process.

    ``engine`` is an engine to use as it is (tests pass theirs); without one the context opens
    an engine from the project's settings on first use and closes it in :meth:`close`.
    """

    def __init__(
        self,
        options: McpOptions,
        *,
        engine: Engine | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.options = options
        self._engine = engine
        self._owns_engine = engine is None
        self._settings = settings or (engine.settings if engine is not None else None)
        self._lock = asyncio.Lock()
        self._client: RemoteClient | None = None
        self._dev_server: DevServer | None = None
        self._docs: DocsIndex | None = None

    def settings(self) -> Settings:
        """The project's settings, read once (a :class:`ConfigError` when they are invalid)."""
        if self._settings is None:
            overrides = {}
            if self.options.project_root is not None:
                overrides["project_root"] = self.options.project_root
            self._settings = load_settings(**overrides)
        return self._settings

    @property
    def project_root(self) -> Path:
        """The project folder: from the flags, the settings, or found from the cwd."""
        if self.options.project_root is not None:
            return self.options.project_root.resolve()
        if self._settings is not None:
            return self._settings.project_root
        try:
            return self.settings().project_root
        except ConfigError:
            return find_project_root()

    def check_engine_allowed(self) -> Settings:
        """The settings of the engine tools may use, or the error that says why none may.

        With ``--dev-only`` a remote engine is refused (it is not the local development one).
        """
        settings = self.settings()
        if self.options.dev_only:
            if self.options.api_url:
                raise ConfigError(
                    "shipyard mcp runs with --dev-only and --api-url names a remote engine "
                    "server; drop one of them."
                )
            check_dev_only(settings)
        return settings

    async def engine(self) -> Engine | RemoteClient:
        """The engine the tools use: the remote client of ``--api-url`` (installed as the
        SDK's backend), else this project's engine (:meth:`local_engine`)."""
        if not self.options.api_url:
            return await self.local_engine()
        settings = self.check_engine_allowed()
        async with self._lock:
            if self._client is None:
                from shipyard.client import RemoteClient
                from shipyard.sdk.backend import set_client

                self._client = RemoteClient.from_settings(
                    settings.model_copy(update={"api_url": self.options.api_url})
                )
                set_client(self._client)
            return self._client

    async def local_engine(self) -> Engine:
        """This project's engine, opened (and migrated) on first use, installed as the process
        default. Refused with ``--api-url`` (the dev server tools need it)."""
        if self.options.api_url:
            raise ConfigError(
                f"This tool needs this project's own engine, and --api-url / {API_URL_ENV} names "
                f"a remote one ({_public_url(self.options.api_url)}). Start the MCP server "
                "without it."
            )
        settings = self.check_engine_allowed()
        async with self._lock:
            if self._engine is None:
                from shipyard.engine.engine import Engine

                self._engine = Engine(settings)
            engine = self._engine
            await engine.start()
            from shipyard.engine.registry import set_engine

            set_engine(engine)
        return engine

    @property
    def dev_server(self) -> DevServer:
        """The ``shipyard dev`` process this server starts and stops."""
        if self._dev_server is None:
            from shipyard.mcp.devserver import DevServer

            self._dev_server = DevServer(self)
        return self._dev_server

    @property
    def docs(self) -> DocsIndex:
        """The index of the project's documentation, built on first search."""
        if self._docs is None:
            from shipyard.mcp.docs import DocsIndex

            self._docs = DocsIndex.for_project(self.project_root)
        return self._docs

    async def close(self) -> None:
        """Stop the dev server this process started and close the engine it opened."""
        if self._dev_server is not None:
            await self._dev_server.stop_if_started_here()
        if self._client is not None:
            from shipyard.sdk.backend import set_client

            client, self._client = self._client, None
            set_client(None)
            await client.close()
        if self._owns_engine and self._engine is not None:
            from shipyard.engine.registry import set_engine

            engine, self._engine = self._engine, None
            set_engine(None)
            await engine.close()


def _public_url(url: str) -> str:
    # Imported here: the client brings httpx, which the local tools never need.
    from shipyard.client.transport import public_url

    return public_url(url)
