"""Link tokens: they reveal nothing, are short, refuse any change, open under a fallback key
during a key rotation, and the readable version-1 tokens of emails sent before still open."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from engine.db import session_scope
from engine.integrations.links import (
    ClickLink,
    LinkSigner,
    LinkTokens,
    SealedClick,
    SealedUnsubscribe,
    UnsubscribeLink,
    template_urls,
)
from engine.integrations.message_links import link_tokens, read_click, step_links
from engine.models import Execution, MessageLinks
from engine.runtime import Runtime
from tests.factories import v1_link_token

KEY = "a-secret-key"
TOKENS = LinkTokens(KEY)


def _unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_tokens_open_to_what_was_sealed_and_are_short() -> None:
    unsubscribe = TOKENS.seal_unsubscribe(1_500_000, 200_000_000)
    assert len(unsubscribe) <= 31  # a 3-byte links id, a 4-byte contact id, the 16-byte SIV
    assert TOKENS.open_unsubscribe(unsubscribe) == SealedUnsubscribe(1_500_000, 200_000_000)
    click = TOKENS.seal_click(3, 42, 0)
    assert len(click) <= 27
    assert TOKENS.open_click(click) == SealedClick(3, 42, 0)
    url = "https://shop.example.com/p?id=42&name=Ana%20P%C3%A9rez"
    assert TOKENS.open_click(TOKENS.seal_click(3, 42, url)) == SealedClick(3, 42, url)


def test_a_token_reveals_no_id_and_no_url() -> None:
    url = "https://shop.example.com/private/offer-42"
    tokens = [TOKENS.seal_click(77, 4242, url), TOKENS.seal_unsubscribe(77, 4242)]
    for token in tokens:
        decoded = _unb64(token)
        assert b"shop" not in decoded and b"offer" not in decoded and b"4242" not in decoded
        assert b"\x4d\x92\x21" not in decoded  # the ids as packed: 77, then 4242 in LEB128
        assert "." not in token
    # The same contact in two steps: nothing in common an observer could link them by.
    one, two = TOKENS.seal_unsubscribe(1, 4242), TOKENS.seal_unsubscribe(2, 4242)
    assert one[:4] != two[:4] and one[-4:] != two[-4:]


def test_a_changed_token_is_refused() -> None:
    unsubscribe = TOKENS.seal_unsubscribe(5, 42)
    click = TOKENS.seal_click(5, 42, 1)
    for position in (0, len(unsubscribe) // 2, len(unsubscribe) - 1):
        for char in "AZaz09-_":
            changed = unsubscribe[:position] + char + unsubscribe[position + 1 :]
            if changed != unsubscribe:
                assert TOKENS.open_unsubscribe(changed) is None, changed
    for forged in (unsubscribe[:-1], unsubscribe + "A", unsubscribe + "!", "", "nonsense", "A"):
        assert TOKENS.open_unsubscribe(forged) is None
    # A click token is no unsubscribe token, and the other way round; another key opens neither.
    assert TOKENS.open_unsubscribe(click) is None and TOKENS.open_click(unsubscribe) is None
    assert LinkTokens("another-key").open_unsubscribe(unsubscribe) is None
    assert LinkTokens("another-key").open_click(click) is None


def test_a_fallback_key_opens_its_tokens_while_secret_key_seals_new_ones() -> None:
    old = LinkTokens("the-key-before")
    rotated = LinkTokens("the-key-after", ["the-key-before"])
    assert rotated.open_unsubscribe(old.seal_unsubscribe(9, 10)) == SealedUnsubscribe(9, 10)
    assert rotated.open_click(old.seal_click(9, 10, 2)) == SealedClick(9, 10, 2)
    # New tokens are sealed under the new key: the old key alone no longer opens them.
    new = rotated.seal_unsubscribe(9, 10)
    assert LinkTokens("the-key-after").open_unsubscribe(new) == SealedUnsubscribe(9, 10)
    assert old.open_unsubscribe(new) is None
    # Once the fallback is dropped, its tokens stop opening.
    assert LinkTokens("the-key-after").open_unsubscribe(old.seal_unsubscribe(9, 10)) is None


def test_version_1_tokens_of_emails_sent_before_still_open() -> None:
    url = "https://shop.example.com/a?b=1&c=2"
    click = v1_link_token(KEY, "c", ["exe_1", "tp_1", 42, url])
    assert TOKENS.open_click(click) == ClickLink("exe_1", "tp_1", 42, url)
    unsubscribe = v1_link_token(KEY, "u", ["org_1", "cmp_1", "exe_1", "tp_1", 42])
    expected = UnsubscribeLink("org_1", "cmp_1", "exe_1", "tp_1", 42)
    assert TOKENS.open_unsubscribe(unsubscribe) == expected
    # Under a fallback key too; altered, or of the other kind, or of another key: refused.
    assert LinkTokens("new-key", [KEY]).open_unsubscribe(unsubscribe) == expected
    payload, mac = click.split(".")
    assert TOKENS.open_click(f"{payload}x.{mac}") is None
    assert TOKENS.open_click(f"{payload}.{mac[::-1]}") is None
    assert TOKENS.open_click(unsubscribe) is None and TOKENS.open_unsubscribe(click) is None
    assert LinkTokens("another-key").open_click(click) is None
    # A version-1 token whose target is no http(s) URL never redirects.
    assert TOKENS.open_click(v1_link_token(KEY, "c", ["e", "t", 1, "javascript:alert(1)"])) is None


def test_links_name_known_urls_by_number_and_carry_others() -> None:
    signer = LinkSigner(TOKENS, "https://go.example.com/", 7, ["https://shop.example.com/a"])
    known = signer.click_url(42, "https://shop.example.com/a").rsplit("/", 1)[1]
    assert TOKENS.open_click(known) == SealedClick(7, 42, 0)
    built = signer.click_url(42, "https://shop.example.com/a?u=42").rsplit("/", 1)[1]
    assert TOKENS.open_click(built) == SealedClick(7, 42, "https://shop.example.com/a?u=42")
    assert signer.unsubscribe_url(42).startswith("https://go.example.com/u/")


def test_the_urls_written_in_a_template_are_numbered_and_built_ones_left_out() -> None:
    message = {
        "subject": "Hi",
        "html": '<a href="https://x.example.com/?a=1&amp;b=2">x</a> '
        '<a href="https://x.example.com/u/{{ id }}">me</a>',
        "text": "See https://y.example.com/sale. Or https://y.example.com/{{ slug }}!",
        "variations": [{"id": "b", "weight": 1, "text": "Go https://z.example.com/b"}],
    }
    assert template_urls(message) == [
        "https://x.example.com/?a=1&b=2",
        "https://x.example.com/?a=1&amp;b=2",
        "https://y.example.com/sale",
        "https://z.example.com/b",
    ]


def test_a_step_writes_its_links_row_once_and_every_chunk_reads_it(rt: Runtime) -> None:
    execution = Execution(id="exe_links", organization_id="org_links", campaign_id="cmp_links")
    message = {"html": '<a href="https://x.example.com/a">x</a>'}
    with session_scope(rt.engine) as session:  # the first chunk's claim
        first = step_links(session, rt.settings, execution, "tp_links", message)
    with session_scope(rt.engine) as session:  # the next chunks' claims: no new row
        second = step_links(session, rt.settings, execution, "tp_links", message)
        rows = session.scalar(sa.select(sa.func.count()).select_from(MessageLinks))
    assert rows == 1 and first.links_id == second.links_id
    token = second.click_url(5, "https://x.example.com/a").rsplit("/", 1)[1]
    with session_scope(rt.engine) as session:
        click = read_click(session, link_tokens(rt.settings), token)
    assert click == ClickLink("exe_links", "tp_links", 5, "https://x.example.com/a")
