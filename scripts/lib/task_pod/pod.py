"""Runs a rendered ECS task definition as one podman pod, the way Fargate runs the task.

The rules (secrets, access points, start order, health, stop reasons) are in task.py; this
module only turns them into podman calls and EFS latency model mounts, and keeps what it made in a
state directory so that `down` removes exactly that.

Health checks are run here, with `podman exec` on this process's clock, not by podman's own
healthcheck timers: podman 4.3 schedules those through systemd timers (absent on these
machines and in many CI containers), and ECS semantics (start period, consecutive failures,
the task stopping on UNHEALTHY) are simplest to keep exact where the results are read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from scripts.lib.task_pod.task import (
    EfsMount,
    Health,
    State,
    TaskError,
    access_points,
    container_secrets,
    efs_mounts,
    running,
    start_decision,
    start_order,
    stop_reason,
    validate,
    waiting_for,
)

POLL_SECONDS = 0.25


def say(message: str) -> None:
    print(f"run-local: {message}", file=sys.stderr, flush=True)


def podman(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise TaskError(f"podman {args[0]} {args[1] if len(args) > 1 else ''} failed: {done.stderr.strip()}")
    return done


def state_root() -> Path:
    base = os.environ.get("RUN_LOCAL_STATE")
    if base:
        return Path(base)
    if os.geteuid() == 0:
        return Path("/run/ce-run-local")
    return Path(os.environ.get("XDG_RUNTIME_DIR", "/tmp")) / f"ce-run-local-{os.geteuid()}"


class Pod:
    """One task's pod and everything made for it, recorded in DIR/state.json."""

    def __init__(self, name: str):
        self.name = name
        self.dir = state_root() / name
        self.state_file = self.dir / "state.json"
        self.record: dict = {"pod": name, "containers": {}, "standins": [], "secrets": [], "states": {}}

    def load(self) -> bool:
        if not self.state_file.exists():
            return False
        self.record = json.loads(self.state_file.read_text())
        return True

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".new")
        tmp.write_text(json.dumps(self.record, indent=1) + "\n")
        tmp.replace(self.state_file)

    def container_name(self, container: str) -> str:
        return f"{self.name}-{container}"

    # --- making ----------------------------------------------------------------------

    def create_dir(self) -> None:
        if self.dir.exists():
            raise TaskError(f"{self.name} is already up (state in {self.dir}); run down first")
        self.dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o700)
        self.save()

    def mount_efs(self, efs_root: Path, mount: EfsMount, standin: Path) -> Path:
        """Mounts the access point's directory through the EFS latency model, as its identity."""
        directory = efs_root / mount.directory
        if not directory.exists():
            if mount.creation is None:
                raise TaskError(
                    f"volume {mount.volume}: /{mount.directory} does not exist on the file system and its "
                    "access point has no CreationInfo (the mount fails on EFS too)"
                )
            uid, gid, mode = mount.creation
            directory.mkdir(parents=True)
            os.chown(directory, uid, gid)
            directory.chmod(mode)
        target = self.dir / "efs" / mount.volume
        target.mkdir(parents=True)
        identity = []
        if mount.uid is not None:
            identity = ["--as-uid", str(mount.uid), "--as-gid", str(mount.gid)]
            if mount.secondary_gids:
                identity += ["--secondary-gids", ",".join(map(str, mount.secondary_gids))]
        log = (self.dir / f"efs-{mount.volume}.log").open("w")
        process = subprocess.Popen(
            [str(standin), "--latency-ms", "0", "--cache-secs", "1", *identity, str(directory), str(target)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.record["standins"].append({"pid": process.pid, "mount": str(target)})
        self.save()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (self.dir / f"efs-{mount.volume}.log").read_text().startswith("ready"):
                return target
            if process.poll() is not None:
                break
            time.sleep(0.05)
        output = (self.dir / f"efs-{mount.volume}.log").read_text()
        raise TaskError(f"volume {mount.volume}: the EFS latency model did not mount: {output}")

    def create_pod(self) -> None:
        # --network none: the containers share one network namespace with only a loopback,
        # as the containers of an awsvpc task share its ENI and localhost.
        podman("pod", "create", "--name", self.name, "--network", "none")
        self.record["pod_created"] = True
        self.save()

    def create_secret(self, container: str, variable: str, value: str) -> str:
        """A podman secret for one variable: the value goes on stdin, never on a command line,
        and `podman inspect` shows only the secret's name."""
        name = f"{self.name}-{container}-{variable}"
        podman("secret", "create", name, "-", stdin=value)
        self.record["secrets"].append(name)
        self.save()
        return name

    def create_container(self, definition: dict, image: str, volumes: dict[str, Path], secrets: dict[str, str]) -> None:
        name = definition["name"]
        args = ["create", "--pod", self.name, "--name", self.container_name(name)]
        if "entryPoint" in definition:
            args += ["--entrypoint", json.dumps(definition["entryPoint"])]
        for entry in definition.get("environment", []):
            args += ["--env", f"{entry['name']}={entry['value']}"]
        for variable, value in secrets.items():
            secret = self.create_secret(name, variable, value)
            args += ["--secret", f"{secret},type=env,target={variable}"]
        if definition.get("user"):
            args += ["--user", definition["user"]]
        if definition.get("workingDirectory"):
            args += ["--workdir", definition["workingDirectory"]]
        if definition.get("readonlyRootFilesystem"):
            # No writable tmpfs on /tmp, /run: ECS gives none either.
            args += ["--read-only", "--read-only-tmpfs=false"]
        if definition.get("linuxParameters", {}).get("initProcessEnabled"):
            args += ["--init"]
        if "stopTimeout" in definition:
            args += ["--stop-timeout", str(definition["stopTimeout"])]
        for mount in definition.get("mountPoints", []):
            source = volumes[mount["sourceVolume"]]
            suffix = ":ro" if mount.get("readOnly") else ""
            args += ["--volume", f"{source}:{mount['containerPath']}{suffix}"]
        args += [image, *definition.get("command", [])]
        podman(*args)
        self.record["containers"][name] = self.container_name(name)
        self.save()

    # --- watching --------------------------------------------------------------------

    def inspect(self, names: list[str]) -> dict[str, dict]:
        if not names:
            return {}
        done = podman("inspect", "--type", "container", *[self.container_name(n) for n in names], check=False)
        found = json.loads(done.stdout or "[]")
        by_name = {entry["Name"]: entry["State"] for entry in found}
        return {n: by_name[self.container_name(n)] for n in names if self.container_name(n) in by_name}

    def stop(self) -> None:
        podman("pod", "stop", self.name, check=False)

    # --- removing --------------------------------------------------------------------

    def down(self) -> None:
        if self.record.get("pod_created"):
            podman("pod", "stop", self.name, check=False)
            podman("pod", "rm", "--force", self.name, check=False)
        for secret in self.record["secrets"]:
            podman("secret", "rm", secret, check=False)
        for standin in self.record["standins"]:
            subprocess.run(["fusermount3", "-u", standin["mount"]], capture_output=True, check=False)
            stop_process(standin["pid"])
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(pid: int) -> None:
    """Waits for an EFS latency model we started to exit after its unmount; ends it if it lingers.
    (`up` has exited, so the stand-in is no child of ours: an exited one may stay a zombie
    until init reaps it, which counts as gone.)"""
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X") and "(efs-latency)" in stat


def run_check(pod: Pod, container: str, health: Health) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            ["podman", "exec", pod.container_name(container), *health.argv()],
            capture_output=True,
            text=True,
            timeout=health.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {health.timeout:g}s"
    return done.returncode == 0, (done.stdout + done.stderr)


def read_secrets(source: str | None) -> dict[str, str]:
    """Secret ARN -> SecretString from a file, or from stdin for '-' (so they need no file)."""
    if not source:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        secrets = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskError(f"secrets: not JSON ({err.msg})") from None
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        raise TaskError("secrets: expected a JSON object of secret ARN -> SecretString")
    return secrets


def up(options) -> int:
    task = json.loads(Path(options.task_definition).read_text())
    validate(task)
    points = access_points(json.loads(Path(options.access_points).read_text()))
    secrets = read_secrets(options.secrets)
    images = dict(options.image)
    definitions = task["containerDefinitions"]
    unknown = set(images) - {c["name"] for c in definitions}
    if unknown:  # e.g. ui-certificate, there only with an operator certificate
        say(f"--image ignored for {', '.join(sorted(unknown))}: no such container in this task definition")
    resolved = {c["name"]: container_secrets(c, secrets) for c in definitions}
    mounts = efs_mounts(task, points)
    pod = Pod(options.name or task["family"])
    pod.create_dir()
    try:
        return run_task(pod, task, options, images, resolved, mounts)
    except BaseException:
        say(f"stopping: removing what was made for {pod.name}")
        pod.down()
        raise


def run_task(pod: Pod, task: dict, options, images: dict, resolved: dict, mounts: dict) -> int:
    definitions = task["containerDefinitions"]
    volumes: dict[str, Path] = {}
    for volume in task.get("volumes", []):
        if volume["name"] in mounts:
            standin = Path(options.efs_latency)
            volumes[volume["name"]] = pod.mount_efs(Path(options.efs), mounts[volume["name"]], standin)
        else:  # a task-scoped bind volume: empty, gone with the task
            volumes[volume["name"]] = pod.dir / "volumes" / volume["name"]
            volumes[volume["name"]].mkdir(parents=True)
    pod.create_pod()
    for definition in definitions:
        image = images.get(definition["name"], definition["image"])
        pod.create_container(definition, image, volumes, resolved[definition["name"]])
    say(f"pod {pod.name}: {len(definitions)} containers created; starting in dependsOn order")

    states = {c["name"]: State(health=None) for c in definitions}
    checks: dict[str, Health] = {}
    pending: dict[str, Future] = {}
    order = start_order(definitions)
    by_name = {c["name"]: c for c in definitions}
    deadline = time.monotonic() + options.timeout
    reason = None
    with ThreadPoolExecutor(max_workers=max(1, len(definitions))) as pool:
        while True:
            now = time.monotonic()
            observe(pod, states, checks)
            for name, future in list(pending.items()):
                if future.done():
                    passed, output = future.result()
                    before = checks[name].status
                    states[name].health = checks[name].record(time.monotonic(), passed, output)
                    if states[name].health != before:
                        say(f"{name}: health {states[name].health}" + ("" if passed else f" ({output.strip()[-200:]})"))
                    del pending[name]
            for name, health in checks.items():
                if name not in pending and states[name].status == "RUNNING" and health.due(now):
                    pending[name] = pool.submit(run_check, pod, name, health)
            reason = stop_reason(definitions, states)
            if reason:
                break
            if running(definitions, states):
                break
            for name in order:
                if states[name].status != "PENDING":
                    continue
                verdict, _ = start_decision(by_name[name], states)
                if verdict == "start":
                    podman("start", pod.container_name(name))
                    states[name].status = "RUNNING"
                    if "healthCheck" in by_name[name]:
                        checks[name] = Health.from_definition(
                            by_name[name]["healthCheck"], time.monotonic(), options.health_interval_cap
                        )
                        states[name].health = "UNKNOWN"
                    say(f"{name}: started")
            if now > deadline:
                waiting = "; ".join(waiting_for(definitions, states))
                reason = f"timed out after {options.timeout:g}s waiting for: {waiting}"
                break
            time.sleep(POLL_SECONDS)
    pod.record["states"] = {name: asdict(state) for name, state in states.items()}
    if reason:
        pod.record["stoppedReason"] = reason
        pod.save()
        pod.stop()
        say(f"task stopped: {reason}")
        print(f"stoppedReason: {reason}")
        return 1
    pod.save()
    say(f"task {pod.name} is RUNNING: every essential container runs, healthy where checked")
    return 0


def observe(pod: Pod, states: dict[str, State], checks: dict[str, Health]) -> None:
    started = [name for name, state in states.items() if state.status == "RUNNING"]
    for name, found in pod.inspect(started).items():
        if found.get("Status") in ("exited", "stopped"):
            states[name].status = "STOPPED"
            states[name].exit_code = int(found.get("ExitCode", -1))
            checks.pop(name, None)
            say(f"{name}: exited with code {states[name].exit_code}")


def status(options) -> int:
    pod = Pod(options.name or json.loads(Path(options.task_definition).read_text())["family"])
    if not pod.load():
        print(f"{pod.name}: not up")
        return 1
    known = pod.record.get("states", {})
    found = pod.inspect(list(pod.record["containers"]))
    print(f"{'CONTAINER':<20} {'STATE':<10} {'HEALTH (at up)':<15} EXIT")
    for name in pod.record["containers"]:
        state = found.get(name, {})
        health = (known.get(name) or {}).get("health") or "-"
        exit_code = state.get("ExitCode", "-") if state.get("Status") in ("exited", "stopped") else "-"
        print(f"{name:<20} {state.get('Status', 'gone'):<10} {health:<15} {exit_code}")
    if pod.record.get("stoppedReason"):
        print(f"stoppedReason: {pod.record['stoppedReason']}")
    return 0


def down(options) -> int:
    pod = Pod(options.name or json.loads(Path(options.task_definition).read_text())["family"])
    if not pod.load():
        say(f"{pod.name}: nothing to remove")
        return 0
    pod.down()
    say(f"{pod.name}: removed its pod, containers, secrets and EFS latency model mounts")
    return 0
