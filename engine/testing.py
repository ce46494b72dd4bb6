"""Helpers for testing code built on the engine: a loopback webhook sink and waiting helpers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.db import session_scope
from engine.models import FINAL_EXECUTION_STATUSES, Execution
from engine.runtime import Runtime

#: A responder gets the request body and its number (1-based) and returns
#: ``(status, headers)`` or ``(status, headers, body)``; the default body is ``{"id": "msg-N"}``.
Responder = Callable[[dict[str, Any], int], tuple[Any, ...]]


class WebhookSink:
    """A real HTTP server on 127.0.0.1 that records every POST it receives.

    Example:
        >>> with WebhookSink() as sink:
        ...     run_campaign(channel_config={"url": sink.url})
        ...     assert len(sink.requests) == 100
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._responder = responder or (lambda body, n: (200, {}))
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"null")
                with sink._lock:
                    sink.requests.append({"headers": dict(self.headers), "body": body, "raw": raw})
                    number = len(sink.requests)
                status, headers, *rest = sink._responder(body, number)
                payload = rest[0] if rest else json.dumps({"id": f"msg-{number}"}).encode()
                headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def keys(self) -> list[str]:
        """Return the ``Idempotency-Key`` of every request received, in order."""
        with self._lock:
            return [r["headers"].get("Idempotency-Key", "") for r in self.requests]

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; return it.

    Raises:
        TimeoutError: it stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def execution_state(rt: Runtime, execution_id: str) -> Execution:
    """Return a fresh copy of the execution row."""
    with session_scope(rt.engine) as session:
        execution = session.get_one(Execution, execution_id)
        session.expunge(execution)
        return execution


def wait_until_finished(rt: Runtime, execution_id: str, timeout: float = 120.0) -> Execution:
    """Wait until the execution reaches a final status and return it."""

    def finished() -> Execution | None:
        execution = execution_state(rt, execution_id)
        return execution if execution.status in FINAL_EXECUTION_STATUSES else None

    return wait_for(finished, timeout)


def stop_process_groups(procs: list[subprocess.Popen[bytes]], grace_s: float = 30.0) -> None:
    """Stop processes started with ``start_new_session=True`` (each leads its own group).

    SIGTERM goes to every group; a group still running after ``grace_s`` seconds gets SIGKILL.
    """
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
