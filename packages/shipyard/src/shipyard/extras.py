"""The optional parts of the ``shipyard`` distribution, and the extra that installs each.

``pip install shipyard`` is the light base: pure Python (it runs on Cloudflare Python Workers),
the SDK, the models and the engine on SQLite. The rest comes with extras (``pyproject.toml``)::

    shipyard[cli]        typer, rich                  the ``shipyard`` command
    shipyard[engine]     cli + fastapi, uvicorn,      ``shipyard dev``, ``shipyard server``,
                         watchfiles, mcp,             ``shipyard mcp``, realtime SSE, the
                         sse-starlette, jinja2,       dashboard
                         python-multipart
    shipyard[postgres]   psycopg (binary, pool)       the PostgreSQL store
    shipyard[all]        engine + postgres            what the workspace installs

Modules that need an extra import its packages inside themselves and call :func:`require`
first (or turn the import's error into one with :func:`missing_extra`), so a light install
gets one line naming what to install, never a traceback through someone else's import.

Example::

    from shipyard.extras import require

    require("postgres", "The PostgreSQL store")  # MissingExtraError if psycopg is absent
"""

from __future__ import annotations

import importlib.util

from shipyard.errors import MissingExtraError

__all__ = ["EXTRAS", "install_hint", "missing_extra", "missing_modules", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "cli": ("typer", "rich"),
    "engine": (
        "typer",
        "rich",
        "fastapi",
        "uvicorn",
        "watchfiles",
        "mcp",
        "sse_starlette",
        "jinja2",
        "multipart",
    ),
    "postgres": ("psycopg", "psycopg_pool"),
}
"""The top-level modules each extra installs (``all`` is ``engine`` + ``postgres``)."""


def install_hint(extra: str) -> str:
    """How to install ``extra``: ``pip install 'shipyard[extra]'`` (uv: ``uv add``)."""
    return f"pip install 'shipyard[{extra}]' (with uv: uv add 'shipyard[{extra}]')"


def missing_modules(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that cannot be imported here.

    Only looks them up (no import), so it is cheap and has no side effects."""
    missing = []
    for module in modules if modules is not None else EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or half-removed install
            found = False
        if not found:
            missing.append(module)
    return missing


def _error(extra: str, what: str, missing: list[str]) -> MissingExtraError:
    names = ", ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    return MissingExtraError(
        f"{what} needs the '{extra}' extra ({names} {verb} not installed): {install_hint(extra)}",
        extra=extra,
        modules=tuple(missing),
    )


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless its modules are installed.

    ``what`` starts the message (``"shipyard dev"``, ``"The PostgreSQL store"``); ``modules``
    checks only those of the extra's modules the caller needs."""
    missing = missing_modules(extra, modules)
    if missing:
        raise _error(extra, what, missing)


def missing_extra(exc: ImportError, extra: str, what: str) -> ImportError:
    """``exc`` as a :class:`MissingExtraError` when it says a module of ``extra`` is not
    installed; else ``exc`` itself (a real bug, or an installed package that fails to import,
    must not be reported as a missing extra).

    Example::

        try:
            import mcp.types
        except ImportError as exc:
            raise missing_extra(exc, "engine", "shipyard mcp") from None
    """
    top = (exc.name or "").split(".")[0]
    if isinstance(exc, ModuleNotFoundError) and top and top in EXTRAS[extra]:
        return _error(extra, what, [top])
    return exc
