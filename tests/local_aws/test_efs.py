"""Gaps efs-getatt, efs-access-point-ref, efs-file-system-policy."""

from __future__ import annotations

import json
from typing import Any

from tests.local_aws.support import Aws, Deploy, outputs, unique


def _file_system(policy_principal: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"Encrypted": True}
    if policy_principal:
        properties["FileSystemPolicy"] = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": policy_principal}, "Action": "elasticfilesystem:ClientMount"}
            ],
        }
    return {"Type": "AWS::EFS::FileSystem", "DeletionPolicy": "Retain", "Properties": properties}


def _template(policy_principal: str | None = None) -> dict[str, Any]:
    return {
        "Resources": {
            "Fs": _file_system(policy_principal),
            "Ap": {"Type": "AWS::EFS::AccessPoint", "Properties": {"FileSystemId": {"Ref": "Fs"}}},
        },
        "Outputs": {
            "FsArn": {"Value": {"Fn::GetAtt": ["Fs", "Arn"]}},
            "FsId": {"Value": {"Fn::GetAtt": ["Fs", "FileSystemId"]}},
            "ApArn": {"Value": {"Fn::GetAtt": ["Ap", "Arn"]}},
            "ApId": {"Value": {"Fn::GetAtt": ["Ap", "AccessPointId"]}},
            "ApRef": {"Value": {"Ref": "Ap"}},
            "FsRef": {"Value": {"Ref": "Fs"}},
        },
    }


def test_efs_getatt(deploy: Deploy) -> None:
    stack = deploy(_template())
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = outputs(stack)
    assert out["FsId"] == out["FsRef"] and out["FsId"].startswith("fs-")
    assert out["FsArn"].endswith(f":file-system/{out['FsId']}")
    assert out["ApArn"].endswith(f":access-point/{out['ApId']}")


def test_efs_access_point_ref(deploy: Deploy) -> None:
    out = outputs(deploy(_template()))
    assert out["ApRef"].startswith("fsap-") and out["ApRef"] == out["ApId"]


def test_efs_file_system_policy(deploy: Deploy, aws: Aws) -> None:
    name = unique("efs-policy")
    first, second = "arn:aws:iam::123456789012:role/first", "arn:aws:iam::123456789012:role/second"
    fs_id = outputs(deploy(_template(first), name=name))["FsId"]
    efs = aws("efs")

    def principal() -> str:
        return json.loads(efs.describe_file_system_policy(FileSystemId=fs_id)["Policy"])["Statement"][0]["Principal"][
            "AWS"
        ]

    assert principal() == first
    assert deploy(_template(second), name=name, update=True)["StackStatus"] == "UPDATE_COMPLETE"
    assert principal() == second
