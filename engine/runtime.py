"""The per-process bundle every service call needs: settings, database, limiter, channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import httpx
from sqlalchemy.engine import Engine

from engine.aio import EventLoopThread
from engine.channels import ChannelRegistry
from engine.config import Settings, secret_key_problem
from engine.db import make_engine
from engine.hashing import configure as configure_password_hashing
from engine.heartbeats import HeartbeatKeeper
from engine.logging import get_logger
from engine.outbound import OutboundPolicy
from engine.outbound.sync_http import guarded_client
from engine.ratelimit import Limiter, build_limiter

log = get_logger()


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
    #: The process's event loop for network channels (started on first use).
    loop: EventLoopThread = field(init=False)
    channels: ChannelRegistry = field(init=False)
    #: Keeps the heartbeats of the chunks this process is delivering.
    heartbeats: HeartbeatKeeper = field(init=False)

    def __post_init__(self) -> None:
        self.loop = EventLoopThread()
        self.channels = ChannelRegistry(self.settings, self.loop)
        self.heartbeats = HeartbeatKeeper(
            self.engine, self.settings.heartbeat_stale_s / 6, self.settings.chunk_stall_s
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Build the runtime described by ``settings``; new password hashes of this process
        take its argon2id cost."""
        problem = secret_key_problem(settings)
        if problem and not settings.development_mode:
            # The processes refuse it outside development mode (engine/cli/shared.py); a
            # runtime built in code (an app factory, a script) still says so.
            log.warning("security.unsafe_secret_key", problem=problem.partition(":")[0])
        configure_password_hashing(settings)
        return cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            limiter=build_limiter(settings.broker_url, settings.redis_url),
        )

    @cached_property
    def http(self) -> httpx.Client:
        """An HTTP client for low-volume calls of this process (lifecycle webhooks): it connects
        only where the outbound guard allows and follows no redirect."""
        policy = OutboundPolicy.from_settings(self.settings)
        return guarded_client(policy, self.settings.http_timeout_s)

    def close(self) -> None:
        """Stop heartbeats; close channels, the event loop and the connection pool."""
        self.heartbeats.close()
        if "http" in self.__dict__:
            self.http.close()
        self.channels.close()
        self.loop.close()
        self.engine.dispose()
