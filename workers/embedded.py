"""Scheduler and dramatiq worker threads inside the current process (embedded mode, tests)."""

from __future__ import annotations

import threading
from types import TracebackType

import dramatiq
from dramatiq import Worker

from engine.runtime import Runtime
from scheduler import loop
from workers.actors import declare_actors, use_runtime
from workers.broker import DramatiqEnqueuer, build_broker


class EmbeddedStack:
    """Runs a scheduler loop and ``threads`` worker threads in this process.

    Works with any broker URL: ``memory://`` is the zero-server default; with ``redis://``
    these threads join whatever other worker processes consume the same queues.

    Example:
        >>> with EmbeddedStack(rt, threads=8):
        ...     wait_until_finished(rt, execution_id)
    """

    def __init__(
        self, rt: Runtime, *, threads: int = 8, scheduler: bool = True, workers: bool = True
    ) -> None:
        self.rt = rt
        self.broker = build_broker(rt.settings.broker_url)
        dramatiq.set_broker(self.broker)
        declare_actors(self.broker)
        use_runtime(rt)
        self.enqueuer = DramatiqEnqueuer(self.broker)
        self._threads = threads
        self._run_scheduler = scheduler
        self._run_workers = workers
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._worker: Worker | None = None

    def start(self) -> EmbeddedStack:
        """Start the worker threads and the scheduler thread."""
        if self._run_workers:
            self._worker = Worker(self.broker, worker_threads=self._threads, worker_timeout=100)
            self._worker.start()
        if self._run_scheduler:
            self._scheduler = threading.Thread(
                target=loop.run,
                args=(self.rt, self.enqueuer, self._stop),
                name="scheduler",
                daemon=True,
            )
            self._scheduler.start()
        return self

    def stop(self) -> None:
        """Stop the scheduler, then the workers (in-flight chunks finish first)."""
        self._stop.set()
        if self._scheduler:
            self._scheduler.join(timeout=30)
        if self._worker:
            self._worker.stop()
        self.broker.close()
        use_runtime(None)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
