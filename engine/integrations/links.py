"""Links in messages: click tracking (``/c/{token}``) and unsubscribing (``/u/{token}``).

A token reveals nothing and is short. It is ``base64url(AES-SIV(key, payload, kind))``: the
payload packs, as variable-length integers, the id of the step's :class:`MessageLinks` row (which
names the organization, campaign, execution and touchpoint), the contact id and, for a click,
the number of its target in the row's URLs (or, for a URL a template built per contact, the
URL itself, encrypted too). AES-SIV is deterministic authenticated encryption: no nonce to
carry, any changed bit is refused, and a click token is not an unsubscribe token (the kind is
authenticated with it). An unsubscribe token is 31 characters for a contact id under 2**28.

The key is derived from ``SECRET_KEY`` (HKDF-SHA256, its own purpose label, so it differs from
the access-token and credential keys); tokens made under a key of ``SECRET_KEY_FALLBACKS`` still
open during a key rotation. Tokens do not expire: a link in an old email must work, and so do
the readable version-1 tokens of emails sent before (``base64url(JSON) "." base64url(HMAC)``,
told apart by their dot): they are still read, never issued.

The redirect goes only to a URL we sealed (never an open redirect), and only to http(s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.channels.http import is_http_url

_PURPOSE = b"campaign-engine message links v2 (AES-SIV)"
_V1_PURPOSE = b"campaign-engine message links v1"
#: Bytes of the HMAC kept in a version-1 token (128 bits).
_V1_MAC_BYTES = 16
#: Longest target URL a click link carries (longer ones are left as they are).
MAX_URL_LENGTH = 2000
#: Most URLs of one template given a number (the rest travel in their tokens).
MAX_TEMPLATE_URLS = 200
#: Longest token read: a sealed URL of MAX_URL_LENGTH UTF-8 bytes, with room to spare.
_MAX_TOKEN_LENGTH = 12_000
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
#: ``<a … href="http…">`` in an HTML part (``<link>``, ``<img>`` are left alone).
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)
#: A bare URL in text; trailing punctuation (end of sentence, closing bracket) is not part of it.
_BARE_URL = re.compile(r"""https?://[^\s<>"']*[^\s<>"'.,;:!?)\]}]""", re.IGNORECASE)
_CLICK, _UNSUBSCRIBE = [b"c"], [b"u"]


@dataclass(frozen=True, slots=True)
class ClickLink:
    """A click, resolved: where it was sent from and where it goes."""

    execution_id: str
    touchpoint_id: str
    contact_id: int
    url: str


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    """An unsubscription, resolved."""

    organization_id: str
    campaign_id: str
    execution_id: str
    touchpoint_id: str
    contact_id: int


@dataclass(frozen=True, slots=True)
class SealedClick:
    """What a click token holds: ``target`` is the number of a URL of the step, or a URL."""

    links_id: int
    contact_id: int
    target: int | str


@dataclass(frozen=True, slots=True)
class SealedUnsubscribe:
    """What an unsubscribe token holds."""

    links_id: int
    contact_id: int


@lru_cache(maxsize=16)
def _cipher(secret_key: str) -> AESSIV:
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_PURPOSE).derive(
        secret_key.encode()
    )
    return AESSIV(key)  # 512-bit key: AES-256-SIV


