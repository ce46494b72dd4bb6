"""A cap on request bodies, enforced while reading (a lying Content-Length doesn't get past)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose bodies may be as large as ``max_import_bytes``: CSV imports.
IMPORT_PATH = re.compile(r"^/api/v1/lists/[^/]+/import/?$")


class BodyTooLarge(Exception):
    """Raised inside the app when the body grows past the limit."""


class BodySizeLimit:
    """ASGI middleware answering 413 ``PAYLOAD_TOO_LARGE`` to bodies over the limit.

    The limit is ``max_bytes``, except on :data:`IMPORT_PATH` where CSV files are streamed to
    disk: there it is ``max_import_bytes``, by default the app's ``settings.max_import_bytes``
    (``create_app`` keeps the settings in ``app.state``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_import_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_import_bytes = max_import_bytes

    def limit(self, scope: Scope) -> int:
        """The most bytes a request to this path may send."""
        if not IMPORT_PATH.match(scope.get("path", "")):
            return self.max_bytes
        if self.max_import_bytes is not None:
            return self.max_import_bytes
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return int(getattr(settings, "max_import_bytes", self.max_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length first, then count the bytes actually received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "success": False,
                "error": {
                    "code": "PAYLOAD_TOO_LARGE",
                    "message": f"request body is larger than {limit} bytes",
                },
            }
        ).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
