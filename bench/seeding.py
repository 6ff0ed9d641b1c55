"""The seed-plugins seeder as the template ships it, and image trees to seed.

Shared by the seeder's tests (tests/seeder/), its operation budget (bench/seed_budget.py)
and its benchmark (bench/seed_bench.py). ``plugins_tree`` generates a tree shaped like the
plugins repository (``netskopeoss/ta_cloud_exchange_plugins``, as core's image holds it
below /opt/netskope/repos): the number of files and directories at each depth of the
repository's main branch, measured when this was written, scaled to any size, with small
generated content and a ``.git`` whose packs are read-only (0444), as git writes them.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cfn" / "CloudExchangeTemplate.yaml"
SEEDER_PATH = "data/env/ce-seed.py"

# ta_cloud_exchange_plugins, main at commit f3a8bdb: 18,204 files in 6,006 directories.
# Depth = path components (a file at depth 1 is at the top).
FILES_AT_DEPTH = {1: 2, 2: 833, 3: 516, 4: 1811, 5: 2241, 6: 1081, 7: 11483, 8: 220, 9: 17}
DIRS_AT_DEPTH = {1: 162, 2: 176, 3: 122, 4: 266, 5: 2527, 6: 2716, 7: 34, 8: 3}
REPOSITORY_FILES = sum(FILES_AT_DEPTH.values())
BASE_MTIME_NS = 1_764_000_000_123_456_789  # late 2025, with a sub-second part


class SeedingError(Exception):
    """The template holds no seeder."""


def seeder_source(template: Path = TEMPLATE) -> str:
    """The seeder's program text, from the template's EfsTree Files."""
    parsed, errors = decode(str(template))
    if errors or parsed is None:
        raise SeedingError(f"{template}: {errors}")
    for resource in (parsed.get("Resources") or {}).values():
        for entry in (resource.get("Properties") or {}).get("Files", []) or []:
            if isinstance(entry, dict) and entry.get("Path") == SEEDER_PATH:
                return str(entry["Content"])
    raise SeedingError(f"{template}: no file {SEEDER_PATH} in any resource's Files")


def write_seeder(directory: Path) -> Path:
    """Writes the seeder into ``directory`` (readable by everyone) and returns its path."""
    path = directory / "ce-seed.py"
    path.write_text(seeder_source(), encoding="utf-8")
    path.chmod(0o644)
    return path


def _write(path: Path, data: bytes, mode: int, mtime_ns: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def plugins_tree(root: Path, files: int, seed: int = 17) -> dict[str, int]:
    """Generates below ``root`` about ``files`` files in the plugins repository's shape (its
    depth distribution scaled), plus a ``.git`` with 0444 packs. Returns the counts made."""
    rng = random.Random(seed)
    scale = files / REPOSITORY_FILES
    dirs_by_depth: dict[int, list[str]] = {0: [""]}
    made_dirs = made_files = 0
    for depth in sorted(DIRS_AT_DEPTH):
        count = max(1, round(DIRS_AT_DEPTH[depth] * scale))
        parents = dirs_by_depth[depth - 1]
        level = []
        for index in range(count):
            parent = parents[index % len(parents)] if index < len(parents) else rng.choice(parents)
            rel = f"{parent}/d{depth}_{index}" if parent else f"plugin_{index}"
            (root / rel).mkdir(parents=True)
            level.append(rel)
        dirs_by_depth[depth] = level
        made_dirs += count
    for depth in sorted(FILES_AT_DEPTH):
        count = max(1, round(FILES_AT_DEPTH[depth] * scale))
        parents = dirs_by_depth[depth - 1]
        for index in range(count):
            parent = rng.choice(parents)
            name = f"f{depth}_{index}.py" if index % 5 else f"f{depth}_{index}.json"
            rel = f"{parent}/{name}" if parent else name
            mode = 0o755 if index % 50 == 0 else 0o644
            _write(root / rel, rng.randbytes(rng.randint(0, 2048)), mode, BASE_MTIME_NS + index * 1_000_003)
            made_files += 1
    made_files += _git_dir(root / ".git", rng)
    for depth in sorted(dirs_by_depth, reverse=True):  # children first: a child changes its parent's mtime
        for rel in dirs_by_depth[depth]:
            if rel:
                os.utime(root / rel, ns=(BASE_MTIME_NS, BASE_MTIME_NS - depth * 1_000_000_000))
    return {"files": made_files, "directories": made_dirs}


def _git_dir(git: Path, rng: random.Random) -> int:
    """A clone's .git: refs, logs, hooks, an index and one pack (idx, rev) written 0444."""
    entries = {
        "HEAD": (b"ref: refs/heads/main\n", 0o644),
        "config": (b"[core]\n\trepositoryformatversion = 0\n", 0o644),
        "description": (b"Unnamed repository\n", 0o644),
        "packed-refs": (b"# pack-refs with: peeled fully-peeled sorted\n", 0o644),
        "index": (rng.randbytes(64 * 1024), 0o644),
        "info/exclude": (b"# git ls-files --others --exclude-from=.git/info/exclude\n", 0o644),
        "logs/HEAD": (b"0000 f3a8bdb clone: from origin\n", 0o644),
        "logs/refs/heads/main": (b"0000 f3a8bdb clone: from origin\n", 0o644),
        "refs/heads/main": (b"f3a8bdb\n", 0o644),
        "refs/remotes/origin/HEAD": (b"ref: refs/remotes/origin/main\n", 0o644),
        "objects/pack/pack-5eed.pack": (rng.randbytes(256 * 1024), 0o444),
        "objects/pack/pack-5eed.idx": (rng.randbytes(16 * 1024), 0o444),
        "objects/pack/pack-5eed.rev": (rng.randbytes(1024), 0o444),
        "objects/info/commit-graph": (rng.randbytes(4096), 0o444),
    }
    entries.update({f"hooks/sample-{n}.sample": (b"#!/bin/sh\nexit 0\n", 0o755) for n in range(14)})
    for rel, (data, mode) in entries.items():
        (git / rel).parent.mkdir(parents=True, exist_ok=True)
        _write(git / rel, data, mode, BASE_MTIME_NS)
    return len(entries)


def change_tree(root: Path, fraction: float, seed: int = 29) -> dict[str, int]:
    """An image change: rewrites ``fraction`` of the files (new content and mtime; the packs
    always, keeping their names and 0444 mode), removes a few and adds a few."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    chosen = rng.sample(files, max(1, round(len(files) * fraction)))
    packs = sorted((root / ".git" / "objects" / "pack").glob("pack-*")) if (root / ".git").is_dir() else []
    changed = set(chosen[: len(chosen) - len(chosen) // 10]) | set(packs)
    for path in changed:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(0o644)
        _write(path, rng.randbytes(rng.randint(1, 2048)), mode, BASE_MTIME_NS + 10**12)
    removed = [p for p in chosen if p not in changed][: max(1, len(chosen) // 20)]
    for path in removed:
        path.unlink()
    added = [p.parent / f"added_{n}.py" for n, p in enumerate(chosen[: max(1, len(chosen) // 20)])]
    for path in added:
        _write(path, b"added = True\n", 0o644, BASE_MTIME_NS + 10**12)
    return {"changed": len(changed), "removed": len(removed), "added": len(added)}


def listing(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every entry below ``root`` as type, mode, mtime (ns) and a content digest or link
    target; names in ``skip`` at the top are left out. Symbolic links are not followed."""
    result: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel.split("/")[0] in skip:
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            else:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                result[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, digest)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return result
