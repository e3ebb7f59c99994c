"""List query parameters: ``filter[...]`` and ``page[...]`` (cursor pages), ``page``/``perPage``
(offset pages), parsed into typed objects with errors that name the parameter.

What the official SDK sends for ``runs.list({...})`` (``createSearchQueryForListRuns``): every
list value comma-joined in one parameter (``filter[status]=QUEUED,EXECUTING``), dates as epoch
milliseconds (``filter[createdAt][from]=1735689600000``), ``filter[createdAt][period]=1d``,
``filter[isTest]=true``, and ``page[size]``/``page[after]``/``page[before]``. Shipyard also takes
ISO-8601 dates and repeated parameters (``filter[tag]=a&filter[tag]=b``).

A filter the SDK knows but Shipyard cannot apply yet (``filter[version]``,
``filter[queue]`` …) is a 400 naming it, never silently ignored: an ignored filter would
return runs the caller asked to leave out. An unknown parameter is a 400 too.

Example::

    query = parse_run_list_query(request.query_params.multi_items())
    created_from, created_to = query.created_range(now_ms)
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shipyard.durations import parse_duration_ms
from shipyard.errors import InvalidDurationError, ValidationError
from shipyard.schemas.runs import RUN_STATUSES

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "RUN_FILTERS_SUPPORTED",
    "CursorPage",
    "OffsetPage",
    "RunListQuery",
    "TokenListQuery",
    "parse_offset_page",
    "parse_run_list_query",
    "parse_token_list_query",
]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

QueryParams = Mapping[str, str] | Iterable[tuple[str, str]]

RUN_FILTERS: tuple[str, ...] = (
    "filter[status]",
    "filter[taskIdentifier]",
    "filter[tag]",
    "filter[batch]",
    "filter[createdAt][from]",
    "filter[createdAt][to]",
    "filter[createdAt][period]",
    "filter[isTest]",
    "filter[version]",
    "filter[schedule]",
    "filter[bulkAction]",
    "filter[queue]",
    "filter[machine]",
    "filter[region]",
    "page[size]",
    "page[after]",
    "page[before]",
)
"""Every run-list parameter the official SDK can send."""

RUN_FILTERS_SUPPORTED = frozenset(
    {
        "filter[status]",
        "filter[taskIdentifier]",
        "filter[tag]",
        "filter[batch]",
        "filter[schedule]",
        "filter[createdAt][from]",
        "filter[createdAt][to]",
        "filter[createdAt][period]",
        "page[size]",
        "page[after]",
    }
)
"""The run-list parameters Shipyard's engine can apply today (the default ``supported``)."""

TOKEN_FILTERS: tuple[str, ...] = (
    "filter[status]",
    "filter[idempotencyKey]",
    "filter[tags]",
    "filter[createdAt][from]",
    "filter[createdAt][to]",
    "filter[createdAt][period]",
    "page[size]",
    "page[after]",
    "page[before]",
)
TOKEN_STATUSES = ("WAITING", "COMPLETED", "TIMED_OUT")
_LIST_PARAMS = frozenset(
    {
        "filter[status]",
        "filter[taskIdentifier]",
        "filter[tag]",
        "filter[tags]",
        "filter[version]",
        "filter[queue]",
        "filter[machine]",
        "filter[region]",
    }
)


@dataclass(frozen=True, slots=True)
class CursorPage:
    """``page[size]`` (1–100, default 25) and the cursors ``page[after]``/``page[before]``."""

    size: int = DEFAULT_PAGE_SIZE
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class RunListQuery:
    """The filters and page of ``GET /api/v1/runs``. Empty tuples and ``None`` mean "any".

    ``tags`` match runs having any of them (Trigger.dev's rule); ``created_*_ms`` bound
    ``createdAt``; ``period_ms`` means "created in the last …" (see :meth:`created_range`).
    """

    statuses: tuple[str, ...] = ()
    task_identifiers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    batch: str | None = None
    created_from_ms: int | None = None
    created_to_ms: int | None = None
    period_ms: int | None = None
    is_test: bool | None = None
    versions: tuple[str, ...] = ()
    schedule: str | None = None
    bulk_action: str | None = None
    queues: tuple[str, ...] = ()
    machines: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    page: CursorPage = CursorPage()

    def created_range(self, now_ms: int) -> tuple[int | None, int | None]:
        """``(from, to)`` in epoch ms; a period sets ``from`` to ``now - period`` unless
        ``from`` is later."""
        start = self.created_from_ms
        if self.period_ms is not None:
            since = now_ms - self.period_ms
            start = since if start is None else max(start, since)
        return start, self.created_to_ms


