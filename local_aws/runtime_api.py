#!/usr/bin/env python3
"""A minimal AWS Lambda Runtime API on 127.0.0.1 that runs one cold invocation.

Lambda starts a function's process, the process polls
``GET /2018-06-01/runtime/invocation/next``, receives one event and posts the
outcome to ``.../invocation/{id}/response`` or ``.../invocation/{id}/error``
(or ``.../init/error`` when it cannot start). This module plays Lambda's part
for exactly one event so the local demo and the benchmark can run the real
``bootstrap`` binary (or a Python handler under ``awslambdaric``) without AWS
or Docker, and time each phase of a cold start:

    started -> first GET /next -> event handed out -> result posted

After the result the function polls ``/next`` again; that request is held open
(as Lambda does when it freezes the sandbox) and the process is killed.

Standard library only, so it runs on any python3 without the project's venv.

Usage as a command from the repository root (prints the result as JSON; exit 0 only on a
response):

    python -m local_aws.runtime_api --event EVENT.json [--env K=V ...] [--timeout S] -- CMD [ARGS...]

As a library: ``invoke_once(command, event, env, timeout_s, deadline_ms)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
FUNCTION_NAME = "local-function"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# How long to wait, after the result, for the function's next poll before the kill.
SETTLE_S = 2.0


@dataclasses.dataclass
class InvocationResult:
    """What one cold invocation did; times are milliseconds from process start."""

    request_id: str
    # "response", "error" (invocation error), "init_error", "exited" (the process
    # ended without posting a result) or "timeout" (no result within timeout_s).
    outcome: str
    # The posted payload, parsed as JSON when it is JSON, else text.
    payload: Any = None
    error_type: str | None = None
    # Exit status when the process ended on its own; None when it was killed by us.
    exit_code: int | None = None
    # Milliseconds from process start to: the first GET /next, the event handed
    # out (the start of its write), the result received, the process reaped.
    init_ms: float | None = None
    event_sent_ms: float | None = None
    result_ms: float | None = None
    ended_ms: float | None = None
    # time.monotonic_ns() at process start, so callers can place their own
    # timestamps (e.g. a response receiver's) on the same clock.
    started_ns: int = 0
    event_sent_ns: int | None = None
    # Peak resident set size (VmHWM) of the function process, KiB.
    peak_rss_kib: int | None = None
    # The function's stdout and stderr, interleaved.
    logs: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


class _Invocation:
    """Shared state between the HTTP handler threads and invoke_once."""

    def __init__(self, event: bytes, deadline_ms: int) -> None:
        self.request_id = str(uuid.uuid4())
        self.event = event
        self.deadline_ms = deadline_ms
        self.function_arn = ""  # set once the process environment is known
        self.lock = threading.Lock()
        self.handed_out = False
        self.first_next_ns: int | None = None
        self.event_sent_ns: int | None = None
        self.result_ns: int | None = None
        self.outcome: str | None = None
        self.payload: bytes = b""
        self.error_type: str | None = None
        self.result = threading.Event()  # a response, error or init error arrived
        self.polled_again = threading.Event()  # the function asked for a second event
        self.closing = threading.Event()  # held requests may return


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as the runtime clients (hyper, libcurl) expect.
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Quiet: the function's own logs are what matters."""

    def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        """Content-Length or chunked (lambda_runtime streams responses chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        inv = self.server.invocation
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"unknown path"}')
            return
        with inv.lock:
            first = not inv.handed_out
            inv.handed_out = True
            if inv.first_next_ns is None:
                inv.first_next_ns = time.monotonic_ns()
        if not first:
            # One event per process: hold the poll, like a frozen sandbox.
            inv.polled_again.set()
            inv.closing.wait()
            self.close_connection = True
            return
        deadline = int(time.time() * 1000) + inv.deadline_ms
        # Stamped before the write: a thread switch after it must not shorten the
        # measured event -> result time.
        inv.event_sent_ns = time.monotonic_ns()
        self._reply(
            200,
            inv.event,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                "Lambda-Runtime-Trace-Id": (
                    f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
                ),
            },
        )

    def do_POST(self) -> None:
        inv = self.server.invocation
        body = self._read_body()
        now = time.monotonic_ns()
        if self.path == f"{API_PREFIX}/init/error":
            outcome = "init_error"
        elif self.path == f"{API_PREFIX}/invocation/{inv.request_id}/response":
            outcome = "response"
        elif self.path == f"{API_PREFIX}/invocation/{inv.request_id}/error":
            outcome = "error"
        else:
            self._reply(404, b'{"errorMessage":"unknown path or request id"}')
            return
        with inv.lock:
            if inv.outcome is not None:
                self._reply(400, b'{"errorMessage":"result already posted"}')
                return
            inv.outcome, inv.payload, inv.result_ns = outcome, body, now
            inv.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        self._reply(202, b'{"status":"OK"}')
        inv.result.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, invocation: _Invocation) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.invocation = invocation


def lambda_environment(runtime_api: str, env: dict[str, str]) -> dict[str, str]:
    """The variables Lambda sets for every function, overridden by ``env``.

    The process does not inherit the caller's environment (a Lambda sandbox
    does not either), except PATH so that commands resolve.
    """
    base = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "_HANDLER": "bootstrap",
    }
    base.update(env)
    return base


def _peak_rss_kib(pid: int) -> int | None:
    """VmHWM of a live process.

    Read from /proc rather than taken from wait4()'s ru_maxrss: on Linux the
    latter also counts the parent's resident set that the child carried until
    exec (tens of MiB for a Python parent), which would swamp a small binary.
    VmHWM belongs to the process's own post-exec address space and is a
    high-water mark, so one read after the work is exact.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def invoke_once(
    command: list[str],
    event: dict[str, Any],
    env: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    deadline_ms: int = 300_000,
    cwd: str | None = None,
) -> InvocationResult:
    """Start ``command`` fresh, hand it ``event`` once, wait for its result, kill it.

    ``deadline_ms`` is the function timeout the runtime sees (Lambda-Runtime-
    Deadline-Ms is set to now + deadline_ms when the event is handed out);
    ``timeout_s`` bounds the whole run on our side.
    """
    if os.sep in command[0]:
        # A relative program path means the caller's directory, not ``cwd``.
        command = [os.path.abspath(command[0]), *command[1:]]
    inv = _Invocation(json.dumps(event).encode(), deadline_ms)
    server = _Server(inv)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    process_env = lambda_environment(f"127.0.0.1:{server.server_address[1]}", env or {})
    inv.function_arn = (
        f"arn:aws:lambda:{process_env['AWS_REGION']}:{ACCOUNT_ID}:function:{process_env['AWS_LAMBDA_FUNCTION_NAME']}"
    )
    with tempfile.TemporaryFile() as logs:
        started = time.monotonic_ns()
        proc = subprocess.Popen(
            command,
            env=process_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            outcome = _await_result(proc, inv, started + int(timeout_s * 1e9))
            peak = _peak_rss_kib(proc.pid)
        finally:
            exit_code = proc.poll()
            if exit_code is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            ended = time.monotonic_ns()
            inv.closing.set()
            server.shutdown()
            server.server_close()
        logs.seek(0)
        output = logs.read().decode("utf-8", "replace")

    def ms(ns: int | None) -> float | None:
        return None if ns is None else round((ns - started) / 1e6, 3)

    try:
        payload: Any = json.loads(inv.payload) if inv.payload else None
    except ValueError:
        payload = inv.payload.decode("utf-8", "replace")
    return InvocationResult(
        request_id=inv.request_id,
        outcome=outcome,
        payload=payload,
        error_type=inv.error_type,
        exit_code=exit_code,
        init_ms=ms(inv.first_next_ns),
        event_sent_ms=ms(inv.event_sent_ns),
        result_ms=ms(inv.result_ns),
        ended_ms=ms(ended),
        started_ns=started,
        event_sent_ns=inv.event_sent_ns,
        peak_rss_kib=peak,
        logs=output,
    )


def _await_result(proc: subprocess.Popen, inv: _Invocation, give_up_ns: int) -> str:
    """Wait until a result is posted, the process exits, or time runs out."""
    while not inv.result.wait(0.01):
        if proc.poll() is not None:
            # It may have posted just before exiting (init errors do).
            return inv.outcome or "exited"
        if time.monotonic_ns() >= give_up_ns:
            return "timeout"
    # Let the runtime finish the invocation: it polls /next again (held) or exits.
    settle_until = time.monotonic() + SETTLE_S
    while not inv.polled_again.is_set() and proc.poll() is None and time.monotonic() < settle_until:
        inv.polled_again.wait(0.01)
    return inv.outcome or "exited"


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--env expects K=V, got {pair!r}")
        env[name] = value
    return env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Lambda function's process for one event against a local Runtime API "
        "and print the result (outcome, payload, timings, peak RSS, logs) as JSON.",
        usage="%(prog)s --event FILE [--env K=V ...] [--timeout S] [--deadline-ms MS] [--cwd DIR] -- CMD [ARGS...]",
    )
    parser.add_argument("--event", required=True, help="JSON file with the event to hand out")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a result (default 30)")
    parser.add_argument(
        "--deadline-ms", type=int, default=300_000, help="function timeout the runtime sees (default 300000)"
    )
    parser.add_argument("--cwd", help="working directory of the function process")
    parser.add_argument("command", nargs="+", help="the function process, e.g. target/release/bootstrap")
    args = parser.parse_args(argv)
    try:
        env = _parse_env(args.env)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    with open(args.event, encoding="utf-8") as handle:
        event = json.load(handle)
    try:
        result = invoke_once(args.command, event, env, args.timeout, args.deadline_ms, args.cwd)
    except OSError as err:
        print(f"error: cannot start {args.command[0]}: {err.strerror}", file=sys.stderr)
        return 2
    print(result.to_json())
    return 0 if result.outcome == "response" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
