"""What AWS refuses and moto accepts (local_aws/refusals.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.local_aws.support import Aws, Network, unique

HANDLE = {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}


def test_parameters_need_values(aws: Aws) -> None:
    cfn = aws("cloudformation")
    template = json.dumps(
        {
            "Parameters": {
                "Cidr": {"Type": "String", "AllowedPattern": "^(10\\..*)?$"},
                "Given": {"Type": "String"},
                "Defaulted": {"Type": "String", "Default": ""},
            },
            "Resources": HANDLE,
        }
    )
    given = [{"ParameterKey": "Given", "ParameterValue": "x"}]
    with pytest.raises(ClientError, match=r"Parameters: \[Cidr\] must have values"):
        cfn.create_stack(StackName=unique("params"), TemplateBody=template, Parameters=given)
    with pytest.raises(ClientError, match=r"Parameters: \[Cidr\] must have values"):
        cfn.create_change_set(
            StackName=unique("params"),
            ChangeSetName="import",
            ChangeSetType="IMPORT",
            TemplateBody=template,
            Parameters=given,
            ResourcesToImport=[],
        )
    name = unique("params")
    cfn.create_stack(
        StackName=name, TemplateBody=template, Parameters=[*given, {"ParameterKey": "Cidr", "ParameterValue": ""}]
    )
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def _load_balancer(elbv2, subnets: list[str]) -> str:
    return elbv2.create_load_balancer(Name=unique("lb"), Subnets=subnets, Scheme="internal")["LoadBalancers"][0][
        "LoadBalancerArn"
    ]


def test_target_group_one_load_balancer(aws: Aws, network: Network) -> None:
    net = network()
    elbv2 = aws("elbv2")
    group = elbv2.create_target_group(Name=unique("tg"), Protocol="HTTP", Port=3000, TargetType="ip", VpcId=net["vpc"])[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    first, second = _load_balancer(elbv2, net["subnets"]), _load_balancer(elbv2, net["subnets"])
    elbv2.create_listener(LoadBalancerArn=first, Protocol="HTTP", Port=80, DefaultActions=forward)
    # Another listener of the same load balancer may use it.
    elbv2.create_listener(LoadBalancerArn=first, Protocol="HTTP", Port=81, DefaultActions=forward)
    with pytest.raises(ClientError, match=r"TargetGroupAssociationLimit.*more than one load balancer"):
        elbv2.create_listener(LoadBalancerArn=second, Protocol="HTTP", Port=80, DefaultActions=forward)


def test_one_gateway_endpoint_per_route_table(aws: Aws, network: Network) -> None:
    net = network()
    ec2 = aws("ec2")
    service = "com.amazonaws.us-east-1.s3"
    ec2.create_vpc_endpoint(
        VpcId=net["vpc"], ServiceName=service, VpcEndpointType="Gateway", RouteTableIds=[net["route_table"]]
    )
    other = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    with pytest.raises(ClientError, match=rf"RouteAlreadyExists.*{net['route_table']}"):
        ec2.create_vpc_endpoint(
            VpcId=net["vpc"], ServiceName=service, VpcEndpointType="Gateway", RouteTableIds=[other, net["route_table"]]
        )
    # Another route table takes its own endpoint.
    ec2.create_vpc_endpoint(VpcId=net["vpc"], ServiceName=service, VpcEndpointType="Gateway", RouteTableIds=[other])
