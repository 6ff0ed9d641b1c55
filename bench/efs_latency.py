"""Mounts the EFS latency model (efs-latency/, a FUSE passthrough) for one run and reads its counts.

Every operation that reaches the latency model is delayed by ``latency_ms`` and counted by kind;
``cache_secs`` is the kernel's entry and attribute timeout (0 models an NFS mount with
``actimeo=0``). A fresh mount per run means the client's caches start cold, as in a new
Lambda execution environment.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 10.0


class EfsLatencyError(Exception):
    """The latency model did not mount or did not report its counts."""


@contextlib.contextmanager
def mounted(binary: Path, backing: Path, latency_ms: float, cache_secs: float) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Mounts ``backing`` through the latency model; yields the mount point and a dict that holds
    the latency model's counts (``total``, ``ops``) once the block has ended and it is unmounted."""
    with tempfile.TemporaryDirectory(prefix="efs-latency-") as scratch:
        mountpoint = Path(scratch) / "mnt"
        stats_file = Path(scratch) / "stats.json"
        mountpoint.mkdir()
        command = [
            str(binary),
            "--latency-ms",
            str(latency_ms),
            "--cache-secs",
            str(cache_secs),
            "--stats",
            str(stats_file),
            str(backing),
            str(mountpoint),
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stats: dict[str, Any] = {}
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                process.kill()
                _, err = process.communicate(timeout=READY_TIMEOUT_S)
                raise EfsLatencyError(f"efs-latency did not mount: {line.strip()} {err.strip()}")
            yield mountpoint, stats
        finally:
            subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, capture_output=True)
            try:
                _, err = process.communicate(timeout=READY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
        if process.returncode != 0 or not stats_file.is_file():
            raise EfsLatencyError(f"efs-latency exited with {process.returncode}: {err.strip()}")
        stats.update(json.loads(stats_file.read_text(encoding="utf-8")))
