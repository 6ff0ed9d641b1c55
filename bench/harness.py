#!/usr/bin/env python3
"""Benchmark: the Rust EFS-tree custom resource against two Python ones.

Each run starts a contestant's process fresh (a cold start) under the local
Lambda Runtime API (scripts/local/runtime_api.py), hands it one CloudFormation
Create for the directory tree, lets it build the tree in a fresh temp dir
(EFS_MOUNT_PATH) and PUT its response to a receiver on 127.0.0.1, then checks
the response and the tree. Measured per run:

- init: process start -> first GET /runtime/invocation/next
- signal: event handed out -> response PUT received (the work plus the PUT)
- total: process start -> response PUT received
- peak RSS of the function process (VmHWM)

Runs are interleaved across contestants after one discarded warm-up run each,
so drift on a shared machine hits all of them alike. Scripts/bench.sh drives it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import shutil
import stat
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTESTANTS = BENCH / "contestants"
sys.path.insert(0, str(ROOT / "scripts" / "local"))

from receiver import Receiver  # noqa: E402 - bench/ is the script's directory
from runtime_api import invoke_once  # noqa: E402

TEMPLATE = ROOT / "cfn" / "CloudExchangeTemplate.yaml"
CE_TREE_FIXTURE = BENCH / "tree-ce.json"
RUN_TIMEOUT_S = 60.0
ACCOUNT = "123456789012"
REGION = "us-east-1"


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


# --- the tree --------------------------------------------------------------


def _is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and not k.startswith("Fn::") and k != "Ref" and _is_plain(v) for k, v in value.items())
    return isinstance(value, (str, int, bool))


def _cfn_yaml_loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that keeps CloudFormation short-form tags (!Ref, !Sub...) as {tag: value}."""

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", intrinsic)
    return Loader


def ce_tree() -> tuple[dict[str, Any], str]:
    """The template's default CE tree when it is written out literally, else the fixture."""
    if TEMPLATE.is_file():
        template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_cfn_yaml_loader())  # noqa: S506 - SafeLoader subclass
        for name, resource in (template.get("Resources") or {}).items():
            props = resource.get("Properties") or {}
            if str(resource.get("Type", "")).startswith("Custom::") and "Directories" in props:
                tree = {k: props[k] for k in ("Directories", "Files") if k in props}
                if _is_plain(tree):
                    return tree, f"{TEMPLATE.relative_to(ROOT)} ({name})"
                return json.loads(CE_TREE_FIXTURE.read_text()), (
                    f"{CE_TREE_FIXTURE.relative_to(ROOT)} ({name} in the template uses intrinsic functions)"
                )
    return json.loads(CE_TREE_FIXTURE.read_text()), str(CE_TREE_FIXTURE.relative_to(ROOT))


def generated_tree(entries: int) -> dict[str, Any]:
    """``entries`` entries in groups of ten: a directory, eight subdirectories, one seed file."""
    directories, files = [], []
    for index in range(entries):
        group, slot = divmod(index, 10)
        base = f"scale/g{group:03d}"
        if slot == 0:
            directories.append({"Path": base, "Owner": "1001", "Group": "1001", "Mode": "0750"})
        elif slot < 9:
            directories.append({"Path": f"{base}/d{slot}", "Owner": "1001", "Group": "1001", "Mode": "0750"})
        else:
            files.append(
                {"Path": f"{base}/seed.conf", "Content": f"group = {group}\n", "Owner": "1001", "Group": "1001", "Mode": "0640", "Overwrite": "false"}
            )
    return {"Directories": directories, "Files": files}


def owned_by_runner(tree: dict[str, Any]) -> dict[str, Any]:
    """Without root, chown can only give a file to ourselves: declare our own ids."""
    if os.geteuid() == 0:
        return tree
    ids = {"Owner": str(os.geteuid()), "Group": str(os.getegid())}
    return {kind: [{**entry, **ids} for entry in entries] for kind, entries in tree.items()}


def entry_count(tree: dict[str, Any]) -> int:
    return len(tree.get("Directories", [])) + len(tree.get("Files", []))


def verify_tree(root: str, tree: dict[str, Any]) -> str | None:
    """The declared entries exist with their type, owner and mode; else what is wrong."""
    for kind, is_type in (("Directories", stat.S_ISDIR), ("Files", stat.S_ISREG)):
        for entry in tree.get(kind, []):
            try:
                st = os.lstat(os.path.join(root, entry["Path"]))
            except OSError as err:
                return f"{entry['Path']}: {err.strerror}"
            want = (int(entry["Owner"]), int(entry["Group"]), int(entry["Mode"], 8))
            have = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
            if not is_type(st.st_mode) or have != want:
                return f"{entry['Path']}: owner/group/mode {have} (want {want}) or wrong type"
    return None


# --- one run ---------------------------------------------------------------


