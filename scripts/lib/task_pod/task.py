"""What ECS decides when it runs a task, as plain functions over plain data (no podman here).

scripts/run-local.sh runs a rendered task definition as a pod; this module holds every rule it
applies, so each can be tested alone (tests/runtime/test_task_pod.py):

- secrets: a container's `secrets[].valueFrom` resolved from a map of secret ARN to
  SecretString, including the `ARN:json-key:version-stage:version-id` form ECS accepts
  (only the AWSCURRENT version exists locally, so a stage or id other than empty is refused);
- volumes: each EFS volume resolved to its access point (`describe-access-points` output):
  the directory under the file system's root and the identity every operation is made as;
- dependencies: when a container may start (`dependsOn` with START, COMPLETE, SUCCESS,
  HEALTHY) and when a condition can no longer be met;
- health: a container's health check evaluated as the ECS agent has Docker evaluate it (the
  first check one interval after the start; a failure inside the start period does not count
  but a success there makes it HEALTHY; `retries` consecutive failures after it make it
  UNHEALTHY; a check that outlives its timeout fails);
- stopping: the reason the task stops, naming the container, in the words of ECS's
  `stoppedReason` ("Essential container in task exited", "Task failed container health
  checks") followed by the container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# ECS's health-check defaults (RegisterTaskDefinition, HealthCheck).
DEFAULT_INTERVAL = 30
DEFAULT_TIMEOUT = 5
DEFAULT_RETRIES = 3
DEFAULT_START_PERIOD = 0

CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")


class TaskError(Exception):
    """A task definition, access point or secret this runner cannot use; the text names it."""


# --- secrets ----------------------------------------------------------------------------


def secret_value(value_from: str, secrets: dict[str, str]) -> str:
    """The value ECS would inject for VALUE_FROM, given SecretString by secret ARN (or name).

    `ARN` gives the whole SecretString; `ARN:KEY::` (and `ARN:KEY:AWSCURRENT:`) the value of
    KEY in it, read as a JSON object, as ECS does.
    """
    if value_from in secrets:
        return secrets[value_from]
    parts = value_from.split(":")
    # arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME is 7 fields; then key, stage, id.
    if len(parts) == 10 and parts[2] == "secretsmanager":
        arn, key, stage, version = ":".join(parts[:7]), parts[7], parts[8], parts[9]
        if stage not in ("", "AWSCURRENT") or version:
            raise TaskError(f"{value_from}: only the current version of a secret is known here")
        if arn not in secrets:
            raise TaskError(f"{value_from}: no secret {arn} in the secrets file")
        if not key:
            return secrets[arn]
        try:
            document = json.loads(secrets[arn])
        except json.JSONDecodeError as err:
            raise TaskError(f"{value_from}: secret {arn} is not a JSON object ({err.msg})") from None
        if not isinstance(document, dict) or key not in document:
            raise TaskError(f"{value_from}: secret {arn} has no key {key!r}")
        value = document[key]
        return value if isinstance(value, str) else json.dumps(value)
    raise TaskError(f"{value_from}: not in the secrets file")


def container_secrets(definition: dict, secrets: dict[str, str]) -> dict[str, str]:
    """Environment variable -> value for a container's `secrets`; errors name the container."""
    values = {}
    for entry in definition.get("secrets", []):
        try:
            values[entry["name"]] = secret_value(entry["valueFrom"], secrets)
        except TaskError as err:
            raise TaskError(f"container {definition['name']}: secret {entry['name']}: {err}") from None
    return values


# --- volumes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EfsMount:
    """An EFS volume as a pod sees it: a directory of the file system and the identity forced."""

    volume: str
    directory: PurePosixPath  # relative to the file system's root
    uid: int | None  # None: no access point, the caller's identity (not used by this template)
    gid: int | None
    secondary_gids: tuple[int, ...] = ()
    creation: tuple[int, int, int] | None = None  # owner uid, gid, mode when EFS creates it


def access_points(described: dict) -> dict[str, dict]:
    """Access point id -> description, from `aws efs describe-access-points` output."""
    if not isinstance(described.get("AccessPoints"), list):
        raise TaskError("access points file: no AccessPoints list (expected describe-access-points output)")
    return {ap["AccessPointId"]: ap for ap in described["AccessPoints"]}


