"""Gaps custom-resource-lifecycle (test_service_timeout: its ServiceTimeout part), response-url,
lambda-logging-config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local_aws import custom_resources, response_url
from tests.local_aws.conftest import MAX_SERVICE_TIMEOUT_S
from tests.local_aws.support import Aws, Deploy, Network, failures, function_resource, outputs, recorded, unique


def custom_template(
    code: dict[str, str],
    record_dir: Path,
    value: str = "one",
    environment: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "Resources": {
            "Function": function_resource(code, record_dir, environment, extra),
            "Custom": {
                "Type": "Custom::Thing",
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Function", "Arn"]},
                    "ServiceTimeout": 300,
                    "Value": value,
                },
            },
        },
        "Outputs": {"Echo": {"Value": {"Fn::GetAtt": ["Custom", "Echo"]}}},
    }


def test_custom_resource_lifecycle(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    name = unique("custom")
    stack = deploy(custom_template(code_bucket, record_dir, "one"), name=name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, name)
    assert outputs(stack)["Echo"] == "one"  # Data from the answer, through Fn::GetAtt
    stack = deploy(custom_template(code_bucket, record_dir, "two"), name=name, update=True)
    assert outputs(stack)["Echo"] == "two"
    aws("cloudformation").delete_stack(StackName=name)
    create, update, delete = recorded(record_dir)
    assert (create["RequestType"], update["RequestType"], delete["RequestType"]) == ("Create", "Update", "Delete")
    assert update["OldResourceProperties"]["Value"] == "one" and update["ResourceProperties"]["Value"] == "two"
    assert update["PhysicalResourceId"] == delete["PhysicalResourceId"] == "fake-function-id"
    # A FAILED answer fails the resource with its Reason, and the stack rolls back.
    failed = deploy(custom_template(code_bucket, record_dir, environment={"FAIL_ON": "Create"}))
    assert failed["StackStatus"] == "ROLLBACK_COMPLETE"
    assert ("Custom", "CREATE_FAILED", "fake function FAILED") in failures(aws, failed["StackId"])


def test_response_url(
    deploy: Deploy, aws: Aws, network: Network, code_bucket: dict[str, str], record_dir: Path
) -> None:
    # Shaped like CloudFormation's: the whole key percent-encoded, used byte for byte.
    responses = custom_resources._Responses()
    path = responses.new_path("arn:aws:cloudformation:us-east-1:1:stack/s/1", "Custom", "req-1")
    assert "arn%3Aaws%3Acloudformation" in path and "%7CCustom%7Creq-1?" in path
    assert responses.receive(path.replace("%3A", ":"), "", b"{}")[0] == 403  # decoded
    assert responses.receive(path, "application/json", b"{}")[0] == 403  # with a Content-Type
    assert responses.receive(path, "", b"{}") == (200, "")
    assert response_url.request_id_of(path) == "req-1"
    # A function that sends a Content-Type is refused, so CloudFormation hears nothing.
    refused = deploy(custom_template(code_bucket, record_dir, environment={"CONTENT_TYPE": "application/json"}))
    assert refused["StackStatus"] == "ROLLBACK_COMPLETE"
    # A function in subnets without NAT or an S3 endpoint cannot deliver its answer.
    net = network(nat=False)
    vpc_config = {"VpcConfig": {"SubnetIds": net["subnets"], "SecurityGroupIds": []}}
    no_route = deploy(custom_template(code_bucket, record_dir, extra=vpc_config))
    assert no_route["StackStatus"] == "ROLLBACK_COMPLETE"
    (reason,) = [r for logical, status, r in failures(aws, no_route["StackId"]) if logical == "Custom"]
    assert "did not receive a response" in reason and "S3 gateway endpoint" in reason
    # The same function behind an S3 gateway endpoint delivers it.
    aws("ec2").create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[net["route_table"]],
    )
    assert deploy(custom_template(code_bucket, record_dir, extra=vpc_config))["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize(
    ("declared", "waited"), [(None, MAX_SERVICE_TIMEOUT_S), ("300", MAX_SERVICE_TIMEOUT_S), ("0.25", 0.25)]
)
def test_service_timeout(
    declared: str | None, waited: float, deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path
) -> None:
    properties = {} if declared is None else {"ServiceTimeout": declared}
    assert custom_resources.service_timeout_s(properties) == waited
    silent = custom_template(code_bucket, record_dir, environment={"ANSWER_STATUS": "none"})
    del silent["Resources"]["Custom"]["Properties"]["ServiceTimeout"]
    silent["Resources"]["Custom"]["Properties"].update(properties)
    stack = deploy(silent)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    (reason,) = [r for logical, status, r in failures(aws, stack["StackId"]) if logical == "Custom"]
    assert reason.startswith("CloudFormation did not receive a response from your Custom Resource.")
    assert "the function ended (response) without one" in reason


def test_lambda_logging_config(deploy: Deploy, aws: Aws, code_bucket: dict[str, str], record_dir: Path) -> None:
    group = "/ce/" + unique("efs-tree")
    logging = {"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "WARN", "LogGroup": group}
    stack = deploy(custom_template(code_bucket, record_dir, extra={"LoggingConfig": logging}))
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, stack["StackId"])
    (create,) = recorded(record_dir)
    assert create["_logging"]["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert create["_logging"]["AWS_LAMBDA_LOG_LEVEL"] == "WARN"
    assert create["_logging"]["AWS_LAMBDA_LOG_GROUP_NAME"] == group
    logged = aws("logs").filter_log_events(logGroupName=group)["events"]
    assert [e["message"] for e in logged] == ["fake function got Create"]
    # Without a LoggingConfig: plain text, no level, the default group.
    plain_dir = record_dir / "plain"
    plain_dir.mkdir()
    deploy(custom_template(code_bucket, plain_dir))
    (plain,) = recorded(plain_dir)
    assert plain["_logging"]["AWS_LAMBDA_LOG_FORMAT"] == "Text" and "AWS_LAMBDA_LOG_LEVEL" not in plain["_logging"]
    assert plain["_logging"]["AWS_LAMBDA_LOG_GROUP_NAME"].startswith("/aws/lambda/")
