"""The ``campaign`` commands that make and start campaigns: ``demo`` (a demo audience and
campaign, executed and watched), ``create`` (from a JSON file) and ``execute``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.cli import views
from engine.cli.shared import (
    EXIT_BAD_INPUT,
    console,
    err_console,
    migrated_runtime,
    require_secret_key,
    run,
    setup,
)
from engine.db import migrate, session_scope
from engine.errors import ValidationFailed
from engine.outbound import OutboundPolicy
from engine.outbound.policy import LOOPBACK_NETWORKS
from engine.runtime import Runtime


def demo(
    contacts: Annotated[int, typer.Option(min=1, help="Contacts to generate")] = 20_000,
    channel: Annotated[str, typer.Option(help="Channel: log, null or webhook")] = "log",
    url: Annotated[str | None, typer.Option(help="Webhook URL (channel webhook)")] = None,
    embedded_workers: Annotated[
        bool, typer.Option(help="Run scheduler + workers in this process")
    ] = True,
    threads: Annotated[int, typer.Option(min=1, help="Embedded worker threads")] = 8,
    step_delay: Annotated[
        float, typer.Option(min=0, help="Seconds between the two messages")
    ] = 1.0,
    log_level: Annotated[
        str, typer.Option(help="Log level (logs would hide the progress bar)")
    ] = "WARNING",
) -> None:
    """Create a demo audience and two-step campaign, execute it, and watch its progress.

    The demo may send to a sink on this machine (``--url http://127.0.0.1:…``): it allows
    loopback for its own run, on top of ``OUTBOUND_ALLOWED_NETWORKS``.
    """
    settings = setup(log_level)
    # The operator's own run, not a tenant's: a loopback sink is what the URL means.
    allowed = [*settings.outbound_allowed_networks, *LOOPBACK_NETWORKS]
    settings = settings.model_copy(update={"outbound_allowed_networks": allowed})
    if not embedded_workers and settings.broker_url.startswith("memory://"):
        err_console.print(
            "[red]error[/red] BROKER_MISSING: --no-embedded-workers needs BROKER_URL=redis://… or "
            "amqp://… shared with `campaign scheduler` and `campaign worker`"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    settings = require_secret_key(settings, embedded=True)
    migrate(settings.database_url, settings.verification_keys)
    rt = Runtime.from_settings(settings)
    from engine.execution.runs import start_execution
    from engine.services.demo import seed_demo

    def create() -> str:
        with session_scope(rt.engine) as session:
            console.print(f"preparing {contacts:,} contacts on channel [bold]{channel}[/bold] …")
            config = {"url": url} if url else {}
            campaign = seed_demo(
                session,
                contacts,
                channel,
                config,
                step_delay_s=step_delay,
                outbound=OutboundPolicy.from_settings(settings),
            )
            return start_execution(session, campaign.id, secret_key=settings.verification_keys).id

    execution_id = run(create)
    console.print(f"execution [bold]{execution_id}[/bold] scheduled")
    if embedded_workers:
        from workers.embedded import EmbeddedStack

        with EmbeddedStack(rt, threads=threads):
            final = views.watch(rt, execution_id)
    else:
        final = views.watch(rt, execution_id)
    views.print_report(rt, execution_id)
    rt.close()
    if final != "completed":
        raise typer.Exit(1)


def create(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign JSON file")],
) -> None:
    """Create a campaign from a JSON file and print its id.

    The file: ``{"organization": "acme", "name": "…", "channel": "webhook",
    "channel_config": {"url": "…"}, "touchpoints": [{"name": "…", "message": "Hi {{ name }}",
    "delay_s": 0}]}``.
    """
    rt = migrated_runtime()
    from engine.campaigns.campaign import create_campaign_from_document

    def make() -> str:
        try:
            document = json.loads(path.read_text())
        except ValueError as exc:
            raise ValidationFailed(f"{path} is not valid JSON: {exc}", code="INVALID_JSON") from exc
        with session_scope(rt.engine) as session:
            keys = rt.settings.verification_keys
            return create_campaign_from_document(session, document, keys).id

    console.print(f"campaign {run(make)} created")


def execute(
    campaign_id: str,
    priority: Annotated[str, typer.Option(help="high, normal or low")] = "normal",
    target_percentage: Annotated[int, typer.Option(help="Share of the audience, 1-100")] = 100,
    at: Annotated[str | None, typer.Option(help="ISO 8601 start time (default: now)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Watch its progress")] = False,
) -> None:
    """Schedule an execution of a campaign; running schedulers and workers carry it out."""
    rt = migrated_runtime()
    from engine.execution.runs import parse_scheduled_at, start_execution

    def schedule() -> str:
        with session_scope(rt.engine) as session:
            execution = start_execution(
                session,
                campaign_id,
                secret_key=rt.settings.verification_keys,
                priority=priority,
                target_percentage=target_percentage,
                scheduled_at=parse_scheduled_at(at) if at else None,
            )
            return execution.id

    execution_id = run(schedule)
    console.print(f"execution {execution_id} scheduled")
    if watch:
        views.watch(rt, execution_id)