def efs_mounts(task: dict, points: dict[str, dict]) -> dict[str, EfsMount]:
    """Volume name -> EfsMount for every EFS volume of TASK."""
    mounts = {}
    for volume in task.get("volumes", []):
        efs = volume.get("efsVolumeConfiguration")
        if efs is None:
            continue
        name = volume["name"]
        ap_id = efs.get("authorizationConfig", {}).get("accessPointId")
        if not ap_id:
            root = PurePosixPath(efs.get("rootDirectory", "/"))
            mounts[name] = EfsMount(name, relative(root, name), None, None)
            continue
        if efs.get("rootDirectory", "/") not in ("/", ""):
            raise TaskError(f"volume {name}: rootDirectory must be / with an access point (ECS refuses it)")
        ap = points.get(ap_id)
        if ap is None:
            raise TaskError(f"volume {name}: access point {ap_id} is not in the access points file")
        root = ap.get("RootDirectory", {})
        user = ap.get("PosixUser")
        creation = root.get("CreationInfo")
        mounts[name] = EfsMount(
            volume=name,
            directory=relative(PurePosixPath(root.get("Path", "/")), name),
            uid=None if user is None else int(user["Uid"]),
            gid=None if user is None else int(user["Gid"]),
            secondary_gids=tuple(int(g) for g in (user or {}).get("SecondaryGids", [])),
            creation=None
            if creation is None
            else (int(creation["OwnerUid"]), int(creation["OwnerGid"]), int(creation["Permissions"], 8)),
        )
    return mounts


def relative(path: PurePosixPath, volume: str) -> PurePosixPath:
    if not path.is_absolute() or ".." in path.parts:
        raise TaskError(f"volume {volume}: directory {path} must be absolute, without ..")
    return path.relative_to("/")


# --- dependencies -----------------------------------------------------------------------


@dataclass
class State:
    """What is known of one container: PENDING (not started), RUNNING or STOPPED."""

    status: str = "PENDING"
    exit_code: int | None = None
    health: str | None = None  # None: no health check; else UNKNOWN, HEALTHY, UNHEALTHY


def dependency(condition: str, state: State) -> str:
    """'met', 'wait' or 'never' for one dependsOn CONDITION on a container in STATE."""
    if condition == "START":
        return "wait" if state.status == "PENDING" else "met"
    if condition == "COMPLETE":
        return "met" if state.status == "STOPPED" else "wait"
    if condition == "SUCCESS":
        if state.status != "STOPPED":
            return "wait"
        return "met" if state.exit_code == 0 else "never"
    if condition == "HEALTHY":
        if state.health == "HEALTHY" and state.status == "RUNNING":
            return "met"
        if state.status == "STOPPED" or state.health == "UNHEALTHY":
            return "never"
        return "wait"
    raise TaskError(f"unknown dependsOn condition {condition}")


def why_never(name: str, state: State) -> str:
    if state.status == "STOPPED":
        return f"{name} exited with code {state.exit_code}"
    return f"{name} is {state.health}"


def start_decision(definition: dict, states: dict[str, State]) -> tuple[str, str]:
    """('start', '') when every dependency is met, ('wait', what) or ('never', why)."""
    waiting = []
    for dep in definition.get("dependsOn", []):
        other, condition = dep["containerName"], dep["condition"]
        verdict = dependency(condition, states[other])
        if verdict == "never":
            return "never", (
                f"container {definition['name']} cannot start: its dependency {other} {condition} "
                f"can no longer be met ({why_never(other, states[other])})"
            )
        if verdict == "wait":
            waiting.append(f"{other} {condition}")
    return ("wait", ", ".join(waiting)) if waiting else ("start", "")


def validate(task: dict) -> None:
    """Refuses what ECS's RegisterTaskDefinition refuses and this runner relies on."""
    definitions = task.get("containerDefinitions")
    if not definitions:
        raise TaskError("task definition: no containerDefinitions")
    names = [c.get("name") for c in definitions]
    if len(set(names)) != len(names) or None in names:
        raise TaskError("task definition: container names must be present and unique")
    if not any(c.get("essential", True) for c in definitions):
        raise TaskError("task definition: at least one container must be essential")
    volumes = {v["name"] for v in task.get("volumes", [])}
    for c in definitions:
        for dep in c.get("dependsOn", []):
            if dep.get("containerName") not in names:
                raise TaskError(f"container {c['name']}: dependsOn names no container {dep.get('containerName')}")
            if dep.get("condition") not in CONDITIONS:
                raise TaskError(f"container {c['name']}: dependsOn condition {dep.get('condition')}")
        for mount in c.get("mountPoints", []):
            if mount.get("sourceVolume") not in volumes:
                raise TaskError(f"container {c['name']}: mount point names no volume {mount.get('sourceVolume')}")
    order = start_order(definitions)
    if len(order) != len(definitions):
        raise TaskError("task definition: dependsOn has a cycle")


