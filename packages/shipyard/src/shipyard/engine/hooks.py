"""Calling user hooks: by parameter name, sync or async, in the documented order."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

log = logging.getLogger("shipyard.worker")


@cache
def _accepted(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), True
    names = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


async def call_hook(fn: Callable[..., Any], **available: Any) -> Any:
    """Call ``fn`` with the keyword arguments it names (all of them if it takes ``**kw``).

    Hooks declare what they need: ``def on_success(payload, output, ctx)`` or
    ``async def on_failure(error, ctx)``.
    """
    names, var_kw = _accepted(fn)
    kwargs = available if var_kw else {k: v for k, v in available.items() if k in names}
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def call_hooks_quietly(
    hooks: list[Callable[..., Any]], label: str, run_id: str, **available: Any
) -> None:
    """Call each hook in order; an error is logged and does not change the run's outcome."""
    for hook in hooks:
        try:
            await call_hook(hook, **available)
        except Exception:
            log.exception("%s hook %s failed for %s (ignored)", label, _name(hook), run_id)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
