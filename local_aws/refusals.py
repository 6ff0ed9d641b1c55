"""Requests moto accepts and AWS refuses, refused here with AWS's error, so that a deployment
that works locally does not fail on its first real run.

- A stack whose template has a parameter without Default and without a value: CloudFormation
  refuses CreateStack and a CREATE or IMPORT change set before anything happens. moto refuses
  CreateStack only (another message) and the local IMPORT change set not at all.
- A listener forwarding to a target group another load balancer already uses: a target group
  belongs to one load balancer (TargetGroupAssociationLimit). moto links it to both.
- A second S3 gateway endpoint on a route table: a route table holds one route to a prefix
  list (RouteAlreadyExists). moto adds the second endpoint.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import vpcs as vpc_models
from moto.elbv2.exceptions import ELBClientError
from moto.elbv2.models import ELBv2Backend

from .resource_import import _parse


def missing_parameters(template: dict[str, Any], given: set[str]) -> list[str]:
    """The template's parameters without Default that GIVEN does not name, in template order."""
    return [
        name
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" not in (spec or {}) and name not in given
    ]


def install_parameters_need_values() -> None:
    """CreateStack, CreateChangeSet (CREATE, IMPORT): "Parameters: [A, B] must have values"."""

    def checked(original: Any, kind: str) -> Any:
        def operation(self: CloudFormationResponse) -> Any:
            change_set_type = self._get_param("ChangeSetType") or "UPDATE"
            if kind == "stack" or change_set_type in ("CREATE", "IMPORT"):
                body = self._get_param("TemplateBody")
                if self._get_param("TemplateURL"):
                    body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
                given = {
                    p["ParameterKey"]
                    for p in self._get_param("Parameters", [])
                    if "ParameterValue" in p or p.get("UsePreviousValue") in (True, "true")
                }
                if body and (missing := missing_parameters(_parse(body), given)):
                    raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
            return original(self)

        return operation

    CloudFormationResponse.create_stack = checked(CloudFormationResponse.create_stack, "stack")
    CloudFormationResponse.create_change_set = checked(CloudFormationResponse.create_change_set, "change set")


def install_target_group_one_load_balancer() -> None:
    """CreateListener refuses a target group another load balancer's listener forwards to."""
    original = ELBv2Backend.create_listener

    def create_listener(self: ELBv2Backend, load_balancer_arn: str, *args: Any, **kwargs: Any) -> Any:
        actions = kwargs.get("actions", args[4] if len(args) > 4 else [])
        wanted = set()
        for action in actions or []:
            if action.get("Type", action.get("type")) == "forward":
                wanted |= set(self._get_target_group_arns_from(action_data=action))
        for balancer in self.load_balancers.values():
            if balancer.arn == load_balancer_arn:
                continue
            for listener in balancer.listeners.values():
                for action in listener.default_actions:
                    if action.type == "forward":
                        taken = wanted & set(self._get_target_group_arns_from(action_data=action.data))
                        if taken:
                            raise ELBClientError(
                                "TargetGroupAssociationLimit",
                                "The following target groups cannot be associated with more than one "
                                f"load balancer: {', '.join(sorted(taken))}",
                            )
        return original(self, load_balancer_arn, *args, **kwargs)

    ELBv2Backend.create_listener = create_listener


def install_one_gateway_endpoint_per_route_table() -> None:
    """CreateVpcEndpoint (Gateway) refuses a route table that already routes to the service."""
    original = vpc_models.VPCBackend.create_vpc_endpoint

    def create_vpc_endpoint(
        self: Any, vpc_id: str, service_name: str, endpoint_type: str | None, *args: Any, **kwargs: Any
    ) -> Any:
        route_tables = kwargs.get("route_table_ids", args[1] if len(args) > 1 else []) or []
        if not endpoint_type or endpoint_type.lower() == "gateway":
            for endpoint in self.vpc_end_points.values():
                if endpoint.service_name != service_name or endpoint.state == "deleted":
                    continue
                for table in set(route_tables) & set(endpoint.route_table_ids or []):
                    raise EC2ClientError(
                        "RouteAlreadyExists",
                        f"route table {table} already has a route to {service_name} (gateway endpoint {endpoint.id})",
                    )
        return original(self, vpc_id, service_name, endpoint_type, *args, **kwargs)

    vpc_models.VPCBackend.create_vpc_endpoint = create_vpc_endpoint
