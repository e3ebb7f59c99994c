"""The caller's notes, read and written through Supabase as the caller.

The per-request client forwards the caller's access token, so the ``notes`` policies in
``supabase/migrations`` decide what is visible: each user sees and writes only their own rows.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from postgrest.exceptions import APIError
from pydantic import BaseModel, Field

from app.auth import CurrentUser, User
from app.config import AppConfig, get_config
from app.lib.supabase import create_supabase_client
from app.routing import StrictJSONRoute

log = logging.getLogger("app.notes")
router = APIRouter(route_class=StrictJSONRoute, prefix="/notes", tags=["notes"])


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


def _require(config: AppConfig, user: User) -> None:
    if not config.supabase_configured:
        raise HTTPException(503, detail="Supabase is not configured (see GET /db-test).")
    if not user.access_token:
        raise HTTPException(401, detail="Notes need a signed-in user's bearer token.")


@router.get("")
async def list_notes(
    user: CurrentUser, config: Annotated[AppConfig, Depends(get_config)]
) -> dict[str, Any]:
    """The caller's notes, newest first (row-level security does the filtering)."""
    _require(config, user)
    supabase = await create_supabase_client(config, user.access_token)
    try:
        result = await (
            supabase.table("notes")
            .select("id,title,body,created_at")
            .order("created_at", desc=True)
            .execute()
        )
    except APIError as exc:
        log.warning("listing notes failed: %s", exc.code)
        raise HTTPException(502, detail=f"Supabase refused the query ({exc.code}).") from None
    return {"notes": result.data}


@router.post("", status_code=201)
async def create_note(
    note: NoteIn, user: CurrentUser, config: Annotated[AppConfig, Depends(get_config)]
) -> dict[str, Any]:
    """Create a note owned by the caller (``user_id`` defaults to ``auth.uid()``)."""
    _require(config, user)
    supabase = await create_supabase_client(config, user.access_token)
    try:
        result = await supabase.table("notes").insert(note.model_dump()).execute()
    except APIError as exc:
        log.warning("creating a note failed: %s", exc.code)
        raise HTTPException(502, detail=f"Supabase refused the insert ({exc.code}).") from None
    return {"note": result.data[0] if result.data else None}
