"""Jinja2's sandbox with a bounded cost: nothing a template does outgrows its render's budget.

Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` keeps templates away from Python's
internals but lets them build strings of any size and loop for as long as they like. This one
hooks every place where a template can grow something or repeat work:

* ``*``, ``**``, ``+``, ``%`` (:meth:`BoundedEnvironment.call_binop`) and ``~`` (a code
  generator that joins through :meth:`BoundedEnvironment.join`);
* every call (``str.center``, ``bytes.replace``, ``str.format``, ``list.extend``, macros…:
  :meth:`BoundedEnvironment.call`), every filter (wrapped), ``range`` and ``lipsum``;
* every ``for`` loop (each item is a step), a recursive loop's ``loop(children)`` (each child
  a step when called and when iterated), every printed value (a list printed in full is as
  long as its items) and every block joined (macros, ``{% set %}``, ``{% filter %}``).

What would outgrow the budget is refused *before* it is built, so the cost of a refused
template is that of checking it: a format is charged the sum of all its fields' widths, a
join its separator times its items, ``urlize`` its ``target`` and ``rel`` times its links.
The common path (``Hi {{ name }}``) pays one function call per printed value.

Why this module is long (about 500 lines): the environment, its code generator and the hooks
share one budget and one notion of size; split apart they would reach into each other's privates.
"""

from __future__ import annotations

import functools
import inspect
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from engine.templating.limits import TemplateLimits, TemplateTooLarge, budget, size
from engine.templating.limits import current as _current_budget

#: The filter every ``for`` loop's items pass through (one step each).
LOOP_FILTER = "_bounded_loop"
#: A ``str.format`` field's spec: its width and precision (each field pads to their sum).
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d*))?")
#: A printf conversion: its width and precision (``*`` takes them from the values).
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")
#: What ``bytes`` and ``str`` share: the method checks apply to both.
_TEXT = (str, bytes, bytearray)


#: What a template needs a budget for: everything that loops, calls or builds (``{{ name }}``,
#: ``{% if %}``, attribute and item access need none; their output is counted all the same).
_COSTLY = (nodes.For, nodes.Call, nodes.Filter, nodes.BinExpr, nodes.Concat, nodes.FilterBlock)


def needs_budget(tree: nodes.Template) -> bool:
    """Whether rendering ``tree`` can do anything a budget counts (else it renders without)."""
    return any(isinstance(node, _COSTLY) for node in tree.find_all(nodes.Node))


