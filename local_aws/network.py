"""The VPC as a Lambda function sees it: security group rules, EFS mount targets, routes.

moto stores security groups, rules, mount targets and route tables but never consults
them. Here they decide whether a custom resource's function can run (its EFS mount) and
whether its answer can reach CloudFormation (a route to S3), as in AWS.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from moto.awslambda import models as lambda_models
from moto.ec2.models import ec2_backends
from moto.ec2.models import security_groups as sg_models
from moto.ec2.models import vpcs as vpc_models
from moto.efs.models import efs_backends

from .templates import Model, after_create, register_model

NFS_PORT = 2049


# ------------------------------------------------------------------ security group rules


def _ip_ranges(rule: dict[str, Any]) -> list[dict[str, str]]:
    ranges = []
    if "CidrIp" in rule:
        ranges.append(
            {"CidrIp": rule["CidrIp"], **({"Description": rule["Description"]} if "Description" in rule else {})}
        )
    if "CidrIpv6" in rule:
        ranges.append({"CidrIpv6": rule["CidrIpv6"]})
    return ranges


def _peer_group(rule: dict[str, Any], key: str) -> list[dict[str, str]]:
    return [{"GroupId": rule[key]}] if rule.get(key) else []


def install_group_egress_property() -> None:
    """moto ignores a security group's SecurityGroupEgress property and keeps the default
    allow-all egress rule. In EC2 a VPC group starts with that rule, and CloudFormation
    replaces it by the rules the property lists."""

    def replace_egress(group: Any, properties: dict[str, Any], account_id: str, region_name: str) -> None:
        egress = properties.get("SecurityGroupEgress")
        if egress is None:
            return
        backend = ec2_backends[account_id][region_name]
        group.egress_rules = []
        for rule in egress:
            backend.authorize_security_group_egress(
                group.id,
                str(rule["IpProtocol"]),
                rule.get("FromPort"),
                rule.get("ToPort"),
                _ip_ranges(rule),
                source_groups=_peer_group(rule, "DestinationSecurityGroupId"),
            )

    after_create(sg_models.SecurityGroup, replace_egress)


class _GroupRule(Model):
    """One AWS::EC2::SecurityGroupEgress or …Ingress: a rule on its group until deleted.
    Ref and Fn::GetAtt Id give the rule's id; any change replaces it (the old rule goes
    first, as the new one may be the same rule with another description, which EC2 refuses
    as a duplicate)."""

    egress = True
    peer_key = "DestinationSecurityGroupId"
    attributes = ("Id",)

    def __init__(self, group_id: str, rule_ids: list[str]):
        self.group_id = group_id
        self.rule_ids = rule_ids
        self.physical_id = rule_ids[0] if rule_ids else ""

    @classmethod
    def create(cls, name: str, rule: dict[str, Any], account_id: str, region_name: str) -> _GroupRule:
        backend = ec2_backends[account_id][region_name]
        authorize = backend.authorize_security_group_egress if cls.egress else backend.authorize_security_group_ingress
        peer = _peer_group(rule, cls.peer_key)
        if not cls.egress and rule.get("SourceSecurityGroupName"):
            peer = [{"GroupName": rule["SourceSecurityGroupName"]}]
        rules, group = authorize(
            rule.get("GroupId") or rule.get("GroupName"),
            str(rule["IpProtocol"]),
            rule.get("FromPort"),
            rule.get("ToPort"),
            _ip_ranges(rule),
            source_groups=peer,
        )
        return cls(group.id, [r.id for r in rules])

    def delete(self, account_id: str, region_name: str) -> None:
        group = ec2_backends[account_id][region_name].get_security_group_by_name_or_id(self.group_id)
        if group is None:
            return
        if self.egress:
            group.egress_rules = [r for r in group.egress_rules if r.id not in self.rule_ids]
        else:
            group.ingress_rules = [r for r in group.ingress_rules if r.id not in self.rule_ids]


class SecurityGroupEgress(_GroupRule):
    cfn_type = "AWS::EC2::SecurityGroupEgress"
    egress = True
    peer_key = "DestinationSecurityGroupId"


class SecurityGroupIngress(_GroupRule):
    cfn_type = "AWS::EC2::SecurityGroupIngress"
    egress = False
    peer_key = "SourceSecurityGroupId"


def install_group_egress_resource() -> None:
    """moto has no AWS::EC2::SecurityGroupEgress: the rule is never added to its group."""
    register_model(SecurityGroupEgress)


def install_group_ingress_delete() -> None:
    """moto's AWS::EC2::SecurityGroupIngress is never revoked: the rule outlives its resource."""
    register_model(SecurityGroupIngress)


def install_vpc_endpoint_delete() -> None:
    """moto's AWS::EC2::VPCEndpoint cannot be deleted: the endpoint and its routes outlive
    the stack."""

    def delete(self: Any, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].delete_vpc_endpoints([self.id])

    vpc_models.VPCEndPoint.delete = delete


