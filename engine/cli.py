"""The ``campaign`` command: demo, up, worker, scheduler, progress, pause, resume, cancel.

This module is the composition root: the one place in ``engine`` that imports ``workers`` and
``scheduler``, lazily inside the commands that need them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.config import Settings, get_settings
from engine.db import migrate, session_scope
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.logging import configure_logging
from engine.models import FINAL_EXECUTION_STATUSES
from engine.outages import is_outage, through_outages
from engine.ratelimit import unshared_limiter_problem
from engine.runtime import Runtime

app = typer.Typer(help="campaign-engine: run marketing campaigns.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

#: Exit code for bad input (unknown channel, missing campaign, empty audience …).
EXIT_BAD_INPUT = 2


def _stop_on_signals() -> threading.Event:
    """Return an event set by SIGINT or SIGTERM, so long-running commands stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _setup(log_level: str | None = None) -> Settings:
    settings = get_settings()
    configure_logging(settings.log_format, log_level or settings.log_level)
    return settings


def _migrated_runtime() -> Runtime:
    """Settings and logging, the schema brought to head, and a runtime on them."""
    settings = _setup()
    migrate(settings.database_url)
    return Runtime.from_settings(settings)


def _run(fn: Callable[[], Any]) -> Any:
    """Run a command body, turning engine errors into a message and a non-zero exit code."""
    try:
        return fn()
    except EngineError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command("migrate")
def migrate_cmd() -> None:
    """Create or upgrade the database schema."""
    settings = _setup()
    migrate(settings.database_url)
    console.print(f"schema up to date: {settings.database_url}")


