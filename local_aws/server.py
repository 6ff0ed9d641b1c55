"""The local AWS server: moto's ThreadedMotoServer on 127.0.0.1 with every gap installed,
or plain moto (--plain: no gap closed, no custom resource run) for tests of the scripts'
own API calls. The one way to start it: in a process of its own from the shell
(local_aws/local-aws.sh: local_aws_start), in the test process from Python (start).

python -m local_aws --port 5000 --efs-dir DIR   # one ready line, serves until SIGTERM
python -m local_aws --port 5000 --plain         # the same, plain moto
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

from .config import MOTO_VERSION, SETTINGS, check_moto


def _kill_children() -> None:
    """Stop function processes still running (runtime_api starts each in its own session)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            with contextlib.suppress(OSError):
                os.killpg(int(stat.parent.name), signal.SIGKILL)


def start(port: int, efs_dir: str | None, max_service_timeout_s: float | None = None, plain: bool = False) -> Any:
    """Install the gaps (unless plain) and start the server in this process; returns the
    ThreadedMotoServer."""
    check_moto()
    from moto.server import ThreadedMotoServer

    from .gaps import install_all

    SETTINGS.port = port
    os.environ["MOTO_PORT"] = str(port)
    if not plain:
        SETTINGS.efs_dir = str(Path(efs_dir or "").resolve())
        if max_service_timeout_s is not None:
            SETTINGS.max_service_timeout_s = max_service_timeout_s
        # LOCAL_AWS_SKIP_GAPS=id,id leaves gaps open, to prove that their tests fail.
        install_all(frozenset(filter(None, os.environ.get("LOCAL_AWS_SKIP_GAPS", "").split(","))))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws",
        description="moto server on 127.0.0.1 with the gaps the project's CloudFormation flow needs closed "
        "(local_aws/gaps.py); custom resources run their function's real bootstrap against --efs-dir.",
    )
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    parser.add_argument(
        "--efs-dir",
        default=os.environ.get("CE_LOCAL_EFS_DIR"),
        help="the EFS folder: a local folder that plays EFS (default: $CE_LOCAL_EFS_DIR)",
    )
    parser.add_argument(
        "--max-service-timeout",
        type=float,
        default=SETTINGS.max_service_timeout_s,
        metavar="SECONDS",
        help="wait at most this long for a custom resource's answer (CloudFormation waits the "
        f"resource's ServiceTimeout; default {SETTINGS.max_service_timeout_s:g})",
    )
    parser.add_argument("--plain", action="store_true", help="plain moto: no gap closed, no --efs-dir")
    args = parser.parse_args(argv)
    if not args.plain and (not args.efs_dir or not Path(args.efs_dir).is_dir()):
        parser.error("--efs-dir (or CE_LOCAL_EFS_DIR) must name an existing directory")
    server = start(args.port, args.efs_dir, args.max_service_timeout, plain=args.plain)
    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = "plain, no gap closed" if args.plain else f"EFS folder {SETTINGS.efs_dir}"
    print(f"local AWS (moto {MOTO_VERSION}) ready on http://127.0.0.1:{args.port}; {where}", flush=True)
    try:
        stopped.wait()
    finally:
        _kill_children()
        server.stop()
    return 0
