"""Running a campaign: the lifecycle, planning, dispatch, delivery, recording and progress.

- ``lifecycle``: statuses, the one transition table, stop reasons.
- ``runs``: start, pause, resume, cancel and retry an execution.
- ``planning``: the audience frozen and the first step's chunks written.
- ``dispatch``: the scheduler's claims, recovery of lost work, finishing executions.
- ``delivery``: a worker delivering one chunk, batch by batch.
- ``claiming``: a worker's claim of a chunk and the recipients it still owes.
- ``rendering``: one contact's message rendered, its links signed.
- ``sending``: one message or batch through a channel, with retries and the rate limit.
- ``recording``: each batch's outcomes, counters and timeline in one transaction.
- ``progress``: what progress queries answer.

The map of the whole tree and the path of one execution: ``docs/architecture.md``.
"""
