"""Benchmark: the Rust EFS-tree custom resource against two Python ones.

Each run starts a contestant's process fresh (a cold start) under the local Lambda
Runtime API (local_aws/runtime_api.py), hands it one CloudFormation Create for the
directory tree on an empty file system, then, in a second fresh process, an Update with
unchanged properties. The contestant builds the tree under EFS_MOUNT_PATH and PUTs its
response to a receiver on 127.0.0.1; every response and tree is checked. Measured per run:

- init: process start -> first GET /runtime/invocation/next
- signal: event handed out -> response PUT sent (the work plus the PUT; the receiver
  takes the kernel's arrival stamp of the request, so its own scheduling does not count)
- total: process start -> response PUT sent
- peak RSS of the function process (VmHWM)
- server operations: what reached the EFS latency model (efs-latency/), by kind

The file system is either the EFS latency model, a FUSE passthrough that delays every operation
reaching it by --latency-ms as EFS's network round trip does (a fresh mount for each
request, so the client's caches start cold), or, with --latency-ms none, a plain folder
under --tree-dir. Runs are interleaved across contestants after one discarded warm-up run
each, so drift on a shared machine hits all of them alike. scripts/bench.sh drives it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import chart
from bench.efs_latency import EfsLatencyError, mounted
from bench.receiver import Receiver
from bench.trees import TreeError, ce_tree, entry_count, generated_tree, owned_by_runner, verify_tree
from local_aws.response_url import object_key, presigned_path
from local_aws.runtime_api import invoke_once

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTESTANTS = BENCH / "contestants"
CHART = BENCH / "results" / "scaling.svg"
RUN_TIMEOUT_S = 120.0
ACCOUNT = "123456789012"
REGION = "us-east-1"
REQUESTS = ("Create", "Update")


class BenchError(Exception):
    """A contestant did not do the job; its numbers would mean nothing."""


@dataclasses.dataclass
class Contestant:
    name: str
    command: list[str]
    cwd: str | None
    env: dict[str, str]
    package_bytes: int
    package_note: str


@dataclasses.dataclass
class Sample:
    init_ms: float
    signal_ms: float
    total_ms: float
    rss_kib: int
    ops: int | None = None
    op_kinds: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FileSystem:
    """Where trees are built: the EFS latency model (``efs_latency`` set) or a plain folder."""

    tree_dir: str
    efs_latency: Path | None = None
    latency_ms: float = 1.0
    cache_secs: float = 3.0

    def describe(self) -> str:
        if self.efs_latency is None:
            return f"a folder on {filesystem_type(self.tree_dir)} ({self.tree_dir})"
        cache = f"attribute cache {self.cache_secs:g} s" if self.cache_secs else "no attribute cache (actimeo=0)"
        backing = filesystem_type(self.tree_dir)
        return f"the EFS latency model: {self.latency_ms:g} ms per server operation, {cache}, backed by {backing}"

    @contextlib.contextmanager
    def mount(self, backing: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
        if self.efs_latency is None:
            yield backing, {}
            return
        with mounted(self.efs_latency, backing, self.latency_ms, self.cache_secs) as (mountpoint, stats):
            yield mountpoint, stats


# --- one run ---------------------------------------------------------------


def cfn_event(request_type: str, tree: dict[str, Any], receiver_url: str) -> tuple[dict[str, Any], str]:
    """A CloudFormation request for ``tree`` and the path its response must be PUT to.
    An Update carries the same properties as the Create before it: nothing to change."""
    request_id = str(uuid.uuid4())
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/ce-bench/{uuid.uuid4()}"
    # Shaped like CloudFormation's pre-signed URL: an encoded key and a SigV4 query.
    prefix = f"/cloudformation-custom-resource-response-{REGION.replace('-', '')}/"
    path_and_query = presigned_path(prefix, object_key(stack_id, "EfsTree", request_id), style="v4", region=REGION)
    path = path_and_query.split("?", 1)[0]
    token = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ce-efs-tree"
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": f"{receiver_url}{path_and_query}",
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": "EfsTree",
        "ResourceType": "Custom::CloudExchangeEfsTree",
        "ResourceProperties": {"ServiceToken": token, **tree},
    }
    if request_type == "Update":
        event["PhysicalResourceId"] = f"ce-efs-tree-{uuid.uuid4().hex[:12]}"
        event["OldResourceProperties"] = event["ResourceProperties"]
    return event, path


def invoke(
    contestant: Contestant, request_type: str, tree: dict[str, Any], backing: Path, fs: FileSystem, receiver: Receiver
) -> Sample:
    event, path = cfn_event(request_type, tree, receiver.base_url)
    with fs.mount(backing) as (mountpoint, stats):
        env = {**contestant.env, "EFS_MOUNT_PATH": str(mountpoint)}
        result = invoke_once(contestant.command, event, env, timeout_s=RUN_TIMEOUT_S, cwd=contestant.cwd)
        arrivals = receiver.wait_for(path, timeout_s=2.0)
    problem = None
    if result.outcome != "response":
        problem = f"runtime outcome {result.outcome!r} (exit code {result.exit_code})"
    elif len(arrivals) != 1:
        problem = f"{len(arrivals)} responses PUT to the ResponseURL, want 1"
    elif json.loads(arrivals[0].body).get("Status") != "SUCCESS":
        problem = f"response {arrivals[0].body[:500]!r}"
    else:
        problem = verify_tree(backing, tree)
    if problem or result.event_sent_ns is None or result.init_ms is None or result.peak_rss_kib is None:
        raise BenchError(
            f"{contestant.name} {request_type}: {problem or 'incomplete measurement'}\n"
            f"--- its output ---\n{result.logs[-3000:]}"
        )
    first = arrivals[0].received_ns
    return Sample(
        init_ms=result.init_ms,
        signal_ms=(first - result.event_sent_ns) / 1e6,
        total_ms=(first - result.started_ns) / 1e6,
        rss_kib=result.peak_rss_kib,
        ops=stats.get("total"),
        op_kinds={k: v for k, v in stats.get("ops", {}).items() if v},
    )


def run_once(contestant: Contestant, tree: dict[str, Any], fs: FileSystem, receiver: Receiver) -> dict[str, Sample]:
    """A Create on an empty file system, then an unchanged Update, each a cold start."""
    backing = Path(tempfile.mkdtemp(prefix="ce-bench-efs-", dir=fs.tree_dir))
    try:
        return {request: invoke(contestant, request, tree, backing, fs, receiver) for request in REQUESTS}
    finally:
        shutil.rmtree(backing, ignore_errors=True)


Results = dict[str, dict[str, list[Sample]]]  # contestant -> request type -> samples


def measure(
    contestants: list[Contestant], tree: dict[str, Any], runs: int, fs: FileSystem, receiver: Receiver
) -> Results:
    for contestant in contestants:
        run_once(contestant, tree, fs, receiver)  # warm-up: page cache, .pyc files
    results: Results = {c.name: {r: [] for r in REQUESTS} for c in contestants}
    for _ in range(runs):
        for contestant in contestants:
            for request, sample in run_once(contestant, tree, fs, receiver).items():
                results[contestant.name][request].append(sample)
    return results


# --- contestants -----------------------------------------------------------


def _zip_size(files: dict[str, Path]) -> int:
    """Bytes of a deflated zip holding ``files`` (archive name -> file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files.items()):
            archive.write(path, name)
    return len(buffer.getvalue())