@app.command()
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
    """Create a demo audience and two-step campaign, execute it, and watch its progress."""
    settings = _setup(log_level)
    if not embedded_workers and settings.broker_url.startswith("memory://"):
        err_console.print(
            "[red]error[/red] BROKER_MISSING: --no-embedded-workers needs BROKER_URL=redis://… or "
            "amqp://… shared with `campaign scheduler` and `campaign worker`"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    from engine.execution.runs import start_execution
    from engine.services.demo import seed_demo

    def create() -> str:
        with session_scope(rt.engine) as session:
            console.print(f"preparing {contacts:,} contacts on channel [bold]{channel}[/bold] …")
            config = {"url": url} if url else {}
            campaign = seed_demo(session, contacts, channel, config, step_delay_s=step_delay)
            return start_execution(session, campaign.id, secret_key=settings.secret_key).id

    execution_id = _run(create)
    console.print(f"execution [bold]{execution_id}[/bold] scheduled")
    if embedded_workers:
        from workers.embedded import EmbeddedStack

        with EmbeddedStack(rt, threads=threads):
            final = _watch(rt, execution_id)
    else:
        final = _watch(rt, execution_id)
    _print_report(rt, execution_id)
    rt.close()
    if final != "completed":
        raise typer.Exit(1)


@app.command()
def create(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign JSON file")],
) -> None:
    """Create a campaign from a JSON file and print its id.

    The file: ``{"organization": "acme", "name": "…", "channel": "webhook",
    "channel_config": {"url": "…"}, "touchpoints": [{"name": "…", "message": "Hi {{ name }}",
    "delay_s": 0}]}``.
    """
    rt = _migrated_runtime()
    from engine.campaigns.campaign import create_campaign_from_document

    def make() -> str:
        try:
            document = json.loads(path.read_text())
        except ValueError as exc:
            raise ValidationFailed(f"{path} is not valid JSON: {exc}", code="INVALID_JSON") from exc
        with session_scope(rt.engine) as session:
            return create_campaign_from_document(session, document).id

    console.print(f"campaign {_run(make)} created")


@app.command()
def execute(
    campaign_id: str,
    priority: Annotated[str, typer.Option(help="high, normal or low")] = "normal",
    target_percentage: Annotated[int, typer.Option(help="Share of the audience, 1-100")] = 100,
    at: Annotated[str | None, typer.Option(help="ISO 8601 start time (default: now)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Watch its progress")] = False,
) -> None:
    """Schedule an execution of a campaign; running schedulers and workers carry it out."""
    rt = _migrated_runtime()
    from engine.execution.runs import parse_scheduled_at, start_execution

    def schedule() -> str:
        with session_scope(rt.engine) as session:
            execution = start_execution(
                session,
                campaign_id,
                secret_key=rt.settings.secret_key,
                priority=priority,
                target_percentage=target_percentage,
                scheduled_at=parse_scheduled_at(at) if at else None,
            )
            return execution.id

    execution_id = _run(schedule)
    console.print(f"execution {execution_id} scheduled")
    if watch:
        _watch(rt, execution_id)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface (default API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default API_PORT)")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs and /openapi.json)."""
    settings = _setup()
    migrate(settings.database_url)
    import uvicorn

    from engine.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


admin = typer.Typer(help="Organizations, users and API keys.", no_args_is_help=True)
app.add_typer(admin, name="admin")


@admin.command("bootstrap")
def bootstrap(
    organization: Annotated[str, typer.Option(help="Organization name (created if new)")],
    user: Annotated[str, typer.Option(help="Username to create")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters")
    ],
) -> None:
    """Create an organization's first user and an API key (printed once, stored hashed)."""
    rt = _migrated_runtime()
    from engine.services.auth import bootstrap as make

    def run() -> tuple[str, str, str]:
        with session_scope(rt.engine) as session:
            org, account, key = make(session, organization, user, password)
            return org.id, account.id, key

    org_id, user_id, key = _run(run)
    print(f"organization {org_id}\nuser {user_id}\napi key {key}")
    err_console.print("the API key is shown once: store it now")


@admin.command("create-key")
def create_key(
    organization: Annotated[str, typer.Option(help="Organization name")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "",
) -> None:
    """Create another API key for an organization."""
    rt = _migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.auth import create_api_key

    def run() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return create_api_key(session, org.id, name)[1]

    print(f"api key {_run(run)}")
    err_console.print("the API key is shown once: store it now")


@admin.command("create-api-user")
def create_api_user(
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list (created if new)")],
    api_user: Annotated[str, typer.Option(help="The api_user of Basic api_user:api_key")],
) -> None:
    """Create the contact lists API's ``api_user:api_key`` credential for a contact list."""
    rt = _migrated_runtime()
    from engine.campaigns.campaign import get_organization_by_name
    from engine.services.auth import create_api_user as make

    def run() -> str:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            return make(session, org.id, list_name, api_user)[1]

    print(f"api_user {api_user}\napi_key {_run(run)}")
    err_console.print("the api_key is shown once: store it now")


@admin.command("create-bot")
def create_bot(
    organization: Annotated[str, typer.Option(help="Organization name")],
    name: Annotated[str, typer.Option(help="Bot name (unique in the organization)")],
    channel: Annotated[str, typer.Option(help="log, telegram, whatsapp, email, webhook, null")],
    account: Annotated[
        str | None, typer.Option(help="The organization's channel account it sends with")
    ] = None,
) -> None:
    """Create a bot of an organization for the builder's campaign module (bot campaigns API)."""
    rt = _migrated_runtime()
    from engine.bots.actions import create_bot_for

    def run() -> str:
        with session_scope(rt.engine) as session:
            return create_bot_for(session, organization, name, channel, account).id

    print(f"bot {_run(run)}")


contacts_app = typer.Typer(help="Contacts of a list: CSV import and export.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")

#: Row errors the import command prints (the result keeps the first hundred).
SHOWN_ERRORS = 20


def _csv_progress(unit: str) -> Progress:
    """A progress bar on stderr (stdout may carry an export)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=err_console, transient=unit == "rows")


@contacts_app.command("import")
def contacts_import(
    path: Annotated[Path, typer.Argument(help="CSV file with a header row", show_default=False)],
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list (created if new)")],
) -> None:
    """Import contacts from a CSV file into a list (email, phone, name, tags, custom fields).

    Rows match the list's contacts on email (else phone): importing twice changes nothing.
    Batches are committed as they go, so an interrupted import keeps what it committed; run it
    again to finish. See docs/contacts-csv.md.
    """
    if not path.is_file():
        err_console.print(f"[red]error[/red] FILE_NOT_FOUND: {path} is not a readable file")
        raise typer.Exit(EXIT_BAD_INPUT)
    rt = _migrated_runtime()
    from engine.audience.contact_csv import ImportResult, import_contacts
    from engine.audience.lists import get_or_create_list
    from engine.campaigns.campaign import get_organization_by_name

    def run() -> ImportResult:
        with (
            session_scope(rt.engine) as session,
            path.open("rb") as raw,
            _csv_progress("bytes") as bar,
        ):
            org = get_organization_by_name(session, organization)
            found = get_or_create_list(session, org.id, list_name)
            assert found.id is not None
            task = bar.add_task("import", total=path.stat().st_size, counts="")

            def show(result: ImportResult) -> None:
                counts = f"{result.rows:,} rows, {result.error_count:,} errors"
                bar.update(task, completed=raw.tell(), counts=counts)

            lines = (line.decode("utf-8") for line in raw)
            result = import_contacts(session, org.id, found.id, lines, on_progress=show)
            bar.update(task, completed=path.stat().st_size)
            return result

    _print_import(_run(run))


def _print_import(result: Any) -> None:
    console.print(
        f"rows {result.rows:,}: created {result.created:,}, updated {result.updated:,}, "
        f"unchanged {result.unchanged:,}, errors {result.error_count:,}"
    )
    for error in result.errors[:SHOWN_ERRORS]:
        console.print(f"  line {error.line}: {error.code} {error.message}", markup=False)
    if result.error_count > SHOWN_ERRORS:
        console.print(f"  … and {result.error_count - SHOWN_ERRORS:,} more rows with errors")


@contacts_app.command("export")
def contacts_export(
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list")],
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output)")
    ] = None,
) -> None:
    """Export a list's contacts as CSV; the file imports back unchanged."""
    rt = _migrated_runtime()
    from engine.audience.contact_csv import export_contacts
    from engine.audience.lists import all_lists, list_sizes
    from engine.campaigns.campaign import get_organization_by_name

    def run() -> int:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            found = next((x for x in all_lists(session, org.id) if x.name == list_name), None)
            if found is None or found.id is None:
                raise NotFound(f"list {list_name!r} not found", code="LIST_NOT_FOUND")
            total = list_sizes(session, [found.id]).get(found.id, 0)
            out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
            with _csv_progress("rows") as bar:
                task = bar.add_task("export", total=total or None, counts="")

                def show(written: int) -> None:
                    bar.update(task, completed=written, counts=f"{written:,}/{total:,}")

                try:
                    for text in export_contacts(session, org.id, found.id, on_progress=show):
                        out.write(text)
                finally:
                    if output:
                        out.close()
            return total

    total = _run(run)
    if output:
        err_console.print(f"{total:,} contacts written to {output}")


@app.command()
def up(threads: Annotated[int, typer.Option(min=1)] = 8) -> None:
    """Run the scheduler and worker threads in this process until interrupted (embedded mode)."""
    rt = _migrated_runtime()
    from workers.embedded import EmbeddedStack

    stop = _stop_on_signals()
    with EmbeddedStack(rt, threads=threads):
        console.print("scheduler and workers running; Ctrl-C to stop")
        stop.wait()


@app.command("scheduler")
def scheduler_cmd() -> None:
    """Run the scheduler loop (several may run at once) until interrupted."""
    settings = _setup()
    migrate(settings.database_url)
    from scheduler.loop import run
    from workers.broker import DramatiqEnqueuer, build_broker

    rt = Runtime.from_settings(settings)
    run(rt, DramatiqEnqueuer(build_broker(settings.broker_url)), _stop_on_signals())


@app.command()
def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process")] = 8,
    queues: Annotated[list[str] | None, typer.Option(help="Only these queues (repeatable)")] = None,
) -> None:
    """Run dramatiq worker processes on the engine's actors (wraps ``dramatiq``)."""
    settings = _setup()
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
    os.execv(sys.executable, argv)


@app.command()
def progress(
    execution_id: str,
    watch: Annotated[bool, typer.Option("--watch", help="Live view until it finishes")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print an execution's progress: percentage, counts, rate, ETA, errors by code."""
    rt = Runtime.from_settings(_setup())
    from engine.execution.progress import get_progress

    def read() -> dict[str, Any]:
        with session_scope(rt.engine) as session:
            return dict(get_progress(session, execution_id))

    # A database restarting as the command starts is waited for, as the live view does.
    data = _run(lambda: through_outages(read, "progress", wait_s=60))
    if watch and data["status"] not in FINAL_EXECUTION_STATUSES:
        _watch(rt, execution_id, quiet=as_json)
        data = read()
    if as_json:
        print(json.dumps(data))
    else:
        _print_progress(data)


def _state_command(name: str, service: str) -> Callable[[str], None]:
    def command(execution_id: str) -> None:
        rt = Runtime.from_settings(_setup())
        from engine.execution import runs

        def change() -> str:
            with session_scope(rt.engine) as session:
                return str(getattr(runs, service)(session, execution_id).status)

        console.print(f"execution {execution_id}: {_run(change)}")

    command.__doc__ = f"{name.capitalize()} an execution."
    return command


app.command("pause", help="Pause a running execution; workers stop within one chunk.")(
    _state_command("pause", "pause_execution")
)
app.command("resume", help="Resume a paused execution; nobody is sent twice.")(
    _state_command("resume", "resume_execution")
)
app.command("cancel", help="Cancel an execution: nobody not yet reached is sent to.")(
    _state_command("cancel", "cancel_execution")
)


@app.command()
def retry(execution_id: str) -> None:
    """Run a finished execution again for the contacts it did not reach."""
    rt = Runtime.from_settings(_setup())
    from engine.execution.runs import retry_execution

    def start() -> str:
        with session_scope(rt.engine) as session:
            return retry_execution(session, execution_id, secret_key=rt.settings.secret_key).id

    console.print(
        f"execution {_run(start)} scheduled: retries {execution_id} for those not reached"
    )


def _watch(rt: Runtime, execution_id: str, quiet: bool = False) -> str:
    """Show a live progress bar until the execution reaches a final status; return it."""
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
            counts = p["progress"]
            bar.update(
                task,
                completed=counts["processed"],
                total=counts["total"] or None,
                counts=f"{counts['processed']:,}/{counts['total']:,}",
                status=p["status"],
                rate=p["currentRate"],
                failed=counts["failed"],
            )
            if p["status"] in FINAL_EXECUTION_STATUSES:
                return str(p["status"])
            time.sleep(0.25)


def _print_progress(data: dict[str, Any]) -> None:
    p = data["progress"]
    table = Table(title=f"execution {data['executionId']}", show_header=False)
    for key, value in [
        ("status", data["status"]),
        ("percentage", f"{p['percentage']}%"),
        ("processed", f"{p['processed']:,} / {p['total']:,}"),
        ("successful", f"{p['successful']:,}"),
        ("failed", f"{p['failed']:,}"),
        ("skipped", f"{p['skipped']:,}"),
        ("currentRate", f"{data['currentRate']:,}/s"),
        ("estimatedCompletion", data["estimatedCompletion"] or "-"),
    ]:
        table.add_row(key, str(value))
    for err in data["errors"]:
        table.add_row(f"error {err['code']}", f"{err['count']:,}  {err['message']}")
    console.print(table)


def _print_report(rt: Runtime, execution_id: str) -> None:
    from engine.execution.progress import get_progress, get_statistics

    with session_scope(rt.engine) as session:
        data = get_progress(session, execution_id)
        stats = get_statistics(session, execution_id)
    _print_progress(data)
    table = Table(title="statistics")
    for col in ("touchpoint", "sent", "failed", "skipped"):
        table.add_column(col)
    for tp in stats["touchpoints"]:
        table.add_row(tp["name"], f"{tp['sent']:,}", f"{tp['failed']:,}", f"{tp['skipped']:,}")
    console.print(table)
    console.print(f"duration {stats['durationSeconds']} s, average {stats['averageRate']:,}/s")


def main() -> None:
    """Console-script entry point."""
    app()
