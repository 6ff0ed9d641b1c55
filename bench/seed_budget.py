"""The seed-plugins seeder's server operations per file on the EFS latency model stay within a
recorded budget.

Seeds a small tree shaped like the plugins repository (bench/seeding.py) with the seeder as
the template ships it, on the EFS latency model with no latency, each run on a fresh mount: a
first seed onto an empty folder, a re-seed of the same tree under a new image id (every
entry compared, nothing written) and a re-seed after an image change, one request at a
time so that the counts do not depend on how threads are scheduled (in parallel at 1 ms the
benchmark's first seeds varied by 4 %). Fails when the operations per file of any of them
grow past bench/seed-op-budget.toml; then checks the same counts against a budget one
operation short and expects that to fail. ``--record`` writes the measured counts as the new
budget.
Run by scripts/test.sh (step op_budget): ``python -m bench.seed_budget --efs-latency BIN``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from bench.budget import over_budget, per_entry
from bench.efs_latency import EfsLatencyError, mounted
from bench.seeding import change_tree, listing, plugins_tree, write_seeder

BUDGET = Path(__file__).resolve().parent / "seed-op-budget.toml"
FILES = 300
RUNS = (("first", "core:1"), ("unchanged", "core:1-mirrored"), ("changed", "core:2"))
OWN = (".ce-seeded-from", ".ce-seed-manifest.json")


def count_ops(efs_latency: Path, cache_secs: float) -> tuple[dict[str, int], int]:
    """Server operations of each run, and the number of files in the tree."""
    ops: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="seed-budget-") as scratch_name:
        scratch = Path(scratch_name)
        seeder, image, backing = write_seeder(scratch), scratch / "image", scratch / "efs"
        plugins_tree(image, FILES)
        files = sum(1 for v in listing(image).values() if v[0] != "dir")
        backing.mkdir()
        for run, tag in RUNS:
            if run == "changed":
                change_tree(image, 0.05)
            with mounted(efs_latency, backing, 0.0, cache_secs) as (mountpoint, stats):
                command = [
                    *("python3", str(seeder), "--image", tag, "--jobs", "1"),
                    "--plugins",
                    str(image),
                    str(mountpoint),
                ]
                result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
            if result.returncode != 0:
                raise EfsLatencyError(f"the seeder ({run}) failed: {result.stderr.strip()}")
            if listing(backing, OWN) != listing(image):
                raise EfsLatencyError(f"the seeder ({run}) left a tree unlike the image's")
            ops[run] = stats["total"]
            kinds = ", ".join(f"{kind} {n}" for kind, n in stats["ops"].items() if n)
            print(f"{run}: {stats['total']} server operations ({kinds})")
        shutil.rmtree(backing)
    return ops, files


def record(path: Path, ops: dict[str, int], files: int, cache_secs: float) -> None:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    measured = ", ".join(f"{run} {ops[run]}" for run, _ in RUNS)
    path.write_text(
        "# Server operations per file that the seed-plugins seeder may spend on a tree shaped like\n"
        "# the plugins repository (bench/seeding.py), counted by the EFS latency model with no latency,\n"
        "# each run on a fresh mount: a first seed, an unchanged re-seed under a new image id, a\n"
        "# re-seed after a 5 % change. scripts/test.sh (step op_budget) fails when any grows.\n"
        f"# Measured {when} with `python -m bench.seed_budget --record` for {files} files:\n"
        f"# {measured} operations. Re-record when a change is meant to cost more.\n"
        f"cache_secs = {cache_secs:g}\n" + "".join(f"{run} = {per_entry(ops[run], files):.2f}\n" for run, _ in RUNS),
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--efs-latency", required=True, type=Path, help="the efs-latency binary")
    parser.add_argument("--budget", type=Path, default=BUDGET, help=f"the budget file (default {BUDGET})")
    parser.add_argument("--record", action="store_true", help="write the measured counts as the budget")
    args = parser.parse_args(argv)
    budget = tomllib.loads(args.budget.read_text(encoding="utf-8")) if args.budget.is_file() else {}
    cache_secs = float(budget.get("cache_secs", 3))
    try:
        ops, files = count_ops(args.efs_latency, cache_secs)
    except (EfsLatencyError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.record:
        record(args.budget, ops, files, cache_secs)
        print(f"recorded {args.budget}")
        return 0
    limits = {run: float(budget[run]) for run, _ in RUNS}
    failures = over_budget(ops, files, limits)
    for failure in failures:
        print(f"over budget: {failure}", file=sys.stderr)
    # Planted fault: one operation fewer than measured must be over budget.
    for run, _ in RUNS:
        if not over_budget(ops, files, {**limits, run: (ops[run] - 1) / files}):
            print(f"error: a {run} budget one operation short was not caught", file=sys.stderr)
            return 1
    if failures:
        return 1
    print(f"within budget ({args.budget.name}): " + ", ".join(f"{r} {limits[r]:.2f}" for r in limits) + " per file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
