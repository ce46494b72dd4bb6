"""The lifecycle over HTTP: one execution at a time, cancel that stops, writes committed first."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from engine.db import session_scope
from engine.models import Execution
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_until_finished
from tests.api.conftest import Tenant
from workers.embedded import EmbeddedStack

LATER = "2999-01-01T00:00:00Z"


def _campaign(client: TestClient, name: str = "Summer Sale") -> str:
    body = {"name": name, "channel": "log", "touchpoints": [{"message": "Hi {{ name }}"}]}
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.json()


def _executions(rt: Runtime, campaign_id: str) -> list[tuple[str, str]]:
    with session_scope(rt.engine) as session:
        rows = session.execute(
            sa.select(Execution.id, Execution.status).where(Execution.campaign_id == campaign_id)
        )
        return [(row[0], row[1]) for row in rows]


def test_a_second_execute_is_refused_while_the_first_is_active(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    campaign_id = _campaign(client)
    first = client.post(f"/api/v1/campaigns/{campaign_id}/execute", json={"scheduledAt": LATER})
    assert first.status_code == 200

    _error(client.post(f"/api/v1/campaigns/{campaign_id}/execute"), 409, "EXECUTION_ACTIVE")

    assert _executions(rt, campaign_id) == [(first.json()["data"]["executionId"], "scheduled")]


def test_a_retried_execute_with_the_same_key_gets_the_first_answer(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    campaign_id = _campaign(client)
    path = f"/api/v1/campaigns/{campaign_id}/execute"
    key = {"Idempotency-Key": "checkout-42"}

    first = client.post(path, json={"scheduledAt": LATER}, headers=key)
    again = client.post(path, json={"scheduledAt": LATER}, headers=key)

    assert first.status_code == again.status_code == 200
    assert again.json()["data"]["executionId"] == first.json()["data"]["executionId"]
    assert again.json()["data"]["status"] == first.json()["data"]["status"] == "scheduled"
    assert len(_executions(rt, campaign_id)) == 1
    other = _campaign(client, "Winter Sale")
    _error(
        client.post(f"/api/v1/campaigns/{other}/execute", headers=key),
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )


def test_the_store_itself_refuses_two_active_executions_of_a_campaign(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    """Whatever races past the service's check, the partial unique index stops it."""
    campaign_id = _campaign(client)
    client.post(f"/api/v1/campaigns/{campaign_id}/execute", json={"scheduledAt": LATER})

    with pytest.raises(sa_exc.IntegrityError), session_scope(rt.engine) as session:
        session.add(Execution(organization_id=tenant.organization_id, campaign_id=campaign_id))
        session.flush()
    # A finished execution does not count: history may hold any number of them.
    with session_scope(rt.engine) as session:
        session.add(
            Execution(
                organization_id=tenant.organization_id, campaign_id=campaign_id, status="completed"
            )
        )
    assert sorted(status for _, status in _executions(rt, campaign_id)) == [
        "completed",
        "scheduled",
    ]


