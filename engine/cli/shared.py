"""What every ``campaign`` command shares: the consoles, the exit code for bad input, settings
and logging, a migrated runtime, engine errors turned into messages, and stopping on signals."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from engine.config import Settings, get_settings, secret_key_problem
from engine.db import migrate
from engine.errors import EngineError
from engine.logging import configure_logging
from engine.runtime import Runtime

#: Standard output: results, tables, the live view.
console = Console()
#: Standard error: errors, notices, progress bars beside an export on standard output.
err_console = Console(stderr=True)

#: Exit code for bad input (unknown channel, missing campaign, empty audience …).
EXIT_BAD_INPUT = 2


def stop_on_signals() -> threading.Event:
    """Return an event set by SIGINT or SIGTERM, so long-running commands stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def setup(log_level: str | None = None) -> Settings:
    """Read the settings and configure logging (at ``log_level``, else the configured one)."""
    settings = get_settings()
    configure_logging(settings.log_format, log_level or settings.log_level)
    return settings


def require_secret_key(settings: Settings, *, embedded: bool = False) -> Settings:
    """Stop a serving or sending process on a key anyone could know, unless in development mode.

    ``embedded`` (``campaign up`` and the demo, one process on the store): on the default SQLite
    store nothing is served to others yet, so development mode turns itself on, said in one line.

    Returns:
        ``settings``, with ``development_mode`` on when this turned it on.

    Raises:
        typer.Exit: ``EXIT_BAD_INPUT`` after a one-line message naming the problem.
    """
    problem = secret_key_problem(settings)
    if problem is None:
        return settings
    code = problem.partition(":")[0]
    if settings.development_mode:
        _line(f"development mode ({code}): fine on this machine, never in production")
        return settings
    if embedded and settings.database_url.startswith("sqlite"):
        _line(
            f"development mode ({code}, embedded SQLite store): set SECRET_KEY before serving "
            "anyone (docs/security.md)"
        )
        return settings.model_copy(update={"development_mode": True})
    _line(
        f"[red]error[/red] {problem}. Set SECRET_KEY to a long random value (`python -c 'import "
        "secrets; print(secrets.token_urlsafe(48))'`), or DEVELOPMENT_MODE=true on a "
        "development machine"
    )
    raise typer.Exit(EXIT_BAD_INPUT)


def _line(message: str) -> None:
    """One line on standard error, however narrow the terminal (log collectors read lines)."""
    err_console.print(message, soft_wrap=True)


def migrated_runtime() -> Runtime:
    """Settings and logging, the schema brought to head, and a runtime on them."""
    settings = setup()
    migrate(settings.database_url)
    return Runtime.from_settings(settings)


def run(fn: Callable[[], Any]) -> Any:
    """Run a command body, turning engine errors into a message and a non-zero exit code."""
    try:
        return fn()
    except EngineError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
