"""Benchmark: the seed-plugins seeder against ``cp -R --preserve=mode,timestamps`` (what the
reference deployments run) on the EFS latency model.

A tree shaped like the plugins repository (bench/seeding.py) is copied onto a folder behind
the latency model (a delay per server operation, counts by kind), in one run:
a first seed onto an empty destination; a re-seed with nothing changed (the seeder under a
new image id, so it compares every entry; its same-image path is reported too); a re-seed
after an image change touching 1 % of the files. Then first seeds of trees of each size in
``--sizes`` for a chart of time against file count. Each run gets a fresh mount (cold
caches). The latency model serves every request as root and models no owners, so both run as
root here (as uid 1001 cp cannot preserve modes on it), and cp -R's re-seeds succeed; on EFS
as uid 1001 they fail over git's 0444 packs (tests/seeder shows it).
Run by scripts/bench.sh --seed; numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import chart
from bench.efs_latency import EfsLatencyError, mounted
from bench.seeding import change_tree, listing, plugins_tree, write_seeder

RESULTS = Path(__file__).resolve().parent / "results"
OWN = (".ce-seeded-from", ".ce-seed-manifest.json")
TIMEOUT_S = 3600


def contestants(seeder: Path, jobs: int) -> dict[str, Any]:
    """name -> function(source, dest, image) -> command line."""
    return {
        "seeder": lambda src, dst, image: [
            *("/usr/bin/python3", str(seeder), "--image", image, "--jobs", str(jobs)),
            *("--plugins", str(src), str(dst)),
        ],
        "cp -R": lambda src, dst, _image: ["cp", "-R", "--preserve=mode,timestamps", "--", f"{src}/.", f"{dst}/"],
    }


def timed(efs_latency: Path, backing: Path, args: argparse.Namespace, command: list[str]) -> dict[str, Any]:
    """One run of ``command`` against ``backing`` behind a fresh latency-model mount."""
    with mounted(efs_latency, backing, args.latency_ms, args.cache_secs) as (mountpoint, stats):
        line = [part.replace("@DEST@", str(mountpoint)) for part in command]
        start = time.monotonic()
        run = subprocess.run(line, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        seconds = time.monotonic() - start
    if run.returncode != 0:
        raise EfsLatencyError(f"{' '.join(line)} exited {run.returncode}: {run.stderr.strip()[-500:]}")
    return {"seconds": seconds, "ops": stats["total"], "kinds": {k: n for k, n in stats["ops"].items() if n}}


def fresh_backing(scratch: Path, name: str) -> Path:
    backing = scratch / name
    if backing.exists():
        shutil.rmtree(backing)
    backing.mkdir()
    return backing


def files_in(tree: Path) -> int:
    return sum(1 for v in listing(tree).values() if v[0] != "dir")


def scenarios(efs_latency: Path, scratch: Path, seeder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """First seed, unchanged re-seed and 1 %-changed re-seed of the full-size tree, per contestant."""
    base, changed = scratch / "image-v1", scratch / "image-v2"
    plugins_tree(base, args.files)
    shutil.copytree(base, changed, symlinks=True)
    change = change_tree(changed, 0.01)
    files = files_in(base)
    print(f"tree: {files} files, change: {change}", flush=True)
    results: dict[str, Any] = {"files": files, "change": change, "runs": {}}
    for name, make in contestants(seeder, args.jobs).items():
        for run_index in range(args.runs if name == "seeder" else args.cp_runs):
            backing = fresh_backing(scratch, "efs")
            steps = [
                ("first seed", base, "core:1"),
                ("unchanged re-seed", base, "core:1-mirrored"),
                ("1 % changed re-seed", changed, "core:2"),
            ]
            if name == "seeder":
                steps.insert(2, ("same image again", base, "core:1-mirrored"))
            for step, source, image in steps:
                result = timed(efs_latency, backing, args, make(source, "@DEST@", image))
                results["runs"].setdefault(name, {}).setdefault(step, []).append(result)
                print(f"{name:7} {step:20} run {run_index + 1}: {result['seconds']:8.2f} s {result['ops']:7} ops")
                if step == "first seed" and listing(backing, OWN) != listing(base):
                    raise EfsLatencyError(f"{name}: the first seed differs from the image's tree")
    return results


def scaling(efs_latency: Path, scratch: Path, seeder: Path, args: argparse.Namespace, full: dict) -> dict[str, Any]:
    """First seeds of trees of each size, per contestant (one run each; the full-size tree's
    first seeds from ``full`` where a size equals it)."""
    series: dict[str, list[float]] = {}
    sizes = []
    for size in args.sizes:
        if size == args.files:
            sizes.append(full["files"])
            for name, runs in full["runs"].items():
                series.setdefault(name, []).append(median(runs["first seed"], "seconds") * 1000)
            continue
        tree = scratch / f"scale-{size}"
        plugins_tree(tree, size)
        sizes.append(files_in(tree))
        for name, make in contestants(seeder, args.jobs).items():
            result = timed(efs_latency, fresh_backing(scratch, "efs"), args, make(tree, "@DEST@", "core:1"))
            series.setdefault(name, []).append(result["seconds"] * 1000)
            print(f"{name:7} first seed of {sizes[-1]:6} files: {result['seconds']:8.2f} s", flush=True)
        shutil.rmtree(tree)
    return {"sizes": sizes, "series": series}


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    files, runs = results["files"], results["runs"]
    lines = [
        f"Seeding {files} files (plugins-repository shape) on efs-latency at {args.latency_ms} ms per operation, "
        f"cache {args.cache_secs} s, seeder --jobs {args.jobs}, medians of {args.runs} run(s) "
        f"(cp -R: {args.cp_runs}):",
        "",
        "| scenario | cp -R | seeder | seeder / cp -R | ops per file, cp -R | ops per file, seeder |",
        "|---|---|---|---|---|---|",
    ]
    for step in ("first seed", "unchanged re-seed", "1 % changed re-seed"):
        cp, sd = runs["cp -R"][step], runs["seeder"][step]
        ratio = median(sd, "seconds") / median(cp, "seconds")
        lines.append(
            f"| {step} | {median(cp, 'seconds'):.2f} s | {median(sd, 'seconds'):.2f} s | {ratio:.1%} "
            f"({1 / ratio:.1f} times faster) | {median(cp, 'ops') / files:.2f} | {median(sd, 'ops') / files:.2f} |"
        )
    same = runs["seeder"]["same image again"]
    lines.append(f"| same image again (stamp) | — | {median(same, 'seconds'):.2f} s | | | {median(same, 'ops')} ops |")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--efs-latency", required=True, type=Path, help="the efs-latency binary")
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--cache-secs", type=float, default=3.0)
    parser.add_argument("--files", type=int, default=20000, help="files of the full-size tree (default 20000)")
    parser.add_argument("--sizes", default="1000,5000,20000", help="tree sizes for the chart ('' skips)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario by the seeder")
    parser.add_argument("--cp-runs", type=int, default=1, help="runs of each scenario by cp -R (minutes each)")
    parser.add_argument("--jobs", type=int, default=48, help="the seeder's requests in flight")
    parser.add_argument("--tree-dir", type=Path, default=Path("/dev/shm"), help="where trees and backings go")
    parser.add_argument("--chart", type=Path, default=RESULTS / "seeding.svg")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seed-bench-", dir=args.tree_dir) as scratch_name:
        scratch = Path(scratch_name)
        scratch.chmod(0o755)
        seeder = write_seeder(scratch)
        try:
            results = scenarios(args.efs_latency, scratch, seeder, args)
            scale = scaling(args.efs_latency, scratch, seeder, args, results) if args.sizes else None
        except (EfsLatencyError, subprocess.TimeoutExpired) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print()
    print(report(results, args))
    print("\nserver operations by kind (first seed, median run's counts):")
    for name in ("cp -R", "seeder"):
        print(f"  {name}: {json.dumps(results['runs'][name]['first seed'][0]['kinds'])}")
    if scale:
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        title = f"First seed on efs-latency, {args.latency_ms:g} ms per operation"
        args.chart.write_text(
            chart.svg(scale["sizes"], scale["series"], title, "files in the tree", "time, ms"), encoding="utf-8"
        )
        print(f"\nchart: {args.chart}")
        for name, line in scale["series"].items():
            points = ", ".join(f"{n} files {ms / 1000:.2f} s" for n, ms in zip(scale["sizes"], line, strict=True))
            print(f"  {name}: {points}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
