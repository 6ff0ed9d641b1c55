"""Fixtures for the local AWS's tests: one server in this process (moto's ThreadedMotoServer
with every gap installed), boto3 clients on it, a VPC, and fake functions.

Run from the repository root: ``python -m pytest tests/local_aws`` (scripts/test.sh
--only local_aws_tests).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_aws import server
from tests.local_aws.support import FAKE_FUNCTION, REGION, make_zip, unique

# How long the local AWS waits for a custom resource that never answers (seconds).
MAX_SERVICE_TIMEOUT_S = 0.5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    efs_dir = tmp_path_factory.mktemp("efs")
    port = _free_port()
    running = server.start(port, str(efs_dir), max_service_timeout_s=MAX_SERVICE_TIMEOUT_S)
    yield {"endpoint": f"http://127.0.0.1:{port}", "efs_dir": str(efs_dir)}
    running.stop()


@pytest.fixture(scope="session")
def aws(local_aws: dict[str, str]) -> Callable[[str], Any]:
    """aws("cloudformation") -> a boto3 client on the local AWS, dummy credentials."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=local_aws["endpoint"])

    return client


@pytest.fixture(scope="session")
def code_bucket(aws: Callable[[str], Any]) -> dict[str, str]:
    """The fake function's zip in S3, as `aws cloudformation package` would leave it."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="local-aws-tests-code")
    s3.put_object(Bucket="local-aws-tests-code", Key="fake-function.zip", Body=make_zip(FAKE_FUNCTION))
    # The role the fake functions name (Lambda refuses a role that does not exist).
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    aws("iam").create_role(RoleName="fake-function", AssumeRolePolicyDocument=json.dumps(trust))
    return {"S3Bucket": "local-aws-tests-code", "S3Key": "fake-function.zip"}


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    """Where the fake function writes each event it receives."""
    return tmp_path


@pytest.fixture
def network(aws: Callable[[str], Any]) -> Callable[..., dict[str, Any]]:
    """network(nat=True) -> a new VPC with two private subnets in two AZs and their route
    table, which routes 0.0.0.0/0 to a NAT gateway when ``nat``."""

    def build(nat: bool = True) -> dict[str, Any]:
        ec2 = aws("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in ((1, "a"), (2, "b"))
        ]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        if nat:
            public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24", AvailabilityZone=f"{REGION}a")
            eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
            gateway = ec2.create_nat_gateway(SubnetId=public["Subnet"]["SubnetId"], AllocationId=eip)
            ec2.create_route(
                RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=gateway["NatGateway"]["NatGatewayId"]
            )
        return {"vpc": vpc, "subnets": subnets, "route_table": table}

    return build


@pytest.fixture
def deploy(aws: Callable[[str], Any]) -> Callable[..., dict[str, Any]]:
    """deploy(template, name=None, parameters=None, update=False) -> the stack, described,
    after the call returned (the local AWS finishes every operation within it)."""
    cfn = aws("cloudformation")

    def run(
        template: dict[str, Any],
        name: str | None = None,
        parameters: dict[str, str] | None = None,
        update: bool = False,
    ) -> dict[str, Any]:
        name = name or unique("stack")
        args = {
            "StackName": name,
            "TemplateBody": json.dumps(template),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
        }
        (cfn.update_stack if update else cfn.create_stack)(**args)
        return cfn.describe_stacks(StackName=name)["Stacks"][0]

    return run
