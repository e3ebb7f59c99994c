"""Cursor pagination for the SDK's listing calls: every page, item by item."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

__all__ = ["epoch_ms", "every_item"]

T = TypeVar("T", covariant=True)
Item = TypeVar("Item")


class Page(Protocol[T]):
    """A page of a listing: its items and the cursor of the next page (None on the last)."""

    @property
    def items(self) -> Sequence[T]: ...

    @property
    def next_cursor(self) -> str | None: ...


async def every_item(fetch: Callable[[str | None], Awaitable[Page[Item]]]) -> AsyncIterator[Item]:
    """Yield every item of every page; ``fetch(cursor)`` returns one page (``None``: the first)."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def epoch_ms(value: datetime.datetime | int | float | None) -> int | None:
    """A datetime (naive means UTC) or epoch milliseconds as epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp() * 1000)
    return int(value)
