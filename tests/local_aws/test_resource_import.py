"""Gap import-change-sets: resource import into a new stack, as deploy.sh uses it to bring
a retained file system and secret into a new stack."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest

from tests.local_aws.support import Aws, Deploy, events, outputs, unique


def _retained(aws: Aws) -> tuple[str, str]:
    """A file system and a secret left behind by a deleted stack."""
    fs_id = aws("efs").create_file_system(CreationToken=unique("fs"), Encrypted=True)["FileSystemId"]
    secret = aws("secretsmanager").create_secret(Name=unique("maintenance"), SecretString='{"password": "kept"}')
    return fs_id, secret["ARN"]


def _policy(role: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "elasticfilesystem:ClientMount"}],
    }


IMPORT_TEMPLATE = {
    "Resources": {
        "FileSystem": {"Type": "AWS::EFS::FileSystem", "DeletionPolicy": "Retain", "Properties": {"Encrypted": True}},
        "MaintenancePasswordSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "DeletionPolicy": "Retain",
            "Properties": {"Description": "kept"},
        },
    }
}


def _to_import(fs_id: str, secret_arn: str) -> list[dict[str, Any]]:
    return [
        {
            "ResourceType": "AWS::EFS::FileSystem",
            "LogicalResourceId": "FileSystem",
            "ResourceIdentifier": {"FileSystemId": fs_id},
        },
        {
            "ResourceType": "AWS::SecretsManager::Secret",
            "LogicalResourceId": "MaintenancePasswordSecret",
            "ResourceIdentifier": {"Id": secret_arn},
        },
    ]


def _create_import(cfn: Any, name: str, template: dict[str, Any], to_import: list[dict[str, Any]]) -> dict[str, Any]:
    return cfn.create_change_set(
        StackName=name,
        ChangeSetName="import",
        ChangeSetType="IMPORT",
        TemplateBody=json.dumps(template),
        ResourcesToImport=to_import,
    )


def test_import_change_sets(aws: Aws, deploy: Deploy) -> None:
    cfn, efs = aws("cloudformation"), aws("efs")
    fs_id, secret_arn = _retained(aws)
    name = unique("imported")
    created = _create_import(cfn, name, IMPORT_TEMPLATE, _to_import(fs_id, secret_arn))
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    change_set = cfn.describe_change_set(ChangeSetName=created["Id"])
    assert sorted(
        (
            c["ResourceChange"]["Action"],
            c["ResourceChange"]["LogicalResourceId"],
            c["ResourceChange"]["PhysicalResourceId"],
        )
        for c in change_set["Changes"]
    ) == [("Import", "FileSystem", fs_id), ("Import", "MaintenancePasswordSecret", secret_arn)]
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.execute_change_set(ChangeSetName=created["Id"])
    cfn.get_waiter("stack_import_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    assert ("FileSystem", "IMPORT_COMPLETE", "") in events(aws, name)
    # A normal update adds the rest; the file system policy is rewritten for the new role.
    full = json.loads(json.dumps(IMPORT_TEMPLATE))
    full["Resources"]["Role"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        },
    }
    full["Resources"]["FileSystem"]["Properties"]["FileSystemPolicy"] = _policy({"Fn::GetAtt": ["Role", "Arn"]})
    full["Outputs"] = {
        "Fs": {"Value": {"Ref": "FileSystem"}},
        "Secret": {"Value": {"Ref": "MaintenancePasswordSecret"}},
        "Role": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
    }
    stack = deploy(full, name=name, update=True)
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    out = outputs(stack)
    assert (out["Fs"], out["Secret"]) == (fs_id, secret_arn)  # adopted, not created new
    policy = json.loads(efs.describe_file_system_policy(FileSystemId=fs_id)["Policy"])
    assert policy["Statement"][0]["Principal"]["AWS"] == out["Role"]
    value = aws("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    assert json.loads(value) == {"password": "kept"}  # the data is the old one
    # Deleting the stack keeps both (DeletionPolicy Retain), ready for the next import.
    cfn.delete_stack(StackName=name)
    assert efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"]


@pytest.mark.parametrize(
    "fault", ["no-deletion-policy", "other-resource", "unsupported-type", "wrong-identifier-key", "outputs"]
)
def test_import_change_sets_refusals(fault: str, aws: Aws) -> None:
    cfn = aws("cloudformation")
    fs_id, secret_arn = _retained(aws)
    template, to_import = json.loads(json.dumps(IMPORT_TEMPLATE)), _to_import(fs_id, secret_arn)
    expected = {
        "no-deletion-policy": "must have DeletionPolicy attribute",
        "other-resource": "not being imported",
        "unsupported-type": "are not supported for Import",
        "wrong-identifier-key": "must be exactly {FileSystemId}",
        "outputs": "cannot modify or add \\[Outputs\\]",
    }[fault]
    if fault == "no-deletion-policy":
        del template["Resources"]["FileSystem"]["DeletionPolicy"]
    elif fault == "other-resource":
        template["Resources"]["Log"] = {"Type": "AWS::Logs::LogGroup", "Properties": {}}
    elif fault == "unsupported-type":
        template["Resources"]["Handle"] = {
            "Type": "AWS::CloudFormation::WaitConditionHandle",
            "DeletionPolicy": "Retain",
        }
        to_import.append(
            {
                "ResourceType": "AWS::CloudFormation::WaitConditionHandle",
                "LogicalResourceId": "Handle",
                "ResourceIdentifier": {"Id": "x"},
            }
        )
    elif fault == "outputs":
        template["Outputs"] = {"Fs": {"Value": {"Ref": "FileSystem"}}}
    else:
        to_import[0]["ResourceIdentifier"] = {"Id": fs_id}
    name = unique("refused")
    with pytest.raises(botocore.exceptions.ClientError, match=expected):
        _create_import(cfn, name, template, to_import)
    with pytest.raises(botocore.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=name)


@pytest.mark.parametrize("fault", ["unknown-identifier", "already-in-a-stack"])
def test_import_change_sets_failed(fault: str, aws: Aws) -> None:
    cfn = aws("cloudformation")
    fs_id, secret_arn = _retained(aws)
    if fault == "unknown-identifier":
        fs_id, expected = "fs-00000000000000000", "fs-00000000000000000 of type AWS::EFS::FileSystem does not exist"
    else:
        owner = unique("owner")
        cfn.execute_change_set(
            ChangeSetName=_create_import(cfn, owner, IMPORT_TEMPLATE, _to_import(fs_id, secret_arn))["Id"]
        )
        expected = f"already belongs to stack {owner}"
    created = _create_import(cfn, unique("failed"), IMPORT_TEMPLATE, _to_import(fs_id, secret_arn))
    change_set = cfn.describe_change_set(ChangeSetName=created["Id"])
    assert change_set["Status"] == "FAILED" and expected in change_set["StatusReason"]
    with pytest.raises(botocore.exceptions.ClientError, match="cannot be executed"):
        cfn.execute_change_set(ChangeSetName=created["Id"])