def contestants(bootstrap: Path, python: str) -> list[Contestant]:
    import crhelper  # the installed package is what a crhelper function ships

    python_env = {"AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"}
    handler_files = {p.name: p for p in (CONTESTANTS / "tree_work.py",)}
    crhelper_dir = Path(crhelper.__file__).parent
    crhelper_files = {
        f"crhelper/{p.relative_to(crhelper_dir)}": p
        for p in crhelper_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    return [
        Contestant(
            name="rust bootstrap",
            command=[str(bootstrap)],
            cwd=None,
            env={"RUST_LOG": "info"},
            package_bytes=_zip_size({"bootstrap": bootstrap}),
            package_note="bootstrap.zip (x86_64 host build)",
        ),
        Contestant(
            name="python cfnresponse",
            command=[python, "-m", "awslambdaric", "reference_cfnresponse.handler"],
            cwd=str(CONTESTANTS),
            env={**python_env, "_HANDLER": "reference_cfnresponse.handler"},
            package_bytes=_zip_size(
                {**handler_files, "reference_cfnresponse.py": CONTESTANTS / "reference_cfnresponse.py"}
            ),
            package_note="handler only; needs the managed Python runtime",
        ),
        Contestant(
            name="python crhelper",
            command=[python, "-m", "awslambdaric", "crhelper_handler.handler"],
            cwd=str(CONTESTANTS),
            env={**python_env, "_HANDLER": "crhelper_handler.handler"},
            package_bytes=_zip_size(
                {**handler_files, **crhelper_files, "crhelper_handler.py": CONTESTANTS / "crhelper_handler.py"}
            ),
            package_note="handler + crhelper; needs the managed Python runtime (boto3 included)",
        ),
    ]


# --- report ----------------------------------------------------------------


def num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(values: list[float]) -> str:
    return f"{num(statistics.median(values))} ({num(min(values))} to {num(max(values))})"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if ours > 0 else "n/a"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def median_of(samples: list[Sample], field: str) -> float:
    return statistics.median(float(getattr(s, field)) for s in samples)


def ops_text(samples: list[Sample], entries: int) -> tuple[str, str]:
    """Median server operations and operations per entry, or n/a off the latency model."""
    if samples[0].ops is None:
        return "n/a", "n/a"
    ops = median_of(samples, "ops")
    return f"{ops:.0f}", f"{ops / entries:.2f}"


def request_rows(cast: list[Contestant], results: Results, entries: int, request: str) -> list[list[str]]:
    """One table's rows: timings, memory and server operations of ``request`` per contestant."""
    heading = "Create" if request == "Create" else "unchanged Update"
    rows = [[heading, "init ms", "signal ms", "total ms", "peak RSS MiB", "server ops", "ops/entry"]]
    for c in cast:
        s = results[c.name][request]
        rows.append(
            [
                c.name,
                spread([x.init_ms for x in s]),
                spread([x.signal_ms for x in s]),
                spread([x.total_ms for x in s]),
                spread([x.rss_kib / 1024 for x in s]),
                *ops_text(s, entries),
            ]
        )
    return rows


def report_main(cast: list[Contestant], results: Results, entries: int) -> None:
    rows = request_rows(cast, results, entries, "Create")
    rows[0].append("package KiB")
    for row, c in zip(rows[1:], cast, strict=True):
        row.append(f"{c.package_bytes / 1024:.0f}")
    print(table(rows))
    print()
    rows = request_rows(cast, results, entries, "Update")
    print(table(rows))
    print()
    ours = results[cast[0].name]
    header = ["ratio of medians (python / rust)", "init", "Create signal", "Create total", "Update signal"]
    rows = [[*header, "Update total", "peak RSS", "Create ops", "Update ops"]]
    for c in cast[1:]:
        theirs = results[c.name]
        row = [
            c.name,
            ratio(median_of(theirs["Create"], "init_ms"), median_of(ours["Create"], "init_ms")),
            *(
                ratio(median_of(theirs[r], f), median_of(ours[r], f))
                for r, f in (("Create", "signal_ms"), ("Create", "total_ms"), ("Update", "signal_ms"))
            ),
            ratio(median_of(theirs["Update"], "total_ms"), median_of(ours["Update"], "total_ms")),
            ratio(median_of(theirs["Create"], "rss_kib"), median_of(ours["Create"], "rss_kib")),
        ]
        for r in REQUESTS:
            has_ops = ours[r][0].ops is not None
            row.append(ratio(median_of(theirs[r], "ops"), median_of(ours[r], "ops")) if has_ops else "n/a")
        rows.append(row)
    print(table(rows))
    if ours["Create"][0].ops is not None:
        print()
        print("server operations by kind (last run):")
        for c in cast:
            for r in REQUESTS:
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(results[c.name][r][-1].op_kinds.items()))
                print(f"  {c.name}, {r}: {kinds}")


