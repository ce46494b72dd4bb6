"""Personalised messages rendered in Jinja2's sandbox: contacts' data never runs code, and a
template never takes more than its share of a worker (:mod:`engine.templating.limits`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from jinja2 import Template, TemplateError, TemplateRuntimeError
from jinja2.runtime import new_context

from engine.config import get_settings
from engine.errors import ValidationFailed
from engine.templating.limits import TemplateLimits, TemplateTooLarge, start, stop
from engine.templating.sandbox import BoundedEnvironment, needs_budget

#: What a template sees at create and update, where no contact is at hand: enough to find a
#: template that is too large whoever it is sent to (``{{ name * 200000000 }}``).
SAMPLE_CONTACT: dict[str, Any] = {
    "id": "sample-contact",
    "email": "sample@example.com",
    "phone": "+10000000000",
    "name": "Sample Contact",
    "unsubscribe_url": "https://example.com/u/sample",
}


@lru_cache(maxsize=1)
def _environment() -> BoundedEnvironment:
    settings = get_settings()
    limits = TemplateLimits(settings.template_max_rendered_chars, settings.template_max_steps)
    return BoundedEnvironment(limits, autoescape=False, keep_trailing_newline=True)


class _Compiled(NamedTuple):
    """A compiled template and what rendering it needs each time."""

    template: Template
    #: Whether it does anything a budget counts (a plain ``Hi {{ name }}`` does not: it
    #: renders without one).
    budgeted: bool
    #: The template's globals (``range``, ``dict`` …) as a plain dict: ``Template.new_context``
    #: walks their ``ChainMap`` twice on every render, most of a short message's time.
    globals: dict[str, Any]


@lru_cache(maxsize=1024)
def _compile(source: str) -> _Compiled:
    """The compiled template of ``source`` (cached: a campaign renders one per contact)."""
    environment = _environment()
    tree = environment.parse(source)
    template = environment.from_string(tree)
    return _Compiled(template, needs_budget(tree), dict(template.globals))


def check_template(message: Any) -> None:
    """Refuse a message whose templates don't compile, or render too large for anyone.

    Each string is rendered once for :data:`SAMPLE_CONTACT`: errors that depend on the
    contact's data (a missing custom field) are left to validation and sending.

    Raises:
        ValidationFailed: ``TEMPLATE_ERROR`` (does not compile) or ``TEMPLATE_TOO_LARGE``.
    """
    for text in _strings(message):
        try:
            compiled = _compile(text)
        except TemplateError as exc:
            raise ValidationFailed(
                f"message template does not compile: {exc}", code="TEMPLATE_ERROR"
            ) from exc
        try:
            _render(compiled, SAMPLE_CONTACT)
        except TemplateTooLarge as exc:
            raise ValidationFailed(
                f"message template is too large: {exc}", code=TemplateTooLarge.code
            ) from exc
        except TemplateError:
            pass  # depends on the contact's data: validation renders a real contact


def error_code(exc: TemplateError) -> str:
    """The delivery or validation code of a template error: ``TEMPLATE_TOO_LARGE`` or
    ``TEMPLATE_ERROR``."""
    return getattr(exc, "code", None) or "TEMPLATE_ERROR"


def contact_context(fields: dict[str, Any] | None, recipient: dict[str, Any]) -> dict[str, Any]:
    """What a template sees for one contact: its custom ``fields``, then id/email/phone/name."""
    return {**(fields or {}), **recipient}


def render(message: Any, context: dict[str, Any]) -> Any:
    """Render every string of ``message`` (a string, or an object of strings) with ``context``.

    Raises:
        jinja2.TemplateError: the message does not render for this context; a
            :class:`TemplateTooLarge` when it would outgrow ``TEMPLATE_MAX_RENDERED_CHARS``
            or ``TEMPLATE_MAX_STEPS``.

    Example:
        >>> render({"text": "Hi {{ name }}"}, {"name": "Ana"})
        {'text': 'Hi Ana'}
    """
    if isinstance(message, str):
        return _render(_compile(message), context) if "{" in message else message
    if isinstance(message, dict):
        return {key: render(value, context) for key, value in message.items()}
    if isinstance(message, list):
        return [render(value, context) for value in message]
    return message


def _render(compiled: _Compiled, context: dict[str, Any]) -> str:
    """Render (within a fresh budget if it needs one), counting the output as it is written."""
    template = compiled.template
    limits: TemplateLimits = template.environment.limits  # type: ignore[attr-defined]
    left = limits.max_chars
    parts: list[str] = []
    token = start(limits) if compiled.budgeted else None
    # A fresh dict per render, so ``shared`` (no copy of it) leaks nothing between contacts;
    # the contact's values win over a global of the same name, as in Jinja's own merge.
    scope = {**compiled.globals, **context}
    run = new_context(template.environment, template.name, template.blocks, scope, shared=True)
    try:
        for part in template.root_render_func(run):
            left -= len(part)
            if left < 0:
                raise TemplateTooLarge(
                    f"the message renders more than {limits.max_chars} characters "
                    "(TEMPLATE_MAX_RENDERED_CHARS)"
                )
            parts.append(part)
    except TemplateError:
        raise
    except Exception as exc:  # the template's own fault (1/0, 2.0 ** 9999): its error
        raise TemplateRuntimeError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if token is not None:
            stop(token)
    return "".join(parts)


def _strings(message: Any) -> list[str]:
    if isinstance(message, str):
        return [message]
    if isinstance(message, dict):
        return [s for value in message.values() for s in _strings(value)]
    if isinstance(message, list):
        return [s for value in message for s in _strings(value)]
    return []


__all__ = [
    "SAMPLE_CONTACT",
    "TemplateLimits",
    "TemplateTooLarge",
    "check_template",
    "contact_context",
    "error_code",
    "render",
]
