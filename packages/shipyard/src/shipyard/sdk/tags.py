"""Tags on the current run: ``await tags.add("user_123")`` inside a task.

A run has at most 10 tags; adding past that is logged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shipyard.engine.metadata import flush_scope
from shipyard.engine.options import MAX_TAGS, validate_tags
from shipyard.engine.scope import require_scope

log = logging.getLogger("shipyard.task")


class _Tags:
    """Add tags to the current run."""

    async def add(self, tags: str | Sequence[str]) -> list[str]:
        """Add tags to the current run; returns the run's tags afterwards."""
        scope = require_scope("tags.add")
        # Validate each tag (type, length) but not the count: past 10 is ignored, not an error.
        items = [tags] if isinstance(tags, str) else list(tags)
        new: list[str] = []
        for item in items:
            new.extend(t for t in validate_tags([item]) if t not in scope.tags and t not in new)
        room = MAX_TAGS - len(scope.tags)
        if len(new) > room:
            log.warning(
                "%s: a run can have at most %d tags; ignoring %s",
                scope.ctx.run.id,
                MAX_TAGS,
                ", ".join(new[room:]),
            )
        await flush_scope(scope)  # earlier logs and metadata precede the tag event
        result = await scope.engine.add_tags(scope.ctx.run.id, new[: max(room, 0)])
        scope.tags = list(result)
        return list(result)


tags = _Tags()