def start_order(definitions: list[dict]) -> list[str]:
    """Container names with every dependency before its dependents (the definition's order
    among equals); a container in a cycle is left out."""
    order: list[str] = []
    remaining = list(definitions)
    while remaining:
        ready = [c for c in remaining if all(d["containerName"] in order for d in c.get("dependsOn", []))]
        if not ready:
            break
        order.extend(c["name"] for c in ready)
        remaining = [c for c in remaining if c not in ready]
    return order


# --- health -----------------------------------------------------------------------------


@dataclass
class Health:
    """One container's health check, evaluated on the caller's clock (seconds)."""

    command: list[str]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = DEFAULT_START_PERIOD
    started_at: float = 0.0
    status: str = "UNKNOWN"
    failures: int = 0
    next_check: float = field(default=0.0)
    log: list[str] = field(default_factory=list)

    @classmethod
    def from_definition(cls, check: dict, started_at: float, interval_cap: float | None = None) -> Health:
        interval = float(check.get("interval", DEFAULT_INTERVAL))
        if interval_cap is not None:
            interval = min(interval, interval_cap)
        health = cls(
            command=list(check["command"]),
            interval=interval,
            timeout=float(check.get("timeout", DEFAULT_TIMEOUT)),
            retries=int(check.get("retries", DEFAULT_RETRIES)),
            start_period=float(check.get("startPeriod", DEFAULT_START_PERIOD)),
            started_at=started_at,
        )
        health.next_check = started_at + health.interval
        return health

    def argv(self) -> list[str]:
        """The command to exec in the container: CMD runs as given, CMD-SHELL through sh -c."""
        kind, rest = self.command[0], self.command[1:]
        if kind == "CMD":
            return rest
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(rest)]
        raise TaskError(f"health check command must start with CMD or CMD-SHELL, not {kind!r}")

    def due(self, now: float) -> bool:
        return now >= self.next_check

    def record(self, now: float, passed: bool, output: str = "") -> str:
        """Takes one check's result at NOW (when it ended); returns the new status."""
        self.next_check = now + self.interval
        self.log = [*self.log[-4:], output.strip()[-300:]]
        if passed:
            self.failures = 0
            self.status = "HEALTHY"
        elif now - self.started_at >= self.start_period:
            self.failures += 1
            if self.failures >= self.retries:
                self.status = "UNHEALTHY"
        return self.status


# --- stopping ---------------------------------------------------------------------------


def stop_reason(definitions: list[dict], states: dict[str, State]) -> str | None:
    """Why the task stops now, naming the container, or None while it may go on."""
    for c in definitions:
        state = states[c["name"]]
        essential = c.get("essential", True)
        if essential and state.status == "STOPPED":
            return f"Essential container in task exited: {c['name']} exited with code {state.exit_code}"
        if essential and state.health == "UNHEALTHY":
            return f"Task failed container health checks: {c['name']} is UNHEALTHY"
    for c in definitions:
        if states[c["name"]].status == "PENDING":
            verdict, why = start_decision(c, states)
            if verdict == "never":
                return why
    return None


def running(definitions: list[dict], states: dict[str, State]) -> bool:
    """Every essential container is running, and healthy where it has a health check."""
    for c in definitions:
        if not c.get("essential", True):
            continue
        state = states[c["name"]]
        if state.status != "RUNNING" or state.health not in (None, "HEALTHY"):
            return False
    return True


def waiting_for(definitions: list[dict], states: dict[str, State]) -> list[str]:
    """What keeps the task from running, one phrase per essential container."""
    phrases = []
    for c in definitions:
        state = states[c["name"]]
        if not c.get("essential", True):
            continue
        if state.status == "PENDING":
            phrases.append(f"{c['name']} (not started: {start_decision(c, states)[1] or 'starting'})")
        elif state.health not in (None, "HEALTHY"):
            phrases.append(f"{c['name']} (health {state.health})")
    return phrases