def test_status_changes_only_through_actions_and_cancel_stops_the_execution(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    campaign_id = _campaign(client)
    path = f"/api/v1/campaigns/{campaign_id}"
    execution_id = client.post(f"{path}/execute", json={"scheduledAt": LATER}).json()["data"][
        "executionId"
    ]

    _error(client.put(path, json={"status": "cancelled"}), 409, "STATUS_BY_ACTION")
    # What the execution uses can't change under it.
    _error(client.put(path, json={"channel_config": {"rate_per_s": 5}}), 409, "CAMPAIGN_RUNNING")
    _error(client.put(path, json={"targetAudience": {"tags": ["vip"]}}), 409, "CAMPAIGN_RUNNING")
    _error(client.post(f"{path}/touchpoints", json={"message": "bye"}), 409, "CAMPAIGN_RUNNING")
    assert client.put(path, json={"name": "Renamed"}).status_code == 200  # the rest can
    assert _executions(rt, campaign_id) == [(execution_id, "scheduled")]

    cancelled = client.post(f"{path}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert _executions(rt, campaign_id) == [(execution_id, "cancelled")]
    assert client.get(path).json()["data"]["status"] == "cancelled"
    _error(client.post(f"{path}/cancel"), 409, "CANNOT_CANCEL")
    # Nothing in progress: the campaign can be edited and executed again.
    assert client.put(path, json={"channel_config": {"rate_per_s": 5}}).status_code == 200
    assert client.post(f"{path}/execute", json={"scheduledAt": LATER}).status_code == 200


def test_cancelling_a_draft_retires_it_so_it_can_be_deleted(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = _campaign(client)
    assert client.post(f"/api/v1/campaigns/{campaign_id}/cancel").status_code == 200
    assert client.delete(f"/api/v1/campaigns/{campaign_id}").status_code == 200


def test_an_answer_is_given_only_after_the_write_is_committed(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = _campaign(client)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    failures = {"left": 1}

    def fail_once(conn: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sa_exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    sa.event.listen(engine, "commit", fail_once)
    try:
        response = client.put(f"/api/v1/campaigns/{campaign_id}", json={"name": "Lost"})
    finally:
        sa.event.remove(engine, "commit", fail_once)

    assert response.status_code == 503, response.text  # never a 200 for a lost write
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert client.get(f"/api/v1/campaigns/{campaign_id}").json()["data"]["name"] == "Summer Sale"


def test_a_finished_execution_is_retried_for_those_not_reached_only(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    down = {"receiver": True}

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str]]:
        # The receiver refuses every fifth contact until it is fixed.
        return (400, {}) if down["receiver"] and body["contact_id"] % 5 == 0 else (200, {})

    with WebhookSink(answer) as sink:
        body = {
            "name": "Flaky receiver",
            "channel": "webhook",
            "channel_config": {"url": sink.url},
            "touchpoints": [{"message": "one"}, {"message": "two"}],
        }
        campaign_id = client.post("/api/v1/campaigns", json=body).json()["data"]["id"]
        first = client.post(f"/api/v1/campaigns/{campaign_id}/execute").json()["data"]
        with EmbeddedStack(rt, threads=2):
            wait_until_finished(rt, first["executionId"])
            down["receiver"] = False
            retried = client.post(f"/api/v1/executions/{first['executionId']}/retry")
            assert retried.status_code == 200, retried.text
            retry_id = retried.json()["data"]["executionId"]
            assert retried.json()["data"]["retryOf"] == first["executionId"]
            wait_until_finished(rt, retry_id)
            # Retrying the first run again (a sibling of the retry) reaches nobody twice.
            sibling = client.post(f"/api/v1/executions/{first['executionId']}/retry")
            wait_until_finished(rt, sibling.json()["data"]["executionId"])
        accepted = [
            tuple(r["body"]["idempotency_key"].split(":")[1:])
            for r in sink.requests
            if not (
                r["body"]["contact_id"] % 5 == 0
                and r["body"]["execution_id"] == first["executionId"]
            )
        ]

    # 30 contacts, 6 refused at step one (so not sent step two) in the first run: the retry
    # sends those 6 both steps and nobody else anything.
    assert len(accepted) == len(set(accepted)) == 60
    progress = client.get(f"/api/v1/executions/{retry_id}").json()["data"]
    assert progress["status"] == "completed"
    assert progress["progress"]["successful"] == 12 and progress["progress"]["skipped"] == 48
    quiet = client.get(f"/api/v1/executions/{sibling.json()['data']['executionId']}").json()
    assert quiet["data"]["progress"]["successful"] == 0
    assert quiet["data"]["progress"]["skipped"] == 60
    pending = client.post(f"/api/v1/executions/{retry_id}/retry")  # no workers now: it waits
    assert pending.status_code == 200
    _error(client.post(f"/api/v1/executions/{first['executionId']}/retry"), 409, "EXECUTION_ACTIVE")
    _error(
        client.post(f"/api/v1/executions/{pending.json()['data']['executionId']}/retry"),
        409,
        "CANNOT_RETRY",
    )


def test_a_retry_is_refused_once_the_touchpoints_it_would_repeat_were_replaced(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    campaign_id = _campaign(client)
    first = client.post(f"/api/v1/campaigns/{campaign_id}/execute").json()["data"]
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, first["executionId"])
    old = client.get(f"/api/v1/campaigns/{campaign_id}/touchpoints").json()["data"][0]["id"]
    assert client.delete(f"/api/v1/touchpoints/{old}").status_code == 200
    client.post(f"/api/v1/campaigns/{campaign_id}/touchpoints", json={"message": "Hello again"})

    # Who got the old message can't tell who should get the new one: execute, not retry.
    _error(
        client.post(f"/api/v1/executions/{first['executionId']}/retry"),
        409,
        "TOUCHPOINTS_CHANGED",
    )
