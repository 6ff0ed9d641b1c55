"""Deleting the project's template on the local AWS, in CloudFormation's order.

EfsTree's Delete runs its function, which needs the EFS mount (mount targets and both NFS
rules) and a route to S3 for its answer (NAT, or the stack's S3 gateway endpoint). The
template makes the function depend on all of them, so they outlive EfsTree: the stack
reaches DELETE_COMPLETE. A copy without those dependencies loses them in the first wave,
together with EfsTree, and ends DELETE_FAILED, as it would in AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from tests.local_aws.support import Aws, Deploy, Network, events, failures, recorded, unique

TEMPLATE = Path(__file__).resolve().parents[2] / "cfn" / "CloudExchangeTemplate.yaml"


def project_template(code: dict[str, str], record_dir: Path) -> dict[str, Any]:
    """The template with the fake function as the function's code, recording its events."""
    template, errors = decode(str(TEMPLATE))
    assert not errors, errors
    template = json.loads(json.dumps(template))  # plain dicts and strings
    function = template["Resources"]["EfsTreeFunction"]["Properties"]
    function["Code"] = code
    function["Environment"]["Variables"]["RECORD_DIR"] = str(record_dir)
    return template


def without_dependencies(template: dict[str, Any], names: tuple[str, ...] | None) -> dict[str, Any]:
    """The same template with ``names`` (all when None) taken out of EfsTreeFunction's DependsOn."""
    broken = json.loads(json.dumps(template))
    function = broken["Resources"]["EfsTreeFunction"]
    function["DependsOn"] = [] if names is None else [d for d in function["DependsOn"] if d not in names]
    return broken


# (route to S3, dependencies removed, expected Reason of EfsTree's DELETE_FAILED, whether
# the handler ran); no removal means the template as it is, which must delete cleanly.
CASES = {
    "as-is-nat": ("nat", (), None, True),
    "as-is-s3-endpoint": ("s3-endpoint", (), None, True),
    "no-depends-on-nat": ("nat", None, "EFSMountConnectivityException", False),
    "no-depends-on-s3-endpoint": ("s3-endpoint", None, "EFSMountConnectivityException", False),
    "no-nfs-ingress": ("nat", ("EfsFromEfsTreeFunctionIngress",), "allow no NFS (2049) in", False),
    "no-mount-target": ("nat", ("MountTarget2",), "has no mount target in us-east-1b", False),
    "no-endpoint-dependency": ("s3-endpoint", ("S3GatewayEndpointDependency",), "S3 gateway endpoint", True),
}


@pytest.mark.parametrize("case", CASES)
def test_template_delete(
    case: str, aws: Aws, deploy: Deploy, network: Network, code_bucket: dict[str, str], record_dir: Path
) -> None:
    route, removed, reason, handler_ran = CASES[case]
    net = network(nat=route == "nat")
    template = project_template(code_bucket, record_dir)
    if removed != ():
        template = without_dependencies(template, removed)
    name = unique("ce")
    parameters = {
        "EnvironmentName": name,
        "VpcId": net["vpc"],
        "PrivateSubnet1Id": net["subnets"][0],
        "PrivateSubnet2Id": net["subnets"][1],
        "UiIngressCidr": "10.42.0.0/16",
    }
    if route == "s3-endpoint":
        parameters["S3EndpointRouteTableIds"] = net["route_table"]
    stack = deploy(template, name=name, parameters=parameters)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, name)
    cfn = aws("cloudformation")
    cfn.delete_stack(StackName=name)
    status = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"]
    requests = [e["RequestType"] for e in recorded(record_dir)]
    assert requests == (["Create", "Delete"] if handler_ran else ["Create"])
    if reason is None:
        assert status == "DELETE_COMPLETE", failures(aws, stack["StackId"])
        assert ("FileSystem", "DELETE_SKIPPED", "") in events(aws, stack["StackId"])
        return
    assert status == "DELETE_FAILED"
    (failed,) = [r for logical, s, r in failures(aws, stack["StackId"]) if logical == "EfsTree"]
    assert "did not receive a response" in failed and reason in failed
