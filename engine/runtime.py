"""The per-process bundle every service call needs: settings, database, limiter, channels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from engine.channels import ChannelRegistry
from engine.config import Settings
from engine.db import make_engine
from engine.ratelimit import Limiter, build_limiter


@dataclass
class Runtime:
    """Long-lived resources of one process, built once and shared by its threads.

    Example:
        >>> rt = Runtime.from_settings(get_settings())
        >>> deliver_chunk(rt, chunk_id=1, attempt=1)
    """

    settings: Settings
    engine: Engine
    limiter: Limiter
    channels: ChannelRegistry = field(init=False)
    #: Threads that send one chunk's messages concurrently (shared by the process).
    send_pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.channels = ChannelRegistry(self.settings)
        self.send_pool = ThreadPoolExecutor(
            max_workers=self.settings.send_concurrency, thread_name_prefix="send"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Build the runtime described by ``settings``."""
        return cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            limiter=build_limiter(settings.broker_url, settings.redis_url),
        )

    def close(self) -> None:
        """Close the send threads, channels and the connection pool."""
        self.send_pool.shutdown(wait=True)
        self.channels.close()
        self.engine.dispose()
