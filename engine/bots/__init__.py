"""Bot campaigns: the bot platform's campaign module.

- ``actions``: bots and campaign actions (a campaign sent from a sheet on a schedule), log files.
- ``sheets``: reading an action's contacts from its sheet.
- ``triggers``: actions fired at once by the JSON a system posts.
"""
