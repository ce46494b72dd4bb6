"""structlog set-up, done once per process: JSON in production, pretty in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(fmt: str = "auto", level: str = "INFO", *, cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger once; later calls are no-ops.

    Args:
        fmt: ``auto`` (console renderer on a TTY, JSON otherwise), ``json`` or ``console``.
        level: minimum level name, e.g. ``INFO``; debug lines (``delivery.sent``) then cost
            almost nothing.
        cache: cache loggers on first use (fast); tests turn it off so
            ``structlog.testing.capture_logs`` sees every line.
    """
    global _configured
    if _configured:
        return
    _configured = True
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def get_logger(**bound: Any) -> Any:
    """Return a structlog logger with ``bound`` key-values attached.

    The logger is lazy: modules may create theirs at import time, before
    :func:`configure_logging` runs, and still log with the configured processors.
    """
    return structlog.get_logger(**bound)
