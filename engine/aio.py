"""One asyncio event loop per process, on its own thread, for channels that speak async I/O.

Worker threads are synchronous (dramatiq); network channels are fastest on asyncio (aiohttp
measured 5 to 8 times httpx here, ``bench/http_clients.py``). A worker thread hands a batch to
this loop and blocks until the batch is sent; the loop interleaves the batches of every thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """An event loop running forever on a daemon thread, started on first use.

    Example:
        >>> loop = EventLoopThread()
        >>> loop.run(asyncio.sleep(0, result=42))
        42
    """

    def __init__(self, name: str = "aio") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name=self._name, daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop from any other thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_started()).result()

    def close(self) -> None:
        """Stop the loop and its thread (coroutines still running are abandoned)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():  # a loop still stopping can't be closed; the thread is a daemon
            loop.close()