def report_scaling(cast: list[Contestant], sizes: list[int], by_size: dict[int, Results]) -> dict[str, list[float]]:
    """Prints the scaling tables; returns each contestant's median Create signal per size."""
    rows = [["Create", *(f"signal ms @{n}" for n in sizes), *(f"ops/entry @{n}" for n in sizes)]]
    series: dict[str, list[float]] = {}
    for request in REQUESTS:
        if request != "Create":
            rows.append([f"unchanged {request}", *([""] * (2 * len(sizes)))])
        for c in cast:
            samples = {n: by_size[n][c.name][request] for n in sizes}
            rows.append(
                [
                    c.name,
                    *(spread([s.signal_ms for s in samples[n]]) for n in sizes),
                    *(ops_text(samples[n], n)[1] for n in sizes),
                ]
            )
            if request == "Create":
                series[c.name] = [median_of(samples[n], "signal_ms") for n in sizes]
    print(table(rows))
    print()
    steps = list(itertools.pairwise(sizes))
    rows = [["Create cost per entry (µs, medians)", *(f"{a}→{b}" for a, b in steps), "fit: fixed ms + µs/entry"]]
    for c in cast:
        medians = series[c.name]
        marginal = [
            (m2 - m1) * 1000 / (b - a) for (a, b), (m1, m2) in zip(steps, itertools.pairwise(medians), strict=True)
        ]
        slope, intercept = statistics.linear_regression(sizes, medians) if len(sizes) > 1 else (0.0, medians[0])
        rows.append([c.name, *(f"{v:.1f}" for v in marginal), f"{intercept:.2f} + {slope * 1000:.1f}/entry"])
    print(table(rows))
    return series


