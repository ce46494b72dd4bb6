"""A/B variations (campaigns API ``messages[].variations``): which version each contact receives.

A message with ``variations`` is the control plus its variations. Each variation has an ``id``,
a ``weight`` and its ``content`` (or any message keys it overrides, such as ``subject`` or
``html``). The control weighs what is left of 100 (``100 - sum of weights``; nothing when the
variations already reach 100). A contact's version is a weighted pick by a hash of
(execution, touchpoint, contact): the same contact always gets the same version in an execution,
in every worker and on every retry, and versions split the audience in proportion to weights.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from engine.errors import ValidationFailed

#: The id of the message's own content when it has variations.
CONTROL = "control"
#: Keys of a variation that are about the variation, not message content.
_META = frozenset({"id", "weight", "content"})


def _arms(message: dict[str, Any]) -> list[tuple[str, float, dict[str, Any]]]:
    """``(id, weight, message)`` of the control and each variation with a positive weight."""
    base = {k: v for k, v in message.items() if k != "variations"}
    variations = [v for v in message["variations"] if isinstance(v, dict)]
    weights = [float(v.get("weight") or 0) for v in variations]
    arms = [(CONTROL, max(0.0, 100.0 - sum(weights)), base)]
    for position, (variation, weight) in enumerate(zip(variations, weights, strict=True)):
        body = {**base, **{k: v for k, v in variation.items() if k not in _META}}
        if "content" in variation:
            body["text"] = variation["content"]
        arms.append((str(variation.get("id") or f"variation{position + 1}"), weight, body))
    return [arm for arm in arms if arm[1] > 0]


def pick_variation(
    message: Any, execution_id: str, touchpoint_id: str, contact_id: int
) -> tuple[str | None, Any]:
    """The version of ``message`` one contact receives: ``(variation id, message)``.

    A message without variations is returned as it is, with ``None``.
    """
    if not isinstance(message, dict) or not message.get("variations"):
        return None, message
    arms = _arms(message)
    if not arms:  # weights that add up to nothing: validation refuses these; send the control
        return CONTROL, {k: v for k, v in message.items() if k != "variations"}
    key = f"{execution_id}:{touchpoint_id}:{contact_id}".encode()
    point = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
    total = sum(weight for _, weight, _ in arms)
    reached = 0.0
    for arm_id, weight, body in arms:
        reached += weight / total
        if point < reached:
            return arm_id, body
    return arms[-1][0], arms[-1][2]


def check_variations(message: Any) -> None:
    """Refuse variations that cannot split an audience: a missing, negative or non-finite
    ``weight``, or weights that add up to 0.

    Raises:
        ValidationFailed: ``INVALID_VARIATIONS``.
    """
    variations = message.get("variations") if isinstance(message, dict) else None
    if variations is None:
        return
    if not isinstance(variations, list) or not all(isinstance(v, dict) for v in variations):
        raise ValidationFailed("variations must be a list of objects", code="INVALID_VARIATIONS")
    weights = [v.get("weight") for v in variations]
    if not all(
        isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
        for w in weights
    ):
        raise ValidationFailed("every variation needs a weight >= 0", code="INVALID_VARIATIONS")
    if variations and sum(weights) <= 0:
        raise ValidationFailed("variation weights add up to 0", code="INVALID_VARIATIONS")
