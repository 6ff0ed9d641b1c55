"""Stands in for CloudFormation's pre-signed S3 ResponseURL on 127.0.0.1.

Accepts a PUT on any path, answers 200 like S3 does, and records when the
body's last byte arrived (time.monotonic_ns, the clock the runtime API runner
uses) so the benchmark can measure event handed out -> response received.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass
class Arrival:
    received_ns: int
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Quiet."""

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = time.monotonic_ns()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        # The path is kept as sent (percent-encoded), the query string dropped.
        self.server.record(self.path.split("?", 1)[0], Arrival(received, body))


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._arrivals: dict[str, list[Arrival]] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, arrival: Arrival) -> None:
        with self._changed:
            self._arrivals.setdefault(path, []).append(arrival)
            self._changed.notify_all()

    def wait_for(self, path: str, timeout_s: float) -> list[Arrival]:
        """Every PUT to ``path``, after waiting up to ``timeout_s`` for the first."""
        with self._changed:
            self._changed.wait_for(lambda: path in self._arrivals, timeout_s)
            return list(self._arrivals.get(path, []))