def keep_function_property(spec_key: str, attribute: str) -> None:
    """Keep a property moto drops from a function (API and templates alike) as ``attribute``."""
    init = lambda_models.LambdaFunction.__init__

    def init_keeping(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        init(self, account_id, spec, *args, **kwargs)
        setattr(self, attribute, spec.get(spec_key))

    lambda_models.LambdaFunction.__init__ = init_keeping

    def keep(function: Any, properties: dict[str, Any], account_id: str, region_name: str) -> None:
        setattr(function, attribute, properties.get(spec_key))

    after_create(lambda_models.LambdaFunction, keep)


def install_lambda_file_system_configs() -> None:
    """moto drops a function's FileSystemConfigs (API and templates alike)."""
    keep_function_property("FileSystemConfigs", "file_system_configs")


# ------------------------------------------------------------------ what a function reaches


def _allows(rules: list[Any], port: int, peer_groups: set[str], peer_cidr: str) -> bool:
    """Whether one of ``rules`` lets TCP ``port`` through to/from the peer."""
    for rule in rules:
        if rule.ip_protocol not in ("tcp", "-1"):
            continue
        if rule.ip_protocol == "tcp" and not (rule.from_port <= port <= rule.to_port):
            continue
        if rule.source_group.get("GroupId") in peer_groups:
            return True
        cidr = rule.ip_range.get("CidrIp")
        if cidr and ipaddress.ip_network(peer_cidr, strict=False).subnet_of(ipaddress.ip_network(cidr, strict=False)):
            return True
    return False


def _function_network(function: Any) -> tuple[list[Any], set[str]]:
    config = function._vpc_config or {}
    backend = ec2_backends[function.account_id][function.region]
    subnets = [backend.get_subnet(s) for s in config.get("SubnetIds", [])]
    return subnets, set(config.get("SecurityGroupIds", []))


def efs_mount_error(function: Any) -> str | None:
    """Why Lambda could not mount the function's file system, or None.

    Lambda mounts an access point's file system through the mount target in the
    Availability Zone of the subnet the function runs in, over NFS (TCP 2049): the
    function's security groups must allow it out and the mount target's in. Without that,
    every invocation fails with EFSMountConnectivityException before the handler runs.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-filesystem.html
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html (Errors)
    """
    configs = getattr(function, "file_system_configs", None)
    if not configs:
        return None
    subnets, function_groups = _function_network(function)
    ec2 = ec2_backends[function.account_id][function.region]
    efs = efs_backends[function.account_id][function.region]
    for config in configs:
        access_point_id = config["Arn"].rsplit("/", 1)[-1]
        access_point = efs.access_points.get(access_point_id)
        if access_point is None:
            return f"EFSMountFailureException: access point {access_point_id} does not exist"
        file_system_id = access_point.file_system_id
        targets = [t for t in efs.mount_targets_by_id.values() if t.file_system_id == file_system_id]
        for subnet in subnets:
            target = next((t for t in targets if t.availability_zone_name == subnet.availability_zone), None)
            if target is None:
                return (
                    f"EFSMountConnectivityException: {file_system_id} has no mount target in "
                    f"{subnet.availability_zone} (subnet {subnet.id})"
                )
            target_groups = set(target.security_groups or [])
            egress = [
                r for g in function_groups if (grp := ec2.get_security_group_by_name_or_id(g)) for r in grp.egress_rules
            ]
            if not _allows(egress, NFS_PORT, target_groups, f"{target.ip_address}/32"):
                return (
                    f"EFSMountConnectivityException: the function's security groups {sorted(function_groups)} "
                    f"allow no NFS ({NFS_PORT}) out to mount target {target.mount_target_id}"
                )
            ingress = [
                r for g in target_groups if (grp := ec2.get_security_group_by_name_or_id(g)) for r in grp.ingress_rules
            ]
            if not _allows(ingress, NFS_PORT, function_groups, subnet.cidr_block):
                return (
                    f"EFSMountConnectivityException: mount target {target.mount_target_id}'s security groups "
                    f"{sorted(target_groups)} allow no NFS ({NFS_PORT}) in from the function"
                )
    return None


def _route_table(ec2: Any, subnet: Any) -> Any:
    tables = [t for t in ec2.route_tables.values() if t.vpc_id == subnet.vpc_id]
    explicit = next((t for t in tables if subnet.id in t._associations.values()), None)
    return explicit or next((t for t in tables if t.main_association_id is not None), None)


def s3_unreachable(function: Any) -> str | None:
    """Why the function cannot reach S3 (CloudFormation's pre-signed ResponseURL), or None.

    A function in a VPC has no public IP: it reaches S3 only through a NAT gateway route
    (0.0.0.0/0 → nat-…) or an S3 gateway endpoint on its subnets' route tables.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
    https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
    """
    subnets, _ = _function_network(function)
    ec2 = ec2_backends[function.account_id][function.region]
    for subnet in subnets:
        table = _route_table(ec2, subnet)
        routes = table.routes if table else []
        via_nat = any(r.nat_gateway is not None and r.destination_cidr_block == "0.0.0.0/0" for r in routes)
        via_endpoint = any(
            isinstance(r.gateway, vpc_models.VPCEndPoint)
            and r.gateway.service_name.endswith(".s3")
            and r.gateway.state == "available"
            for r in routes
        )
        if not (via_nat or via_endpoint):
            return (
                f"subnet {subnet.id}'s route table {table.id if table else '(none)'} has neither a NAT gateway "
                "route (0.0.0.0/0) nor an S3 gateway endpoint"
            )
    return None
