"""The ``email`` channel: sends each message over SMTP (aiosmtplib), many per connection.

Configuration (``channel_config``):

- ``host`` (required), ``port`` (587; 465 with ``security: tls``).
- ``security``: ``starttls`` (default: STARTTLS is required, never silently skipped), ``tls``
  (implicit TLS, usually port 465) or ``none`` (plain text). ``none`` is accepted only for a
  loopback host (``localhost``, ``127.0.0.0/8``, ``::1``): tests and a local relay, never a
  password or a message in clear over a network.
- ``username`` / ``password``: AUTH after the TLS upgrade, when given (both or neither).
- ``tls_verify`` (true) and ``tls_ca_file``: check the server's certificate, against the system
  CAs plus this PEM file (a private relay's CA).
- ``from_email`` (required) and ``from_name``, ``reply_to``, ``subject`` (the default subject).
- ``timeout_s``: per connect and per SMTP command; ``connections``: pooled connections per server
  (4 by default).
- ``unsubscribe_url``: ``List-Unsubscribe`` (and one-click ``List-Unsubscribe-Post``); a
  per-recipient ``recipient["unsubscribe_url"]`` (the engine's link) wins over an http(s) one,
  while a ``mailto:`` one (an unsubscribe mailbox) is listed after it. The header is never
  folded into RFC 2047 encoded-words, which mailbox providers do not read as URIs.

The message body is a string (plain text) or ``{"subject", "text", "html"}``: both parts make a
``multipart/alternative``; HTML alone gets a plain-text part derived by a simple tag strip.

One module per job:

- :mod:`~engine.channels.email.config`: checks a ``channel_config`` without connecting.
- :mod:`~engine.channels.email.mime`: builds the MIME message (``Message-ID``, HTML to text).
- :mod:`~engine.channels.email.errors`: maps SMTP client errors to delivery errors.
- :mod:`~engine.channels.email.pool`: the SMTP server an account names, and pooled clients to it.
- :mod:`~engine.channels.email.channel`: :class:`EmailChannel`, which ties them together.
"""
