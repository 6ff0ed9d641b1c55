"""Proves the local AWS's claim about its gaps: each gap's test passes with every patch
installed and fails with that gap's patch left out.

local_aws/gaps.py lists the gaps; tests/local_aws has one test per gap, named
test_<id with _ for ->. For each gap this runs that test in a fresh pytest process with
LOCAL_AWS_SKIP_GAPS=<id> (the server then leaves that one patch out) and expects the test
itself to fail: an error while setting it up (a fixture that breaks without the patch) does
not count, nor does a test that passes. Before that, one run of every gap's test with all
patches shows each passes, so a failure without its patch means the patch is what it needs.

Run from the repository root: ``python -m tests.local_aws.gap_patches [--jobs N] [ID...]``
(scripts/test.sh --only gap_patches). Exits non-zero and names every gap whose test did
not fail without its patch.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import tests.local_aws
from local_aws.gaps import GAPS

# One test run, not the whole module: a stuck one is cut off rather than hanging the step.
RUN_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Outcome:
    passed: int
    failed: int  # assertions or exceptions in the test itself
    errors: int  # failures in setting the test up or tearing it down
    seconds: float
    output: str


def gap_tests() -> dict[str, str]:
    """Every gap's id -> the pytest node id of its test."""
    nodes = {}
    for module in pkgutil.iter_modules(tests.local_aws.__path__):
        if module.name.startswith("test_"):
            loaded = importlib.import_module(f"tests.local_aws.{module.name}")
            for name in vars(loaded):
                if name.startswith("test_"):
                    nodes[name] = f"tests/local_aws/{module.name}.py::{name}"
    missing = [gap.id for gap in GAPS if "test_" + gap.id.replace("-", "_") not in nodes]
    if missing:
        raise SystemExit(f"gaps without a test in tests/local_aws: {missing}")
    return {gap.id: nodes["test_" + gap.id.replace("-", "_")] for gap in GAPS}


def run_pytest(node_ids: list[str], skip: str = "") -> Outcome:
    """Runs the tests in a fresh process with LOCAL_AWS_SKIP_GAPS=skip; counts from its JUnit XML."""
    env = dict(os.environ, LOCAL_AWS_SKIP_GAPS=skip)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.xml")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *node_ids],
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            return Outcome(0, 0, 1, time.monotonic() - started, f"timed out after {RUN_TIMEOUT_S} s")
        passed = failed = errors = 0
        if report.exists():
            for case in ElementTree.parse(report).iter("testcase"):
                if case.find("failure") is not None:
                    failed += 1
                elif case.find("error") is not None:
                    errors += 1
                elif case.find("skipped") is None:
                    passed += 1
        else:
            errors = 1
    return Outcome(passed, failed, errors, time.monotonic() - started, output)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="test processes at once (default 2)")
    parser.add_argument("ids", nargs="*", help="only these gaps (default: every gap in gaps.py)")
    args = parser.parse_args(argv)
    tests_of = gap_tests()
    unknown = sorted(set(args.ids) - set(tests_of))
    if unknown:
        parser.error(f"unknown gaps: {unknown}")
    ids = args.ids or list(tests_of)

    control = run_pytest([tests_of[gap] for gap in ids])
    print(
        f"with every patch: {control.passed} passed, {control.failed} failed, {control.errors} errors "
        f"({control.seconds:.0f} s)",
        flush=True,
    )
    if control.failed or control.errors or control.passed < len(ids):
        print("the gaps' tests must pass with every patch first:\n" + tail(control.output, 30))
        return 1

    wrong = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_pytest, [tests_of[gap]], gap): gap for gap in ids}
        for future in concurrent.futures.as_completed(futures):
            gap, outcome = futures[future], future.result()
            if outcome.failed:
                verdict = "fails without its patch"
            elif outcome.errors:
                verdict = "ERROR: its test did not run to a verdict without its patch"
            else:
                verdict = "WRONG: its test passes without its patch"
            print(f"{gap}: {verdict} ({outcome.seconds:.0f} s; {tests_of[gap]})", flush=True)
            if not outcome.failed:
                wrong.append(gap)
                print(tail(outcome.output))
    print(f"{len(ids) - len(wrong)} of {len(ids)} gaps: the test fails without the patch")
    if wrong:
        print(f"not proven: {' '.join(sorted(wrong))}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
