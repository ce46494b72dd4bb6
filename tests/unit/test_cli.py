"""The ``campaign`` command as a user runs it: a real process, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from engine.db import make_engine


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
