"""Answers of the HTTP API as declared models: what ``/openapi.json`` says each route returns.

Services return domain objects (dataclasses, rows); these models are the wire format — camelCase
names, ISO 8601 times with ``Z`` — built from them by ``of`` (or a named constructor). Routes
declare them (``response_model=Envelope[...]``) so a generated client knows every field.

One module per part of the API: ``base`` (envelope, time, pagination), ``auth``, ``campaigns``,
``audience``, ``integrations``, ``statistics``; the contact lists API's and the bot campaigns
API's own shapes are ``contact_lists`` and ``bot_campaigns``.
"""