def filesystem_type(path: str) -> str:
    try:
        real = os.path.realpath(path)
        with open("/proc/mounts", encoding="utf-8") as mounts:
            entries = [line.split()[1:3] for line in mounts]
        inside = [m for m in entries if real == m[0] or real.startswith(m[0].rstrip("/") + "/")]
        return max(inside, key=lambda m: len(m[0]))[1]
    except (OSError, ValueError):
        return "?"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} CPUs (load {load:.1f}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, type=Path, help="the release bootstrap built for this host")
    parser.add_argument("--efs-latency", type=Path, help="the efs-latency binary (needed unless --latency-ms none)")
    parser.add_argument(
        "--latency-ms",
        default="1",
        help="ms per operation reaching the EFS latency model (default 1); 'none' builds in --tree-dir directly",
    )
    parser.add_argument("--cache-secs", type=float, default=3.0, help="the model's attribute cache (default 3, 0 off)")
    parser.add_argument("--runs", type=int, default=10, help="cold runs per contestant and request (default 10)")
    parser.add_argument("--scale-runs", type=int, default=3, help="cold runs per contestant and size (default 3)")
    parser.add_argument("--sizes", default="10,100,1000", help="tree sizes for the scaling runs; empty to skip")
    parser.add_argument("--chart", type=Path, default=CHART, help=f"where the scaling chart goes (default {CHART})")
    parser.add_argument(
        "--tree-dir",
        help="where each run's backing folder is made (default: /dev/shm behind the latency model, so that only its "
        "latency is measured and not the disk's flushes; the temp dir with --latency-ms none)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with awslambdaric and crhelper")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.scale_runs < 1:
        parser.error("--runs and --scale-runs must be at least 1")
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes expects comma-separated integers, got {args.sizes!r}")
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive")
    if args.latency_ms == "none":
        args.latency_ms = None
    else:
        try:
            args.latency_ms = float(args.latency_ms)
        except ValueError:
            parser.error(f"--latency-ms expects a number or 'none', got {args.latency_ms!r}")
        if args.latency_ms < 0 or args.efs_latency is None:
            parser.error("--latency-ms needs a non-negative number and --efs-latency")
    if args.tree_dir is None:
        shm = args.latency_ms is not None and os.path.isdir("/dev/shm")
        args.tree_dir = "/dev/shm" if shm else tempfile.gettempdir()
    if not os.path.isdir(args.tree_dir):
        parser.error(f"--tree-dir {args.tree_dir} is not a directory")
    if not os.access(args.bootstrap, os.X_OK):
        parser.error(f"{args.bootstrap} is not an executable file")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    fs = FileSystem(tree_dir=args.tree_dir)
    if args.latency_ms is not None:
        fs = FileSystem(args.tree_dir, args.efs_latency.resolve(), args.latency_ms, args.cache_secs)
    cast = contestants(args.bootstrap.resolve(), args.python)
    try:
        tree, source = ce_tree()
    except TreeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"machine: {machine()}")
    print(f"file system: {fs.describe()}")
    if os.geteuid() != 0:
        print("not root: entries are declared with the runner's own uid/gid instead of 1001")
    print()
    try:
        with Receiver() as receiver:
            entries = entry_count(tree)
            print(f"== CE tree: {entries} entries from {source}; {plural(args.runs, 'cold run')} per request ==")
            report_main(cast, measure(cast, owned_by_runner(tree), args.runs, fs, receiver), entries)
            if args.sizes:
                sizes = args.sizes
                print()
                print(
                    f"== scaling: generated trees of {', '.join(map(str, sizes))} entries; "
                    f"{plural(args.scale_runs, 'cold run')} each =="
                )
                by_size = {
                    n: measure(cast, owned_by_runner(generated_tree(n)), args.scale_runs, fs, receiver) for n in sizes
                }
                series = report_scaling(cast, sizes, by_size)
                args.chart.parent.mkdir(parents=True, exist_ok=True)
                args.chart.write_text(chart.svg(sizes, series, f"Create on {fs.describe()}"), encoding="utf-8")
                print(f"chart: {args.chart}")
    except (BenchError, EfsLatencyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print()
    print(
        "init = process start -> first GET /next; signal = event handed out -> response PUT arrived; "
        "total = process start -> response PUT arrived; medians (min to max). Server ops = operations that "
        "reached the latency model (median), per declared entry."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
