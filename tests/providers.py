"""Fake messaging providers on loopback that answer as Telegram and WhatsApp document.

Each is a real HTTP server on 127.0.0.1 (a thread): it checks the path and credentials, answers
per recipient (blocked users, unknown chats …) and records every request with its arrival time.
Tests script particular answers with :meth:`FakeProvider.queue`: the next requests for that
recipient get them, in order, before the provider answers normally again. :func:`outgoing`
builds the message a test hands a channel.

Example:
    >>> with FakeTelegram(TOKEN, blocked={"42"}) as telegram:
    ...     telegram.queue("7", flood(retry_after=1))
    ...     channel_config = {"bot_token": TOKEN, "base_url": telegram.base_url}
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from engine.channels.base import OutgoingMessage, idempotency_key


def outgoing(
    contact_id: int,
    recipient: dict[str, Any],
    config: dict[str, Any],
    body: Any,
    ids: tuple[str, str, str] = ("ex1", "c1", "t1"),
) -> OutgoingMessage:
    """One rendered message for contact ``contact_id``, as the engine hands it to a channel.

    Args:
        recipient: the contact's addressable fields (``id`` is ``contact_id``).
        ids: the execution, campaign and touchpoint it belongs to.
    """
    execution_id, campaign_id, touchpoint_id = ids
    return OutgoingMessage(
        execution_id=execution_id,
        campaign_id=campaign_id,
        touchpoint_id=touchpoint_id,
        contact_id=contact_id,
        idempotency_key=idempotency_key(execution_id, touchpoint_id, contact_id),
        recipient={"id": contact_id, **recipient},
        body=body,
        config=config,
    )


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: a JSON-able ``body`` (or raw bytes), extra headers, an optional delay."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request the provider received (``at`` is ``time.monotonic()`` on arrival)."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FakeProvider:
    """A threaded HTTP server on 127.0.0.1; subclasses implement :meth:`answer` and :meth:`key`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._queues: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def queue(self, key: str, *answers: Answer) -> None:
        """Answer the next requests for recipient ``key`` with ``answers``, in order."""
        with self._lock:
            self._queues[key].extend(answers)

    def requests_for(self, key: str) -> list[Request]:
        """The requests addressed to recipient ``key``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if self.key(r.body) == key]

    def key(self, body: Any) -> str | None:
        """The recipient a request body is for (the key of :meth:`queue`)."""
        raise NotImplementedError

    def answer(self, request: Request) -> Answer:
        """How the provider answers a request nothing was queued for."""
        raise NotImplementedError

    def _respond(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            queued = self._queues.get(self.key(request.body) or "")
            scripted = queued.popleft() if queued else None
        return scripted or self.answer(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = Request(self.path, dict(self.headers), body, time.monotonic())
                self._send(provider._respond(request))

            def _send(self, answer: Answer) -> None:
                time.sleep(answer.delay_s)
                raw = answer.body
                headers = {"Content-Type": "text/html"} if isinstance(raw, bytes) else {}
                if not isinstance(raw, bytes):
                    raw = json.dumps(answer.body).encode()
                    headers["Content-Type"] = "application/json"
                try:
                    self.send_response(answer.status)
                    for name, value in {**headers, **answer.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def bad_gateway(status: int = 502) -> Answer:
    """What an overloaded front end answers: an HTML error page."""
    return Answer(status, f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode())


def slow(answer: Answer, delay_s: float) -> Answer:
    """``answer``, sent after ``delay_s`` seconds."""
    return Answer(answer.status, answer.body, answer.headers, delay_s)


# --- Telegram Bot API ------------------------------------------------------------------------


def telegram_error(status: int, description: str, **parameters: Any) -> Answer:
    """A Bot API error: ``{"ok": false, "error_code", "description", "parameters"?}``."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(status, body)


def flood(retry_after: int) -> Answer:
    """Telegram's flood control answer (429 with ``parameters.retry_after``)."""
    return telegram_error(
        429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
    )


BOT_BLOCKED = telegram_error(403, "Forbidden: bot was blocked by the user")
USER_DEACTIVATED = telegram_error(403, "Forbidden: user is deactivated")
BOT_KICKED = telegram_error(403, "Forbidden: bot was kicked from the group chat")
CHAT_NOT_FOUND = telegram_error(400, "Bad Request: chat not found")
UNAUTHORIZED = telegram_error(401, "Unauthorized")
NOT_FOUND = telegram_error(404, "Not Found")


