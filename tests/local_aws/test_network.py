"""Gaps group-egress-property, group-egress-resource, group-ingress-delete,
vpc-endpoint-delete, lambda-file-system-configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.local_aws.support import Aws, Deploy, Network, failures, function_resource, outputs, recorded, unique

HTTPS_OUT = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]


def _group(description: str, vpc: str, egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"GroupDescription": description, "VpcId": vpc}
    if egress is not None:
        properties["SecurityGroupEgress"] = egress
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": properties}


def _nfs_rule(direction: str, group: str, peer: str) -> dict[str, Any]:
    """An AWS::EC2::SecurityGroupEgress or …Ingress (``direction``) letting NFS from the
    group ``group`` out to, or in from, the group ``peer`` (logical ids)."""
    peer_key = "DestinationSecurityGroupId" if direction == "Egress" else "SourceSecurityGroupId"
    return {
        "Type": f"AWS::EC2::SecurityGroup{direction}",
        "Properties": {
            "GroupId": {"Ref": group},
            "IpProtocol": "tcp",
            "FromPort": 2049,
            "ToPort": 2049,
            peer_key: {"Ref": peer},
        },
    }


def _groups(vpc: str, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    resources = {"Client": _group("client", vpc, HTTPS_OUT), "Server": _group("server", vpc), **(rules or {})}
    return {
        "Resources": resources,
        "Outputs": {"Client": {"Value": {"Ref": "Client"}}, "Server": {"Value": {"Ref": "Server"}}},
    }


NFS_OUT = _nfs_rule("Egress", "Client", "Server")
NFS_IN = _nfs_rule("Ingress", "Server", "Client")


def _rules(aws: Aws, group: str, direction: str) -> list[tuple[Any, ...]]:
    found = aws("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0][direction]
    return sorted(
        (
            r["IpProtocol"],
            r.get("FromPort"),
            tuple(p["GroupId"] for p in r["UserIdGroupPairs"]),
            tuple(c["CidrIp"] for c in r["IpRanges"]),
        )
        for r in found
    )


def test_group_egress_property(deploy: Deploy, aws: Aws, network: Network) -> None:
    out = outputs(deploy(_groups(network()["vpc"])))
    assert _rules(aws, out["Client"], "IpPermissionsEgress") == [("tcp", 443, (), ("0.0.0.0/0",))]
    # A group without the property keeps EC2's default rule.
    assert _rules(aws, out["Server"], "IpPermissionsEgress") == [("-1", None, (), ("0.0.0.0/0",))]


def test_group_egress_resource(deploy: Deploy, aws: Aws, network: Network) -> None:
    vpc, name = network()["vpc"], unique("egress")
    out = outputs(deploy(_groups(vpc, {"NfsOut": NFS_OUT}), name=name))
    assert ("tcp", 2049, (out["Server"],), ()) in _rules(aws, out["Client"], "IpPermissionsEgress")
    deploy(_groups(vpc), name=name, update=True)
    assert _rules(aws, out["Client"], "IpPermissionsEgress") == [("tcp", 443, (), ("0.0.0.0/0",))]


def test_group_ingress_delete(deploy: Deploy, aws: Aws, network: Network) -> None:
    vpc, name = network()["vpc"], unique("ingress")
    out = outputs(deploy(_groups(vpc, {"NfsIn": NFS_IN}), name=name))
    assert _rules(aws, out["Server"], "IpPermissions") == [("tcp", 2049, (out["Client"],), ())]
    deploy(_groups(vpc), name=name, update=True)
    assert _rules(aws, out["Server"], "IpPermissions") == []


def test_vpc_endpoint_delete(deploy: Deploy, aws: Aws, network: Network) -> None:
    net = network(nat=False)
    stack = deploy(
        {
            "Resources": {
                "S3": {
                    "Type": "AWS::EC2::VPCEndpoint",
                    "Properties": {
                        "VpcEndpointType": "Gateway",
                        "ServiceName": "com.amazonaws.us-east-1.s3",
                        "VpcId": net["vpc"],
                        "RouteTableIds": [net["route_table"]],
                    },
                }
            },
            "Outputs": {"Id": {"Value": {"Ref": "S3"}}},
        }
    )
    ec2, endpoint = aws("ec2"), outputs(stack)["Id"]

    def endpoint_routes() -> list[str]:
        table = ec2.describe_route_tables(RouteTableIds=[net["route_table"]])["RouteTables"][0]
        return [r["GatewayId"] for r in table["Routes"] if r.get("GatewayId", "").startswith("vpce-")]

    assert endpoint_routes() == [endpoint]
    aws("cloudformation").delete_stack(StackName=stack["StackId"])
    assert endpoint_routes() == []
    state = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"]
    assert state.lower() == "deleted"


def efs_function_template(
    net: dict[str, Any], code: dict[str, str], record_dir: Path, drop: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A function on an EFS access point in the network's two subnets, backing a custom
    resource, with the mount targets and NFS rules it needs; ``drop`` leaves some out."""
    resources: dict[str, Any] = {
        "FunctionGroup": _group("function", net["vpc"], HTTPS_OUT),
        "EfsGroup": _group(
            "efs", net["vpc"], [{"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32"}]
        ),
        "NfsOut": _nfs_rule("Egress", "FunctionGroup", "EfsGroup"),
        "NfsIn": _nfs_rule("Ingress", "EfsGroup", "FunctionGroup"),
        "Fs": {"Type": "AWS::EFS::FileSystem", "Properties": {"Encrypted": True}},
        **{
            f"Target{n}": {
                "Type": "AWS::EFS::MountTarget",
                "Properties": {
                    "FileSystemId": {"Ref": "Fs"},
                    "SubnetId": subnet,
                    "SecurityGroups": [{"Ref": "EfsGroup"}],
                },
            }
            for n, subnet in enumerate(net["subnets"][:2], start=1)
        },
        "Ap": {"Type": "AWS::EFS::AccessPoint", "Properties": {"FileSystemId": {"Ref": "Fs"}}},
        "Function": function_resource(
            code,
            record_dir,
            extra={
                "FileSystemConfigs": [{"Arn": {"Fn::GetAtt": ["Ap", "Arn"]}, "LocalMountPath": "/mnt/efs"}],
                "VpcConfig": {"SubnetIds": net["subnets"], "SecurityGroupIds": [{"Ref": "FunctionGroup"}]},
            },
        ),
        "Tree": {
            "Type": "Custom::Tree",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Function", "Arn"]}, "ServiceTimeout": 300},
        },
    }
    resources["Function"]["DependsOn"] = [n for n in ("Target1", "Target2", "NfsOut", "NfsIn") if n not in drop]
    for name in drop:
        del resources[name]
    return {"Resources": resources}


@pytest.mark.parametrize(
    "drop", [(), ("Target2",), ("NfsOut",), ("NfsIn",)], ids=["reachable", "no-mount-target", "no-egress", "no-ingress"]
)
def test_lambda_file_system_configs(
    drop: tuple[str, ...], deploy: Deploy, aws: Aws, network: Network, code_bucket: dict[str, str], record_dir: Path
) -> None:
    stack = deploy(efs_function_template(network(), code_bucket, record_dir, drop))
    if not drop:
        assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, stack["StackId"])
        assert [e["RequestType"] for e in recorded(record_dir)] == ["Create"]
        return
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert recorded(record_dir) == []  # the handler never ran
    failed = [
        reason
        for logical, status, reason in failures(aws, stack["StackId"])
        if logical == "Tree" and status == "CREATE_FAILED"
    ]
    assert len(failed) == 1
    assert "did not receive a response" in failed[0] and "EFSMountConnectivityException" in failed[0]
