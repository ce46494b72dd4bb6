"""The ``log`` channel: appends one JSON line per message to a file."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, TextIO

from engine.channels.base import OutgoingMessage
from engine.models.base import utcnow


class LogChannel:
    """Writes each message as a JSON line to ``path`` (or the campaign's ``config["path"]``).

    Lines are written whole under a lock and flushed, so several threads and processes can
    append to one file (``O_APPEND``) without interleaving.
    """

    name = "log"

    def __init__(self, path: str) -> None:
        self._default_path = path
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Accept an optional ``path``."""

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per file."""
        return f"log:{config.get('path', self._default_path)}"

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
        path = str(message.config.get("path", self._default_path))
        with self._lock:
            fh = self._files.get(path)
            if fh is None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                fh = self._files[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115
            fh.write(line + "\n")
            fh.flush()
        return None

    def close(self) -> None:
        """Close every open file."""
        with self._lock:
            for fh in self._files.values():
                fh.close()
            self._files.clear()