class FakeTelegram(FakeProvider):
    """The Bot API's ``sendMessage`` for one bot: chats are known unless listed as ``unknown``."""

    PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)")

    def __init__(
        self,
        token: str,
        blocked: Iterable[str] = (),
        deactivated: Iterable[str] = (),
        unknown: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.token = token
        self.blocked, self.deactivated, self.unknown = set(blocked), set(deactivated), set(unknown)
        self._message_ids = iter(range(1000, 10**9))

    def key(self, body: Any) -> str | None:
        """Requests are keyed by ``chat_id``."""
        return str(body["chat_id"]) if isinstance(body, dict) and "chat_id" in body else None

    def answer(self, request: Request) -> Answer:
        """Check the path, the token and the parameters; then answer as the chat would."""
        match = self.PATH.fullmatch(request.path)
        if match is None or match["method"] != "sendMessage":
            return NOT_FOUND
        if match["token"] != self.token:
            return UNAUTHORIZED
        return self._invalid(request.body) or self._deliver(request.body)

    def _invalid(self, body: Any) -> Answer | None:
        if not isinstance(body, dict) or not body.get("chat_id"):
            return telegram_error(400, "Bad Request: chat_id is empty")
        if not body.get("text"):
            return telegram_error(400, "Bad Request: message text is empty")
        if body.get("parse_mode") not in (None, "HTML", "MarkdownV2", "Markdown"):
            return telegram_error(400, "Bad Request: unsupported parse_mode")
        return None

    def _deliver(self, body: dict[str, Any]) -> Answer:
        chat = str(body["chat_id"])
        if chat in self.blocked:
            return BOT_BLOCKED
        if chat in self.deactivated:
            return USER_DEACTIVATED
        if chat in self.unknown:
            return CHAT_NOT_FOUND
        message_id = next(self._message_ids)
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": body["chat_id"], "type": "private"},
            "text": body["text"],
        }
        return Answer(200, {"ok": True, "result": result})


# --- WhatsApp Cloud API ----------------------------------------------------------------------


def cloud_error(
    code: int,
    message: str,
    status: int = 400,
    *,
    subcode: int | None = None,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """A Graph / Cloud API error: ``{"error": {"message", "type", "code", …, "fbtrace_id"}}``."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGh123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Answer(status, {"error": error}, headers or {})


class FakeWhatsApp(FakeProvider):
    """The Cloud API's ``/messages`` for one business number.

    Args:
        undeliverable: numbers that are not on WhatsApp (131026).
        dormant: numbers whose 24-hour customer-service window is closed (131047): text fails
            for them, templates are delivered.
        templates: approved template names and how many body parameters each takes.
    """

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        api_version: str = "v21.0",
        undeliverable: Iterable[str] = (),
        dormant: Iterable[str] = (),
        templates: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.access_token, self.phone_number_id = access_token, phone_number_id
        self.path = f"/{api_version}/{phone_number_id}/messages"
        self.undeliverable, self.dormant = set(undeliverable), set(dormant)
        self.templates = templates if templates is not None else {"hello_world": 0}
        self._ids = iter(range(1, 10**9))

    def key(self, body: Any) -> str | None:
        """Requests are keyed by ``to``."""
        return str(body["to"]) if isinstance(body, dict) and "to" in body else None

    def answer(self, request: Request) -> Answer:
        """Check the credentials, the path and the body; then answer as WhatsApp would."""
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return cloud_error(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        if request.path != self.path:
            return cloud_error(
                100,
                f"Unsupported post request. Object with ID '{request.path}' does not exist",
                subcode=33,
            )
        return self._invalid(request.body) or self._deliver(request.body)

    def _invalid(self, body: Any) -> Answer | None:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return cloud_error(100, "(#100) The parameter messaging_product is required.")
        if not str(body.get("to", "")).isdigit():
            return cloud_error(100, "(#100) Invalid parameter", details="to is not a number")
        if body.get("type") == "template":
            return self._template_error(body.get("template") or {})
        if body.get("type") != "text" or not (body.get("text") or {}).get("body"):
            return cloud_error(131051, "(#131051) Unsupported message type")
        return None

    def _template_error(self, template: dict[str, Any]) -> Answer | None:
        expected = self.templates.get(template.get("name", ""))
        if expected is None:
            return cloud_error(132001, "(#132001) Template name does not exist in the translation")
        body_parts = [c for c in template.get("components", []) if c.get("type") == "body"]
        given = sum(len(c.get("parameters", [])) for c in body_parts)
        if given != expected:
            return cloud_error(
                132000, "(#132000) Number of parameters does not match the expected number"
            )
        return None

    def _deliver(self, body: dict[str, Any]) -> Answer:
        to = str(body["to"])
        if to in self.undeliverable:
            return cloud_error(131026, "(#131026) Message Undeliverable.")
        if to in self.dormant and body["type"] != "template":
            return cloud_error(
                131047,
                "(#131047) Re-engagement message",
                details="More than 24 hours have passed since the recipient last replied",
            )
        message: dict[str, Any] = {"id": f"wamid.HBgL{next(self._ids):08d}"}
        if body["type"] == "template":
            message["message_status"] = "accepted"
        return Answer(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [message],
            },
        )
