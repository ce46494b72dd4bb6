"""Objects a bot campaign action refers to can't be deleted under it; integrity errors that do
reach the API are answered by what they are (a taken name is a conflict, nothing else is)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from starlette.requests import Request

from engine.bots.actions import ActionInput, cancel_action, create_action, create_bot
from engine.db import session_scope
from engine.models import Contact, ContactList
from engine.runtime import Runtime
from tests.api.conftest import Tenant


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return dict(body["error"])


def _cancelled_action(rt: Runtime, tenant: Tenant) -> tuple[str, str, int]:
    """A bot action scheduled for tomorrow, then cancelled: ``(action, campaign, list)``."""
    with session_scope(rt.engine) as session:
        bot = create_bot(session, tenant.organization_id, "atendente", "log")
        when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        data = ActionInput(
            content="Hi {{ name }}",
            scheduled_date=when,
            sheet_values=["phone,name", "+5511999990001,Ana"],
        )
        action = create_action(session, rt.settings.secret_key, bot, data)
        cancel_action(session, bot, action.id)
        assert action.campaign_id is not None and action.list_id is not None
        return action.id, action.campaign_id, action.list_id


def test_a_campaign_or_list_of_a_bot_action_cannot_be_deleted(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    action_id, campaign_id, list_id = _cancelled_action(rt, tenant)
    assert client.get(f"/api/v1/campaigns/{campaign_id}").json()["data"]["status"] == "cancelled"

    error = _error(client.delete(f"/api/v1/campaigns/{campaign_id}"), 409, "IN_USE_BY_ACTION")
    assert action_id in error["message"]
    error = _error(client.delete(f"/api/v1/lists/{list_id}"), 409, "IN_USE_BY_ACTION")
    assert action_id in error["message"]
    # Both are still there, whole.
    assert client.get(f"/api/v1/campaigns/{campaign_id}").status_code == 200
    assert client.get(f"/api/v1/lists/{list_id}").json()["data"]["memberCount"] == 1


def _handled(client: TestClient, exc: Exception) -> tuple[int, dict[str, Any]]:
    """What the app's own handler for ``exc`` answers on a route of the API."""
    scope = {"type": "http", "method": "POST", "path": "/api/v1/lists", "headers": []}
    handler = client.app.exception_handlers[type(exc)]  # type: ignore[attr-defined]
    response = handler(Request(scope), exc)
    return response.status_code, json.loads(response.body)["error"]


def _violation(rt: Runtime, row: Any) -> sa_exc.IntegrityError:
    """The integrity error the database itself raises for storing ``row``."""
    with pytest.raises(sa_exc.IntegrityError) as raised, session_scope(rt.engine) as session:
        session.add(row)
        session.flush()
    return raised.value


def test_only_a_unique_violation_is_a_conflict(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    org = tenant.organization_id
    with session_scope(rt.engine) as session:
        session.add(ContactList(organization_id=org, name="VIP"))
    taken = _violation(rt, ContactList(organization_id=org, name="VIP"))
    dangling = _violation(rt, Contact(organization_id=org, list_id=2**40, email="a@example.com"))
    missing = _violation(rt, ContactList(organization_id=org, name=None))  # type: ignore[arg-type]

    status, error = _handled(client, taken)
    assert (status, error["code"]) == (409, "CONFLICT")
    status, error = _handled(client, dangling)
    assert (status, error["code"]) == (409, "IN_USE")
    status, error = _handled(client, missing)
    assert (status, error["code"]) == (500, "INTERNAL_ERROR")


# PostgreSQL only: SQLite serializes writers (BEGIN IMMEDIATE), there is no race to lose.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_requests_racing_for_a_list_name_give_a_conflict(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    """The second request's check passed, then the first committed: 409, not 500."""
    raced: list[str] = []

    def commit_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO contact_lists") and not raced:
            raced.append(statement)
            with session_scope(rt.engine) as other:
                other.add(ContactList(organization_id=tenant.organization_id, name="Race"))

    sa.event.listen(Engine, "before_cursor_execute", commit_first)
    try:
        answer = client.post("/api/v1/lists", json={"name": "Race"})
    finally:
        sa.event.remove(Engine, "before_cursor_execute", commit_first)
    assert raced
    _error(answer, 409, "CONFLICT")
    assert [x["name"] for x in client.get("/api/v1/lists").json()["data"]] == ["Race"]
