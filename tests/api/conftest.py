"""An API client on the parametrized store, authenticated as a fresh organization's user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audience.contacts import add_contacts, demo_contacts
from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import bootstrap


@dataclass
class Tenant:
    """An organization with a user, an API key and an authenticated client."""

    organization_id: str
    username: str
    password: str
    api_key: str
    client: TestClient

    def headers(self) -> dict[str, str]:
        """Bearer header with the tenant's API key."""
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(client: TestClient, rt: Runtime, name: str, contacts: int = 30) -> Tenant:
    """Create an organization with ``contacts`` contacts, a user and an API key."""
    with session_scope(rt.engine) as session:
        org, _, key = bootstrap(session, name, f"{name}-admin", "correct horse battery")
        add_contacts(session, org.id, demo_contacts(contacts))
    return Tenant(org.id, f"{name}-admin", "correct horse battery", key, client)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client of the API on the test settings."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tenant(client: TestClient, rt: Runtime) -> Tenant:
    """The calling organization."""
    tenant = make_tenant(client, rt, "acme")
    client.headers.update(tenant.headers())
    return tenant
