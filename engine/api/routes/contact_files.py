"""``/api/v1/lists/{list_id}/import`` and ``/export``: contacts as CSV, streamed."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/lists", tags=["contacts"])
