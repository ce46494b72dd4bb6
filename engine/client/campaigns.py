"""``client.campaign``: campaigns and their touchpoints (SDK reference), plus the campaigns API's
verbs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from engine.client import shapes
from engine.client.http import Transport

#: A campaign, touchpoint or report as a plain dict.
Record = dict[str, Any]
#: Several records.
Records = list[Record]

_CAMPAIGNS = "/api/v1/campaigns"
_TOUCHPOINTS = "/api/v1/touchpoints"
#: The API's largest page, used when :meth:`Campaigns.list` fetches every page.
MAX_PAGE = 100


def _seg(value: str) -> str:
    """An id as one path segment (an id with ``/`` or ``?`` cannot reach another route)."""
    return quote(str(value), safe="")


class Campaigns:
    """Campaigns and touchpoints of the caller's organization; reached as ``client.campaign``.

    Campaigns and touchpoints come back in the SDK reference's names: ``_id``, ``name``, ``status``,
    ``channel_type``, ``created_at``, ``updated_at``; touchpoints ``_id``, ``name``, ``type``,
    ``campaign_id``, ``created_at``, ``message``, ``delay``, ``position``. Execution reports
    (:meth:`execute`, :meth:`progress`, :meth:`statistics` …) keep the campaigns API's shape.

    Every method raises an :class:`~engine.client.errors.ApiError` subclass when the API refuses.

    Example:
        >>> for c in client.campaign.list()["data"]:
        ...     print(c["_id"], c["name"], c["status"])
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    # -- campaigns (SDK reference) -----------------------------------------------------------------

    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        search: str | None = None,
        sort: str | None = None,
        page: int | None = None,
        limit: int | None = None,
    ) -> Record:
        """List campaigns, newest first unless ``sort`` says otherwise.

        Args:
            status: only this status (``draft``, ``active``, ``paused``, ``completed`` …).
            type: only this type (``message``, ``invitation`` …).
            search: words to find in the name or description.
            sort: a field, ``-`` first for descending (default ``-createdAt``).
            page: one page (from 1); without it every page is fetched.
            limit: items per page (1 to 100).

        Returns:
            ``{"data": [campaign, ...]}``; with ``page``, also ``"pagination"``
            (``page``, ``limit``, ``total``, ``pages``).

        Raises:
            ValidationError: a parameter is out of range (``limit=0``, unknown status …).
        """
        params: dict[str, Any] = {"status": status, "type": type, "search": search, "sort": sort}
        if page is not None:
            found = self._t.request(
                "GET", _CAMPAIGNS, params={**params, "page": page, "limit": limit}
            )
            return {
                "data": [shapes.campaign(c) for c in found["campaigns"]],
                "pagination": found["pagination"],
            }
        items: Records = []
        number, pages = 1, 1
        while number <= pages:
            found = self._t.request(
                "GET",
                _CAMPAIGNS,
                params={**params, "page": number, "limit": MAX_PAGE if limit is None else limit},
            )
            items.extend(shapes.campaign(c) for c in found["campaigns"])
            pages = int(found["pagination"]["pages"])
            number += 1
        return {"data": items}

    def get(self, campaign_id: str) -> Record:
        """One campaign with its touchpoints, audience count and statistics.

        Raises:
            NotFoundError: no such campaign (``CAMPAIGN_NOT_FOUND``).
        """
        return shapes.campaign(self._t.request("GET", f"{_CAMPAIGNS}/{_seg(campaign_id)}"))

    def create(self, campaign: Mapping[str, Any]) -> Record:
        """Create a draft campaign.

        Args:
            campaign: ``{"name", "channel_type"}`` (SDK reference), optionally with the
                campaigns API's ``description``, ``type``, ``goals``, ``target_audience``,
                ``messages``, ``budget``, ``start_date``, ``end_date``, ``channel_config`` and
                ``touchpoints``.

        Returns:
            ``{"_id", "name", "status", "message"}``.

        Raises:
            ValidationError: a field is missing or wrong, or the channel is unknown.
        """
        return shapes.campaign(self._t.request("POST", _CAMPAIGNS, dict(campaign)))

    def update(self, campaign_id: str, fields: Mapping[str, Any]) -> Record:
        """Change some of a campaign's fields (``PUT /campaigns/:id``).

        Returns:
            The whole campaign after the change.

        Raises:
            NotFoundError: no such campaign.
            ConflictError: the status change is not allowed (``INVALID_TRANSITION``).
            ValidationError: a field is wrong.
        """
        return shapes.campaign(
            self._t.request("PUT", f"{_CAMPAIGNS}/{_seg(campaign_id)}", dict(fields))
        )

    def delete(self, campaign_id: str) -> None:
        """Delete a draft or cancelled campaign.

        Raises:
            NotFoundError: no such campaign.
            ConflictError: the campaign is neither draft nor cancelled (``CANNOT_DELETE``).
        """
        self._t.request("DELETE", f"{_CAMPAIGNS}/{_seg(campaign_id)}")

    # -- execution (campaigns API) -----------------------------------------------------------------

    def execute(
        self,
        campaign_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **more: Any,
    ) -> Record:
        """Start the campaign now, or at ``scheduled_at``.

        Args:
            campaign_id: the campaign.
            options: any of ``test_mode``, ``target_percentage`` (1 to 100), ``priority``
                (``high``/``normal``/``low``), ``scheduled_at`` (a ``datetime`` or ISO string);
                the API's camelCase names work too.
            idempotency_key: any unique text; calling again with the same key (a retry after a
                timeout) answers the first call's execution instead of starting another.
            **more: the same options as keywords, e.g. ``execute(cid, priority="high")``.

        Returns:
            ``{"executionId", "status": "started"|"scheduled", "scheduledAt",
            "estimatedCompletion", "message"}``.

        Raises:
            ValidationError: no channel (``NO_CHANNEL``), no touchpoints, a bad option.
            ConflictError: the campaign already has an execution in progress
                (``EXECUTION_ACTIVE``).
        """
        body = {**(options or {}), **more}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(
            self._t.request(
                "POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/execute", body or None, headers=headers
            )
        )

    def pause(self, campaign_id: str) -> Record:
        """Pause the running execution.

        Returns:
            ``{"status": "paused", "message", "pausedAt"}``.

        Raises:
            ConflictError: nothing is executing (``CANNOT_PAUSE``).
        """
        return dict(self._t.request("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/pause"))

    def resume(self, campaign_id: str) -> Record:
        """Resume the paused execution.

        Returns:
            ``{"status": "active", "message", "resumedAt"}``.

        Raises:
            ConflictError: nothing is paused (``CANNOT_RESUME``).
        """
        return dict(self._t.request("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/resume"))

    def cancel(self, campaign_id: str) -> Record:
        """Cancel the campaign: its execution in progress stops within one send batch.

        A campaign with nothing in progress (draft, completed, failed) is retired as
        ``cancelled``, which makes it deletable.

        Returns:
            ``{"status": "cancelled", "message", "cancelledAt"}``.

        Raises:
            ConflictError: the campaign is already cancelled (``CANNOT_CANCEL``).
        """
        return dict(self._t.request("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/cancel"))

    def retry(self, execution_id: str) -> Record:
        """Run a finished execution again for the contacts it did not reach.

        Returns:
            ``{"executionId", "retryOf", "status": "started", "scheduledAt", "message"}``.

        Raises:
            ConflictError: the execution is in progress (``CANNOT_RETRY``) or the campaign runs
                another one (``EXECUTION_ACTIVE``).
        """
        return dict(self._t.request("POST", f"/api/v1/executions/{_seg(execution_id)}/retry"))

    def clone(
        self, campaign_id: str, name: str | None = None, *, reset_statistics: bool | None = None
    ) -> Record:
        """Copy a campaign and its touchpoints as a new draft.

        Args:
            campaign_id: the campaign to copy.
            name: the copy's name (default: the original's with `` (Copy)``).
            reset_statistics: the campaigns API's ``resetStatistics`` (a copy never has executions).

        Returns:
            ``{"_id", "name", "status", "message"}``, like :meth:`create`.
        """
        body = {"name": name, "reset_statistics": reset_statistics}
        body = {k: v for k, v in body.items() if v is not None}
        return shapes.campaign(
            self._t.request("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/clone", body)
        )

    def statistics(
        self, campaign_id: str, period: str = "all", metrics: str | Iterable[str] | None = None
    ) -> Record:
        """Delivery statistics (campaigns API: ``overview``, ``performance``, ``timeline`` …).

        Args:
            campaign_id: the campaign.
            period: ``1h``, ``24h``, ``7d``, ``30d`` or ``all``.
            metrics: sections to include, e.g. ``["overview"]`` or ``"overview,timeline"``.

        Raises:
            ValidationError: unknown period.
        """
        if metrics is not None and not isinstance(metrics, str):
            metrics = ",".join(metrics)
        return dict(
            self._t.request(
                "GET",
                f"{_CAMPAIGNS}/{_seg(campaign_id)}/statistics",
                params={"period": period, "metrics": metrics},
            )
        )

    def progress(self, campaign_id: str) -> Record:
        """Live progress of the newest execution (the campaigns API's shape).

        Returns:
            ``{"status", "progress": {"percentage", "processed", "total", "successful",
            "failed", ...}, "currentRate", "estimatedCompletion", "errors"}``.

        Raises:
            NotFoundError: no such campaign, or it was never executed.
        """
        return dict(self._t.request("GET", f"{_CAMPAIGNS}/{_seg(campaign_id)}/progress"))

    # -- touchpoints (SDK reference) ---------------------------------------------------------------

    def list_touchpoints(self, campaign_id: str) -> Record:
        """The campaign's touchpoints in order.

        Returns:
            ``{"data": [touchpoint, ...]}``, like :meth:`list`.
        """
        found = self._t.request("GET", f"{_CAMPAIGNS}/{_seg(campaign_id)}/touchpoints")
        return {"data": [shapes.touchpoint(tp) for tp in found]}

    def get_touchpoint(self, touchpoint_id: str) -> Record:
        """One touchpoint.

        Raises:
            NotFoundError: no such touchpoint.
        """
        return shapes.touchpoint(self._t.request("GET", f"{_TOUCHPOINTS}/{_seg(touchpoint_id)}"))

    def create_touchpoint(self, touchpoint: Mapping[str, Any]) -> Record:
        """Append a touchpoint to a campaign.

        Args:
            touchpoint: ``{"name", "type", "campaign_id", "message"}`` (SDK reference), optionally
                ``delay`` (seconds after the previous touchpoint).

        Returns:
            The new touchpoint.

        Raises:
            NotFoundError: no such campaign.
            ValidationError: a field is wrong, or ``campaign_id`` is missing.
            ConflictError: the campaign is executing.
        """
        body = dict(touchpoint)
        campaign_id = body.get("campaign_id")
        path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/touchpoints" if campaign_id else _TOUCHPOINTS
        return shapes.touchpoint(self._t.request("POST", path, body))

    def update_touchpoint(self, touchpoint_id: str, fields: Mapping[str, Any]) -> Record:
        """Change a touchpoint's ``name``, ``type``, ``message`` or ``delay``.

        Returns:
            The touchpoint after the change.
        """
        return shapes.touchpoint(
            self._t.request("PUT", f"{_TOUCHPOINTS}/{_seg(touchpoint_id)}", dict(fields))
        )

    def delete_touchpoint(self, touchpoint_id: str) -> None:
        """Remove a touchpoint.

        Raises:
            NotFoundError: no such touchpoint.
            ConflictError: its campaign is executing.
        """
        self._t.request("DELETE", f"{_TOUCHPOINTS}/{_seg(touchpoint_id)}")

    def validate_touchpoint(self, touchpoint: Mapping[str, Any] | str) -> Record:
        """Check whether a touchpoint can be sent as configured.

        Args:
            touchpoint: ``{"touchpoint_id": ...}`` (SDK reference) or the id itself.

        Returns:
            ``{"valid": bool, "errors": [{"code", "message"}, ...]}``.

        Raises:
            NotFoundError: no such touchpoint.
        """
        body = {"touchpoint_id": touchpoint} if isinstance(touchpoint, str) else dict(touchpoint)
        return dict(self._t.request("POST", f"{_TOUCHPOINTS}/validate", body))


__all__ = ["MAX_PAGE", "Campaigns", "Record", "Records"]
