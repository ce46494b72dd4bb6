"""``/api/v1/executions``: one run of a campaign, its progress, and retrying it for those missed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from engine.api.answers.base import Envelope, ok
from engine.api.answers.campaigns import ProgressOut, RetryStarted
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.execution.progress import get_progress
from engine.execution.runs import retry_execution

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

ExecutionId = Annotated[
    str, Path(min_length=1, max_length=32, description="the execution's id (executionId)")
]


@router.get("/{execution_id}", response_model=Envelope[ProgressOut])
def get(
    execution_id: ExecutionId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The execution's live progress: percentage, counts, rate, ETA, errors by code."""
    return ok(ProgressOut.of(get_progress(session, execution_id, principal.organization_id)))


@router.post("/{execution_id}/retry", response_model=Envelope[RetryStarted])
def retry(
    execution_id: ExecutionId,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Run a finished execution again for the people it did not reach.

    Same recipients; per touchpoint, whoever has a ``sent`` delivery from the first run (or an
    earlier retry) is skipped (``ALREADY_SENT``). 409 ``CANNOT_RETRY`` while it is in progress,
    409 ``EXECUTION_ACTIVE`` while the campaign runs another, 409 ``TOUCHPOINTS_CHANGED`` when
    the touchpoints the first run sent were replaced.
    """
    execution = retry_execution(
        session, execution_id, principal.organization_id, secret_key=settings.verification_keys
    )
    return ok(RetryStarted.of(execution))
