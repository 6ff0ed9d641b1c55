"""Gaps role-policy, bucket-policy, sns-subscription, cloudwatch-alarm: resource types moto
skips in templates."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from tests.local_aws.support import Aws, Deploy, failures, outputs, unique

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def test_role_policy(deploy: Deploy, aws: Aws) -> None:
    stack = deploy(
        {
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
                "Inline": {
                    "Type": "AWS::IAM::RolePolicy",
                    "Properties": {"RoleName": {"Ref": "Role"}, "PolicyName": "read", "PolicyDocument": READ},
                },
            },
            "Outputs": {"Role": {"Value": {"Ref": "Role"}}},
        }
    )
    role, iam = outputs(stack)["Role"], aws("iam")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["read"]
    assert iam.get_role_policy(RoleName=role, PolicyName="read")["PolicyDocument"] == READ
    # Deleted before its role (it references it), so the role can go.
    aws("cloudformation").delete_stack(StackName=stack["StackId"])
    assert aws("cloudformation").describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] == (
        "DELETE_COMPLETE"
    ), failures(aws, stack["StackId"])
    with pytest.raises(botocore.exceptions.ClientError):
        iam.get_role(RoleName=role)


def test_bucket_policy(deploy: Deploy, aws: Aws) -> None:
    bucket = unique("logs")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    stack = deploy(
        {
            "Resources": {
                "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
                "Policy": {
                    "Type": "AWS::S3::BucketPolicy",
                    "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": policy},
                },
            }
        }
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, stack["StackId"])
    assert json.loads(aws("s3").get_bucket_policy(Bucket=bucket)["Policy"]) == policy


def test_sns_subscription(deploy: Deploy, aws: Aws) -> None:
    stack = deploy(
        {
            "Resources": {
                "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
                "Mail": {
                    "Type": "AWS::SNS::Subscription",
                    "Properties": {"TopicArn": {"Ref": "Topic"}, "Protocol": "email", "Endpoint": "ops@example.com"},
                },
            },
            "Outputs": {"Topic": {"Value": {"Ref": "Topic"}}, "Mail": {"Value": {"Ref": "Mail"}}},
        }
    )
    out = outputs(stack)
    (found,) = aws("sns").list_subscriptions_by_topic(TopicArn=out["Topic"])["Subscriptions"]
    assert (found["Endpoint"], found["Protocol"]) == ("ops@example.com", "email")
    assert out["Mail"].startswith(out["Topic"] + ":")
    aws("cloudformation").delete_stack(StackName=stack["StackId"])
    assert out["Mail"] not in [s["SubscriptionArn"] for s in aws("sns").list_subscriptions()["Subscriptions"]]


def test_cloudwatch_alarm(deploy: Deploy, aws: Aws) -> None:
    name = unique("memory-high")
    used = {
        "Namespace": "ECS/ContainerInsights",
        "MetricName": "MemoryUtilized",
        "Dimensions": [{"Name": "ClusterName", "Value": "ce"}],
    }
    stack = deploy(
        {
            "Resources": {
                "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
                "Simple": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Properties": {
                        "AlarmName": name + "-simple",
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                        "Statistic": "Sum",
                        "Period": 300,
                        "EvaluationPeriods": 1,
                        "Threshold": 1,
                        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                        "TreatMissingData": "notBreaching",
                        "AlarmActions": [{"Ref": "Topic"}],
                    },
                },
                "Math": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Properties": {
                        "AlarmName": name,
                        "EvaluationPeriods": 3,
                        "Threshold": 90,
                        "ComparisonOperator": "GreaterThanThreshold",
                        "Metrics": [
                            {
                                "Id": "used",
                                "ReturnData": False,
                                "MetricStat": {"Metric": used, "Period": 300, "Stat": "Average"},
                            },
                            {"Id": "percent", "Expression": "100 * used", "ReturnData": True},
                        ],
                        "AlarmActions": [{"Ref": "Topic"}],
                        "OKActions": [{"Ref": "Topic"}],
                    },
                },
            },
            "Outputs": {
                "Topic": {"Value": {"Ref": "Topic"}},
                "Math": {"Value": {"Ref": "Math"}},
                "Arn": {"Value": {"Fn::GetAtt": ["Math", "Arn"]}},
            },
        }
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(aws, stack["StackId"])
    out = outputs(stack)
    assert out["Math"] == name and out["Arn"].endswith(f":alarm:{name}")
    alarms = {a["AlarmName"]: a for a in aws("cloudwatch").describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]}
    assert sorted(alarms) == [name, name + "-simple"]
    assert alarms[name]["AlarmActions"] == [out["Topic"]] and alarms[name]["OKActions"] == [out["Topic"]]
    assert [m["Id"] for m in alarms[name]["Metrics"]] == ["used", "percent"]
    assert alarms[name + "-simple"]["Dimensions"] == [{"Name": "FunctionName", "Value": "f"}]
    aws("cloudformation").delete_stack(StackName=stack["StackId"])
    assert aws("cloudwatch").describe_alarms(AlarmNamePrefix=name)["MetricAlarms"] == []
