"""The ``campaign`` command as a user runs it: a real process, a real SQLite file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from engine.config import DEV_SECRET_KEY
from engine.db import make_engine
from engine.testing import wait_for


def campaign(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``campaign ARGS`` with its database and log file under ``tmp_path``."""
    environ = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "BROKER_URL": "memory://",
        "LOG_CHANNEL_PATH": str(tmp_path / "deliveries.jsonl"),
        "SCHEDULER_INTERVAL_S": "0.1",
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_runs_a_campaign_and_prints_its_progress_and_statistics(tmp_path: Path) -> None:
    result = campaign(tmp_path, "demo", "--contacts", "400", "--step-delay", "0.2")

    assert result.returncode == 0, result.stderr
    # The embedded SQLite demo turns development mode on by itself, and says so in one line.
    assert result.stderr.startswith("development mode (DEFAULT_SECRET_KEY, embedded SQLite")
    assert "completed" in result.stdout
    assert "800 / 800" in result.stdout
    assert "Welcome" in result.stdout and "Follow-up" in result.stdout
    assert len((tmp_path / "deliveries.jsonl").read_text().splitlines()) == 800

    execution_id = result.stdout.split("execution ", 1)[1].split()[0]
    shown = campaign(tmp_path, "progress", execution_id, "--json")
    data = json.loads(shown.stdout)
    assert data["status"] == "completed"
    assert data["progress"]["processed"] == data["progress"]["total"] == 800
    assert set(data) >= {"currentRate", "estimatedCompletion", "errors"}


def test_unknown_channel_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    result = campaign(tmp_path, "demo", "--contacts", "10", "--channel", "carrier-pigeon")

    assert result.returncode == 2
    assert "UNKNOWN_CHANNEL" in result.stderr and "carrier-pigeon" in result.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as conn:
        assert conn.scalar(sa.text("select count(*) from campaigns")) == 0
        assert conn.scalar(sa.text("select count(*) from contacts")) == 0


def test_missing_execution_is_a_clear_error(tmp_path: Path) -> None:
    campaign(tmp_path, "migrate")
    for command in (
        ["progress", "exe_missing"],
        ["pause", "exe_missing"],
        ["resume", "exe_missing"],
    ):
        result = campaign(tmp_path, *command)
        assert result.returncode == 2
        assert "EXECUTION_NOT_FOUND" in result.stderr and "exe_missing" in result.stderr
        assert "Traceback" not in result.stderr


def test_separate_workers_need_a_shared_broker(tmp_path: Path) -> None:
    result = campaign(tmp_path, "worker")
    assert result.returncode == 2
    assert "BROKER_MISSING" in result.stderr


def _write(tmp_path: Path, document: object) -> str:
    path = tmp_path / f"campaign-{len(list(tmp_path.glob('campaign-*')))}.json"
    path.write_text(json.dumps(document))
    return str(path)


CAMPAIGN = {
    "organization": "demo",
    "name": "from a file",
    "channel": "log",
    "touchpoints": [
        {"name": "hi", "message": "Hello {{ name }}"},
        {"type": "wait", "delay_s": 0.2},
        {"name": "bye", "message": {"text": "Bye {{ first_name }}"}},
    ],
}


def test_create_execute_and_watch_with_a_running_up(tmp_path: Path) -> None:
    assert campaign(tmp_path, "demo", "--contacts", "150", "--step-delay", "0").returncode == 0
    created = campaign(tmp_path, "create", _write(tmp_path, CAMPAIGN))
    assert created.returncode == 0, created.stderr
    campaign_id = created.stdout.split()[1]
    scheduled = campaign(
        tmp_path, "execute", campaign_id, "--priority", "high", "--at", "2020-01-01T00:00:00Z"
    )
    assert scheduled.returncode == 0, scheduled.stderr
    execution_id = scheduled.stdout.split()[1]

    environ = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SCHEDULER_INTERVAL_S": "0.1",
        "LOG_CHANNEL_PATH": str(tmp_path / "deliveries.jsonl"),
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "engine", "up", "--threads", "2"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        watched = campaign(tmp_path, "progress", execution_id, "--watch", "--json")
    finally:
        up.terminate()
        up.wait(timeout=30)

    data = json.loads(watched.stdout)
    assert data["status"] == "completed"
    assert data["progress"]["successful"] == data["progress"]["total"] == 300


