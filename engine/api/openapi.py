"""The OpenAPI document: FastAPI's, plus every error an operation can answer.

FastAPI documents only the success status and 422. The API also answers 400 (input the engine
refuses), 401, 404, 409, 413 and 503, always in one of two shapes: the error envelope, or the
contact lists API's own ``{"code", "message"}``. They are added here, once, by rule — from what
the operation has (a body, path parameters, security, a method that writes) — so a client
generated from ``/openapi.json`` knows every answer it can get.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from engine.api.errors import CONTACT_LISTS_PREFIX

#: The error envelope of the API (and of the bot campaigns API).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. NOT_FOUND"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "one entry per invalid field (422)",
                },
            },
        },
    },
}

#: The contact lists API's error shape: a number, a message, our code as ``reason``.
CONTACT_LISTS_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ContactListsError",
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "30000 authentication, 30036 not found"},
        "message": {"type": "string"},
        "reason": {"type": "string", "description": "the engine's code, for bad input"},
    },
}

#: What a route that checks passwords declares (``responses=ATTEMPT_LIMITED``): its 429.
ATTEMPT_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many failed password checks lately; retry after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}

#: What each error status means, as the document says it.
DESCRIPTIONS = {
    "400": "Refused input (the code says why)",
    "401": "Missing or wrong credentials",
    "404": "No such object in the caller's organization",
    "409": "The object's state does not allow it, or it clashes with another",
    "413": "The body is larger than the server accepts",
    "422": "The request does not match this document",
    "503": "The store is unreachable; retry (see Retry-After)",
}

_WRITES = {"post", "put", "patch", "delete"}


def error_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses ``operation`` can answer, by rule."""
    statuses = ["400", "422", "503"]
    if operation.get("security") or method in _WRITES:
        statuses.append("401")
    # An object named by the path, or referred to by the body (a list id, a campaign id …).
    if "requestBody" in operation or any(
        p.get("in") == "path" for p in operation.get("parameters", ())
    ):
        statuses.append("404")
    if method in _WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("413")
    return sorted(statuses)


def _add_errors(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ContactListsError"] = CONTACT_LISTS_ERROR_SCHEMA
    for path, operations in document.get("paths", {}).items():
        name = "ContactListsError" if path.startswith(CONTACT_LISTS_PREFIX) else "Error"
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        for method, operation in operations.items():
            if "health" in operation.get("tags", ()):
                continue  # the probes answer their own shapes (``GET /ready``: 503 with checks)
            responses = operation.setdefault("responses", {})
            for status in error_statuses(method, operation):
                # 422 is FastAPI's own entry: its schema is replaced by ours (the real shape).
                responses[status] = {"description": DESCRIPTIONS[status], "content": content}
            for status, response in responses.items():
                # An error a route declares itself (``responses={403: …}``) gets the shape too.
                if status >= "400" and "content" not in response:
                    response["content"] = content


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` build the document with its errors (once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _add_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