def cfn_create(tree: dict[str, Any], receiver_url: str) -> tuple[dict[str, Any], str]:
    """A CloudFormation Create event and the path its response must be PUT to."""
    request_id = str(uuid.uuid4())
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/ce-bench/{uuid.uuid4()}"
    # Shaped like CloudFormation's pre-signed URL: an encoded key and a SigV4 query.
    path = f"/cloudformation-custom-resource-response-{REGION.replace('-', '')}/" + quote(
        f"{stack_id}|EfsTree|{request_id}", safe=""
    )
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250101T000000Z&X-Amz-SignedHeaders=host"
        f"&X-Amz-Expires=7199&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2F{REGION}%2Fs3%2Faws4_request"
        "&X-Amz-Signature=" + "0" * 64
    )
    token = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ce-efs-tree"
    event = {
        "RequestType": "Create",
        "ServiceToken": token,
        "ResponseURL": f"{receiver_url}{path}?{query}",
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": "EfsTree",
        "ResourceType": "Custom::CloudExchangeEfsTree",
        "ResourceProperties": {"ServiceToken": token, **tree},
    }
    return event, path


def run_once(contestant: Contestant, tree: dict[str, Any], receiver: Receiver, tree_dir: str) -> Sample:
    efs = tempfile.mkdtemp(prefix="ce-bench-efs-", dir=tree_dir)
    try:
        event, path = cfn_create(tree, receiver.base_url)
        env = {**contestant.env, "EFS_MOUNT_PATH": efs}
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
            problem = verify_tree(efs, tree)
        if problem or result.event_sent_ns is None or result.init_ms is None or result.peak_rss_kib is None:
            raise BenchError(f"{contestant.name}: {problem or 'incomplete measurement'}\n--- its output ---\n{result.logs[-3000:]}")
        first = arrivals[0].received_ns
        return Sample(
            init_ms=result.init_ms,
            signal_ms=(first - result.event_sent_ns) / 1e6,
            total_ms=(first - result.started_ns) / 1e6,
            rss_kib=result.peak_rss_kib,
        )
    finally:
        shutil.rmtree(efs, ignore_errors=True)


def measure(
    contestants: list[Contestant], tree: dict[str, Any], runs: int, receiver: Receiver, tree_dir: str
) -> dict[str, list[Sample]]:
    for contestant in contestants:
        run_once(contestant, tree, receiver, tree_dir)  # warm-up: page cache, .pyc files
    samples: dict[str, list[Sample]] = {c.name: [] for c in contestants}
    for _ in range(runs):
        for contestant in contestants:
            samples[contestant.name].append(run_once(contestant, tree, receiver, tree_dir))
    return samples


# --- contestants -----------------------------------------------------------


