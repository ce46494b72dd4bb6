"""One contact's message of a chunk: the A/B variation picked, the template rendered, the
unsubscribe and click-tracking links signed, and the channel's :class:`OutgoingMessage` built
(or the outcome of a message that is not sent: a template error, a test-mode dry run)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from engine.campaigns.variations import pick_variation
from engine.channels import OutgoingMessage, idempotency_key
from engine.execution.sending import SendOutcome
from engine.models import DeliveryStatus
from engine.templating import contact_context, render

if TYPE_CHECKING:
    from engine.execution.claiming import ChunkJob

#: Custom fields that address a contact on a channel, passed to channels with the recipient.
ADDRESS_FIELDS = ("telegram_chat_id",)
#: Channels whose messages get click-tracking links (http(s) hrefs in HTML, bare URLs in text).
TRACKED_CHANNELS = frozenset({"email", "webhook"})


def uses_links(channel: str, message: Any) -> bool:
    """Whether a step's messages get signed links: channels whose links are tracked (and
    email's List-Unsubscribe), or a message that shows ``{{ unsubscribe_url }}``. Not paid
    where nothing uses them (see bench/link_signing.py for the cost per message)."""
    return channel in TRACKED_CHANNELS or "unsubscribe_url" in json.dumps(message, default=str)


def outgoing(job: ChunkJob, contact: dict[str, Any]) -> OutgoingMessage | SendOutcome:
    """Render the message for one contact; a template that fails for them fails their delivery."""
    recipient = {k: contact[k] for k in ("id", "email", "phone", "name")}
    fields = contact.get("fields") or {}
    for key in ADDRESS_FIELDS:
        if fields.get(key) is not None:
            recipient[key] = fields[key]
    touchpoint_id, execution, links = job.chunk.touchpoint_id, job.execution, job.links
    variation, message = pick_variation(job.message, execution.id, touchpoint_id, contact["id"])
    if links is not None:  # before rendering: templates may show {{ unsubscribe_url }}
        recipient["unsubscribe_url"] = links.unsubscribe_url(contact["id"])
    try:
        body = render(message, contact_context(fields, recipient))
    except TemplateError as exc:
        return SendOutcome(
            contact["id"],
            DeliveryStatus.failed,
            0,
            "TEMPLATE_ERROR",
            str(exc)[:500],
            variation=variation,
        )
    if links is not None and job.campaign.channel in TRACKED_CHANNELS:
        body = links.rewrite(body, lambda url: links.click_url(contact["id"], url))
    return OutgoingMessage(
        execution_id=job.execution.id,
        campaign_id=job.campaign.id,
        touchpoint_id=touchpoint_id,
        contact_id=contact["id"],
        idempotency_key=idempotency_key(job.execution.id, touchpoint_id, contact["id"]),
        recipient=recipient,
        body=body,
        config=job.config,
        variation=variation,
    )


def rendered_only(message: OutgoingMessage) -> SendOutcome:
    """The outcome of a test-mode message that was rendered but not sent."""
    return SendOutcome(
        message.contact_id,
        DeliveryStatus.skipped,
        0,
        "DRY_RUN",
        "test mode: rendered, not sent (the organization has no test contacts)",
        variation=message.variation,
    )
