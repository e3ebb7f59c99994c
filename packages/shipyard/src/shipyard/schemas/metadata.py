"""Run metadata over HTTP: ``PUT /api/v1/runs/{id}/metadata`` (and ``GET`` of the same path).

The body is Trigger.dev's ``FlushedRunMetadata``: a whole new ``metadata`` object and/or a list
of ``operations`` (plus ``parentOperations``/``rootOperations`` that apply to the run's parent
and root). The answer is the run's metadata after the change.

Trigger.dev's operation names map onto Shipyard's :class:`~shipyard.metadata_ops.MetadataOp`
kinds one to one, except two: ``update`` is Shipyard's ``replace`` (the whole object), and
``delete`` is ``del``.

Example::

    body = UpdateMetadataRequest.model_validate(
        {"operations": [{"type": "increment", "key": "count", "value": 1}]}
    )
    ops = body.metadata_ops()  # [MetadataOp(kind='increment', key='count', value=1)]
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from shipyard.metadata_ops import MetadataOp
from shipyard.schemas.wire import StrictFloat, WireModel

__all__ = [
    "MetadataDeleteOperation",
    "MetadataIncrementOperation",
    "MetadataListOperation",
    "MetadataOperation",
    "MetadataSetOperation",
    "MetadataUpdateOperation",
    "UpdateMetadataRequest",
    "UpdateMetadataResponse",
]


class MetadataUpdateOperation(WireModel):
    """Replace the whole metadata object with ``value``."""

    type: Literal["update"]
    value: dict[str, Any]

    def to_op(self) -> MetadataOp:
        """As Shipyard's ``replace``."""
        return MetadataOp("replace", None, self.value)


class MetadataSetOperation(WireModel):
    """Set ``key`` (a top-level key or a ``$.`` path) to ``value``."""

    type: Literal["set"]
    key: str
    value: Any

    def to_op(self) -> MetadataOp:
        """As Shipyard's ``set``."""
        return MetadataOp("set", self.key, self.value)


class MetadataDeleteOperation(WireModel):
    """Delete ``key``."""

    type: Literal["delete"]
    key: str

    def to_op(self) -> MetadataOp:
        """As Shipyard's ``del``."""
        return MetadataOp("del", self.key)


class MetadataListOperation(WireModel):
    """Append ``value`` to, or remove it from, the list at ``key``."""

    type: Literal["append", "remove"]
    key: str
    value: Any

    def to_op(self) -> MetadataOp:
        """As Shipyard's ``append`` / ``remove``."""
        return MetadataOp(self.type, self.key, self.value)


class MetadataIncrementOperation(WireModel):
    """Add ``value`` (negative to decrement) to the number at ``key``."""

    type: Literal["increment"]
    key: str
    value: StrictFloat

    def to_op(self) -> MetadataOp:
        """As Shipyard's ``increment`` (a whole number stays an int)."""
        value: float | int = int(self.value) if self.value.is_integer() else self.value
        return MetadataOp("increment", self.key, value)


MetadataOperation = Annotated[
    MetadataUpdateOperation
    | MetadataSetOperation
    | MetadataDeleteOperation
    | MetadataListOperation
    | MetadataIncrementOperation,
    Field(discriminator="type"),
]
"""One metadata change, told apart by ``type``."""


class UpdateMetadataRequest(WireModel):
    """Body of ``PUT /api/v1/runs/{id}/metadata``."""

    metadata: dict[str, Any] | None = None
    operations: list[MetadataOperation] | None = None
    parent_operations: list[MetadataOperation] | None = None
    root_operations: list[MetadataOperation] | None = None

    def metadata_ops(self) -> list[MetadataOp]:
        """Every change to this run as Shipyard operations, in order: a given ``metadata``
        object first (as a ``replace``), then ``operations``.

        Raises:
            ValidationError: an operation Shipyard's rules refuse (e.g. an unsafe key).
        """
        ops = [MetadataOp("replace", None, self.metadata)] if self.metadata is not None else []
        ops.extend(op.to_op() for op in self.operations or ())
        return ops

    def parent_ops(self) -> list[MetadataOp]:
        """The changes to apply to the run's parent."""
        return [op.to_op() for op in self.parent_operations or ()]

    def root_ops(self) -> list[MetadataOp]:
        """The changes to apply to the run's root."""
        return [op.to_op() for op in self.root_operations or ()]


class UpdateMetadataResponse(WireModel):
    """The run's metadata after the change."""

    metadata: dict[str, Any]