def _zip_size(files: dict[str, Path]) -> int:
    """Bytes of a deflated zip holding ``files`` (archive name -> file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files.items()):
            archive.write(path, name)
    return len(buffer.getvalue())


def contestants(bootstrap: Path, python: str) -> list[Contestant]:
    python_env = {"AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"}
    handler_files = {p.name: p for p in (CONTESTANTS / "tree_work.py",)}
    import crhelper  # the installed package is what a crhelper function ships

    crhelper_dir = Path(crhelper.__file__).parent
    crhelper_files = {
        f"crhelper/{p.relative_to(crhelper_dir)}": p for p in crhelper_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts
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
            package_bytes=_zip_size({**handler_files, "reference_cfnresponse.py": CONTESTANTS / "reference_cfnresponse.py"}),
            package_note="handler only; needs the managed Python runtime",
        ),
        Contestant(
            name="python crhelper",
            command=[python, "-m", "awslambdaric", "crhelper_handler.handler"],
            cwd=str(CONTESTANTS),
            env={**python_env, "_HANDLER": "crhelper_handler.handler"},
            package_bytes=_zip_size({**handler_files, **crhelper_files, "crhelper_handler.py": CONTESTANTS / "crhelper_handler.py"}),
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
    return f"{num(statistics.median(values))} ({num(min(values))}–{num(max(values))})"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def ratio(python: float, ours: float) -> str:
    return f"{python / ours:.1f}x" if ours > 0 else "n/a"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def metrics(samples: list[Sample]) -> dict[str, list[float]]:
    return {
        "init_ms": [s.init_ms for s in samples],
        "signal_ms": [s.signal_ms for s in samples],
        "total_ms": [s.total_ms for s in samples],
        "rss_mib": [s.rss_kib / 1024 for s in samples],
    }


def report_main(cast: list[Contestant], results: dict[str, list[Sample]]) -> None:
    rows = [["contestant", "init ms", "signal ms", "total ms", "peak RSS MiB", "package KiB"]]
    for c in cast:
        m = metrics(results[c.name])
        rows.append([c.name, spread(m["init_ms"]), spread(m["signal_ms"]), spread(m["total_ms"]), spread(m["rss_mib"]), f"{c.package_bytes / 1024:.0f}"])
    print(table(rows))
    print()
    print("package: " + "; ".join(f"{c.name}: {c.package_note}" for c in cast))
    print()
    ours = {k: statistics.median(v) for k, v in metrics(results[cast[0].name]).items()}
    rows = [["ratio of medians (python / rust)", "init", "signal", "total", "peak RSS"]]
    for c in cast[1:]:
        theirs = {k: statistics.median(v) for k, v in metrics(results[c.name]).items()}
        rows.append([c.name, *(ratio(theirs[k], ours[k]) for k in ("init_ms", "signal_ms", "total_ms", "rss_mib"))])
    print(table(rows))


def report_scaling(cast: list[Contestant], sizes: list[int], by_size: dict[int, dict[str, list[Sample]]]) -> None:
    rows = [["contestant", *(f"signal ms @{n}" for n in sizes), *(f"RSS MiB @{n}" for n in sizes)]]
    for c in cast:
        rows.append(
            [
                c.name,
                *(spread([s.signal_ms for s in by_size[n][c.name]]) for n in sizes),
                *(num(statistics.median([s.rss_kib / 1024 for s in by_size[n][c.name]])) for n in sizes),
            ]
        )
    print(table(rows))
    print()
    steps = list(zip(sizes, sizes[1:]))
    rows = [["cost per entry (µs, medians)", *(f"{a}→{b}" for a, b in steps), "fit: fixed ms + µs/entry", "growth"]]
    for c in cast:
        medians = [statistics.median([s.signal_ms for s in by_size[n][c.name]]) for n in sizes]
        marginal = [(m2 - m1) * 1000 / (b - a) for (a, b), (m1, m2) in zip(steps, zip(medians, medians[1:]))]
        slope, intercept = statistics.linear_regression(sizes, medians) if len(sizes) > 1 else (0.0, medians[0])
        rows.append([c.name, *(f"{v:.1f}" for v in marginal), f"{intercept:.2f} + {slope * 1000:.1f}/entry", growth(marginal)])
    print(table(rows))


def growth(marginal: list[float]) -> str:
    """Linear when each step's per-entry cost stays within 2x of the first step's."""
    if len(marginal) < 2:
        return "n/a (needs 3 sizes)"
    if any(v <= 0 for v in marginal):
        return "inconclusive (a step within noise)"
    ratios = [v / marginal[0] for v in marginal[1:]]
    if max(ratios) > 2:
        return "super-linear"
    return "linear" if min(ratios) >= 0.5 else "sub-linear"


def machine(tree_dir: str) -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    fs = "?"
    try:
        temp = os.path.realpath(tree_dir)
        mounts = [line.split()[1:3] for line in open("/proc/mounts", encoding="utf-8")]
        fs = max((m for m in mounts if temp == m[0] or temp.startswith(m[0].rstrip("/") + "/")), key=lambda m: len(m[0]))[1]
    except (OSError, ValueError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, "
        f"trees built on {fs}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, type=Path, help="the release bootstrap built for this host")
    parser.add_argument("--runs", type=int, default=20, help="cold runs per contestant and tree (default 20)")
    parser.add_argument("--scale-runs", type=int, default=10, help="cold runs per contestant and size in the scaling runs (default 10)")
    parser.add_argument("--sizes", default="10,100,1000", help="tree sizes for the scaling runs, comma-separated; empty to skip")
    parser.add_argument(
        "--tree-dir",
        default=tempfile.gettempdir(),
        help="where each run's fresh mount directory is made (default: the temp dir); a tmpfs "
        "such as /dev/shm takes the disk's flush latency out of the numbers",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with awslambdaric and crhelper (default: this one)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.scale_runs < 1:
        parser.error("--runs and --scale-runs must be at least 1")
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes expects comma-separated integers, got {args.sizes!r}")
    if any(n < 1 for n in sizes):
        parser.error("--sizes must be positive")
    if not os.path.isdir(args.tree_dir):
        parser.error(f"--tree-dir {args.tree_dir} is not a directory")
    if not os.access(args.bootstrap, os.X_OK):
        parser.error(f"{args.bootstrap} is not an executable file")

    cast = contestants(args.bootstrap.resolve(), args.python)
    tree, source = ce_tree()
    print(f"machine: {machine(args.tree_dir)}")
    if os.geteuid() != 0:
        print("not root: entries are declared with the runner's own uid/gid instead of 1001")
    print()
    try:
        with Receiver() as receiver:
            print(f"== CE tree: {entry_count(tree)} entries from {source}; {plural(args.runs, 'cold run')} per contestant ==")
            report_main(cast, measure(cast, owned_by_runner(tree), args.runs, receiver, args.tree_dir))
            if sizes:
                print()
                print(f"== scaling: generated trees of {', '.join(map(str, sizes))} entries; {plural(args.scale_runs, 'cold run')} each ==")
                by_size = {n: measure(cast, owned_by_runner(generated_tree(n)), args.scale_runs, receiver, args.tree_dir) for n in sizes}
                report_scaling(cast, sizes, by_size)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print()
    print(
        "init = process start -> first GET /next; signal = event handed out -> response PUT received; "
        "total = process start -> response PUT received; medians (min–max)."
    )
    print(
        "The Rust function checks every entry before the first write, walks without following "
        "symlinks and flushes each file it writes and that file's directory (fsync); the Python "
        "contestants do none of this, so on a disk their signal time carries no flush."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