class _Generator(CodeGenerator):
    """Jinja's code generator, but ``a ~ b`` joins through :meth:`BoundedEnvironment.join`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """Write ``environment.join((a, b, …))`` for ``a ~ b ~ …`` (autoescape is off)."""
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)
            return
        self.write("environment.join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose renders stay within :class:`TemplateLimits` (see the module docstring).

    Renders run after :func:`engine.templating.limits.start`; outside one, every
    hooked operation refuses (so Jinja does not fold it into a constant while compiling).
    """

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: TemplateLimits, **options: Any) -> None:
        super().__init__(finalize=self._printable, **options)
        self.limits = limits
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[LOOP_FILTER] = _loop_items

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every ``for`` loop's items through :data:`LOOP_FILTER`."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+`` and ``%``, refused before they build too much."""
        spend = budget()
        spend.step()
        if operator == "*":
            _check_multiply(spend.limits, left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                spend.need(len(left) + len(right), "a '+'")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                # ns.l + [s[1:]] keeps a new string each time: the shorter side's size counts
                shorter = min(left, right, key=len)
                spend.need(len(left) + len(right) + size(shorter, spend.limits.max_built), "a '+'")
            elif isinstance(left, int) and isinstance(right, int):
                spend.number(max(left.bit_length(), right.bit_length()) + 1)
        elif operator == "%" and isinstance(left, _TEXT):
            _check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``__obj`` for the template: a step, a size check before, a charge after."""
        spend = budget()
        spend.step()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        wrapped = getattr(__obj, "__wrapped__", None)  # the sandbox wraps str.format at access
        if wrapped is not None and isinstance(getattr(wrapped, "__self__", None), str):
            _check_format(wrapped.__self__, args, kwargs)
        elif isinstance(owner, _TEXT) and name in _STR_CHECKS:
            args = _STR_CHECKS[name](owner, args, kwargs)
        elif isinstance(__obj, LoopContext) and args:
            # loop(children) of a recursive loop: a step per child when called (a call that
            # would outgrow the budget is refused before its first child), and one more per
            # child iterated, like any loop's items
            if isinstance(args[0], Sized):
                spend.step(len(args[0]))
            args = (_loop_items(args[0]), *args[1:])
        elif isinstance(owner, list | dict | set):  # append, extend, update… keep what they get
            limit = spend.limits.max_built
            kept = sum(size(value, limit) for value in (*args, *kwargs.values()))
            spend.need(kept, f"{name}()")
        result = super().call(__context, __obj, *args, **kwargs)
        _charge(result, f"{name}()")
        return result

    def join(self, values: tuple[Any, ...]) -> str:
        """``a ~ b ~ …``: every part printable, the whole within the budget."""
        spend = budget()
        parts = [
            value if isinstance(value, str) else str(self._printable(value)) for value in values
        ]
        spend.need(sum(map(len, parts)), "'~'")
        return "".join(parts)

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        """Join what a macro, a ``{% set %}`` block or a ``{% filter %}`` block wrote, its
        length checked first (a buffer holds references: 100,000 of one long string are cheap
        to hold and costly to join)."""
        pieces = list(parts)
        length = sum(map(len, pieces))
        current = _current_budget()
        if current is not None:
            current.need(length, "a block")
        elif length > self.limits.max_chars:
            raise TemplateTooLarge(f"a block is longer than {self.limits.max_chars} characters")
        return "".join(pieces)

    def _printable(self, value: Any) -> Any:
        """Refuse to print a value longer than a whole render (``[name] * 100000``)."""
        if type(value) is str:  # the common case, first and cheap
            return value
        if type(value) is int and value.bit_length() > 256:  # a long str() of its own
            spend = _current_budget()
            if spend is not None:  # else a plain template: its output alone is counted
                spend.need(value.bit_length() // 3, "a number printed")
        if isinstance(value, list | tuple | dict | set | frozenset | range):
            limit = self.limits.max_chars
            if size(value, limit) > limit:
                raise TemplateTooLarge(
                    f"a printed value is longer than {limit} characters "
                    "(TEMPLATE_MAX_RENDERED_CHARS)"
                )
        return value


def _charge(result: Any, what: str) -> None:
    """Spend what a call or filter built (its strings' characters, its containers' items)."""
    if isinstance(result, str | bytes | bytearray | list | tuple | dict | set):
        budget().need(len(result), what)


def _check_multiply(limits: TemplateLimits, left: Any, right: Any) -> None:
    if isinstance(left, int) and not isinstance(right, int):
        left, right = right, left  # 3 * 'ab' is 'ab' * 3
    if isinstance(left, str | bytes | list | tuple) and isinstance(right, int):
        budget().need(size(left, limits.max_built) * max(right, 0), "a '*'")
    elif isinstance(left, int) and isinstance(right, int):
        budget().number(left.bit_length() + right.bit_length())


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        budget().number(base.bit_length() * exponent)


def _check_widths(template: str, values: list[Any], widths: int, dynamic: int, count: int) -> None:
    """Spend what a format builds, before it runs: its text, the widths and precisions of all
    its fields (``widths``; ``dynamic`` of them taken from the values), each field's value."""
    spend = budget()
    limit = spend.limits.max_built
    if dynamic:  # each dynamic width is one of the values: at most the largest of them
        widths += dynamic * max((abs(v) for v in values if type(v) is int), default=0)
    widest = max((size(v, limit) for v in values), default=0)
    spend.need(len(template) + widths + count * widest, "a format")


def _check_printf(template: str | bytes | bytearray, values: Any) -> None:
    if isinstance(template, bytes | bytearray):
        template = template.decode("latin-1")
    if isinstance(values, dict):
        args: list[Any] = list(values.values())
    elif isinstance(values, tuple):
        args = list(values)
    else:
        args = [values]
    widths = dynamic = count = 0
    for width, precision, kind in _PRINTF_SPEC.findall(template):
        if kind == "%":
            continue
        count += 1
        for number in (width, precision):
            if number == "*":
                dynamic += 1
            elif number:
                widths += int(number)
    _check_widths(template, args, widths, dynamic, count)


def _check_format(template: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    values = [*args, *kwargs.values()]
    if len(args) == 1 and isinstance(args[0], dict) and not kwargs:  # format_map
        values = list(args[0].values())
    try:
        fields = [f for f in string.Formatter().parse(template) if f[1] is not None]
    except ValueError:
        return  # malformed: str.format raises its own error without building anything
    widths = dynamic = 0
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            dynamic += 2  # '{:{}.{}}': a width and a precision from the values
            continue
        match = _FORMAT_SPEC.match(spec or "")
        if match is not None:
            widths += sum(int(n) for n in match.groups() if n)
    _check_widths(template, values, widths, dynamic, len(fields))


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, key: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(key, default)


def _str_width(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    width = _arg(args, kwargs, 0, "width", 0)
    budget().need(max(width, len(owner)) if isinstance(width, int) else 0, "a padding")
    return args


def _str_expandtabs(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    tabsize = _arg(args, kwargs, 0, "tabsize", 8)
    if isinstance(tabsize, int):
        tabs = owner.count("\t" if isinstance(owner, str) else b"\t")
        budget().need(len(owner) + tabs * max(tabsize, 0), "expandtabs()")
    return args


def _str_replace(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
    count = _arg(args, kwargs, 2, "count", -1)
    if isinstance(old, _TEXT) and isinstance(new, _TEXT):
        times = owner.count(old)
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        budget().need(len(owner) + times * len(new), "replace()")
    return args


def _str_join(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args:
        return args
    items = list(_loop_items(args[0]))  # a generator is read once: check, then join the list
    parts = sum(len(item) for item in items if isinstance(item, _TEXT))
    budget().need(parts + len(owner) * len(items), "join()")
    return (items, *args[1:])


def _str_translate(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    table = _arg(args, kwargs, 0, "table", None)
    # str.translate looks each character up by its code: in a dict, a list or a tuple alike
    mapped = table.values() if isinstance(table, dict) else table
    if isinstance(mapped, Iterable) and not isinstance(mapped, _TEXT):
        longest = max((len(v) for v in mapped if isinstance(v, str)), default=1)
        budget().need(len(owner) * max(longest, 1), "translate()")
    return args


_StrCheck = Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
#: The ``str`` and ``bytes`` methods whose result can be much longer than their owner: checked
#: before the call.
_STR_CHECKS: dict[str, _StrCheck] = {
    "center": _str_width,
    "ljust": _str_width,
    "rjust": _str_width,
    "zfill": _str_width,
    "expandtabs": _str_expandtabs,
    "replace": _str_replace,
    "join": _str_join,
    "translate": _str_translate,
}


def _loop_items(items: Any) -> Iterator[Any]:
    """Yield ``items``, one step of the budget each (every ``for`` loop goes through here)."""
    spend = budget()
    for item in items:
        spend.step()
        yield item


def _bounded_range(*args: int) -> range:
    """``range`` for templates: no longer than a render's steps."""
    numbers = range(*args)
    spend = budget()
    if len(numbers) > spend.limits.max_steps:
        raise TemplateTooLarge(
            f"range() of more than {spend.limits.max_steps} numbers (TEMPLATE_MAX_STEPS)"
        )
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's ``lipsum`` for templates: its size checked before it is written."""
    budget().need(max * n * 12, "lipsum()")
    return str(generate_lorem_ipsum(n, html, min, max))


Arguments = inspect.BoundArguments


def _text(a: Arguments, name: str) -> str:
    return str(a.arguments.get(name, ""))


def _center(a: Arguments) -> None:
    width = a.arguments.get("width", 80)
    budget().need(width if isinstance(width, int) else 0, "center")


def _indent(a: Arguments) -> None:
    width, s = a.arguments.get("width", 4), _text(a, "s")
    step = width if isinstance(width, int) else len(str(width))
    # indent splits on every line break splitlines() knows (\r, \x0b, \u2028…), not only \n
    budget().need(len(s) + (len(s.splitlines()) + 1) * max(step, 0), "indent")


def _replace(a: Arguments) -> None:
    s, old, new = _text(a, "s"), _text(a, "old"), _text(a, "new")
    budget().need(len(s) + s.count(old) * len(new), "replace")


def _wordwrap(a: Arguments) -> None:
    s, width = _text(a, "s"), a.arguments.get("width", 79)
    wrap = a.arguments.get("wrapstring") or "\n"
    lines = len(s) // max(width if isinstance(width, int) else 1, 1) + 1
    budget().need(len(s) + lines * len(str(wrap)), "wordwrap")


def _join(a: Arguments) -> None:
    """``items|join(sep)`` is its items and ``sep`` once between each two of them."""
    value = a.arguments.get("value")
    if not isinstance(value, Sized):  # map(), select()…: read once, so checked as a list
        value = a.arguments["value"] = list(_loop_items(value))
    spend = budget()
    separator = len(str(a.arguments.get("d", "")))
    spend.need(size(value, spend.limits.max_built) + separator * max(len(value) - 1, 0), "join")


def _urlize(a: Arguments) -> None:
    """``urlize`` writes each URL twice, escaped, with ``target`` and ``rel`` in every link."""
    s = _text(a, "value")
    escaped = sum(s.count(c) for c in "&<>\"'") * 5
    links = min(len(s.split()), s.count(".") + s.count("@") + s.count(":"))
    extra = sum(len(str(a.arguments.get(key) or "")) for key in ("target", "rel"))
    budget().need(2 * (len(s) + escaped) + links * (extra + 64), "urlize")


def _printf(a: Arguments) -> None:
    _check_printf(_text(a, "value"), a.arguments.get("kwargs") or a.arguments.get("args") or ())


def _tojson(a: Arguments) -> None:
    indent = a.arguments.get("indent") or 0
    step = indent if isinstance(indent, int) else len(str(indent))
    spend = budget()
    spend.need(
        size(a.arguments.get("value"), spend.limits.max_built) * (2 + max(step, 0)), "tojson"
    )


def _steps_of(key: str) -> Callable[[Arguments], None]:
    """A check spending ``key``'s value in steps (``batch(n)`` and ``slice(n)`` loop n times)."""

    def check(a: Arguments) -> None:
        count = a.arguments.get(key)
        if isinstance(count, int):
            budget().step(max(count, 0))

    return check


def _numbers_only(a: Arguments) -> None:
    if not isinstance(a.arguments.get("start", 0), int | float):
        raise TemplateTooLarge("sum() adds numbers only in a message template")


#: The filters whose result can be much longer than their input: checked before they run.
_FILTER_CHECKS: dict[str, Callable[[Arguments], None]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "wordwrap": _wordwrap,
    "format": _printf,
    "join": _join,
    "urlize": _urlize,
    "tojson": _tojson,
    "batch": _steps_of("linecount"),
    "slice": _steps_of("slices"),
    "sum": _numbers_only,
}
#: The filters that turn their input into one string (a list's is as long as all its items).
_PRINTS_INPUT = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a step of the budget, checked before (containers printed, amplifiers)
    and charged after."""
    check = _FILTER_CHECKS.get(name)
    signature = inspect.signature(func) if check else None
    first = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    prints = name in _PRINTS_INPUT

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        spend = budget()
        spend.step()
        value = args[first] if len(args) > first else None
        if prints and isinstance(value, list | tuple | dict | set | frozenset | range):
            # printed in full: a list holding one name 100,000 times is 100,000 names long
            spend.need(size(value, spend.limits.max_built), f"the filter {name}")
        if signature is not None and check is not None:
            bound = signature.bind(*args, **kwargs)
            check(bound)  # may replace an argument read once (a generator) by its list
            args, kwargs = bound.args, bound.kwargs
        result = func(*args, **kwargs)
        _charge(result, f"the filter {name}")
        return result

    return bounded
