"""A template too large is refused by the API with a 4xx and ``TEMPLATE_TOO_LARGE``, fast."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.api.conftest import Tenant

#: A backstop, not a speed figure: unbounded, these templates take from 11 s to hours (and
#: gigabytes); refused, a fraction of a second even on a loaded machine.
BACKSTOP_S = 5.0


def test_a_template_too_large_is_refused_fast_when_stored(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = client.post("/api/v1/campaigns", json={"name": "big", "channel": "log"}).json()[
        "data"
    ]["id"]
    started = time.perf_counter()
    refused = client.post(
        f"/api/v1/campaigns/{campaign_id}/touchpoints",
        json={"message": {"text": "{{ 'a' * 400000000 }}"}},
    )
    assert time.perf_counter() - started < BACKSTOP_S
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "TEMPLATE_TOO_LARGE"

    inline = client.post(
        "/api/v1/campaigns",
        json={
            "name": "big too",
            "channel": "log",
            "touchpoints": [{"name": "hi", "message": "{{ name * 200000000 }}"}],
        },
    )
    assert inline.status_code == 400 and inline.json()["error"]["code"] == "TEMPLATE_TOO_LARGE"


def test_validation_renders_a_real_contact_within_the_limits(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = client.post("/api/v1/campaigns", json={"name": "big", "channel": "log"}).json()[
        "data"
    ]["id"]
    # plan is a custom field: unknown when stored, known for the audience's first contact
    touchpoint = client.post(
        f"/api/v1/campaigns/{campaign_id}/touchpoints",
        json={"message": "{{ plan * 200000000 }}"},
    ).json()["data"]
    started = time.perf_counter()
    result = client.post(f"/api/v1/touchpoints/{touchpoint['id']}/validate").json()["data"]
    assert time.perf_counter() - started < BACKSTOP_S
    assert result["valid"] is False
    assert [e["code"] for e in result["errors"]] == ["TEMPLATE_TOO_LARGE"]
