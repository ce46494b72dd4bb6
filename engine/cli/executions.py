"""The ``campaign`` commands on one execution: ``progress`` (once or live), ``pause``,
``resume``, ``cancel`` and ``retry``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from engine.cli import views
from engine.cli.shared import console, run, setup
from engine.db import session_scope
from engine.models import FINAL_EXECUTION_STATUSES
from engine.outages import through_outages
from engine.runtime import Runtime


def progress(
    execution_id: str,
    watch: Annotated[bool, typer.Option("--watch", help="Live view until it finishes")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print an execution's progress: percentage, counts, rate, ETA, errors by code."""
    rt = Runtime.from_settings(setup())
    from engine.api.answers.campaigns import ProgressOut
    from engine.execution.progress import Progress, get_progress

    def read() -> Progress:
        with session_scope(rt.engine) as session:
            return get_progress(session, execution_id)

    # A database restarting as the command starts is waited for, as the live view does.
    data = run(lambda: through_outages(read, "progress", wait_s=60))
    if watch and data.status not in FINAL_EXECUTION_STATUSES:
        views.watch(rt, execution_id, quiet=as_json)
        data = read()
    if as_json:
        # The API's answer, field for field (GET /api/v1/executions/{id}'s data).
        print(json.dumps(ProgressOut.of(data).wire()))
    else:
        views.print_progress(data)


def _state_command(service: str, help_text: str) -> Callable[[str], None]:
    """A command calling ``engine.execution.runs.<service>`` on an execution id."""

    def command(execution_id: str) -> None:
        rt = Runtime.from_settings(setup())
        from engine.execution import runs

        def change() -> str:
            with session_scope(rt.engine) as session:
                return str(getattr(runs, service)(session, execution_id).status)

        console.print(f"execution {execution_id}: {run(change)}")

    command.__doc__ = help_text
    return command


#: ``campaign pause EXECUTION_ID``.
pause = _state_command(
    "pause_execution", "Pause a running execution; workers stop within one chunk."
)
#: ``campaign resume EXECUTION_ID``.
resume = _state_command("resume_execution", "Resume a paused execution; nobody is sent twice.")
#: ``campaign cancel EXECUTION_ID``.
cancel = _state_command(
    "cancel_execution", "Cancel an execution: nobody not yet reached is sent to."
)


def retry(execution_id: str) -> None:
    """Run a finished execution again for the contacts it did not reach."""
    rt = Runtime.from_settings(setup())
    from engine.execution.runs import retry_execution

    def start() -> str:
        with session_scope(rt.engine) as session:
            return retry_execution(
                session, execution_id, secret_key=rt.settings.verification_keys
            ).id

    console.print(f"execution {run(start)} scheduled: retries {execution_id} for those not reached")
