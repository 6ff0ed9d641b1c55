"""The ECS rules scripts/run-local.sh applies (scripts/lib/task_pod/task.py), one table each.

Run: python -m pytest -q tests/runtime/test_task_pod.py
"""

from __future__ import annotations

import io
import json
import re
from pathlib import PurePosixPath

import pytest

from scripts.lib.task_pod.pod import read_secrets
from scripts.lib.task_pod.task import (
    Health,
    State,
    TaskError,
    access_points,
    container_secrets,
    dependency,
    efs_mounts,
    running,
    secret_value,
    start_decision,
    start_order,
    stop_reason,
    validate,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ce-ui-AbCdEf"
SECRETS = {ARN: json.dumps({"certificate": "CERT", "privateKey": "KEY"}), "arn:plain": "p4ss"}


@pytest.mark.parametrize(
    ("value_from", "expected"),
    [
        ("arn:plain", "p4ss"),
        (ARN, SECRETS[ARN]),
        (f"{ARN}:certificate::", "CERT"),
        (f"{ARN}:privateKey:AWSCURRENT:", "KEY"),
        (f"{ARN}:::", SECRETS[ARN]),
    ],
)
def test_secret_value(value_from, expected):
    assert secret_value(value_from, SECRETS) == expected


@pytest.mark.parametrize(
    ("value_from", "names"),
    [
        (f"{ARN}:missing::", "no key 'missing'"),
        (f"{ARN}:certificate:AWSPREVIOUS:", "only the current version"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:other:k::", "no secret"),
        ("arn:nothing", "not in the secrets file"),
    ],
)
def test_secret_errors_name_the_secret(value_from, names):
    with pytest.raises(TaskError, match=names):
        secret_value(value_from, SECRETS)


def test_container_secrets_error_names_container_and_variable():
    definition = {"name": "ui", "secrets": [{"name": "JWT_SECRET", "valueFrom": "arn:nothing"}]}
    with pytest.raises(TaskError, match="container ui: secret JWT_SECRET"):
        container_secrets(definition, SECRETS)


AP = {
    "AccessPoints": [
        {
            "AccessPointId": "fsap-1",
            "PosixUser": {"Uid": 1001, "Gid": 1001, "SecondaryGids": [2000]},
            "RootDirectory": {
                "Path": "/ce/data/rabbitmq",
                "CreationInfo": {"OwnerUid": 1001, "OwnerGid": 1001, "Permissions": "0750"},
            },
        }
    ]
}


def efs_task(ap_id="fsap-1", root=None):
    config = {"fileSystemId": "fs-1", "authorizationConfig": {"accessPointId": ap_id}}
    if root:
        config["rootDirectory"] = root
    return {"volumes": [{"name": "data", "efsVolumeConfiguration": config}, {"name": "scratch"}]}


def test_efs_mounts_resolve_the_access_point():
    mounts = efs_mounts(efs_task(), access_points(AP))
    assert list(mounts) == ["data"]
    mount = mounts["data"]
    assert (mount.directory, mount.uid, mount.gid, mount.secondary_gids) == (
        PurePosixPath("ce/data/rabbitmq"),
        1001,
        1001,
        (2000,),
    )
    assert mount.creation == (1001, 1001, 0o750)


@pytest.mark.parametrize(
    ("task", "names"),
    [(efs_task("fsap-9"), "access point fsap-9"), (efs_task(root="/x"), "rootDirectory must be /")],
)
def test_efs_mount_errors_name_the_volume(task, names):
    with pytest.raises(TaskError, match=f"volume data: .*{names}|{names}"):
        efs_mounts(task, access_points(AP))


# --- dependencies ---


@pytest.mark.parametrize(
    ("condition", "state", "verdict"),
    [
        ("START", State(), "wait"),
        ("START", State("RUNNING"), "met"),
        ("START", State("STOPPED", 1), "met"),
        ("COMPLETE", State("RUNNING"), "wait"),
        ("COMPLETE", State("STOPPED", 3), "met"),
        ("SUCCESS", State("RUNNING"), "wait"),
        ("SUCCESS", State("STOPPED", 0), "met"),
        ("SUCCESS", State("STOPPED", 1), "never"),
        ("HEALTHY", State("RUNNING", health="UNKNOWN"), "wait"),
        ("HEALTHY", State("RUNNING", health="HEALTHY"), "met"),
        ("HEALTHY", State("RUNNING", health="UNHEALTHY"), "never"),
        ("HEALTHY", State("STOPPED", 0, "HEALTHY"), "never"),
    ],
)
def test_dependency(condition, state, verdict):
    assert dependency(condition, state) == verdict


DEFS = [
    {"name": "init", "essential": False},
    {"name": "db", "healthCheck": {"command": ["CMD", "true"]}},
    {
        "name": "app",
        "dependsOn": [
            {"containerName": "init", "condition": "SUCCESS"},
            {"containerName": "db", "condition": "HEALTHY"},
        ],
    },
]


def test_start_decision_waits_then_starts():
    states = {"init": State("RUNNING"), "db": State("RUNNING", health="UNKNOWN"), "app": State()}
    assert start_decision(DEFS[2], states) == ("wait", "init SUCCESS, db HEALTHY")
    states["init"] = State("STOPPED", 0)
    states["db"].health = "HEALTHY"
    assert start_decision(DEFS[2], states) == ("start", "")


@pytest.mark.parametrize(
    ("states", "names"),
    [
        (
            {"init": State("STOPPED", 2), "db": State("RUNNING", health="HEALTHY")},
            r"app cannot start.*init SUCCESS.*code 2",
        ),
        ({"init": State("RUNNING"), "db": State("STOPPED", 0)}, "Essential container in task exited: db"),
        ({"init": State("RUNNING"), "db": State("RUNNING", health="UNHEALTHY")}, "health checks: db is UNHEALTHY"),
    ],
)
def test_stop_reason_names_the_container(states, names):
    states = {**states, "app": State()}
    assert stop_reason(DEFS, states) is not None
    assert re.search(names, stop_reason(DEFS, states))


def test_non_essential_exit_does_not_stop_the_task():
    states = {"init": State("STOPPED", 1), "db": State("RUNNING", health="HEALTHY"), "app": State("RUNNING")}
    # app started before init failed is not possible; the task goes on without it
    assert stop_reason(DEFS, states) is None
    assert running(DEFS, states)


def test_running_needs_essential_healthy():
    states = {"init": State("STOPPED", 0), "db": State("RUNNING", health="UNKNOWN"), "app": State("RUNNING")}
    assert not running(DEFS, states)


def test_start_order_and_cycles():
    assert start_order(DEFS) == ["init", "db", "app"]
    cyclic = [
        {"name": "a", "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "dependsOn": [{"containerName": "a", "condition": "START"}]},
    ]
    with pytest.raises(TaskError, match="cycle"):
        validate({"containerDefinitions": cyclic})


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (
            lambda d: d[2]["dependsOn"].append({"containerName": "nope", "condition": "START"}),
            "names no container nope",
        ),
        (lambda d: d[2]["dependsOn"].append({"containerName": "db", "condition": "READY"}), "condition READY"),
        (lambda d: d[1].update(mountPoints=[{"sourceVolume": "x", "containerPath": "/x"}]), "no volume x"),
    ],
)
def test_validate_names_the_field(change, names):
    definitions = json.loads(json.dumps(DEFS))
    change(definitions)
    with pytest.raises(TaskError, match=names):
        validate({"containerDefinitions": definitions})


# --- health ---


def test_health_start_period_and_retries():
    health = Health.from_definition(
        {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "retries": 2, "startPeriod": 10}, started_at=0
    )
    assert health.argv() == ["/bin/sh", "-c", "exit 1"]
    assert not health.due(4.9) and health.due(5)
    assert health.record(5, False) == "UNKNOWN"  # inside the start period: not counted
    assert health.record(10, False) == "UNKNOWN"  # first counted failure
    assert health.record(15, False) == "UNHEALTHY"  # retries reached
    assert health.record(20, True) == "HEALTHY"  # a pass resets


def test_health_success_in_start_period_is_healthy_and_failures_reset():
    health = Health.from_definition({"command": ["CMD", "probe"], "retries": 3}, started_at=100)
    assert health.interval == 30 and health.timeout == 5
    assert health.argv() == ["probe"]
    assert health.record(130, True) == "HEALTHY"
    health.record(160, False)
    health.record(190, False)
    assert health.record(220, True) == "HEALTHY"
    assert health.failures == 0


def test_health_interval_cap_is_only_an_override():
    health = Health.from_definition({"command": ["CMD", "x"], "interval": 30}, 0, interval_cap=1)
    assert health.interval == 1


def test_health_refuses_unknown_kind():
    with pytest.raises(TaskError, match="CMD or CMD-SHELL"):
        Health(command=["NONE"]).argv()


@pytest.mark.parametrize(
    ("text", "names"),
    [("not json", "not JSON"), ('{"arn": 1}', "ARN -> SecretString"), ("[]", "ARN -> SecretString")],
)
def test_read_secrets_refuses_what_is_not_arn_to_string(tmp_path, text, names):
    path = tmp_path / "secrets.json"
    path.write_text(text)
    with pytest.raises(TaskError, match=names):
        read_secrets(str(path))


def test_read_secrets_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"arn:plain": "p4ss"}'))
    assert read_secrets("-") == {"arn:plain": "p4ss"}
    assert read_secrets(None) == {}
