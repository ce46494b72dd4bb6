"""The webhook channel against a real HTTP server on loopback: keys, signatures, retries, errors."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.execution.progress import get_progress
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

ONE_STEP = [TouchpointSpec(name="only", message={"text": "Hi {{ first_name }}"})]


def _run(rt: Runtime, sink: WebhookSink, contacts: int, **config: object) -> dict:
    _, campaign_id = make_campaign(
        rt,
        contacts=contacts,
        channel="webhook",
        steps=ONE_STEP,
        channel_config={"url": sink.url, **config},
    )
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=4):
        wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        return get_progress(session, execution_id)


def test_each_post_carries_its_idempotency_key_and_a_valid_signature(rt: Runtime) -> None:
    with WebhookSink() as sink:
        progress = _run(rt, sink, contacts=150, secret="s3cret")

    assert progress.successful == 150
    keys = sink.keys()
    assert len(set(keys)) == 150 and all(k.startswith(progress.execution_id) for k in keys)
    for request in sink.requests:
        expected = hmac.new(b"s3cret", request["raw"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Signature"] == f"sha256={expected}"
        assert request["body"]["message"]["text"].startswith("Hi User")


def test_transient_errors_are_retried_and_the_same_key_is_resent(rt: Runtime) -> None:
    seen: Counter[str] = Counter()

    def flaky(body: dict, n: int) -> tuple[int, dict[str, str]]:
        seen[body["idempotency_key"]] += 1
        if seen[body["idempotency_key"]] == 1:
            return (429, {"Retry-After": "0.05"}) if body["contact_id"] % 2 else (503, {})
        return 200, {}

    with WebhookSink(flaky) as sink:
        progress = _run(rt, sink, contacts=40)

    assert progress.successful == 40
    assert progress.errors == []
    assert set(Counter(sink.keys()).values()) == {2}  # each key sent twice: failed once, then ok


def test_permanent_and_exhausted_errors_are_grouped_by_code(rt: Runtime) -> None:
    def answer(body: dict, n: int) -> tuple[int, dict[str, str]]:
        contact = body["contact_id"]
        if contact % 10 == 0:
            return 400, {}
        if contact % 10 == 1:
            return 503, {}
        return 200, {}

    with WebhookSink(answer) as sink:
        progress = _run(rt, sink, contacts=100)

    assert progress.successful == 80
    assert progress.failed == 20
    errors = {e.code: e.count for e in progress.errors}
    assert errors == {"HTTP_400": 10, "HTTP_503": 10}
    per_key = Counter(sink.keys())
    # 400 is permanent: sent once. 503 stays transient: retried up to send_max_attempts.
    assert {per_key[k] for k in per_key if k.endswith("0")} == {1}
    assert {per_key[k] for k in per_key if k.endswith("1")} == {rt.settings.send_max_attempts}


def test_unreachable_receiver_is_a_retryable_network_error(rt: Runtime) -> None:
    _, campaign_id = make_campaign(
        rt,
        contacts=5,
        channel="webhook",
        steps=ONE_STEP,
        channel_config={"url": "http://127.0.0.1:9/hook"},
    )
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        progress = get_progress(session, execution_id)

    assert execution.status == "completed"
    assert progress.errors[0].code == "NETWORK_ERROR"
    assert progress.errors[0].count == 5


def test_a_2xx_without_json_is_a_success(rt: Runtime) -> None:
    with WebhookSink(lambda body, n: (200, {"Content-Type": "text/plain"}, b"OK")) as sink:
        progress = _run(rt, sink, contacts=10)

    assert progress.successful == 10
    assert len(sink.requests) == 10  # sent once each: nothing mistaken for a failure
