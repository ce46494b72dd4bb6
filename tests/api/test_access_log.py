"""A real uvicorn server, logging as ``campaign api`` does, writes no key of a query string."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from engine.api.access_log import ACCESS_LOGGER, redact_target
from engine.api.app import create_app
from engine.config import Settings
from engine.testing import wait_for


class _Lines(logging.Handler):
    """Keeps every formatted line of the access log."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_log(settings: Settings) -> Iterator[tuple[str, list[str]]]:
    """A served API with uvicorn's default logging and access log on; its URL and lines."""
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    # uvicorn's own logging set-up (as under `campaign api`), access log on
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="off"))
    lines = _Lines()
    logging.getLogger(ACCESS_LOGGER).addHandler(lines)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", lines.lines
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(lines)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        app.state.engine.dispose()


def test_keys_in_query_strings_are_redacted_from_the_access_log(
    access_log: tuple[str, list[str]],
) -> None:
    url, lines = access_log
    query = "apikey=k_live_SECRET1&page=2&Token=SECRET2&api%5Fkey=SECRET3&access_token=SECRET4"

    answer = httpx.get(f"{url}/builder/triggers/1?{query}")  # a trigger URL as documented

    assert answer.status_code == 401
    wait_for(lambda: bool(lines), timeout=5)
    [line] = [line for line in lines if "/triggers/1?" in line]
    assert "SECRET" not in line
    assert "apikey=***&page=2&Token=***&api%5Fkey=***&access_token=***" in line
    assert "401" in line


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/x", "/x"),
        ("/x?page=2", "/x?page=2"),
        ("/x?apikey=", "/x?apikey=***"),
        ("/x?key=a&key=b", "/x?key=***&key=***"),
        ("/x?monkey=1&token", "/x?monkey=1&token"),
        ("/x?a=1&secret=s#frag", "/x?a=1&secret=***#frag"),
        # WhatsApp's webhook verification carries the account's verify token.
        (
            "/api/v1/providers/whatsapp/acc_1?hub.mode=subscribe&hub.verify_token=v&hub.challenge=7",
            "/api/v1/providers/whatsapp/acc_1?hub.mode=subscribe&hub.verify_token=***&hub.challenge=7",
        ),
    ],
)
def test_redact_target(target: str, logged: str) -> None:
    assert redact_target(target) == logged
