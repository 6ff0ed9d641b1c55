"""The function's server operations on the EFS latency model stay within a recorded budget.

Builds the template's CE tree (bench/trees.py) with the function's own logic (the
apply_tree example of the lambda crate) on the EFS latency model with no latency: a Create on an
empty file system, then an unchanged Update, each on a fresh mount (cold caches). Fails when
the operations per declared entry of either grow past bench/op-budget.toml. To prove the
check can fail, it then checks the same counts against a budget one operation short and
expects that to fail. ``--record`` writes the measured counts as the new budget.
Run by scripts/test.sh (step op_budget): ``python -m bench.budget --efs-latency BIN --apply BIN``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from bench.efs_latency import EfsLatencyError, mounted
from bench.trees import ce_tree, entry_count, verify_tree

BUDGET = Path(__file__).resolve().parent / "op-budget.toml"
REQUESTS = ("create", "update")


def count_ops(efs_latency: Path, apply: Path, cache_secs: float) -> tuple[dict[str, int], int]:
    """Server operations of a Create and of an unchanged Update, and the number of entries."""
    tree, _ = ce_tree()
    ops: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="op-budget-") as scratch:
        props, backing = Path(scratch) / "tree.json", Path(scratch) / "efs"
        props.write_text(json.dumps(tree), encoding="utf-8")
        backing.mkdir()
        for request in REQUESTS:
            with mounted(efs_latency, backing, 0.0, cache_secs) as (mountpoint, stats):
                run = subprocess.run(
                    [str(apply), str(props), str(mountpoint)], capture_output=True, text=True, check=False
                )
            if run.returncode != 0:
                raise EfsLatencyError(f"apply_tree ({request}) failed: {run.stderr.strip()}")
            problem = verify_tree(backing, tree)
            if problem:
                raise EfsLatencyError(f"apply_tree ({request}) left a wrong tree: {problem}")
            ops[request] = stats["total"]
            kinds = ", ".join(f"{kind} {n}" for kind, n in stats["ops"].items() if n)
            print(f"{request}: {stats['total']} server operations ({kinds})")
    return ops, entry_count(tree)


def per_entry(ops: int, entries: int) -> float:
    """Operations per entry, rounded up to the budget file's two decimals."""
    return math.ceil(ops * 100 / entries) / 100


def over_budget(ops: dict[str, int], entries: int, budget: dict[str, float]) -> list[str]:
    """What exceeds ``budget`` (operations per entry by request, for each request in ``ops``),
    as messages. Shared with bench/seed_budget.py."""
    return [
        f"{request}: {ops[request]} operations for {entries} entries = {ops[request] / entries:.3f} per entry, "
        f"budget {budget[request]:.2f}"
        for request in ops
        if ops[request] / entries > budget[request] + 1e-9
    ]


def record(path: Path, ops: dict[str, int], entries: int, cache_secs: float) -> None:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    path.write_text(
        "# Server operations per declared entry that the function may spend on the CE tree (the\n"
        "# template's EfsTree Directories and Files, as bench/trees.py reads them), counted by the EFS\n"
        "# latency model (efs-latency/) with no latency: a Create on an empty file system, then an unchanged\n"
        "# Update, each on a fresh mount. scripts/test.sh (step op_budget) fails when either grows.\n"
        f"# Measured {when} with `python -m bench.budget --record`: Create {ops['create']} and Update\n"
        f"# {ops['update']} operations for {entries} entries. Re-record when a change is meant to cost more.\n"
        f"cache_secs = {cache_secs:g}\n"
        f"create = {per_entry(ops['create'], entries):.2f}\n"
        f"update = {per_entry(ops['update'], entries):.2f}\n",
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--efs-latency", required=True, type=Path, help="the efs-latency binary")
    parser.add_argument("--apply", required=True, type=Path, help="the apply_tree example of the lambda crate")
    parser.add_argument("--budget", type=Path, default=BUDGET, help=f"the budget file (default {BUDGET})")
    parser.add_argument("--record", action="store_true", help="write the measured counts as the budget")
    args = parser.parse_args(argv)
    budget = tomllib.loads(args.budget.read_text(encoding="utf-8")) if args.budget.is_file() else {}
    cache_secs = float(budget.get("cache_secs", 3))
    try:
        ops, entries = count_ops(args.efs_latency, args.apply, cache_secs)
    except EfsLatencyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.record:
        record(args.budget, ops, entries, cache_secs)
        print(f"recorded {args.budget}")
        return 0
    limits = {request: float(budget[request]) for request in REQUESTS}
    failures = over_budget(ops, entries, limits)
    for failure in failures:
        print(f"over budget: {failure}", file=sys.stderr)
    # Planted fault: one operation fewer than measured must be over budget.
    for request in REQUESTS:
        short = {**limits, request: (ops[request] - 1) / entries}
        if not over_budget(ops, entries, short):
            print(f"error: a {request} budget one operation short was not caught", file=sys.stderr)
            return 1
    print(f"within budget ({args.budget.name}): create {limits['create']:.2f}, update {limits['update']:.2f} per entry")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