@dataclass(frozen=True, slots=True)
class TokenListQuery:
    """The filters and page of ``GET /api/v1/waitpoints/tokens``."""

    statuses: tuple[str, ...] = ()
    idempotency_key: str | None = None
    tags: tuple[str, ...] = ()
    created_from_ms: int | None = None
    created_to_ms: int | None = None
    period_ms: int | None = None
    page: CursorPage = CursorPage()

    def created_range(self, now_ms: int) -> tuple[int | None, int | None]:
        """``(from, to)`` in epoch ms, as :meth:`RunListQuery.created_range`."""
        start = self.created_from_ms
        if self.period_ms is not None:
            since = now_ms - self.period_ms
            start = since if start is None else max(start, since)
        return start, self.created_to_ms


@dataclass(frozen=True, slots=True)
class OffsetPage:
    """``page`` (from 1) and ``perPage`` (1–100, default 25) of offset-paged lists."""

    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        """How many items come before this page."""
        return (self.page - 1) * self.per_page


def _invalid(param: str, message: str) -> ValidationError:
    return ValidationError(f"Invalid query parameter {param}: {message}", param=param)


def _collect(params: QueryParams, known: tuple[str, ...]) -> dict[str, list[str]]:
    pairs = params.items() if isinstance(params, Mapping) else params
    values: dict[str, list[str]] = {}
    for name, raw in pairs:
        if name not in known:
            raise ValidationError(
                f"Unknown query parameter {name}; accepted: {', '.join(known)}.", param=name
            )
        values.setdefault(name, []).append(raw)
    for name, given in values.items():
        if len(given) > 1 and name not in _LIST_PARAMS:
            raise _invalid(name, "given more than once.")
    return values


def _list(values: dict[str, list[str]], name: str) -> tuple[str, ...]:
    items: list[str] = []
    for raw in values.get(name, ()):
        for part in raw.split(","):
            part = part.strip()
            if not part:
                raise _invalid(name, "an empty item in the list.")
            if part not in items:
                items.append(part)
    return tuple(items)


