"""Entry point for ``dramatiq workers.boot:setup`` (what ``campaign worker`` runs).

dramatiq calls :func:`setup` in every worker process: it builds the broker from the settings,
makes it the global broker and declares the actors on it.
"""

from __future__ import annotations

import dramatiq

from engine.config import get_settings, secret_key_problem
from engine.logging import configure_logging
from engine.ratelimit import unshared_limiter_problem
from workers.actors import declare_actors
from workers.broker import build_broker
from workers.middleware import CloseRuntime


def setup() -> None:
    """Configure logging, build the broker named by ``BROKER_URL`` and declare the actors."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    problem = unshared_limiter_problem(
        settings.broker_url, settings.redis_url, settings.allow_local_rate_limiter
    )
    if problem:  # started by dramatiq directly, not through `campaign worker`
        raise SystemExit(f"error {problem}")
    problem = secret_key_problem(settings)
    if problem and not settings.development_mode:
        raise SystemExit(f"error {problem} (set SECRET_KEY, or DEVELOPMENT_MODE=true)")
    broker = build_broker(settings.broker_url)
    broker.add_middleware(CloseRuntime())
    dramatiq.set_broker(broker)
    declare_actors(broker)
