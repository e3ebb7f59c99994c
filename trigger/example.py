"""Example tasks that ship with the template.

``fetch-and-summarise`` shows the everyday shape of a Shipyard task: it reports progress through
run metadata, logs structured lines, traces a section, and survives a flaky step by retrying it
with backoff (the whole attempt is retried too, if it still fails).
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel

from shipyard import logger, metadata, retry, schema_task, task


class SummaryRequest(BaseModel):
    """What ``summarise-text`` needs."""

    text: str
    max_words: int = 20


@task(
    id="fetch-and-summarise",
    retry={"max_attempts": 4, "factor": 2, "min_timeout_ms": 200, "max_timeout_ms": 2_000},
    max_duration=60,
)
async def fetch_and_summarise(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Summarise a list of documents, reporting progress in metadata.

    ``flaky_rate`` (0–1) makes each document's fetch fail that often, to show retries.
    """
    documents: list[str] = payload.get("documents", [])
    flaky_rate = float(payload.get("flaky_rate", 0.0))
    metadata.set("status", "fetching").set("progress", 0).set("total", len(documents))
    summaries = []
    for index, document in enumerate(documents, start=1):

        async def fetch(attempt: int, document: str = document) -> str:
            if random.random() < flaky_rate:
                raise ConnectionError(f"fetching {document!r} failed (attempt {attempt})")
            return document

        async with logger.trace("summarise-document", index=index):
            text = await retry.on_throw(fetch, max_attempts=3, min_timeout_ms=50, randomize=False)
            words = text.split()
            summaries.append(" ".join(words[:8]) + ("…" if len(words) > 8 else ""))
        metadata.set("progress", round(index / max(len(documents), 1), 2))
        logger.info("summarised document", index=index, attempt=ctx.attempt.number)
    metadata.set("status", "done")
    return {"summaries": summaries, "count": len(summaries)}


@schema_task(id="summarise-text", schema=SummaryRequest)
def summarise_text(request: SummaryRequest) -> dict[str, Any]:
    """A sync task (runs in a thread) with a validated payload."""
    words = request.text.split()
    return {"summary": " ".join(words[: request.max_words]), "words": len(words)}
