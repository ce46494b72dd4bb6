"""Heartbeats of the chunks this process is delivering, kept by one background thread.

A chunk's heartbeat must stay fresh however long a single send or rate-limit wait takes, so it
is not left to the delivering thread: this thread refreshes every registered chunk every few
seconds, in one statement, fenced by the attempt that owns each chunk.

A heartbeat shows progress, not mere life: the delivering thread announces how long its next
step may take (:meth:`HeartbeatKeeper.progress`); a chunk past that deadline (a send blocked
forever) is no longer refreshed, so the scheduler gives it to another worker.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from engine.db import session_scope
from engine.logging import get_logger
from engine.models import Chunk, ChunkStatus
from engine.models.base import utcnow

log = get_logger()


class HeartbeatKeeper:
    """Refreshes ``heartbeat_at`` of registered (chunk, attempt) pairs every ``every_s`` seconds.

    Example:
        >>> with keeper.beating(chunk_id, attempt):
        ...     send_everything()
    """

    def __init__(self, engine: Engine, every_s: float, stall_s: float = 300.0) -> None:
        self._engine = engine
        self._every_s = every_s
        self._stall_s = stall_s
        self._beating: dict[int, int] = {}
        #: Monotonic time by which each chunk must show progress to keep being refreshed.
        self._deadline: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, chunk_id: int, attempt: int) -> None:
        """Start keeping the chunk's heartbeat (starts the thread on first use)."""
        with self._lock:
            self._beating[chunk_id] = attempt
            self._deadline[chunk_id] = time.monotonic() + self._stall_s
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
                self._thread.start()

    def progress(self, chunk_id: int, expected_wait_s: float = 0.0) -> None:
        """The chunk moved: keep it alive for ``chunk_stall_s`` plus a wait announced ahead."""
        with self._lock:
            if chunk_id in self._beating:
                # The later deadline wins: a wait announced inside a batch doesn't cut short
                # the allowance the batch was given.
                deadline = time.monotonic() + expected_wait_s + self._stall_s
                self._deadline[chunk_id] = max(self._deadline.get(chunk_id, 0.0), deadline)

    def remove(self, chunk_id: int) -> None:
        """Stop keeping the chunk's heartbeat."""
        with self._lock:
            self._beating.pop(chunk_id, None)
            self._deadline.pop(chunk_id, None)

    def beat(self) -> int:
        """Refresh every registered chunk that is making progress; return how many rows were."""
        now = time.monotonic()
        with self._lock:
            pairs = [
                (chunk_id, attempt)
                for chunk_id, attempt in self._beating.items()
                if self._deadline.get(chunk_id, now) >= now
            ]
            stalled = len(self._beating) - len(pairs)
        if stalled:
            log.warning("heartbeat.stalled_chunks", chunks=stalled)
        if not pairs:
            return 0
        with session_scope(self._engine) as session:
            result = session.execute(
                sa.update(Chunk)
                .where(
                    sa.tuple_(col(Chunk.id), col(Chunk.attempts)).in_(pairs),
                    col(Chunk.status) == ChunkStatus.running,
                )
                .values(heartbeat_at=utcnow())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat.failed")

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
