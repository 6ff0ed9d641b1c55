"""Fixtures for the seeder's tests: a workspace uid 1001 can reach, the seeder as the
template ships it, and a runner that starts it as the access point's uid (never as root,
whose override of file modes would hide the faults these tests look for)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.seeding import write_seeder

UID = GID = 1001
AS_ACCESS_POINT = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--"]
PYTHON = "/usr/bin/python3"  # the system's, as the core image's: the venv may be out of uid 1001's reach
TIMEOUT_S = 120


@dataclass
class Workspace:
    root: Path
    seeder: Path

    def efs(self, name: str) -> Path:
        """An empty destination owned by uid 1001, as the access point's root directory."""
        path = self.root / "efs" / name
        path.mkdir(parents=True)
        shutil.chown(path, UID, GID)
        (self.root / "efs").chmod(0o755)
        return path

    def run(self, *args: str | Path, image: str = "core:1", env: dict[str, str] | None = None):
        command = [*AS_ACCESS_POINT, "env", "-i", f"CE_SEED_IMAGE={image}", "PATH=/usr/bin:/bin"]
        command += [f"{k}={v}" for k, v in (env or {}).items()]
        command += [PYTHON, str(self.seeder), *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)

    def as_uid(self, *command: str | Path):
        return subprocess.run(
            [*AS_ACCESS_POINT, *map(str, command)], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )


@pytest.fixture(scope="session")
def seeder_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ce-seeder-") as scratch:
        Path(scratch).chmod(0o755)
        write_seeder(Path(scratch))
        yield Path(scratch)


@pytest.fixture
def ws(seeder_dir: Path) -> Iterator[Workspace]:
    with tempfile.TemporaryDirectory(prefix="ce-seed-test-") as scratch:
        Path(scratch).chmod(0o755)
        yield Workspace(Path(scratch), seeder_dir / "ce-seed.py")
