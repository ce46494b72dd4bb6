"""Personalised messages rendered in Jinja2's sandbox: contacts' data never runs code."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import ValidationFailed

_env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=1024)
def _compile(source: str) -> Any:
    return _env.from_string(source)


def check_template(message: Any) -> None:
    """Raise :class:`ValidationFailed` (``TEMPLATE_ERROR``) if ``message`` won't compile."""
    for text in _strings(message):
        try:
            _compile(text)
        except TemplateError as exc:
            raise ValidationFailed(
                f"message template does not compile: {exc}", code="TEMPLATE_ERROR"
            ) from exc


def contact_context(fields: dict[str, Any] | None, recipient: dict[str, Any]) -> dict[str, Any]:
    """What a template sees for one contact: its custom ``fields``, then id/email/phone/name."""
    return {**(fields or {}), **recipient}


def render(message: Any, context: dict[str, Any]) -> Any:
    """Render every string of ``message`` (a string, or an object of strings) with ``context``.

    Example:
        >>> render({"text": "Hi {{ name }}"}, {"name": "Ana"})
        {'text': 'Hi Ana'}
    """
    if isinstance(message, str):
        return _compile(message).render(context) if "{" in message else message
    if isinstance(message, dict):
        return {key: render(value, context) for key, value in message.items()}
    if isinstance(message, list):
        return [render(value, context) for value in message]
    return message


def _strings(message: Any) -> list[str]:
    if isinstance(message, str):
        return [message]
    if isinstance(message, dict):
        return [s for value in message.values() for s in _strings(value)]
    if isinstance(message, list):
        return [s for value in message for s in _strings(value)]
    return []
