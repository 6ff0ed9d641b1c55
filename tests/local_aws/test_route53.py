"""Gap route53-private-zone: a private hosted zone named by its Name on its VPCs, and one
private zone of a name per VPC."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from tests.local_aws.support import Aws, Deploy, Network, failures, outputs


def _zone_stack(vpc: str) -> dict[str, Any]:
    return {
        "Resources": {
            "Zone": {
                "Type": "AWS::Route53::HostedZone",
                "Properties": {
                    "Name": "host.docker.internal",
                    "HostedZoneConfig": {"Comment": "loopback for the UI"},
                    "VPCs": [{"VPCId": vpc, "VPCRegion": "us-east-1"}],
                },
            },
            "Record": {
                "Type": "AWS::Route53::RecordSet",
                "Properties": {
                    "HostedZoneId": {"Ref": "Zone"},
                    "Name": "host.docker.internal",
                    "Type": "A",
                    "TTL": "300",
                    "ResourceRecords": ["127.0.0.1"],
                },
            },
        },
        "Outputs": {"Zone": {"Value": {"Ref": "Zone"}}},
    }


def test_route53_private_zone(deploy: Deploy, aws: Aws, network: Network) -> None:
    vpc = network(nat=False)["vpc"]
    route53 = aws("route53")
    first = deploy(_zone_stack(vpc))
    assert first["StackStatus"] == "CREATE_COMPLETE", failures(aws, first["StackId"])
    zone = route53.get_hosted_zone(Id=outputs(first)["Zone"])
    assert zone["HostedZone"]["Name"].rstrip(".") == "host.docker.internal"
    assert zone["HostedZone"]["Config"]["PrivateZone"] is True
    assert [v["VPCId"] for v in zone["VPCs"]] == [vpc]
    records = route53.list_resource_record_sets(HostedZoneId=outputs(first)["Zone"])["ResourceRecordSets"]
    assert ("host.docker.internal", "A", [{"Value": "127.0.0.1"}]) in [
        (r["Name"].rstrip("."), r["Type"], r.get("ResourceRecords")) for r in records
    ]

    # A second stack in the same VPC: Route 53 refuses a second private zone of that name.
    second = deploy(_zone_stack(vpc))
    assert second["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [reason for _, _, reason in failures(aws, second["StackId"])]
    assert any("already associated with a private hosted zone named host.docker.internal" in r for r in reasons)
    with pytest.raises(botocore.exceptions.ClientError, match="ConflictingDomainExists"):
        route53.create_hosted_zone(
            Name="host.docker.internal",
            CallerReference="again",
            VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
            HostedZoneConfig={"PrivateZone": True},
        )
    # Another VPC may have its own.
    other = network(nat=False)["vpc"]
    third = deploy(_zone_stack(other))
    assert third["StackStatus"] == "CREATE_COMPLETE", failures(aws, third["StackId"])

    # Deleting the stack deletes its record and its zone.
    aws("cloudformation").delete_stack(StackName=first["StackId"])
    zones = route53.list_hosted_zones_by_name(DNSName="host.docker.internal")["HostedZones"]
    assert outputs(first)["Zone"].split("/")[-1] not in [z["Id"].split("/")[-1] for z in zones]
