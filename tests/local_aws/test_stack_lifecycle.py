"""Gaps resource-events, create-rollback, update-rollback, deletion-order,
delete-failed-kept, frozen-when-gone, no-updates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from local_aws.stack_lifecycle import deletion_steps
from tests.local_aws.support import Aws, Deploy, events, failures, function_resource, recorded, unique


def _custom(
    code: dict[str, str], record_dir: Path, value: str = "one", environment: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "Resources": {
            "Group": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": unique("p"), "Type": "String", "Value": "v"},
            },
            "Function": function_resource(code, record_dir, environment),
            "Custom": {
                "Type": "Custom::Thing",
                "DependsOn": "Group",
                "Properties": {"ServiceToken": {"Fn::GetAtt": ["Function", "Arn"]}, "Value": value},
            },
        }
    }


def test_resource_events(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    stack = deploy(_custom(code_bucket, record_dir))
    seen = [(logical, status) for logical, status, _ in events(aws, stack["StackId"])]
    for logical in ("Group", "Function", "Custom"):
        assert seen.index((logical, "CREATE_IN_PROGRESS")) < seen.index((logical, "CREATE_COMPLETE"))
    assert seen.index(("Function", "CREATE_COMPLETE")) < seen.index(("Custom", "CREATE_IN_PROGRESS"))


def test_create_rollback(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    stack = deploy(_custom(code_bucket, record_dir, environment={"FAIL_ON": "Create"}))
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    seen = [(logical, status) for logical, status, _ in events(aws, stack["StackId"])]
    assert ("Custom", "CREATE_FAILED") in seen
    assert ("Group", "DELETE_COMPLETE") in seen and ("Function", "DELETE_COMPLETE") in seen
    assert "Outputs" not in stack


def test_update_rollback(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    name, refuses_two = unique("update"), {"FAIL_VALUE": "two"}
    deploy(_custom(code_bucket, record_dir, "one", refuses_two), name=name)
    stack = deploy(_custom(code_bucket, record_dir, "two", refuses_two), name=name, update=True)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", failures(aws, name)
    updates = [e for e in recorded(record_dir) if e["RequestType"] == "Update"]
    assert [e["ResourceProperties"]["Value"] for e in updates] == ["two", "one"]  # the update, then back
    assert updates[1]["OldResourceProperties"]["Value"] == "two"
    # When the way back fails too, the stack is UPDATE_ROLLBACK_FAILED.
    name = unique("update")
    deploy(_custom(code_bucket, record_dir, "one", {"FAIL_ON": "Update"}), name=name)
    stack = deploy(_custom(code_bucket, record_dir, "two", {"FAIL_ON": "Update"}), name=name, update=True)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED"


def test_deletion_order(deploy: Deploy, aws: Aws) -> None:
    # Reverse dependencies, in waves: Ref, Fn::GetAtt, Fn::Sub (not ${!Literal}), DependsOn,
    # a Ref in Metadata; a resource goes once everything that depends on it is gone.
    resources = {
        "Base": {"Type": "T"},
        "Ref": {"Type": "T", "Properties": {"X": {"Ref": "Base"}}},
        "Att": {"Type": "T", "Properties": {"X": {"Fn::GetAtt": ["Ref", "Arn"]}}},
        "Sub": {"Type": "T", "Properties": {"X": {"Fn::Sub": "${Base.Arn}-${!Att}"}}},
        "Meta": {"Type": "T", "Metadata": {"M": {"Fn::If": ["C", {"Ref": "Sub"}, "none"]}}},
        "After": {"Type": "T", "DependsOn": ["Att", "Meta"]},
    }
    assert deletion_steps(resources, slow=set()) == [["After"], ["Att", "Meta"], ["Ref", "Sub"], ["Base"]]
    # A slow resource (a custom resource's function) runs once nothing fast is ready: what
    # does not wait for it is gone by then.
    assert deletion_steps(resources, slow={"After"}) == [["After"], ["Att", "Meta"], ["Ref", "Sub"], ["Base"]]
    assert deletion_steps(resources, slow={"Att"}) == [["After"], ["Meta"], ["Sub"], ["Att"], ["Ref"], ["Base"]]
    # Retained resources are skipped, with an event.
    kept = {
        "Type": "AWS::SSM::Parameter",
        "DeletionPolicy": "Retain",
        "Properties": {"Name": unique("kept"), "Type": "String", "Value": "v"},
    }
    stack = deploy({"Resources": {"Kept": kept}})
    aws("cloudformation").delete_stack(StackName=stack["StackId"])
    assert ("Kept", "DELETE_SKIPPED", "") in events(aws, stack["StackId"])
    assert aws("ssm").get_parameter(Name=kept["Properties"]["Name"])["Parameter"]["Value"] == "v"


def test_delete_failed_kept(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    name = unique("kept")
    deploy(_custom(code_bucket, record_dir, environment={"FAIL_ON": "Delete"}), name=name)
    aws("cloudformation").delete_stack(StackName=name)
    stack = aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    assert stack["StackStatusReason"].startswith("The following resource(s) failed to delete: [Custom].")
    assert ("Custom", "DELETE_FAILED", "fake function FAILED") in failures(aws, name)
    # Resources that depend on nothing failed are gone; those the failed one needs remain.
    seen = [(logical, status) for logical, status, _ in events(aws, name)]
    assert ("Function", "DELETE_IN_PROGRESS") not in seen


def test_frozen_when_gone(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    stack = deploy(_custom(code_bucket, record_dir))
    cfn = aws("cloudformation")
    cfn.delete_stack(StackName=stack["StackId"])
    cfn.describe_stack_resources(StackName=stack["StackId"])
    gone = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]
    assert gone["StackStatus"] == "DELETE_COMPLETE" and "Outputs" not in gone
    assert [e["RequestType"] for e in recorded(record_dir)] == ["Create", "Delete"]  # no Create again


def test_no_updates(deploy: Deploy) -> None:
    name = unique("same")
    template = {
        "Parameters": {"P": {"Type": "String", "Default": "a"}},
        "Resources": {
            "R": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": unique("same"), "Type": "String", "Value": {"Ref": "P"}},
            }
        },
    }
    deploy(template, name=name)
    with pytest.raises(botocore.exceptions.ClientError, match="No updates are to be performed"):
        deploy(json.loads(json.dumps(template)), name=name, update=True)


def test_conditional_updates(deploy: Deploy, aws: Aws) -> None:
    name, parameter = unique("conditional"), unique("conditional")
    template = {
        "Parameters": {"Wanted": {"Type": "String"}},
        "Conditions": {"IsWanted": {"Fn::Equals": [{"Ref": "Wanted"}, "yes"]}},
        "Resources": {
            "Always": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": parameter + "-always", "Type": "String", "Value": {"Ref": "Wanted"}},
            },
            "Maybe": {
                "Type": "AWS::SSM::Parameter",
                "Condition": "IsWanted",
                "Properties": {"Name": parameter, "Type": "String", "Value": {"Fn::Sub": "${Wanted}"}},
            },
        },
    }
    ssm = aws("ssm")

    def exists() -> bool:
        return bool(ssm.get_parameters(Names=[parameter])["Parameters"])

    assert deploy(template, name=name, parameters={"Wanted": "no"})["StackStatus"] == "CREATE_COMPLETE"
    assert not exists()
    # Still false, its definition changed with the parameter: nothing to do for it.
    stack = deploy(template, name=name, parameters={"Wanted": "no, really"}, update=True)
    assert stack["StackStatus"] == "UPDATE_COMPLETE", failures(aws, name)
    assert not exists()
    assert deploy(template, name=name, parameters={"Wanted": "yes"}, update=True)["StackStatus"] == "UPDATE_COMPLETE"
    assert exists()
    assert deploy(template, name=name, parameters={"Wanted": "no"}, update=True)["StackStatus"] == "UPDATE_COMPLETE"
    assert not exists()


def test_sub_parameter_updates(deploy: Deploy, aws: Aws) -> None:
    name, parameter = unique("sub"), unique("sub")
    template = {
        "Parameters": {"Env": {"Type": "String"}},
        "Resources": {
            "Named": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": parameter, "Type": "String", "Value": {"Fn::Sub": "${Env}-cloud-exchange"}},
            }
        },
    }
    deploy(template, name=name, parameters={"Env": "one"})
    deploy(template, name=name, parameters={"Env": "two"}, update=True)
    assert aws("ssm").get_parameter(Name=parameter)["Parameter"]["Value"] == "two-cloud-exchange"


def test_parameter_values(deploy: Deploy, aws: Aws) -> None:
    name = unique("params")
    template = {
        "Parameters": {
            "Given": {"Type": "String"},
            "Days": {"Type": "Number", "Default": 90},
            "Tables": {"Type": "CommaDelimitedList", "Default": ""},
            "Secret": {"Type": "String", "NoEcho": True, "Default": "hidden"},
        },
        "Resources": {
            "R": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": unique("params"), "Type": "String", "Value": {"Fn::Sub": "${Given}-${Days}"}},
            }
        },
    }

    def shown(stack: dict[str, Any]) -> dict[str, str]:
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    stack = deploy(template, name=name, parameters={"Given": "a"})
    assert shown(stack) == {"Given": "a", "Days": "90", "Tables": "", "Secret": "****"}
    cfn = aws("cloudformation")
    previous = [{"ParameterKey": k, "UsePreviousValue": True} for k in ("Days", "Tables", "Secret")]
    cfn.update_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "Given", "ParameterValue": "b"}, *previous],
    )
    updated = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert updated["StackStatus"] == "UPDATE_COMPLETE", failures(aws, name)
    assert shown(updated) == {"Given": "b", "Days": "90", "Tables": "", "Secret": "****"}
    # Everything previous, nothing changed: no update.
    with pytest.raises(botocore.exceptions.ClientError, match="No updates are to be performed"):
        cfn.update_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "Given", "UsePreviousValue": True}, *previous],
        )


def test_retain_resources(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    name, cfn = unique("retain"), aws("cloudformation")
    deploy(_custom(code_bucket, record_dir, environment={"FAIL_ON": "Delete"}), name=name)
    with pytest.raises(botocore.exceptions.ClientError, match="only be specified when stack is in DELETE_FAILED"):
        cfn.delete_stack(StackName=name, RetainResources=["Custom"])
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    stack_id = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName=name, RetainResources=["Custom"])
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    seen = [(logical, status) for logical, status, _ in events(aws, stack_id)]
    assert ("Custom", "DELETE_SKIPPED") in seen and ("Function", "DELETE_COMPLETE") in seen
    assert [e["RequestType"] for e in recorded(record_dir)] == ["Create", "Delete"]  # not asked again
