"""Who campaigns reach: contacts, lists, conditions, segments, consent, and import/export.

- ``targeting``: a campaign's ``targetAudience`` compiled to SQL; recipients frozen at planning.
- ``conditions``: the contact lists API's condition language compiled to SQL.
- ``contacts``, ``contact_data``: contacts and their normalised fields.
- ``lists``, ``members``: lists, and their members as the contact lists API manages them.
- ``segments``: named conditions. ``subscriptions``: unsubscribes, suppressions, channel blocks.
- ``contact_import``, ``contact_export``: contacts of a list as CSV files, streamed.
- ``contact_upsert``: the one way contacts are written in bulk (match, insert, update, tag).
"""
