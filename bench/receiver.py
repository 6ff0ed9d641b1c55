"""Stands in for CloudFormation's pre-signed S3 ResponseURL on 127.0.0.1.

Accepts a PUT on any path, answers 200 like S3 does, and records when the
request's first bytes reached this machine's network stack (the kernel's receive
timestamp, SO_TIMESTAMPNS, moved onto time.monotonic_ns, the clock the runtime API
runner uses) so the benchmark can measure event handed out -> response sent. The
kernel's stamp keeps this server's own thread scheduling out of the number, which on
a busy machine is tens of milliseconds; where it is unavailable, the time the body
was read is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Linux's SO_TIMESTAMPNS (asm-generic/socket.h); Python's socket module does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


@dataclasses.dataclass
class Arrival:
    received_ns: int
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        self.arrived_ns = _arrival_ns(self.connection)

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = self.arrived_ns or time.monotonic_ns()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        # The path is kept as sent (percent-encoded), the query string dropped.
        self.server.record(self.path.split("?", 1)[0], Arrival(received, body))


def _arrival_ns(connection: socket.socket) -> int | None:
    """When the first bytes waiting on ``connection`` arrived, on the monotonic clock."""
    try:
        # Peeking leaves the bytes for the HTTP parser.
        _, ancillary, _, _ = connection.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
    except (OSError, AttributeError):
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanos - (time.time_ns() - time.monotonic_ns())
    return None


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # Set on the listening socket, so the kernel stamps segments from the start and
        # accepted connections inherit the option.
        with contextlib.suppress(OSError, AttributeError):
            self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
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
