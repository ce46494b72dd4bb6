"""``/api/v1/lists/{list_id}/import`` and ``/export``: contacts as CSV, streamed.

An import's body is streamed to a spooled temporary file (memory up to :data:`SPOOL_BYTES`,
then disk), checked to be UTF-8 on the way, then imported batch by batch on the request's
session (each batch committed, see :mod:`engine.audience.contact_import`). An export streams from
a server-side cursor in its own unit of work.
"""

from __future__ import annotations

import codecs
import io
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from engine.api.deps import CurrentPrincipal, SessionDep
from engine.api.errors import error_response
from engine.api.responses import Envelope, ImportResultOut, ok
from engine.api.schemas import MAX_ID
from engine.audience.contact_export import export_contacts
from engine.audience.contact_import import ImportResult, import_contacts
from engine.audience.lists import get_list
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.models import ContactList

router = APIRouter(prefix="/api/v1/lists", tags=["contacts"])

#: Bytes of an uploaded CSV kept in memory before it spills to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024
#: Content types accepted for an import (``text/csv`` is the one to send).
CSV_TYPES = ("text/csv", "application/csv", "text/plain")

ListId = Annotated[int, Path(ge=1, le=MAX_ID, description="The list's id")]

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A CSV file with a header row: email, phone, name, tags, custom fields.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


async def _spool(request: Request, spool: IO[bytes]) -> None:
    """Copy the body into ``spool``, checking it is UTF-8 on the way.

    Raises:
        ValidationFailed: an empty body (``EMPTY_BODY``) or one that is not UTF-8
            (``INVALID_ENCODING``).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    try:
        async for chunk in request.stream():
            decoder.decode(chunk)
            spool.write(chunk)
            size += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"the body is not UTF-8 text (byte {size + exc.start})", code="INVALID_ENCODING"
        ) from exc
    if size == 0:
        raise ValidationFailed("the body is empty: send the CSV file", code="EMPTY_BODY")
    spool.seek(0)


def _own_list(session: Session, organization_id: str, list_id: int) -> ContactList:
    """The organization's list, the request's transaction then ended.

    Every SQLite transaction takes the write lock (``BEGIN IMMEDIATE``): it must not be held
    while the body uploads or while the import's and export's own transactions run.
    """
    found = get_list(session, organization_id, list_id)
    session.commit()
    return found


def _import(session: Session, organization_id: str, list_id: int, spool: IO[bytes]) -> ImportResult:
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    try:
        return import_contacts(session, organization_id, list_id, text)
    finally:
        text.detach()


@router.post(
    "/{list_id}/import",
    openapi_extra=_CSV_BODY,
    response_model=Envelope[ImportResultOut],
    responses={
        413: {"description": "larger than MAX_IMPORT_BYTES"},
        415: {"description": "the body is not text/csv"},
    },
)
async def import_csv(
    list_id: ListId, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Any:
    """Import a CSV file (``Content-Type: text/csv``) into the list; answer the counts.

    Contacts are matched on email (else phone) within the list, so importing a file twice
    changes nothing. Rows that can't be stored are reported with their line; the rest import.
    Batches are committed as they go: a file broken half-way keeps the batches before the break
    (the error says up to which line).
    """
    await run_in_threadpool(_own_list, session, principal.organization_id, list_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_TYPES:
        return error_response(
            415, "UNSUPPORTED_MEDIA_TYPE", "send the file as the body with Content-Type: text/csv"
        )
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        await _spool(request, spool)
        result = await run_in_threadpool(
            _import, session, principal.organization_id, list_id, spool
        )
    return ok(ImportResultOut.of(result))


def _filename(name: str, list_id: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "list"
    return f"{slug[:80]}-{list_id}.csv"


@router.get(
    "/{list_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The list's contacts as CSV"}},
)
def export_csv(
    list_id: ListId, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> StreamingResponse:
    """Download the list's contacts as CSV (id, email, phone, name, tags, custom fields, times).

    The file imports back unchanged. It is streamed: any list size, flat memory.
    """
    found = _own_list(session, principal.organization_id, list_id)
    engine: Engine = request.app.state.engine
    organization_id = principal.organization_id

    def body() -> Iterator[str]:
        # Its own unit of work: the request's session is closed before the body is sent.
        with session_scope(engine) as export_session:
            yield from export_contacts(export_session, organization_id, list_id)

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(found.name, list_id)}"'},
    )
