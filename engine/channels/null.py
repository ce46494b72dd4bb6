"""The ``null`` channel: accepts everything, does nothing. For benchmarks and dry runs."""

from __future__ import annotations

from typing import Any

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.config import Settings


class NullChannel:
    """Delivers nowhere; measures the engine without a provider in the way."""

    name = "null"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> NullChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Accept any configuration."""

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key for the whole channel."""
        return "null"

    def send(self, message: OutgoingMessage) -> str | None:
        """Do nothing and report success."""
        return None

    def close(self) -> None:
        """Nothing to release."""
