"""Running a campaign: the lifecycle, planning, dispatch, delivery, recording and progress.

- ``lifecycle``: statuses, the one transition table, stop reasons.
- ``runs``: start, plan, pause, resume, cancel and retry an execution.
- ``dispatch``: the scheduler's claims, recovery of lost work, finishing executions.
- ``delivery``: a worker delivering one chunk, batch by batch.
- ``sending``: one message or batch through a channel, with retries and the rate limit.
- ``recording``: each batch's outcomes, counters and timeline in one transaction.
- ``progress``: what progress queries answer.

The map of the whole tree and the path of one execution: ``docs/architecture.md``.
"""
