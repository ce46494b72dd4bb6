"""Signed links in messages: click tracking (``/c/{token}``) and unsubscribing (``/u/{token}``).

A token is ``base64url(JSON payload) "." base64url(HMAC-SHA256(key, kind "." payload)[:16])``.
The key is derived from ``SECRET_KEY`` with its own purpose label, so it differs from the token
and credential keys; during a key rotation links signed with a ``SECRET_KEY_FALLBACKS`` key are
still read, and new ones are signed with ``SECRET_KEY``. The standard library does it in a few
lines (no dependency), and the payload stays a compact JSON array. Tokens do not expire: a link
in an old email must work.

A click token carries the execution, touchpoint, contact and target URL: the redirect goes only
to a URL we signed (never an open redirect), and only to http(s). An unsubscribe token carries
the organization, campaign, execution, touchpoint and contact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.channels.http import is_http_url
from engine.secrets import SecretKeys, key_list

_PURPOSE = b"campaign-engine message links v1"
#: Bytes of the HMAC kept in a token (128 bits).
_MAC_BYTES = 16
#: Longest target URL a click link carries (longer ones are left as they are).
MAX_URL_LENGTH = 2000
#: ``<a … href="http…">`` in an HTML part (``<link>``, ``<img>`` are left alone).
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)
#: A bare URL in text; trailing punctuation (end of sentence, closing bracket) is not part of it.
_BARE_URL = re.compile(r"""https?://[^\s<>"']*[^\s<>"'.,;:!?)\]}]""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ClickLink:
    """What a click token says."""

    execution_id: str
    touchpoint_id: str
    contact_id: int
    url: str


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    """What an unsubscribe token says."""

    organization_id: str
    campaign_id: str
    execution_id: str
    touchpoint_id: str
    contact_id: int


@lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return hmac.digest(secret_key.encode(), _PURPOSE, hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Makes and reads signed links under ``public_base_url``.

    ``secret_key``: ``SECRET_KEY``, or it and its fallbacks; the first signs, any verifies.
    """

    def __init__(self, secret_key: SecretKeys, public_base_url: str) -> None:
        self._keys = [_key(k) for k in key_list(secret_key)]
        self.base_url = public_base_url.rstrip("/")

    @staticmethod
    def _mac(key: bytes, kind: str, payload: str) -> str:
        digest = hmac.digest(key, f"{kind}.{payload}".encode(), hashlib.sha256)
        return _b64(digest[:_MAC_BYTES])

    def _sign(self, kind: str, values: list[Any]) -> str:
        payload = _b64(json.dumps(values, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(self._keys[0], kind, payload)}"

    def _verified(self, kind: str, payload: str, mac: str) -> bool:
        return any(
            hmac.compare_digest(mac.encode(), self._mac(key, kind, payload).encode())
            for key in self._keys
        )

    def _read(self, kind: str, token: str, size: int) -> list[Any] | None:
        payload, _, mac = token.partition(".")
        if not payload or not self._verified(kind, payload, mac):
            return None
        try:
            values = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(values, list) or len(values) != size:
            return None
        return values

    def click_url(self, execution_id: str, touchpoint_id: str, contact_id: int, url: str) -> str:
        """The tracking link that records a click, then redirects to ``url``."""
        token = self._sign("c", [execution_id, touchpoint_id, contact_id, url])
        return f"{self.base_url}/c/{token}"

    def unsubscribe_url(
        self,
        organization_id: str,
        campaign_id: str,
        execution_id: str,
        touchpoint_id: str,
        contact_id: int,
    ) -> str:
        """The contact's unsubscribe link (a page with a form; POST unsubscribes)."""
        values = [organization_id, campaign_id, execution_id, touchpoint_id, contact_id]
        return f"{self.base_url}/u/{self._sign('u', values)}"

    def read_click(self, token: str) -> ClickLink | None:
        """The click a token describes, or ``None`` if it is forged, altered or malformed."""
        values = self._read("c", token, 4)
        if values is None:
            return None
        execution_id, touchpoint_id, contact_id, url = values
        if not (isinstance(url, str) and is_http_url(url) and isinstance(contact_id, int)):
            return None
        return ClickLink(str(execution_id), str(touchpoint_id), contact_id, url)

    def read_unsubscribe(self, token: str) -> UnsubscribeLink | None:
        """The unsubscription a token describes, or ``None`` if it is not one of ours."""
        values = self._read("u", token, 5)
        if values is None or not isinstance(values[4], int):
            return None
        organization_id, campaign_id, execution_id, touchpoint_id, contact_id = values
        return UnsubscribeLink(
            str(organization_id),
            str(campaign_id),
            str(execution_id),
            str(touchpoint_id),
            contact_id,
        )

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
