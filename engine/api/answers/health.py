"""What the probes answer: ``GET /health`` and ``GET /ready``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ReadinessOut(BaseModel):
    """``GET /ready``: ``ready`` (200) or ``not_ready`` (503), with every check's outcome."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description=(
            "database, schema, broker, limiter: `ok`, or `unreachable`, `behind` (the schema "
            "needs `campaign migrate`), `unsupported`, `not checked`"
        ),
        examples=[{"database": "ok", "schema": "ok", "broker": "ok", "limiter": "ok"}],
    )
