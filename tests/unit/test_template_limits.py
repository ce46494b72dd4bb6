"""Templates cannot take a worker's memory or time: what would outgrow a render is refused,
fast, with ``TEMPLATE_TOO_LARGE``; ordinary templates render as before."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from jinja2 import TemplateError

from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.execution.progress import get_progress
from engine.runtime import Runtime
from engine.templating import TemplateTooLarge, check_template, render
from engine.testing import wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

#: A backstop, not a speed figure: unbounded, these templates take from 11 s to hours (and
#: gigabytes); refused, a fraction of a second even on a loaded machine.
BACKSTOP_S = 5.0

CONTACT = {"id": 7, "name": "Ana Silva", "plan": "pro", "items": ["a", "b"]}

#: Each would build gigabytes or loop for minutes without the limits.
BOMBS = [
    "{{ 'a' * 400000000 }}",
    "{{ name * 200000000 }}",
    "{{ [name] * 100000000 }}",
    "{{ 10 ** 10000000 }}",
    "{% set n = namespace(x=2) %}{% for i in range(40) %}{% set n.x = n.x * n.x %}{% endfor %}",
    "{{ 'a'|center(400000000) }}",
    "{{ name.ljust(400000000) }}",
    "{{ name.zfill(400000000) }}",
    "{{ ('a' * 1000).replace('', 'b' * 1000) }}",
    "{{ ('a' * 1000)|replace('a', 'b' * 1000) }}",
    "{{ ('a\n' * 10000)|indent(100000) }}",
    "{{ 'x y' * 1000|wordwrap(1, wrapstring='y' * 100000) }}",
    "{{ 'a\tb'.expandtabs(400000000) }}",
    "{{ 'aaaa'.translate({97: 'b' * 200000}) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{}}'.format('a', 999999999) }}",
    "{{ ('{0}' * 40000).format('x' * 200) }}",
    "{{ '%999999999s' % name }}",
    "{{ '%*s' % (999999999, name) }}",
    "{{ '%s'|format('x')|center(999999999) }}",
    "{% set n = namespace(x='ab') %}{% for i in range(60) %}{% set n.x = n.x ~ n.x %}{% endfor %}",
    "{% set n = namespace(x='ab') %}{% for i in range(60) %}{% set n.x = n.x + n.x %}{% endfor %}",
    "{% set l = [name] %}{% for i in range(60) %}{% set _ = l.extend(l) %}{% endfor %}",
    "{% set s = 'x' * 200000 %}{% set l = [] %}{% for i in range(50000) %}"
    "{% set _ = l.append(s[1:]) %}{% endfor %}",
    "{% set s = 'x' * 200000 %}{% set n = namespace(l=[]) %}{% for i in range(50000) %}"
    "{% set n.l = n.l + [s[1:]] %}{% endfor %}",
    "{% set s = 'ab' * 100000 %}{{ '-'.join([s, s, s, s, s]) }}",
    "{% set s = 'ab' * 100000 %}{{ [s, s, s, s, s]|join }}",
    "{% set l = [name] * 30000 %}{{ l }}",
    "{% set l = [name] * 30000 %}{{ l|string }}",
    "{{ range(1000000000)|list }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ name }}{{ name }}{{ name }}{% endfor %}",
    "{{ [name]|batch(1000000000, 'x')|list }}",
    "{{ [[1]] * 10000|sum(start=[]) }}",
    "{{ lipsum(1000000) }}",
    "{{ {'a': 1}|tojson(indent=100000000) }}",
    # blocks buffer what they write, then join it: 50,000 references to one long string
    "{% set s = 'x' * 200000 %}{% macro m() %}{% for i in range(50000) %}{{ s }}{% endfor %}"
    "{% endmacro %}{{ m()|length }}",
    "{% set s = 'x' * 200000 %}{% set b %}{% for i in range(50000) %}{{ s }}{% endfor %}"
    "{% endset %}{{ b|length }}",
    "{% set s = 'x' * 200000 %}{% filter length %}{% for i in range(50000) %}{{ s }}{% endfor %}"
    "{% endfilter %}",
]


@pytest.mark.parametrize("source", BOMBS)
def test_a_template_that_would_outgrow_a_render_is_refused_fast(source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateTooLarge) as refused:
        render({"text": source}, CONTACT)
    assert time.perf_counter() - started < BACKSTOP_S
    assert refused.value.code == "TEMPLATE_TOO_LARGE"


#: Each builds many times its inputs in one call: refused before it builds, not after.
AMPLIFIERS = [
    "{{ ('{0:>262000}' * 400).format('a') }}",
    "{{ ('{0:.262000f}' * 400).format(1.0) }}",
    "{{ ('{0:{1}}' * 400).format('a', 262000) }}",
    "{{ ('{a:>262000}' * 400).format_map({'a': 'b'}) }}",
    "{% set n = 400 %}{{ ('%262000s' * n) % (('a',) * n) }}",
    "{% set n = 400 %}{{ ('%*s' * n) % ((262000, 'a') * n) }}",
    "{% set n = 400 %}{{ ('%262000s' * n)|format(*(('a',) * n)) }}",
    "{{ range(500)|join('x' * 200000) }}",
    "{{ range(500)|map('string')|join('x' * 200000) }}",
    "{{ ('x' * 200000).join(range(500)|map('string')) }}",
    "{{ ('http://x.co ' * 500)|urlize(target='y' * 200000) }}",
    "{{ ('http://x.co ' * 500)|urlize(rel='y' * 200000) }}",
    "{{ ('x' * 1000).encode().replace('x'.encode(), ('y' * 200000).encode()) }}",
    "{{ ('y' * 200000).encode().join(('x' * 500).encode().split('x'.encode())) }}",
    "{{ 'a'.encode().center(400000000) }}",
    "{{ 'a'.encode().ljust(400000000) }}",
    "{{ 'a'.encode().rjust(400000000) }}",
    "{{ 'a'.encode().zfill(400000000) }}",
    "{{ ('\t' * 1000).encode().expandtabs(200000) }}",
    "{% set n = 400 %}{{ ('%262000s' * n).encode() % (('a'.encode(),) * n) }}",
    "{{ ('a\\x0b' * 10000)|indent(100000) }}",
    "{% set s = 'y' * 200000 %}{{ ('\\x00\\x01' * 500).translate([s, s]) }}",
]


@pytest.mark.parametrize("source", AMPLIFIERS)
def test_a_call_that_multiplies_its_inputs_is_refused_before_it_builds(source: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateTooLarge):
            render(source, CONTACT)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < BACKSTOP_S
    assert peak < 50_000_000


def test_recursive_loops_spend_a_step_per_item() -> None:
    source = (
        "{% set big = range(2000)|list %}{% for x in [0] recursive %}"
        "{% if loop.depth < 3 %}{{ loop(big) }}{% endif %}{% endfor %}"
    )
    started = time.perf_counter()
    with pytest.raises(ValidationFailed) as refused:
        check_template(source)
    # 100,000 iterations of a recursive loop's body: about 0.5 s on a busy 2-core machine
    assert time.perf_counter() - started < BACKSTOP_S
    assert refused.value.code == "TEMPLATE_TOO_LARGE"
    tree = "{% for n in tree recursive %}{{ n.name }}({{ loop(n.kids) }}){% endfor %}"
    kids = [{"name": "b", "kids": []}, {"name": "c", "kids": []}]
    assert render(tree, {"tree": [{"name": "a", "kids": kids}]}) == "a(b()c())"


def test_a_plain_template_prints_a_big_number() -> None:
    assert render("Code {{ code }}", {"code": 10**80}) == f"Code {10**80}"


def test_formats_of_ordinary_widths_and_numbers_render() -> None:
    source = (
        "{{ 'Call 5551234567: %-10s|%5.2f' % (name, 3.14159) }} "
        "{{ 'Ref 9876543210 {:>8}|{:.1f}'.format(id, 2.25) }} {{ items|join(', ') }}"
    )
    assert render(source, CONTACT) == (
        "Call 5551234567: Ana Silva | 3.14 Ref 9876543210        7|2.2 a, b"
    )


def test_a_message_longer_than_the_limit_is_refused_and_one_below_renders() -> None:
    assert len(render("{% for i in range(200) %}{{ 'x' * 1000 }}{% endfor %}", CONTACT)) == 200_000
    with pytest.raises(TemplateTooLarge, match="TEMPLATE_MAX_RENDERED_CHARS"):
        render("{% for i in range(300) %}{{ 'x' * 1000 }}{% endfor %}", CONTACT)


def test_plain_templates_of_large_values_are_limited_too() -> None:
    # no loop, call or operator: rendered without a budget, its output still counted
    big = {"big": "x" * 100_000, "many": ["x" * 1000] * 300}
    assert len(render("{{ big }}{{ big }}", big)) == 200_000
    for source in ("{{ big }}{{ big }}{{ big }}", "{{ many }}"):
        with pytest.raises(TemplateTooLarge):
            render(source, big)


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% macro greet(who) %}Hi {{ who|title }}{% endmacro %}{{ greet(name) }}; "
        "{% for item in items %}{{ loop.index }}={{ item|upper }}{{ ', ' if not loop.last }}"
        "{% endfor %}; {{ '%s/%d' % (plan, id) }}; {{ '{}!'.format(name) }}; "
        "{{ items|join('+') }}; {{ name ~ '.' }}; {{ '-' * 3 }}; {{ 2 ** 10 }}; "
        "{{ range(3)|list }}; {{ items|tojson }}; {{ (name * 2)|length }}; {{ items + ['c'] }}"
    )
    assert render(source, CONTACT) == (
        "Hi Ana Silva; 1=A, 2=B; pro/7; Ana Silva!; a+b; Ana Silva.; ---; 1024; "
        "[0, 1, 2]; [\"a\", \"b\"]; 18; ['a', 'b', 'c']"
    )


def test_a_template_error_of_python_is_a_template_error() -> None:
    for source in (
        "{{ 1 / 0 }}",
        "{{ 2.0 ** 99999 }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ):
        with pytest.raises(TemplateError):
            render(source, CONTACT)


def test_a_template_too_large_for_anyone_is_refused_when_stored() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_template({"subject": "ok", "text": "{{ name * 200000000 }}"})
    assert refused.value.code == "TEMPLATE_TOO_LARGE"
    check_template("{{ plan * 200000000 }}")  # depends on a custom field: left to validation


def test_a_template_too_large_for_one_contact_fails_only_their_delivery(rt: Runtime) -> None:
    steps = [
        TouchpointSpec(
            name="big for pro",
            message="{{ first_name * (100000000 if plan == 'pro' else 1) }}",
        )
    ]
    _, campaign_id = make_campaign(rt, contacts=12, steps=steps)  # plan 'pro': every third
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        errors = get_progress(session, execution_id).errors

    assert execution.status == "completed"
    assert (execution.successful, execution.failed) == (8, 4)
    assert [(e.code, e.count) for e in errors] == [("TEMPLATE_TOO_LARGE", 4)]
