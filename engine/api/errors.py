"""Every error answers ``{"success": false, "error": {"code", "message"}}`` — never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.errors import (
    AuthenticationFailed,
    Conflict,
    EngineError,
    InvalidTransition,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from engine.logging import get_logger
from engine.outages import ServiceOutage, is_outage

log = get_logger()

#: HTTP status of each engine error class (the first match in order wins).
STATUS_BY_ERROR: list[tuple[type[EngineError], int]] = [
    (AuthenticationFailed, 401),
    (NotFound, 404),
    (InvalidTransition, 409),
    (Conflict, 409),
    (ValidationFailed, 400),
    (TooManyAttempts, 429),
]


#: Routes of the contact lists API, which answer errors in its own shape.
CONTACT_LISTS_PREFIX = "/v1/marketing/"
#: The contact lists API's numeric codes: 30000 authentication, 30036 not found; 30001 (ours) bad
#: input.
CONTACT_LISTS_CODES = {401: (30000, "Authentication failed"), 404: (30036, "resource not found")}


def contact_lists_error(status: int, code: str, message: str) -> JSONResponse:
    """``{"code": 30000, "message": "Authentication failed"}`` and friends (contact lists API)."""
    number, text = CONTACT_LISTS_CODES.get(status, (30001, message))
    body: dict[str, Any] = {"code": number, "message": text}
    if number == 30001:
        body["reason"] = code
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def error_for_path(path: str, status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The error in the shape of the API ``path`` belongs to (the contact lists API's, or the
    envelope)."""
    if path.startswith(CONTACT_LISTS_PREFIX):
        return contact_lists_error(status, code, message)
    return error_response(status, code, message, **extra)


def _answer(request: Request, status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return error_for_path(request.url.path, status, code, message, **extra)


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The error envelope."""
    error: dict[str, Any] = {"code": code, "message": message, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"success": False, "error": error}, status_code=status, headers=headers)


def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EngineError)
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
    response = _answer(request, status, exc.code, exc.message)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
        }
        for e in exc.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return _answer(
            request, 400, "INVALID_JSON", "the request body is not valid JSON", details=details
        )
    summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details[:5])
    return _answer(request, 422, "VALIDATION_FAILED", summary or "invalid request", details=details)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}.get(
        exc.status_code, f"HTTP_{exc.status_code}"
    )
    response = _answer(request, exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # RFC 9110: ``Allow`` lists every method of the resource. Starlette names only those
        # of the first route whose path matched; the others (PUT beside GET …) are routes too.
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, sorted."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value pydantic let through (a NUL character, a number out of
    # range): the client's input, so a 400; the unit of work was rolled back.
    log.info("api.data_error", error=str(exc).splitlines()[0][:200])
    return _answer(request, 400, "INVALID_INPUT", "a value in the request cannot be stored")


#: SQLSTATE of a unique violation and of a foreign-key violation (PostgreSQL).
UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION = "23505", "23503"


def integrity_kind(exc: sa_exc.IntegrityError) -> str:
    """What the database refused: ``unique``, ``foreign_key`` or ``other`` (NOT NULL, CHECK …).

    Read from the DBAPI error: psycopg's SQLSTATE, or SQLite's message.
    """
    sqlstate = getattr(exc.orig, "sqlstate", None)
    message = str(exc.orig)
    if sqlstate == UNIQUE_VIOLATION or message.startswith("UNIQUE constraint failed"):
        return "unique"
    if sqlstate == FOREIGN_KEY_VIOLATION or message.startswith("FOREIGN KEY constraint failed"):
        return "foreign_key"
    return "other"


def integrity_answer(exc: sa_exc.IntegrityError) -> tuple[int, str, str]:
    """``(status, code, message)`` the API answers an integrity error with.

    A unique violation is two requests racing to create the same thing (a list or segment
    name): the service's check passed for both and the constraint stopped the second — 409
    ``CONFLICT``. A foreign-key violation is an object still referred to (or gone meanwhile):
    409 ``IN_USE``. Anything else is a bug: 500, logged with its traceback.
    """
    kind = integrity_kind(exc)
    if kind == "unique":
        return 409, "CONFLICT", "the request clashes with an object that exists"
    if kind == "foreign_key":
        return 409, "IN_USE", "the request breaks a reference between objects (one is in use)"
    return 500, "INTERNAL_ERROR", "internal error; it has been logged"


def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, sa_exc.IntegrityError)
    status, code, message = integrity_answer(exc)
    if status == 500:
        log.exception("api.error", exc_info=exc)
        return error_response(status, code, message)
    error = str(exc.orig).splitlines()[0][:200]
    if code == "CONFLICT":
        log.info("api.conflict", error=error)
    else:
        log.warning("api.integrity_error", error=error)
    return _answer(request, status, code, message)


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_outage(exc):
        return _unexpected(request, exc)
    # The database is restarting or unreachable: never a 200 for a write that may be lost.
    # A connection lost during COMMIT may still have applied it, hence "may not".
    log.warning("api.service_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
    response = _answer(
        request,
        503,
        "SERVICE_UNAVAILABLE",
        "the store is unreachable and the request may not have been applied; retry it "
        "(with an Idempotency-Key, execute is safe to retry)",
    )
    response.headers["Retry-After"] = "5"
    return response


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("api.error", exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers: the one place engine errors become HTTP answers."""
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DataError, _data_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, ServiceOutage):
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
