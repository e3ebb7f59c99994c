"""The base every wire model shares: camelCase JSON, dates as JavaScript writes them, and no
``null`` where Trigger.dev's client expects a field to be absent.

Trigger.dev's TypeScript client validates responses with zod, where ``.optional()`` accepts a
missing field but **not** ``null``; worse, ``z.coerce.date().optional()`` turns ``null`` into
1 January 1970 without complaint. So a :class:`WireModel` drops every field whose value is
``None`` when it is serialised, except the fields a model lists in ``wire_nullable`` (zod
``.nullable()`` fields, and values such as ``payload``/``output`` where ``null`` is data).

Dates (:data:`WireDateTime`) are written exactly as JavaScript's ``Date.toISOString()`` does,
``2025-01-02T03:04:05.678Z``: UTC, milliseconds, a ``Z``. They are read from a ``datetime``
(naive means UTC), an ISO-8601 string or a number of epoch milliseconds (how the engine's
records keep times).

Example::

    class Thing(WireModel):
        created_at: WireDateTime
        finished_at: WireDateTime | None = None

    Thing(created_at=0).to_wire()
    # {'createdAt': '1970-01-01T00:00:00.000Z'}
"""

from __future__ import annotations

import datetime
import math
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "StrictFloat",
    "StrictInt",
    "WireDateTime",
    "WireModel",
    "build_wire_models",
    "format_wire_datetime",
    "parse_wire_datetime",
]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def parse_wire_datetime(value: Any) -> Any:
    """Read a date for a wire model: ``datetime``, ISO-8601 text or epoch milliseconds.

    Anything else is returned unchanged for pydantic to reject with its own message.

    Example::

        >>> parse_wire_datetime(1_000).isoformat()
        '1970-01-01T00:00:01+00:00'
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return value
        return _EPOCH + datetime.timedelta(milliseconds=value)
    return value


def format_wire_datetime(value: datetime.datetime) -> str:
    """``value`` as JavaScript's ``Date.toISOString()`` writes it (UTC, milliseconds, ``Z``).

    A naive ``datetime`` is taken as UTC.

    Example::

        >>> format_wire_datetime(datetime.datetime(2025, 1, 2, 3, 4, 5, 678_901))
        '2025-01-02T03:04:05.678Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


WireDateTime = Annotated[
    datetime.datetime,
    BeforeValidator(parse_wire_datetime),
    PlainSerializer(format_wire_datetime, return_type=str, when_used="json-unless-none"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A date on the wire: ISO-8601 UTC with milliseconds (``Date.toISOString()``)."""


StrictInt = Annotated[int, Field(strict=True)]
"""An integer in a request body: ``true``, ``1.0`` and ``"1"`` are refused, as zod does."""

StrictFloat = Annotated[float, Field(strict=True)]
"""A number in a request body: integers are accepted; ``true`` and ``"1"`` are refused."""


_NULLABLE_KEYS: dict[type[WireModel], frozenset[str]] = {}


class WireModel(BaseModel):
    """Base of every request and response body: camelCase aliases, ``None`` fields omitted.

    Python code uses the snake_case field names (``populate_by_name``); JSON uses camelCase.
    Serialise with :meth:`to_wire` (or FastAPI's ``response_model``, which uses aliases).
    Fields named in ``wire_nullable`` are written as ``null`` rather than omitted.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        # Built on first use: a CLI command imports some sixty of these and uses a few, and
        # building each costs about a millisecond at every start.
        defer_build=True,
    )

    wire_nullable: ClassVar[frozenset[str]] = frozenset()
    """Field names (snake_case) written as ``null`` when ``None`` instead of being left out."""

    # No return annotation on purpose: pydantic derives the serialisation JSON schema (and so
    # the OpenAPI response schemas) from it, and any annotation here would replace the model's
    # own field-by-field schema.
    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if not isinstance(data, dict):
            return data
        keep = self._nullable_keys()
        return {key: value for key, value in data.items() if value is not None or key in keep}

    @classmethod
    def _nullable_keys(cls) -> frozenset[str]:
        keys = _NULLABLE_KEYS.get(cls)
        if keys is None:
            # Both spellings: the handler emits aliases or names depending on by_alias.
            names = cls.wire_nullable
            aliases = {
                field.alias
                for name, field in cls.model_fields.items()
                if name in names and field.alias
            }
            keys = _NULLABLE_KEYS[cls] = names | aliases
        return keys

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready body: camelCase keys, ISO dates, absent fields left out.

        Example::

            TriggerTaskResponse(id="run_1").to_wire()  # {'id': 'run_1'}
        """
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def build_wire_models() -> None:
    """Build every wire model imported so far, and have the type adapters made for them from
    now on built at once too (they are built on first use otherwise).

    The server calls it before it declares its routes. FastAPI wraps each body model in a
    ``TypeAdapter`` of its own, and an adapter of a model configured ``defer_build`` defers
    too: built on the first request, through a path where pydantic warns about the body's
    alias (``UnsupportedFieldAttributeWarning``) on every first request to a route."""
    pending: list[type[WireModel]] = [WireModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        model.model_config["defer_build"] = False
        if not model.__pydantic_complete__:
            model.model_rebuild(force=True)
