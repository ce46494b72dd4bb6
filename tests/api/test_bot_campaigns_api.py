"""The bot campaigns API (the bot platform's campaign module) against a live server, run by real
workers.

Login, a campaign action scheduled two seconds ahead whose status moves to ``concluded``,
its log file (a bad row reported, the others sent), triggers, and the refusals.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from engine.api.app import create_app
from engine.bots.actions import create_bot
from engine.bots.actions import parse_scheduled_date as parse_date
from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.testing import wait_for
from workers.embedded import EmbeddedStack

if TYPE_CHECKING:
    from tests.api.live import LiveTenant

# Imported by pytest (not by this module) so that its asserts are rewritten too.
pytest_plugins = ["tests.api.live"]

SHEET = [
    "phone,name,pedido",
    "+55 11 99999-0001,Ana,42",
    "+5511999990002,Bruno,43",
    "not-a-phone,Carla,44",
    "+5511999990004,Dora",
    "+5511999990005,Edu,45",
]


def _bot(rt: Runtime, organization_id: str, name: str = "atendente") -> None:
    with session_scope(rt.engine) as session:
        create_bot(session, organization_id, name, "log")


def _client(live: LiveTenant, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=live.base_url, headers=headers, timeout=30)


def _login(live: LiveTenant) -> str:
    with _client(live) as client:
        response = client.post(
            "/builder/login", json={"user": live.username, "password": live.password}
        )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"token", "refresh_token"}
    return str(tokens["token"])


def _action_body(**overrides: Any) -> dict[str, Any]:
    """The bot campaigns API's request sample, filled in."""
    body = {
        "_id": "5eb7cf5a86d9755df3a6c593",
        "organization": "acme",
        "scheduled_date": (datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        "campaign_name": "Black Friday",
        "status": "not_started",
        "bot_name": "atendente",
        "creation_date": "2019-08-24T14:15:22Z",
        "description": "pedidos da semana",
        "name": "aviso de pedido",
        "file": "pedidos.csv",
        "content": "Olá {{ name }}, seu pedido {{ pedido }} saiu.",
        "sheet_values": SHEET,
        "log_file": "string",
    }
    body.update(overrides)
    return body


def _sent_lines(settings: Settings) -> list[dict[str, Any]]:
    path = Path(settings.log_channel_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


PATH = "/builder/organizations/acme/bots/atendente/campaigns"
#: An action's fields in the documented order, then what the engine adds.
ACTION_FIELDS = [
    *("_id", "organization", "scheduled_date", "campaign_name", "status", "bot_name"),
    *("creation_date", "description", "name", "file", "content", "sheet_values", "log_file"),
    *("error", "counts", "campaign_id", "execution_id"),
]


def test_an_action_scheduled_two_seconds_ahead_concludes_with_its_log_file(
    live: LiveTenant, rt: Runtime, settings: Settings
) -> None:
    _bot(rt, live.organization_id)
    token = _login(live)
    with _client(live, token) as client:
        created = client.post(PATH, json=_action_body())
        assert created.status_code == 201, created.text
        action = created.json()
        assert action["status"] == "not_started"
        assert action["_id"] != "5eb7cf5a86d9755df3a6c593"
        assert action["organization"] == "acme" and action["bot_name"] == "atendente"
        assert action["sheet_values"] == SHEET and action["file"] == "pedidos.csv"
        assert action["log_file"] == f"{PATH}/{action['_id']}/log"
        assert list(action) == ACTION_FIELDS and action["error"] is None
        assert list(action["counts"]) == ["total", "sent", "failed", "invalid"]
        assert action["creation_date"].endswith("Z") and action["scheduled_date"].endswith("Z")
        assert action["campaign_id"].startswith("cmp_")
        assert action["execution_id"].startswith("exe_")
        scheduled = parse_date(action["scheduled_date"])
        url = f"{PATH}/{action['_id']}"

        seen: list[str] = []

        def concluded() -> dict[str, Any] | None:
            current = client.get(url).json()
            if not seen or seen[-1] != current["status"]:
                seen.append(current["status"])
            return current if current["status"] == "concluded" else None

        with EmbeddedStack(rt, threads=2):
            final = wait_for(concluded, timeout=60, interval=0.1)
        assert seen[0] == "not_started" and seen[-1] == "concluded"
        assert "error" not in seen
        assert final["counts"] == {"total": 5, "sent": 3, "failed": 0, "invalid": 2}

        log = client.get(action["log_file"])
        assert log.status_code == 200
        assert log.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(log.text)))
        listed = client.get(PATH).json()
    assert [a["_id"] for a in listed] == [action["_id"]]
    assert list(rows[0]) == ["recipient", "status", "error_code", "time", "detail"]
    by_recipient = {r["recipient"]: r for r in rows}
    assert {r["recipient"] for r in rows if r["status"] == "sent"} == {
        "+5511999990001",
        "+5511999990002",
        "+5511999990005",
    }
    assert by_recipient["not-a-phone"]["status"] == "invalid"
    assert by_recipient["not-a-phone"]["error_code"] == "INVALID_RECIPIENT"
    assert "row 4" in by_recipient["not-a-phone"]["detail"]
    short = next(r for r in rows if r["error_code"] == "INVALID_ROW")
    assert short["status"] == "invalid" and "row 5" in short["detail"]
    assert all(parse_date(r["time"]) >= scheduled for r in rows if r["status"] == "sent")

    texts = {line["message"] for line in _sent_lines(settings)}
    assert "Olá Ana, seu pedido 42 saiu." in texts and len(texts) == 3


