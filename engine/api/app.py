"""``create_app()``: the FastAPI application, built from settings (nothing at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from engine import __version__
from engine.api import errors, openapi
from engine.api.access_log import redact_access_log
from engine.api.answers.health import ReadinessOut
from engine.api.limits import BodySizeLimit
from engine.api.routes import (
    auth,
    builder,
    campaigns,
    channels,
    contact_files,
    contacts,
    credentials,
    events,
    executions,
    lists,
    marketing,
    segments,
    suppressions,
    touchpoints,
    webhooks,
)
from engine.config import Settings, get_settings, secret_key_problem
from engine.db import make_engine
from engine.hashing import configure as configure_password_hashing
from engine.logging import get_logger
from engine.services.attempts import AttemptLimiter
from engine.services.readiness import ReadinessProbe

log = get_logger()


@asynccontextmanager
async def _closing_the_pool(app: FastAPI) -> AsyncIterator[None]:
    """Close the app's database connections when it shuts down (a server stopping, a test's
    client leaving): an app's pool must not outlive it, holding connections open."""
    yield
    app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment).

    Example:
        ``uvicorn --factory engine.api.app:create_app`` or ``campaign api``.
    """
    settings = settings or get_settings()
    problem = secret_key_problem(settings)
    if problem and not settings.development_mode:
        # `campaign api` refuses to start on such a key; an app built another way says so.
        log.warning("security.unsafe_secret_key", problem=problem, hint="set SECRET_KEY")
    app = FastAPI(
        title="campaign-engine",
        version=__version__,
        description="Campaigns, touchpoints, executions, progress and statistics (campaigns API).",
        lifespan=_closing_the_pool,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    configure_password_hashing(settings)  # logins hash and re-hash at the configured cost
    redact_access_log()  # ?apikey= never reaches a log file
    app.state.attempts = AttemptLimiter.from_settings(settings)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        max_import_bytes=settings.max_import_bytes,
    )
    for module in (
        auth,
        campaigns,
        executions,
        touchpoints,
        webhooks,
        marketing,
        contact_files,
        contacts,
        lists,
        segments,
        suppressions,
        channels,
        events,
        credentials,
        builder,
    ):
        app.include_router(module.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness probe: the process answers."""
        return {"status": "ok"}

    probe = ReadinessProbe(settings)

    @app.get(
        "/ready",
        tags=["health"],
        response_model=ReadinessOut,
        responses={503: {"model": ReadinessOut, "description": "A dependency is not ready"}},
    )
    def ready() -> JSONResponse:
        """Readiness probe: the database answers with its schema not behind this release's
        migrations, and the broker and the rate limiter's Redis (when configured) accept
        connections. 503 says which check failed (details go to the log, not the answer)."""
        readiness = probe.check()
        body = ReadinessOut(
            status="ready" if readiness.ready else "not_ready", checks=readiness.checks
        )
        return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)

    return app
