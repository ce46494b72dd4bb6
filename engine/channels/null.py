"""The ``null`` channel: accepts everything, does nothing. For benchmarks and dry runs."""

from __future__ import annotations

from typing import Any

from engine.channels.base import OutgoingMessage


class NullChannel:
    """Delivers nowhere; measures the engine without a provider in the way."""

    name = "null"

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
