"""A real uvicorn server on 127.0.0.1 in a background thread, for the SDK's tests.

Load it with ``pytest_plugins = ["tests.api.live"]`` (and don't import it yourself, so that
pytest can rewrite its asserts): ``live`` serves the API on the test settings and gives its URL
and a fresh organization's credentials; ``new_tenant(name)`` adds another organization; ``sdk``
is an :class:`engine.client.Client` authenticated with ``live``'s API key.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn

from engine.api.app import create_app
from engine.audience.contacts import add_contacts, demo_contacts
from engine.client import Client
from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import bootstrap
from engine.testing import wait_for

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class LiveTenant:
    """A served API, and an organization in it with contacts, a user and an API key."""

    base_url: str
    organization_id: str
    user_id: str
    username: str
    password: str
    api_key: str


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Serve ``create_app(settings)`` on a free port of 127.0.0.1; yield its base URL.

    The socket is bound before the server starts (no race for the port); the server stops
    through ``should_exit`` and its thread is joined.
    """
    app = create_app(settings)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every answer after the first on a kept-alive connection waits ~40 ms (Nagle
    # against the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        app.state.engine.dispose()


def make_live_tenant(base_url: str, rt: Runtime, name: str, contacts: int = 30) -> LiveTenant:
    """Create an organization with ``contacts`` contacts, a user and an API key."""
    with session_scope(rt.engine) as session:
        org, user, key = bootstrap(session, name, f"{name}-admin", PASSWORD)
        add_contacts(session, org.id, demo_contacts(contacts))
        ids = (org.id, user.id)
    return LiveTenant(base_url, ids[0], ids[1], f"{name}-admin", PASSWORD, key)


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """The base URL of a real server on the test settings (SQLite or PostgreSQL)."""
    with serve(settings) as url:
        yield url


@pytest.fixture
def new_tenant(live_url: str, rt: Runtime) -> Callable[[str], LiveTenant]:
    """``new_tenant(name)`` adds an organization (30 contacts) to the served API."""
    return lambda name: make_live_tenant(live_url, rt, name)


@pytest.fixture
def live(new_tenant: Callable[[str], LiveTenant]) -> LiveTenant:
    """The served API with a fresh organization ``acme`` (30 contacts)."""
    return new_tenant("acme")


@pytest.fixture
def sdk(live: LiveTenant) -> Iterator[Client]:
    """An SDK client of the served API, authenticated with ``acme``'s API key."""
    with Client(live.base_url, api_key=live.api_key, timeout=30) as client:
        yield client
