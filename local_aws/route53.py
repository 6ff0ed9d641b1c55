"""Route 53 private hosted zones as AWS makes them. moto 5.2.5 builds AWS::Route53::HostedZone
as a public zone named after its logical id, ignoring Name, VPCs and HostedZoneConfig, and its
CreateHostedZone accepts a second private zone of a name already associated with the same VPC.
AWS refuses that (ConflictingDomainExists), for CreateHostedZone and for
AssociateVPCWithHostedZone: a stack that adds such a zone fails in a VPC that already has one."""

from __future__ import annotations

from typing import Any

from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend, route53_backends
from moto.utilities.utils import get_partition

from .templates import Model, register_model


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


class PrivateZoneConflictError(Route53ClientError):
    """ConflictingDomainExists for a private zone whose name the VPC already has."""

    def __init__(self, name: str, vpc_id: str) -> None:
        super().__init__(
            "ConflictingDomainExists",
            f"The VPC {vpc_id} is already associated with a private hosted zone named {name.rstrip('.')}",
        )


def _refuse_conflict(backend: Route53Backend, name: str, vpc_id: str | None, skip: str | None = None) -> None:
    if not vpc_id:
        return
    for zone in backend.zones.values():
        on_vpc = any(vpc.get("vpc_id") == vpc_id for vpc in zone.vpcs)
        if zone.id != skip and zone.private_zone and _same_name(zone.name, name) and on_vpc:
            raise PrivateZoneConflictError(name, vpc_id)


def _backend(account_id: str, region_name: str) -> Route53Backend:
    return route53_backends[account_id][get_partition(region_name)]


class HostedZone(Model):
    """AWS::Route53::HostedZone: private when VPCs are given (the first in the create call, the
    others associated), Ref gives the zone id; every property change replaces it here, which
    is what AWS does for Name (VPCs and the comment would update in place; not used)."""

    cfn_type = "AWS::Route53::HostedZone"
    name_type = "Name"
    attributes = ("Id", "NameServers")

    def __init__(self, zone_id: str, account_id: str, region_name: str) -> None:
        self.physical_id = zone_id
        self.account_id = account_id
        self.region_name = region_name

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> HostedZone:
        backend = _backend(account_id, region_name)
        vpcs = properties.get("VPCs") or []
        first = vpcs[0] if vpcs else {}
        zone = backend.create_hosted_zone(
            properties.get("Name", name),
            private_zone=bool(vpcs),
            vpcid=first.get("VPCId"),
            vpcregion=first.get("VPCRegion"),
            comment=(properties.get("HostedZoneConfig") or {}).get("Comment"),
        )
        for vpc in vpcs[1:]:
            backend.associate_vpc_with_hosted_zone(zone.id, vpc["VPCId"], vpc["VPCRegion"])
        return cls(zone.id, account_id, region_name)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        zone = _backend(self.account_id, self.region_name).get_hosted_zone(self.physical_id)
        if attribute_name == "NameServers":
            return list(zone.delegation_set.name_servers) if zone.delegation_set else []
        return zone.id

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_hosted_zone(self.physical_id)


def install_private_zone() -> None:
    """moto builds AWS::Route53::HostedZone as a public zone named after its logical id and lets
    a VPC hold two private zones of one name."""
    create = Route53Backend.create_hosted_zone
    associate = Route53Backend.associate_vpc_with_hosted_zone

    def create_hosted_zone(self: Route53Backend, name: str, private_zone: bool, *args: Any, **kwargs: Any) -> Any:
        vpc_id = kwargs.get("vpcid", args[1] if len(args) > 1 else None)
        if private_zone:
            _refuse_conflict(self, name, vpc_id)
        return create(self, name, private_zone, *args, **kwargs)

    def associate_vpc_with_hosted_zone(self: Route53Backend, zone_id: str, vpcid: str, vpcregion: str) -> Any:
        zone = self.get_hosted_zone(zone_id)
        _refuse_conflict(self, zone.name, vpcid, skip=zone.id)
        return associate(self, zone_id, vpcid, vpcregion)

    Route53Backend.create_hosted_zone = create_hosted_zone  # type: ignore[method-assign]
    Route53Backend.associate_vpc_with_hosted_zone = associate_vpc_with_hosted_zone  # type: ignore[method-assign]
    register_model(HostedZone)