@lru_cache(maxsize=16)
def _v1_key(secret_key: str) -> bytes:
    return hmac.digest(secret_key.encode(), _V1_PURPOSE, hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _varint(value: int) -> bytes:
    """``value`` (≥ 0) in LEB128: 7 bits a byte, the high bit set on all but the last."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The integer at ``at`` and where the next field starts; ``ValueError`` if cut short."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("truncated or overlong integer")


class LinkTokens:
    """Seals link tokens under ``secret_key``; opens those of ``secret_key``, of each fallback
    key (key rotation) and the version-1 tokens of any of them."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        keys = [secret_key, *(k for k in fallbacks if k and k != secret_key)]
        self._ciphers = [_cipher(key) for key in keys]
        self._v1_keys = [_v1_key(key) for key in keys]

    def seal_unsubscribe(self, links_id: int, contact_id: int) -> str:
        """The token of a contact's unsubscribe link."""
        payload = _varint(links_id) + _varint(contact_id)
        return _b64(self._ciphers[0].encrypt(payload, _UNSUBSCRIBE))

    def seal_click(self, links_id: int, contact_id: int, target: int | str) -> str:
        """The token of a click link: ``target`` is a URL's number in the step, or the URL."""
        payload = _varint(links_id) + _varint(contact_id)
        if isinstance(target, int):  # 0 says "the URL follows"
            payload += _varint(target + 1)
        else:
            payload += b"\0" + target.encode()
        return _b64(self._ciphers[0].encrypt(payload, _CLICK))

    def _open(self, token: str, kind: list[bytes]) -> bytes | None:
        if len(token) > _MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
            return None
        try:
            sealed = _unb64(token)
        except (ValueError, binascii.Error):
            return None
        if len(sealed) <= 16:  # the 16-byte SIV and at least one byte
            return None
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(sealed, kind)
            except InvalidTag:
                continue
        return None

    def open_unsubscribe(self, token: str) -> SealedUnsubscribe | UnsubscribeLink | None:
        """What an unsubscribe token holds (a version-1 token: resolved already), or ``None``
        if it is forged, altered or not one of ours."""
        if "." in token:
            return self._v1_unsubscribe(token)
        payload = self._open(token, _UNSUBSCRIBE)
        if payload is None:
            return None
        try:
            links_id, at = _read_varint(payload, 0)
            contact_id, at = _read_varint(payload, at)
        except ValueError:
            return None
        return SealedUnsubscribe(links_id, contact_id) if at == len(payload) else None

    def open_click(self, token: str) -> SealedClick | ClickLink | None:
        """What a click token holds (a version-1 token: resolved already), or ``None``."""
        if "." in token:
            return self._v1_click(token)
        payload = self._open(token, _CLICK)
        if payload is None:
            return None
        try:
            links_id, at = _read_varint(payload, 0)
            contact_id, at = _read_varint(payload, at)
            number, at = _read_varint(payload, at)
            target: int | str = number - 1 if number else payload[at:].decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if number and at != len(payload):
            return None
        return SealedClick(links_id, contact_id, target)

    # --- version 1: readable JSON and an HMAC; read for emails sent before, never issued ------

    def _v1_values(self, kind: str, token: str, size: int) -> list[Any] | None:
        payload, _, mac = token.partition(".")
        signed = f"{kind}.{payload}".encode()
        expected = (
            _b64(hmac.digest(key, signed, hashlib.sha256)[:_V1_MAC_BYTES]).encode()
            for key in self._v1_keys
        )
        if not payload or not any(hmac.compare_digest(mac.encode(), e) for e in expected):
            return None
        try:
            values = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(values, list) or len(values) != size:
            return None
        return values

    def _v1_click(self, token: str) -> ClickLink | None:
        values = self._v1_values("c", token, 4)
        if values is None:
            return None
        execution_id, touchpoint_id, contact_id, url = values
        if not (isinstance(url, str) and is_http_url(url) and isinstance(contact_id, int)):
            return None
        return ClickLink(str(execution_id), str(touchpoint_id), contact_id, url)

    def _v1_unsubscribe(self, token: str) -> UnsubscribeLink | None:
        values = self._v1_values("u", token, 5)
        if values is None or not isinstance(values[4], int):
            return None
        organization_id, campaign_id, execution_id, touchpoint_id, contact_id = values
        ids = (str(organization_id), str(campaign_id), str(execution_id), str(touchpoint_id))
        return UnsubscribeLink(*ids, contact_id)


class LinkSigner:
    """Makes the links of one message step's messages under ``public_base_url``.

    Args:
        links_id: the step's :class:`~engine.models.MessageLinks` row.
        urls: that row's URLs; a link to one of them carries its number, any other its URL.
    """

    def __init__(
        self, tokens: LinkTokens, public_base_url: str, links_id: int, urls: Sequence[str]
    ) -> None:
        self.tokens = tokens
        self.base_url = public_base_url.rstrip("/")
        self.links_id = links_id
        self._numbers = {url: number for number, url in enumerate(urls)}

    def click_url(self, contact_id: int, url: str) -> str:
        """The tracking link that records a click, then redirects to ``url``."""
        target = self._numbers.get(url, url)
        return f"{self.base_url}/c/{self.tokens.seal_click(self.links_id, contact_id, target)}"

    def unsubscribe_url(self, contact_id: int) -> str:
        """The contact's unsubscribe link (a page with a form; POST unsubscribes)."""
        return f"{self.base_url}/u/{self.tokens.seal_unsubscribe(self.links_id, contact_id)}"

    def rewrite(self, body: Any, track: Callable[[str], str]) -> Any:
        """``body`` with its links made tracking links by ``track``.

        A string is text (bare URLs); an object's ``html`` (``<a href>``) and ``text`` (bare
        URLs) are rewritten, other keys are kept. Our own links are left as they are.
        """
        if isinstance(body, str):
            return rewrite_text(body, self._guard(track))
        if not isinstance(body, dict):
            return body
        changed = dict(body)
        if isinstance(body.get("html"), str):
            changed["html"] = rewrite_html(body["html"], self._guard(track))
        if isinstance(body.get("text"), str):
            changed["text"] = rewrite_text(body["text"], self._guard(track))
        return changed

    def _guard(self, track: Callable[[str], str]) -> Callable[[str], str]:
        def wrapped(url: str) -> str:
            if url.startswith(self.base_url + "/") or len(url) > MAX_URL_LENGTH:
                return url
            return track(url) if is_http_url(url) else url

        return wrapped


def rewrite_html(document: str, track: Callable[[str], str]) -> str:
    """Replace the http(s) ``href`` of every ``<a>`` by ``track(url)``."""

    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3))
        return f"{match.group(1)}{match.group(2)}{html.escape(track(url))}{match.group(2)}"

    return _HREF.sub(replace, document)


def rewrite_text(text: str, track: Callable[[str], str]) -> str:
    """Replace every bare http(s) URL in ``text`` by ``track(url)``."""
    return _BARE_URL.sub(lambda match: track(match.group(0)), text)


def template_urls(message: Any) -> list[str]:
    """The http(s) URLs written in a message template (every variation), in order, each once.

    These get numbers, so their click tokens stay short; a URL with template code in it
    (``{{ … }}``, ``{% … %}``) is built per contact and is left out (its tokens carry it).
    """
    found: dict[str, None] = {}
    for text in _strings(message):
        hrefs = (html.unescape(m.group(3)) for m in _HREF.finditer(text))
        for url in (*hrefs, *(m.group(0) for m in _BARE_URL.finditer(text))):
            if "{" not in url and len(url) <= MAX_URL_LENGTH and is_http_url(url):
                found.setdefault(url, None)
    return list(found)[:MAX_TEMPLATE_URLS]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        yield from _all_strings(value.values())
    elif isinstance(value, list):
        yield from _all_strings(value)


def _all_strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        yield from _strings(value)
