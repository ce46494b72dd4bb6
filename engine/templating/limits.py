"""What one render may cost: a budget of steps and of characters built, held per render.

A tenant writes the templates the shared workers render for every contact, so a template must
not be able to take the memory or the time of a worker (``{{ name * 200000000 }}`` is 1.6 GB).
The sandbox (:mod:`engine.templating.sandbox`) charges this budget for everything that can grow:
loop iterations and calls are *steps*; strings, lists and numbers built are *characters*,
checked **before** they are built where an operation multiplies its input (``*``, ``center``…).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError

#: Numbers a template computes stay below this many bits (2,466 digits): enough for any
#: arithmetic a message needs, far below what Python can no longer print.
MAX_INT_BITS = 8192


class TemplateTooLarge(SecurityError):
    """The template would render more, or work longer, than a render may (``TEMPLATE_TOO_LARGE``).

    A :class:`jinja2.TemplateError`, so everything that handles template errors handles it.
    """

    code = "TEMPLATE_TOO_LARGE"


@dataclass(frozen=True)
class TemplateLimits:
    """The limits of one render.

    Attributes:
        max_chars: most characters one rendered string may have (``TEMPLATE_MAX_RENDERED_CHARS``).
        max_steps: most loop iterations, calls and filters one render may run
            (``TEMPLATE_MAX_STEPS``).
    """

    max_chars: int = 262_144
    max_steps: int = 100_000

    @property
    def max_built(self) -> int:
        """Characters a render may build in all (intermediate values included): four outputs."""
        return 4 * self.max_chars


class Budget:
    """What is left of one render's :class:`TemplateLimits`."""

    __slots__ = ("built", "limits", "steps")

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.steps = limits.max_steps
        self.built = limits.max_built

    def step(self, count: int = 1) -> None:
        """Spend ``count`` steps (loop iterations, calls, filters)."""
        self.steps -= count
        if self.steps < 0:
            raise TemplateTooLarge(
                f"the template runs more than {self.limits.max_steps} loop iterations, calls "
                "and filters (TEMPLATE_MAX_STEPS)"
            )

    def need(self, chars: int, what: str = "the template") -> None:
        """Spend ``chars`` characters about to be built by ``what``; refuse before building."""
        self.built -= chars
        if chars > self.limits.max_chars or self.built < 0:
            raise TemplateTooLarge(
                f"{what} builds more than {self.limits.max_chars} characters "
                "(TEMPLATE_MAX_RENDERED_CHARS)"
            )

    def number(self, bits: int) -> None:
        """Refuse a number of more than :data:`MAX_INT_BITS` bits before computing it."""
        if bits > MAX_INT_BITS:
            raise TemplateTooLarge(
                f"the template computes a number of more than {MAX_INT_BITS} bits"
            )


_current: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def current() -> Budget | None:
    """The budget of the render under way, if any."""
    return _current.get()


def budget() -> Budget:
    """The budget of the render under way.

    Raises:
        TemplateTooLarge: no render is under way (Jinja folding a constant while compiling:
            the error makes it leave the expression to render time, where it is counted).
    """
    current = _current.get()
    if current is None:
        raise TemplateTooLarge("evaluated at render time only")
    return current


def start(limits: TemplateLimits) -> Token[Budget | None]:
    """Give the render about to run a fresh :class:`Budget` of ``limits``; :func:`stop` ends it.

    (Two plain calls rather than a context manager: this runs for every contact.)
    """
    return _current.set(Budget(limits))


def stop(token: Token[Budget | None]) -> None:
    """End the render :func:`start` began."""
    _current.reset(token)


def size(value: Any, limit: int) -> int:
    """About how many characters ``value`` prints as; counting stops once past ``limit``.

    Containers count their items as often as they hold them (``[s] * 1000`` prints ``s`` a
    thousand times), so the walk is cut at ``limit`` rather than finished.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 2
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, range):
            total += 8 * len(item)
        else:
            total += 8
        if total > limit:
            break
    return total
