"""A cap on request bodies, enforced while reading (a lying Content-Length doesn't get past)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import error_for_path

#: Paths whose bodies may be as large as ``max_import_bytes``: CSV imports.
IMPORT_PATH = re.compile(r"^/api/v1/lists/[^/]+/import/?$")


class BodyTooLarge(Exception):
    """Raised inside the app when the body grows past the limit."""


class BodySizeLimit:
    """ASGI middleware answering 413 ``PAYLOAD_TOO_LARGE`` to bodies over the limit.

    The limit is ``max_bytes``, except on :data:`IMPORT_PATH` where CSV files are streamed to
    disk: there it is ``max_import_bytes``. The answer has the shape of the path's API.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_import_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_import_bytes = max_import_bytes

    def limit(self, scope: Scope) -> int:
        """The most bytes a request to this path may send."""
        if IMPORT_PATH.match(scope.get("path", "")):
            return self.max_import_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length first, then count the bytes actually received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
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
                await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"request body is larger than {limit} bytes"
        response = error_for_path(scope.get("path", ""), 413, "PAYLOAD_TOO_LARGE", message)
        await response(scope, receive, send)
