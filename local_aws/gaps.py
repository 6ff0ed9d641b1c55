"""Every gap of moto 5.2.5 the local AWS closes, in one place: what moto does, the AWS
behaviour copied, where AWS documents it, and the function that installs the patch.

tests/local_aws/ has one test per gap, named test_<id with _ for ->; tests/local_aws/
test_registry.py checks that each gap has one. server.main() installs them all, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from . import (
    custom_resources,
    efs,
    network,
    refusals,
    resource_import,
    resources,
    route53,
    secrets,
    stack_lifecycle,
    templates,
)

CFN = "https://docs.aws.amazon.com/AWSCloudFormation/latest"


@dataclasses.dataclass(frozen=True)
class Gap:
    id: str
    aws: str  # the behaviour copied
    docs: str  # where AWS documents it
    install: Callable[[], None]


GAPS: tuple[Gap, ...] = (
    Gap(
        "efs-getatt",
        "Fn::GetAtt on AWS::EFS::FileSystem (Arn, FileSystemId) and AWS::EFS::AccessPoint "
        "(Arn, AccessPointId) gives the attribute",
        f"{CFN}/TemplateReference/aws-resource-efs-filesystem.html#aws-resource-efs-filesystem-return-values",
        efs.install_getatt,
    ),
    Gap(
        "efs-access-point-ref",
        "Ref on an access point gives its id fsap-…",
        f"{CFN}/TemplateReference/aws-resource-efs-accesspoint.html#aws-resource-efs-accesspoint-return-values",
        efs.install_access_point_ref,
    ),
    Gap(
        "efs-file-system-policy",
        "FileSystemPolicy is applied on create and on update",
        f"{CFN}/TemplateReference/aws-resource-efs-filesystem.html#cfn-efs-filesystem-filesystempolicy",
        efs.install_file_system_policy,
    ),
    Gap(
        "secret-resource",
        "AWS::SecretsManager::Secret is created with a generated value; Ref gives the ARN",
        f"{CFN}/TemplateReference/aws-resource-secretsmanager-secret.html",
        secrets.install_secret_resource,
    ),
    Gap(
        "dynamic-references",
        "{{resolve:secretsmanager:…}} in a property is replaced by the secret's value",
        f"{CFN}/UserGuide/dynamic-references-secretsmanager.html",
        secrets.install_dynamic_references,
    ),
    Gap(
        "no-value-in-lists",
        "!Ref AWS::NoValue as a list item removes the item",
        f"{CFN}/TemplateReference/pseudo-parameter-reference.html#cfn-pseudo-param-novalue",
        templates.install_no_value_in_lists,
    ),
    Gap(
        "group-egress-property",
        "a security group's SecurityGroupEgress replaces the default allow-all egress",
        f"{CFN}/TemplateReference/aws-resource-ec2-securitygroup.html#cfn-ec2-securitygroup-securitygroupegress",
        network.install_group_egress_property,
    ),
    Gap(
        "group-egress-resource",
        "AWS::EC2::SecurityGroupEgress adds an egress rule to its group; deleting it revokes the rule",
        f"{CFN}/TemplateReference/aws-resource-ec2-securitygroupegress.html",
        network.install_group_egress_resource,
    ),
    Gap(
        "group-ingress-delete",
        "deleting an AWS::EC2::SecurityGroupIngress revokes its rule",
        f"{CFN}/TemplateReference/aws-resource-ec2-securitygroupingress.html",
        network.install_group_ingress_delete,
    ),
    Gap(
        "vpc-endpoint-delete",
        "deleting an AWS::EC2::VPCEndpoint deletes the endpoint and its routes",
        f"{CFN}/TemplateReference/aws-resource-ec2-vpcendpoint.html",
        network.install_vpc_endpoint_delete,
    ),
    Gap(
        "lambda-file-system-configs",
        "a function keeps its FileSystemConfigs; Lambda mounts the access point "
        "through a mount target in the function's Availability Zone over NFS (TCP 2049), else the invocation "
        "fails with EFSMountConnectivityException before the handler runs",
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-filesystem.html",
        network.install_lambda_file_system_configs,
    ),
    Gap(
        "role-policy",
        "AWS::IAM::RolePolicy puts an inline policy on its role; deleting it removes the policy",
        f"{CFN}/TemplateReference/aws-resource-iam-rolepolicy.html",
        resources.install_role_policy,
    ),
    Gap(
        "bucket-policy",
        "AWS::S3::BucketPolicy sets its bucket's policy; deleting it removes the policy",
        f"{CFN}/TemplateReference/aws-resource-s3-bucketpolicy.html",
        resources.install_bucket_policy,
    ),
    Gap(
        "sns-subscription",
        "AWS::SNS::Subscription subscribes its endpoint (email: pending confirmation); Ref gives its ARN",
        f"{CFN}/TemplateReference/aws-resource-sns-subscription.html",
        resources.install_subscription,
    ),
    Gap(
        "cloudwatch-alarm",
        "AWS::CloudWatch::Alarm creates a metric or metric-math alarm with its actions; Ref gives its name",
        f"{CFN}/TemplateReference/aws-resource-cloudwatch-alarm.html",
        resources.install_alarm,
    ),
    Gap(
        "lambda-logging-config",
        "a function's LoggingConfig sets AWS_LAMBDA_LOG_FORMAT and (JSON) AWS_LAMBDA_LOG_LEVEL for a custom "
        "runtime, and its LogGroup receives the function's logs",
        "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html",
        custom_resources.install_lambda_logging_config,
    ),
    Gap(
        "custom-resource-lifecycle",
        "a custom resource's function gets Create, Update (with OldResourceProperties) "
        "and Delete; a FAILED answer fails the resource and the stack rolls back; without an answer "
        "the resource fails after ServiceTimeout (default 3600 s; here at most --max-service-timeout)",
        f"{CFN}/TemplateReference/crpg-ref-requests.html",
        custom_resources.install_lifecycle,
    ),
    Gap(
        "response-url",
        "the answer goes to a pre-signed S3 URL, refused unless used byte for byte and without "
        "a Content-Type; a function in a VPC reaches it only through NAT or an S3 gateway endpoint",
        f"{CFN}/TemplateReference/crpg-ref-responses.html",
        custom_resources.install_response_url,
    ),
    Gap(
        "resource-events",
        "every resource has its own *_IN_PROGRESS/*_COMPLETE/*_FAILED events with a reason",
        f"{CFN}/APIReference/API_DescribeStackEvents.html",
        stack_lifecycle.install_resource_events,
    ),
    Gap(
        "conditional-updates",
        "an update creates a resource whose Condition became true, deletes one whose Condition became "
        "false and leaves one whose Condition stays false alone",
        f"{CFN}/TemplateReference/conditions-section-structure.html",
        stack_lifecycle.install_conditional_updates,
    ),
    Gap(
        "sub-parameter-updates",
        "an update re-applies every resource that uses a changed parameter, through Ref or ${Parameter} in Fn::Sub",
        f"{CFN}/TemplateReference/intrinsic-function-reference-sub.html",
        stack_lifecycle.install_sub_parameter_updates,
    ),
    Gap(
        "parameter-values",
        "describe-stacks shows every parameter as text (lists comma-joined, defaults included, NoEcho as ****); "
        "UsePreviousValue takes the value the stack uses, a defaulted one included",
        f"{CFN}/APIReference/API_Parameter.html",
        stack_lifecycle.install_parameter_values,
    ),
    Gap(
        "create-rollback",
        "a failed create rolls back: created resources are deleted, ROLLBACK_COMPLETE",
        f"{CFN}/UserGuide/stack-failure-options.html",
        stack_lifecycle.install_create_rollback,
    ),
    Gap(
        "update-rollback",
        "a failed update rolls the resource back, UPDATE_ROLLBACK_COMPLETE",
        f"{CFN}/UserGuide/using-cfn-updating-stacks.html",
        stack_lifecycle.install_update_rollback,
    ),
    Gap(
        "deletion-order",
        "delete in reverse dependency order (Ref, Fn::GetAtt, Fn::Sub, DependsOn), in waves; "
        "a retained resource is DELETE_SKIPPED",
        f"{CFN}/TemplateReference/aws-attribute-dependson.html",
        stack_lifecycle.install_deletion_order,
    ),
    Gap(
        "delete-failed-kept",
        "a stack whose deletion failed stays, DELETE_FAILED with the reason",
        f"{CFN}/UserGuide/troubleshooting.html#troubleshooting-errors-delete-stack-fails",
        stack_lifecycle.install_delete_failed_kept,
    ),
    Gap(
        "retain-resources",
        "DeleteStack's RetainResources, accepted for a DELETE_FAILED stack only, leaves those resources "
        "(DELETE_SKIPPED) and deletes the rest",
        f"{CFN}/APIReference/API_DeleteStack.html",
        stack_lifecycle.install_retain_resources,
    ),
    Gap(
        "frozen-when-gone",
        "a deleted or rolled-back stack has no outputs and builds nothing again",
        f"{CFN}/APIReference/API_DescribeStacks.html",
        stack_lifecycle.install_frozen_when_gone,
    ),
    Gap(
        "no-updates",
        'an update with the same template and parameters is refused: "No updates are to be performed."',
        f"{CFN}/UserGuide/using-cfn-updating-stacks-direct.html",
        stack_lifecycle.install_no_updates,
    ),
    Gap(
        "import-change-sets",
        "an IMPORT change set adopts existing resources into a new stack (IMPORT_COMPLETE)",
        f"{CFN}/UserGuide/resource-import-new-stack.html",
        resource_import.install_import_change_sets,
    ),
    Gap(
        "parameters-need-values",
        "a parameter without Default and without a value refuses CreateStack and a CREATE or IMPORT change set: "
        '"Parameters: [Name] must have values"',
        f"{CFN}/TemplateReference/parameters-section-structure.html",
        refusals.install_parameters_need_values,
    ),
    Gap(
        "target-group-one-load-balancer",
        "a target group belongs to one load balancer: CreateListener forwarding to a group another load "
        "balancer uses fails with TargetGroupAssociationLimit",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateListener.html#API_CreateListener_Errors",
        refusals.install_target_group_one_load_balancer,
    ),
    Gap(
        "one-gateway-endpoint-per-route-table",
        "a route table holds one route to a service's prefix list: a second S3 gateway endpoint on it is refused "
        "(RouteAlreadyExists)",
        "https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html",
        refusals.install_one_gateway_endpoint_per_route_table,
    ),
    Gap(
        "route53-private-zone",
        "AWS::Route53::HostedZone with VPCs is a private zone of its Name on those VPCs (Ref gives its id); "
        "a VPC may hold one private zone of a name: CreateHostedZone refuses another (ConflictingDomainExists)",
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHostedZone.html",
        route53.install_private_zone,
    ),
)

_INSTALLED: set[str] = set()


def install_all(skip: frozenset[str] = frozenset()) -> None:
    """Install every gap once (a second call changes nothing), except those in ``skip``
    (to show that a gap's test fails without its patch)."""
    unknown = skip - {gap.id for gap in GAPS}
    if unknown:
        raise ValueError(f"unknown gaps: {sorted(unknown)}")
    for gap in GAPS:
        if gap.id not in _INSTALLED and gap.id not in skip:
            gap.install()
            _INSTALLED.add(gap.id)
