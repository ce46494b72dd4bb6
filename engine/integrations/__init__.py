"""The engine's edges to other systems: lifecycle webhooks, provider events, links, accounts.

- ``webhooks``: lifecycle event subscriptions, the outbox and its signed deliveries.
- ``events``: provider status callbacks, clicks, unsubscribes and conversions.
- ``links``: signed click-tracking and unsubscribe links.
- ``channel_accounts``: an organization's provider credentials, encrypted at rest.
"""