def test_an_uploaded_csv_file_is_the_sheet(live: LiveTenant, rt: Runtime) -> None:
    _bot(rt, live.organization_id)
    csv_text = "email,name\nana@example.com,Ana\nbruno@example.com,Bruno\n"
    data_url = "data:text/csv;base64," + base64.b64encode(csv_text.encode()).decode()
    with _client(live, live.api_key) as client:
        created = client.post(
            PATH, json=_action_body(sheet_values=[], file=data_url, scheduled_date=None)
        )
        assert created.status_code == 201, created.text
        url = f"{PATH}/{created.json()['_id']}"
        with EmbeddedStack(rt, threads=2):
            wait_for(lambda: client.get(url).json()["status"] == "concluded", timeout=60)
        assert client.get(url).json()["counts"]["sent"] == 2
        bad = client.post(PATH, json=_action_body(sheet_values=[], file="%%% not base64"))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_FILE"


def test_a_cancelled_action_is_in_error(live: LiveTenant, rt: Runtime) -> None:
    _bot(rt, live.organization_id)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with _client(live, live.api_key) as client:
        action = client.post(PATH, json=_action_body(scheduled_date=later)).json()
        cancelled = client.post(f"{PATH}/{action['_id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "error" and cancelled.json()["error"] == "cancelled"
        again = client.post(f"{PATH}/{action['_id']}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "CANNOT_CANCEL"
        log = list(csv.DictReader(io.StringIO(client.get(f"{PATH}/{action['_id']}/log").text)))
    assert {r["status"] for r in log} == {"not_sent", "invalid"}


def test_login_refresh_and_wrong_credentials(live: LiveTenant) -> None:
    with _client(live) as client:
        wrong = client.post("/builder/login", json={"user": live.username, "password": "nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"] == {
            "code": "INVALID_CREDENTIALS",
            "message": "wrong username or password",
        }
        tokens = client.post(
            "/builder/login", json={"user": live.username, "password": live.password}
        ).json()
        renewed = client.post("/builder/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert renewed.status_code == 200 and set(renewed.json()) == {"token", "refresh_token"}
        assert client.get(PATH).status_code == 401
        bearer = {"Authorization": f"Bearer {renewed.json()['token']}"}
        assert client.get("/builder/bots", headers=bearer).status_code == 200


def test_unknown_organization_or_bot_and_a_malformed_date(
    live: LiveTenant, rt: Runtime, new_tenant: Any
) -> None:
    _bot(rt, live.organization_id)
    other = new_tenant("globex")
    _bot(rt, other.organization_id, "vendas")
    with _client(live, _login(live)) as client:
        for path, code in (
            ("/builder/organizations/nobody/bots/atendente/campaigns", "ORGANIZATION_NOT_FOUND"),
            ("/builder/organizations/acme/bots/nobody/campaigns", "BOT_NOT_FOUND"),
            ("/builder/organizations/globex/bots/vendas/campaigns", "ORGANIZATION_NOT_FOUND"),
        ):
            response = client.post(path, json=_action_body())
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == code
        malformed = client.post(PATH, json=_action_body(scheduled_date="amanhã às 10h"))
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == "INVALID_SCHEDULED_DATE"
        nobody = client.post(PATH, json=_action_body(sheet_values=["phone,name", "x,y"]))
        assert nobody.status_code == 400 and nobody.json()["error"]["code"] == "NO_RECIPIENTS"
        assert client.get(PATH).json() == []  # nothing was stored by the refusals


def test_a_trigger_is_created_and_fetched(
    live: LiveTenant, rt: Runtime, settings: Settings
) -> None:
    _bot(rt, live.organization_id)
    key = {"apikey": live.api_key}
    with _client(live) as client:
        one = client.post(
            "/builder/triggers",
            params=key,
            json={
                "json": {
                    "bot_name": "atendente",
                    "content": "Oi {{ name }}, código {{ codigo }}",
                    "phone": "+5511988887777",
                    "name": "Zé",
                    "codigo": 7,
                }
            },
        )
        assert one.status_code == 201, one.text
        trigger_id = one.json()
        assert isinstance(trigger_id, int)
        many = client.post(
            "/builder/triggers",
            headers={"Authorization": f"Bearer {live.api_key}"},
            json={
                "json": {
                    "bot_name": "atendente",
                    "content": "Olá {{ name }} ({{ loja }})",
                    "loja": "Centro",
                    "recipients": [
                        {"phone": "+5511911110001", "name": "Ana"},
                        {"phone": "+5511911110002", "name": "Bia", "loja": "Sul"},
                        {"name": "sem telefone"},
                    ],
                }
            },
        )
        assert many.status_code == 201, many.text

        def done(tid: int) -> dict[str, Any] | None:
            report = client.get(f"/builder/triggers/{tid}", params=key).json()
            return report if report["status"] == "concluded" else None

        with EmbeddedStack(rt, threads=2):
            report = wait_for(lambda: done(trigger_id), timeout=60)
            report_many = wait_for(lambda: done(many.json()), timeout=60)
    assert report["id"] == trigger_id and report["bot_name"] == "atendente"
    assert list(report) == [
        *("id", "status", "error", "bot_name", "action_id", "created_at", "json", "deliveries")
    ]
    assert report["error"] is None and report["action_id"].startswith("act_")
    assert report["created_at"].endswith("Z")
    assert report["json"] == {
        "bot_name": "atendente",
        "content": "Oi {{ name }}, código {{ codigo }}",
        "phone": "+5511988887777",
        "name": "Zé",
        "codigo": 7,
    }
    delivery = report["deliveries"][0]
    assert list(delivery) == ["recipient", "status", "error_code", "time", "detail"]
    assert delivery["time"].endswith("Z") and delivery["error_code"] == delivery["detail"] == ""
    assert [(d["recipient"], d["status"]) for d in report["deliveries"]] == [
        ("+5511988887777", "sent")
    ]
    statuses = sorted(d["status"] for d in report_many["deliveries"])
    assert statuses == ["invalid", "sent", "sent"]
    texts = {line["message"] for line in _sent_lines(settings)}
    assert {"Oi Zé, código 7", "Olá Ana (Centro)", "Olá Bia (Sul)"} <= texts


def test_a_wrong_apikey_is_401(live: LiveTenant, rt: Runtime) -> None:
    _bot(rt, live.organization_id)
    with _client(live) as client:
        body = {"json": {"bot_name": "atendente", "content": "x", "phone": "+5511900000000"}}
        for params in ({"apikey": live.api_key + "x"}, {"apikey": "ce_nothing_here"}, {}):
            posted = client.post("/builder/triggers", params=params, json=body)
            assert posted.status_code == 401
            assert posted.json()["success"] is False
            assert client.get("/builder/triggers/1", params=params).status_code == 401
        missing = client.get("/builder/triggers/999", params={"apikey": live.api_key})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "TRIGGER_NOT_FOUND"
        unknown = client.post(
            "/builder/triggers",
            params={"apikey": live.api_key},
            json={"json": {**body["json"], "bot_name": "nobody"}},
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "BOT_NOT_FOUND"


def test_bots_are_created_over_the_api(live: LiveTenant) -> None:
    with _client(live, live.api_key) as client:
        made = client.post("/builder/bots", json={"name": "suporte", "channel": "telegram"})
        assert made.status_code == 201 and made.json()["channel"] == "telegram"
        assert list(made.json()) == ["id", "name", "channel", "account", "created_at"]
        assert made.json()["account"] is None and made.json()["created_at"].endswith("Z")
        again = client.post("/builder/bots", json={"name": "suporte", "channel": "log"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "BOT_EXISTS"
        unknown = client.post("/builder/bots", json={"name": "x", "channel": "pigeon"})
        assert unknown.status_code == 400
        assert [b["name"] for b in client.get("/builder/bots").json()] == ["suporte"]


def test_campaign_admin_create_bot(tmp_path: Path) -> None:
    from tests.unit.test_cli import campaign

    made = campaign(
        tmp_path, "admin", "bootstrap", "--organization", "acme", "--user", "ana",
        "--password", "correct horse battery",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    bot = ("admin", "create-bot", "--organization", "acme", "--name", "atendente")
    created = campaign(tmp_path, *bot, "--channel", "log")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("bot bot_")
    again = campaign(tmp_path, *bot, "--channel", "log")
    assert again.returncode == 2 and "BOT_EXISTS" in again.stderr
    nobody = campaign(
        tmp_path, "admin", "create-bot", "--organization", "nobody", "--name", "b",
        "--channel", "log",
    )  # fmt: skip
    assert nobody.returncode == 2 and "ORGANIZATION_NOT_FOUND" in nobody.stderr


def _vague(schema: dict[str, Any] | None) -> bool:
    """Whether an answer's schema says nothing of its fields (``{}``, any object)."""
    if not schema:
        return True
    if schema.get("type") == "array":
        return _vague(schema.get("items"))
    return schema.get("type") == "object" and "properties" not in schema


def test_the_document_describes_every_answer_of_bots_and_provider_callbacks(
    settings: Settings,
) -> None:
    document = create_app(settings).openapi()
    answers = {
        (method, path, status): content.get("schema")
        for path, operations in document["paths"].items()
        if path.startswith(("/builder/", "/api/v1/providers/"))
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for content in response["content"].values()
    }
    assert len(answers) == 14  # 11 operations under /builder, 3 provider callbacks
    assert [answer for answer, schema in answers.items() if _vague(schema)] == []
    action = document["components"]["schemas"]["ActionOut"]
    assert list(action["properties"]) == ACTION_FIELDS
    trigger = document["components"]["schemas"]["TriggerOut"]
    assert "json" in trigger["properties"] and "deliveries" in trigger["properties"]
    log = "/builder/organizations/{organization_name}/bots/{bot_name}/campaigns/{action_id}/log"
    assert list(document["paths"][log]["get"]["responses"]["200"]["content"]) == ["text/csv"]
