"""dramatiq middleware of the engine's worker processes."""

from __future__ import annotations

from typing import Any

import dramatiq

from workers.actors import close_runtime


class CloseRuntime(dramatiq.Middleware):
    """Closes the process's runtime (HTTP sessions, event loop, DB pool) when the worker stops."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Release what the actors opened in this process."""
        close_runtime()
