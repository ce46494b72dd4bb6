"""The ``campaign`` commands that run the engine's processes: ``migrate``, ``api``, ``up``
(scheduler and workers embedded), ``scheduler`` and ``worker`` (dramatiq processes)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from engine.cli.shared import (
    EXIT_BAD_INPUT,
    console,
    err_console,
    require_secret_key,
    setup,
    stop_on_signals,
)
from engine.db import migrate
from engine.ratelimit import unshared_limiter_problem
from engine.runtime import Runtime


def migrate_cmd() -> None:
    """Create or upgrade the database schema."""
    settings = setup()
    migrate(settings.database_url)
    console.print(f"schema up to date: {settings.database_url}")


def api(
    host: Annotated[str | None, typer.Option(help="Interface (default API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default API_PORT)")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs and /openapi.json)."""
    settings = setup()
    require_secret_key(settings)
    migrate(settings.database_url)
    import uvicorn

    from engine.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


def up(threads: Annotated[int, typer.Option(min=1)] = 8) -> None:
    """Run the scheduler and worker threads in this process until interrupted (embedded mode)."""
    settings = require_secret_key(setup(), embedded=True)
    migrate(settings.database_url, settings.verification_keys)
    rt = Runtime.from_settings(settings)
    from workers.embedded import EmbeddedStack

    stop = stop_on_signals()
    with EmbeddedStack(rt, threads=threads):
        console.print("scheduler and workers running; Ctrl-C to stop")
        stop.wait()


def scheduler_cmd() -> None:
    """Run the scheduler loop (several may run at once) until interrupted."""
    settings = setup()
    require_secret_key(settings)
    migrate(settings.database_url)
    from scheduler.loop import run
    from workers.broker import DramatiqEnqueuer, build_broker

    rt = Runtime.from_settings(settings)
    run(rt, DramatiqEnqueuer(build_broker(settings.broker_url)), stop_on_signals())


def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process")] = 8,
    queues: Annotated[list[str] | None, typer.Option(help="Only these queues (repeatable)")] = None,
) -> None:
    """Run dramatiq worker processes on the engine's actors (wraps ``dramatiq``)."""
    settings = setup()
    if settings.broker_url.startswith("memory://"):
        err_console.print(
            "[red]error[/red] BROKER_MISSING: separate workers need BROKER_URL=redis://… or "
            "amqp://…; use `campaign up` for the embedded mode"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    problem = unshared_limiter_problem(
        settings.broker_url, settings.redis_url, settings.allow_local_rate_limiter
    )
    if problem:
        err_console.print(f"[red]error[/red] {problem}")
        raise typer.Exit(EXIT_BAD_INPUT)
    require_secret_key(settings)
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.boot:setup",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
    ]
    for queue in queues or []:
        argv += ["--queues", queue]
    # An idle queue is polled at least every 200 ms (dramatiq backs off to 1 s by default): a
    # new execution's planning and first chunks start that much sooner, for about fifty cheap
    # Redis polls a second per process (10 queues); 100 ms measured lower throughput, within
    # run-to-run variation (docs/performance.md). An operator's own value wins.
    os.environ.setdefault("dramatiq_worker_timeout", "200")
    os.execv(sys.executable, argv)
