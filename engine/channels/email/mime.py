"""The email of one delivery: its MIME message, its ``Message-ID`` and a plain-text part.

:func:`build_email` turns an :class:`~engine.channels.base.OutgoingMessage` into an
:class:`~email.message.EmailMessage` with its SMTP envelope; :func:`html_to_text` derives the
text part of an HTML-only body; :func:`parse_address` checks and normalises an address.
"""

from __future__ import annotations

import hashlib
import re
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.policy import default as default_policy
from email.utils import formatdate
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from engine.channels.base import OutgoingMessage
from engine.errors import PermanentDeliveryError


@lru_cache(maxsize=1024)
def parse_address(text: str) -> tuple[str, str]:
    """``(address, ASCII domain)`` of a valid email address; raises ``EmailNotValidError``.

    The address is ASCII (IDNA domain) whenever its local part is, so it needs no SMTPUTF8.
    """
    info = validate_email(text, check_deliverability=False)
    return info.ascii_email or info.normalized, info.ascii_domain


class _TextExtractor(HTMLParser):
    """Collects an HTML document's text: block tags become line breaks, links keep their URL."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "table", "ul", "ol", "blockquote", "hr", "section"}
        | {"article", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Start skipping, break a line, or remember a link's URL."""
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        """Stop skipping, break a line, or append the link's URL after its text."""
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._href and not self._href.startswith("#"):
            self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        """Keep text outside skipped elements."""
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """A plain-text rendering of ``html``: a simple tag strip, not a layout engine.

    Example:
        >>> html_to_text("<p>Hi <b>Ana</b></p><p>See <a href='https://x.io'>this</a></p>")
        'Hi Ana\\n\\nSee this (https://x.io)'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def message_id(idempotency_key: str, domain: str) -> str:
    """The ``Message-ID`` of one delivery: the same on every retry of it."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def _one_line(value: Any) -> str:
    """A header-safe string: contact data must not add header lines."""
    return " ".join(str(value).split())


def _recipient(recipient: dict[str, Any]) -> str:
    email = recipient.get("email")
    if not email:
        raise PermanentDeliveryError("the contact has no email address", code="NO_ADDRESS")
    try:
        return parse_address(str(email))[0]
    except EmailNotValidError as exc:
        raise PermanentDeliveryError(
            f"not a valid email address: {exc}", code="INVALID_RECIPIENT"
        ) from None


def _content(body: Any, config: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(subject, text, html)`` of a body: a string, or an object with subject/text/html."""
    subject = config.get("subject") or ""
    if isinstance(body, str):
        return subject, body, None
    if not isinstance(body, dict) or not (body.get("text") or body.get("html")):
        raise PermanentDeliveryError(
            "an email body is a string or an object with text and/or html",
            code="INVALID_MESSAGE",
        )
    html = str(body["html"]) if body.get("html") else None
    text = str(body["text"]) if body.get("text") else html_to_text(html or "")
    return str(body.get("subject") or subject), text, html


#: Longest header line SMTP carries (RFC 5322: 998 characters and CRLF).
_MAX_LINE = 998
_URI = re.compile(r"<([^<>\s]+)>")


class _UriListHeader(UnstructuredHeader, BaseHeader):
    """A header that is a list of ``<URI>`` (``List-Unsubscribe``), folded only between URIs.

    The default policy folds a long unstructured value into RFC 2047 encoded-words
    (``=?utf-8?q?=3Chttps=3A//…``), which mailbox providers do not read as URIs: one-click
    unsubscribe (RFC 8058) then fails. Each URI goes on its own line as it is; SMTP allows 998
    characters a line (78 is a recommendation). A value that is not plain ASCII URIs of that
    size is folded as before.
    """

    max_count = 1

    def fold(self, *, policy: Policy) -> str:
        """``Name: <uri>,`` then one ``<uri>`` per continuation line, never encoded."""
        lines = [f"<{uri}>" for uri in _URI.findall(str(self))]
        if lines:
            lines[0] = f"{self.name}: {lines[0]}"
        if not lines or not str(self).isascii() or max(map(len, lines)) + 2 > _MAX_LINE:
            return super().fold(policy=policy)
        return f",{policy.linesep} ".join(lines) + policy.linesep


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", _UriListHeader)
#: The header objects are made when a header is set, so this holds whatever policy the SMTP
#: client serialises with (aiosmtplib uses ``email.policy.SMTP``).
POLICY = default_policy.clone(header_factory=_HEADERS)


def unsubscribe_uris(recipient_url: Any, campaign_url: Any) -> list[str]:
    """The URIs of ``List-Unsubscribe``: the recipient's own link (else the campaign's), and
    the campaign's ``mailto:`` mailbox when it configures one, both listed."""
    uris = [_one_line(recipient_url)] if recipient_url else []
    if campaign_url:
        campaign_url = _one_line(campaign_url)
        if urlsplit(campaign_url).scheme == "mailto" or not uris:
            uris.append(campaign_url)
    return [uri for uri in uris if uri and "<" not in uri and ">" not in uri]


def _unsubscribe_headers(email: EmailMessage, uris: list[str]) -> None:
    if not uris:
        return
    uris.sort(key=lambda uri: urlsplit(uri).scheme not in ("https", "http"))  # web link first
    email["List-Unsubscribe"] = ", ".join(f"<{uri}>" for uri in uris)
    if urlsplit(uris[0]).scheme in ("https", "http"):  # RFC 8058 one-click is a POST to it
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def build_email(message: OutgoingMessage) -> tuple[EmailMessage, str, str]:
    """The MIME message of one delivery, with its envelope ``(sender, recipient)``.

    Raises:
        PermanentDeliveryError: no (valid) address (``NO_ADDRESS``, ``INVALID_RECIPIENT``) or an
            unusable body (``INVALID_MESSAGE``).
    """
    config = message.config
    to = _recipient(message.recipient)
    sender, domain = parse_address(str(config["from_email"]))
    subject, text, html = _content(message.body, config)
    email = EmailMessage(policy=POLICY)
    email["Subject"] = _one_line(subject)
    email["From"] = Address(_one_line(config.get("from_name") or ""), addr_spec=sender)
    email["To"] = Address(_one_line(message.recipient.get("name") or ""), addr_spec=to)
    if config.get("reply_to"):
        email["Reply-To"] = parse_address(str(config["reply_to"]))[0]
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.idempotency_key, domain)
    email["X-Campaign-Id"] = _one_line(message.campaign_id)
    email["X-Execution-Id"] = _one_line(message.execution_id)
    uris = unsubscribe_uris(message.recipient.get("unsubscribe_url"), config.get("unsubscribe_url"))
    _unsubscribe_headers(email, uris)
    email.set_content(text)
    if html is not None:
        email.add_alternative(html, subtype="html")
    return email, sender, to
