"""What realtime delivers: runs as subscriptions see them, the change that produced each, and
stream chunks.

A subscription (``runs.subscribe_to_run`` …) yields :class:`RealtimeRun` objects — a
:class:`~shipyard.models.runs.Run` whose ``is_completed`` follows Trigger.dev's realtime
meaning: COMPLETED or a failed status, **not** CANCELED (``runs.retrieve``'s
``is_completed`` counts CANCELED too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.models.runs import Run
from shipyard.statuses import FAILED_STATUSES, RunStatus

__all__ = ["CHANGE_KINDS", "RealtimeRun", "RunChange", "StreamChunk"]

CHANGE_KINDS = ("snapshot", "created", "status", "metadata", "tag")
"""Why a subscription produced an update: the run as it was when the subscription started
(``snapshot``), or a change of the run (its creation, a status, metadata or tags)."""


@dataclass(frozen=True, slots=True)
class RealtimeRun(Run):
    """A run as a realtime subscription delivers it.

    ``status`` is the status the change produced (an update for each status change, in order,
    even when they happened within milliseconds); metadata and tags are the run's as of the
    change (metadata changes made close together may arrive as one); ``output`` is set once
    the status is COMPLETED, ``error`` and ``finished_at`` once it is final.
    """

    @property
    def is_completed(self) -> bool:
        """COMPLETED or failed (FAILED, CRASHED, SYSTEM_FAILURE, EXPIRED, TIMED_OUT); unlike
        ``Run.is_completed``, not CANCELED — Trigger.dev's realtime meaning."""
        return self.status is RunStatus.COMPLETED or self.status in FAILED_STATUSES


@dataclass(frozen=True, slots=True)
class RunChange:
    """One update of a subscription: the run, why it changed (:data:`CHANGE_KINDS`), and the
    ``position`` to resume from after it (the SSE event id).

    ``encodings`` holds encoded forms of the update (the SSE body), made by the first sender
    and reused by every other subscriber of the same change.
    """

    run: RealtimeRun
    change: str
    position: str
    encodings: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One chunk of a run's stream: its index (0, 1, …; resume with ``start_index`` = the
    next one) and its value."""

    index: int
    value: Any