def _one(values: dict[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    if not given:
        return None
    if not given[0]:
        raise _invalid(name, "empty.")
    return given[0]


def _statuses(values: dict[str, list[str]], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    statuses = _list(values, name)
    for status in statuses:
        if status not in allowed:
            raise _invalid(name, f"unknown status {status!r}; one of {', '.join(allowed)}.")
    return statuses


def _time_ms(values: dict[str, list[str]], name: str) -> int | None:
    raw = _one(values, name)
    if raw is None:
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    text = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(
            name, f"{raw!r} is neither epoch milliseconds nor an ISO-8601 date-time."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _period_ms(values: dict[str, list[str]], name: str) -> int | None:
    raw = _one(values, name)
    if raw is None:
        return None
    try:
        return parse_duration_ms(raw)
    except InvalidDurationError as exc:
        raise _invalid(name, exc.message) from None


def _bool(values: dict[str, list[str]], name: str) -> bool | None:
    raw = _one(values, name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise _invalid(name, f"expected true or false, got {raw!r}.")
    return raw == "true"


def _cursor_page(values: dict[str, list[str]]) -> CursorPage:
    size = DEFAULT_PAGE_SIZE
    raw = _one(values, "page[size]")
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise _invalid("page[size]", f"expected a whole number from 1 to {MAX_PAGE_SIZE}.")
        size = int(raw)
    after, before = _one(values, "page[after]"), _one(values, "page[before]")
    if after is not None and before is not None:
        raise _invalid("page[before]", "give page[after] or page[before], not both.")
    return CursorPage(size=size, after=after, before=before)


def _check_range(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise _invalid("filter[createdAt][to]", "it is before filter[createdAt][from].")


def parse_run_list_query(
    params: QueryParams, *, supported: frozenset[str] = RUN_FILTERS_SUPPORTED
) -> RunListQuery:
    """Parse the query of ``GET /api/v1/runs``.

    ``params`` is a mapping or a sequence of ``(name, value)`` pairs (Starlette's
    ``request.query_params.multi_items()``, so repeated names are kept).

    Raises:
        ValidationError: an unknown or unsupported parameter, or a value that does not parse;
            ``param`` names it.

    Example::

        >>> parse_run_list_query({"filter[status]": "QUEUED,EXECUTING"}).statuses
        ('QUEUED', 'EXECUTING')
    """
    values = _collect(params, RUN_FILTERS)
    for name in values:
        if name not in supported:
            raise ValidationError(
                f"The query parameter {name} is not supported by this server yet; "
                f"supported: {', '.join(n for n in RUN_FILTERS if n in supported)}.",
                param=name,
            )
    start = _time_ms(values, "filter[createdAt][from]")
    end = _time_ms(values, "filter[createdAt][to]")
    _check_range(start, end)
    return RunListQuery(
        statuses=_statuses(values, "filter[status]", RUN_STATUSES),
        task_identifiers=_list(values, "filter[taskIdentifier]"),
        tags=_list(values, "filter[tag]"),
        batch=_one(values, "filter[batch]"),
        created_from_ms=start,
        created_to_ms=end,
        period_ms=_period_ms(values, "filter[createdAt][period]"),
        is_test=_bool(values, "filter[isTest]"),
        versions=_list(values, "filter[version]"),
        schedule=_one(values, "filter[schedule]"),
        bulk_action=_one(values, "filter[bulkAction]"),
        queues=_list(values, "filter[queue]"),
        machines=_list(values, "filter[machine]"),
        regions=_list(values, "filter[region]"),
        page=_cursor_page(values),
    )


def parse_token_list_query(params: QueryParams) -> TokenListQuery:
    """Parse the query of ``GET /api/v1/waitpoints/tokens`` (as :func:`parse_run_list_query`).

    Example::

        >>> parse_token_list_query([("filter[status]", "WAITING")]).statuses
        ('WAITING',)
    """
    values = _collect(params, TOKEN_FILTERS)
    start = _time_ms(values, "filter[createdAt][from]")
    end = _time_ms(values, "filter[createdAt][to]")
    _check_range(start, end)
    return TokenListQuery(
        statuses=_statuses(values, "filter[status]", TOKEN_STATUSES),
        idempotency_key=_one(values, "filter[idempotencyKey]"),
        tags=_list(values, "filter[tags]"),
        created_from_ms=start,
        created_to_ms=end,
        period_ms=_period_ms(values, "filter[createdAt][period]"),
        page=_cursor_page(values),
    )


def parse_offset_page(params: QueryParams, others: tuple[str, ...] = ()) -> OffsetPage:
    """Parse ``page`` and ``perPage`` (the queue list's offset paging); ``others`` are the
    route's own parameters, accepted here (and named in the unknown-parameter error).

    Example::

        >>> parse_offset_page({"page": "2", "perPage": "10"}).offset
        10
    """
    values = _collect(params, ("page", "perPage", *others))
    page, per_page = 1, DEFAULT_PAGE_SIZE
    raw = _one(values, "page")
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise _invalid("page", "expected a whole number from 1.")
        page = int(raw)
    raw = _one(values, "perPage")
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise _invalid("perPage", f"expected a whole number from 1 to {MAX_PAGE_SIZE}.")
        per_page = int(raw)
    return OffsetPage(page=page, per_page=per_page)