def test_bad_campaign_files_and_execute_options_fail_clearly(tmp_path: Path) -> None:
    cases = [
        (["create", _write(tmp_path, {"name": "x"})], "INVALID_DOCUMENT"),
        (["create", _write(tmp_path, {**CAMPAIGN, "channel": "fax"})], "UNKNOWN_CHANNEL"),
        (["execute", "cmp_missing"], "CAMPAIGN_NOT_FOUND"),
    ]
    (tmp_path / "broken.json").write_text("{not json")
    cases.append((["create", str(tmp_path / "broken.json")], "INVALID_JSON"))
    for args, code in cases:
        result = campaign(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout)
        assert code in result.stderr and "Traceback" not in result.stderr


def test_executing_a_campaign_without_audience_writes_nothing(tmp_path: Path) -> None:
    created = campaign(tmp_path, "create", _write(tmp_path, {**CAMPAIGN, "organization": "empty"}))
    campaign_id = created.stdout.split()[1]
    for args, code in [
        (["execute", campaign_id], "NO_AUDIENCE"),
        (["execute", campaign_id, "--at", "next tuesday"], "INVALID_SCHEDULED_AT"),
        (["execute", campaign_id, "--priority", "urgent"], "INVALID_PRIORITY"),
    ]:
        result = campaign(tmp_path, *args)
        assert result.returncode == 2 and code in result.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as conn:
        assert conn.scalar(sa.text("select count(*) from executions")) == 0


def test_workers_on_amqp_refuse_to_start_without_a_shared_limiter(tmp_path: Path) -> None:
    amqp = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F", "REDIS_URL": ""}

    result = campaign(tmp_path, "worker", "--processes", "1", **amqp)

    assert result.returncode == 2
    assert "LIMITER_NOT_SHARED" in result.stderr and "REDIS_URL" in result.stderr


def test_serving_processes_refuse_a_public_or_short_secret_key(tmp_path: Path) -> None:
    redis = {"BROKER_URL": "redis://127.0.0.1:6379/8"}  # past the broker checks; never reached
    for command, env in [
        (["api"], {}),
        (["scheduler"], {}),
        (["worker", "--processes", "1"], redis),
        (["up"], {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}),
    ]:
        result = campaign(tmp_path, *command, **env)
        assert result.returncode == 2, (command, result.stderr)
        assert "DEFAULT_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1  # one line, however narrow

    short = campaign(tmp_path, "scheduler", SECRET_KEY="hunter2")
    assert short.returncode == 2 and "WEAK_SECRET_KEY" in short.stderr

    public_fallback = {"SECRET_KEY": "k" * 40, "SECRET_KEY_FALLBACKS": json.dumps([DEV_SECRET_KEY])}
    result = campaign(tmp_path, "worker", "--processes", "1", **redis, **public_fallback)
    assert result.returncode == 2 and "DEFAULT_SECRET_KEY" in result.stderr


def test_development_mode_lets_the_api_start_on_the_development_key(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DEVELOPMENT_MODE": "true",
        "COLUMNS": "200",
    }
    log = tmp_path / "api.stderr"
    # stderr goes to a file: a pipe read once would fill up and stall the server's logging.
    with log.open("w") as stderr:
        api = subprocess.Popen(
            [sys.executable, "-m", "engine", "api", "--port", str(port)],
            env=environ,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for(lambda: _answers(port), timeout=60)
        first = log.read_text().splitlines()[0]
        assert first.startswith("development mode (DEFAULT_SECRET_KEY)"), first
    finally:
        api.terminate()
        api.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
