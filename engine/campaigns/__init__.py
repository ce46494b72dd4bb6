"""What a campaign is: its definition, touchpoints, A/B variations, catalog and statistics.

- ``campaign``: organizations, campaigns and touchpoints created and read.
- ``catalog``: listing, updating, deleting and cloning campaigns.
- ``touchpoints``: touchpoints as a resource, and their validation.
- ``variations``: which A/B version each contact receives.
- ``statistics``: campaign statistics from stored deliveries and engagement events.
"""
