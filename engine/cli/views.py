"""How the ``campaign`` command shows an execution: the live progress bar, the progress table
and the closing report (``demo``, ``execute --watch``, ``progress``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.cli.shared import console, err_console
from engine.db import session_scope
from engine.models import FINAL_EXECUTION_STATUSES
from engine.models.base import iso
from engine.outages import is_outage
from engine.runtime import Runtime

if TYPE_CHECKING:
    from engine.execution.progress import Progress as ExecutionProgress


def watch(rt: Runtime, execution_id: str, quiet: bool = False) -> str:
    """Show a live progress bar until the execution reaches a final status; return it.

    ``quiet`` draws the bar on standard error and removes it at the end (``--json`` output).
    A database outage shows ``reconnecting…`` and is waited out.
    """
    from engine.execution.progress import get_progress

    columns = [
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TextColumn("failed {task.fields[failed]:,}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console if quiet else console, transient=quiet) as bar:
        task = bar.add_task(
            "execution", total=None, status="scheduled", rate=0.0, failed=0, counts=""
        )
        while True:
            try:
                with session_scope(rt.engine) as session:
                    p = get_progress(session, execution_id)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # The database restarts or the network blips: wait for it, as workers do.
                bar.update(task, status="reconnecting…")
                time.sleep(1.0)
                continue
            bar.update(
                task,
                completed=p.processed,
                total=p.total or None,
                counts=f"{p.processed:,}/{p.total:,}",
                status=p.status,
                rate=p.current_rate,
                failed=p.failed,
            )
            if p.status in FINAL_EXECUTION_STATUSES:
                return str(p.status)
            time.sleep(0.25)


def print_progress(p: ExecutionProgress) -> None:
    """Print an execution's progress as a table."""
    table = Table(title=f"execution {p.execution_id}", show_header=False)
    for key, value in [
        ("status", p.status),
        ("percentage", f"{p.percentage}%"),
        ("processed", f"{p.processed:,} / {p.total:,}"),
        ("successful", f"{p.successful:,}"),
        ("failed", f"{p.failed:,}"),
        ("skipped", f"{p.skipped:,}"),
        ("currentRate", f"{p.current_rate:,}/s"),
        ("estimatedCompletion", iso(p.estimated_completion) or "-"),
    ]:
        table.add_row(key, str(value))
    for err in p.errors:
        table.add_row(f"error {err.code}", f"{err.count:,}  {err.message}")
    console.print(table)


def print_report(rt: Runtime, execution_id: str) -> None:
    """Print a finished execution's progress, then its statistics per touchpoint."""
    from engine.execution.progress import get_progress, get_statistics

    with session_scope(rt.engine) as session:
        data = get_progress(session, execution_id)
        stats = get_statistics(session, execution_id)
    print_progress(data)
    table = Table(title="statistics")
    for col in ("touchpoint", "sent", "failed", "skipped"):
        table.add_column(col)
    for tp in stats.touchpoints:
        table.add_row(tp.name, f"{tp.sent:,}", f"{tp.failed:,}", f"{tp.skipped:,}")
    console.print(table)
    console.print(f"duration {stats.duration_s} s, average {stats.average_rate:,}/s")
