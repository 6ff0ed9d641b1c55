"""Command line of scripts/run-local.sh: up, status, down (python -m scripts.lib.task_pod)."""

from __future__ import annotations

import argparse
import sys

from scripts.lib.task_pod import pod
from scripts.lib.task_pod.task import TaskError


def image_option(text: str) -> tuple[str, str]:
    container, sep, ref = text.partition("=")
    if not sep or not container or not ref:
        raise argparse.ArgumentTypeError(f"expected CONTAINER=REF, got {text!r}")
    return container, ref


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="run-local.sh", description="Runs a rendered task definition as a pod.")
    commands = top.add_subparsers(dest="command", required=True)
    for name in ("up", "status", "down"):
        sub = commands.add_parser(name)
        sub.add_argument("--task-definition", required=True, help="RegisterTaskDefinition input (rendered)")
        sub.add_argument("--name", help="pod name (default: the task definition's family)")
        if name == "up":
            sub.add_argument("--efs", required=True, help="the folder standing in for the file system's root")
            sub.add_argument("--access-points", required=True, help="aws efs describe-access-points output")
            sub.add_argument("--secrets", help="JSON object: secret ARN -> SecretString ('-': stdin)")
            sub.add_argument("--image", action="append", type=image_option, default=[], metavar="CONTAINER=REF")
            sub.add_argument("--timeout", type=float, default=600, help="seconds to reach RUNNING (default 600)")
            sub.add_argument("--efs-latency", required=True, help="the efs-latency binary")
            sub.add_argument(
                "--health-interval-cap",
                type=float,
                help="tests only: run health checks at most this many seconds apart (ECS uses the interval)",
            )
    return top


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    try:
        return {"up": pod.up, "status": pod.status, "down": pod.down}[options.command](options)
    except TaskError as err:
        print(f"run-local: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
