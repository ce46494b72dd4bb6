"""The ``log`` channel: appends one JSON line per message to a file."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, TextIO

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.config import Settings
from engine.models.base import utcnow


class LogChannel:
    """Appends each message as a JSON line to one file (``LOG_CHANNEL_PATH``).

    The file is the operator's choice, never a campaign's: a campaign must not be able to
    write where it likes. Lines are written whole under a lock and flushed, so threads and
    processes can append to one file (``O_APPEND``) without interleaving.
    """

    name = "log"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> LogChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(settings.log_channel_path)

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Accept any configuration (``rate_per_s`` is checked for every channel)."""

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key for the file."""
        return f"log:{self._path}"

    def send(self, message: OutgoingMessage) -> str | None:
        """Append the message as a JSON line."""
        line = json.dumps(
            {
                "at": utcnow().isoformat(),
                "idempotency_key": message.idempotency_key,
                "execution_id": message.execution_id,
                "touchpoint_id": message.touchpoint_id,
                "contact_id": message.contact_id,
                "to": message.recipient,
                "message": message.body,
            },
            default=str,
        )
        with self._lock:
            if self._file is None:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
            self._file.write(line + "\n")
            self._file.flush()
        return None

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
