"""Resource types the template uses that moto 5.2.5 has no CloudFormation model for (it
skips them, so they never exist): IAM inline role policies, S3 bucket policies, SNS
subscriptions, CloudWatch alarms. Each is created, updated and deleted through moto's own
backend, so the API shows it as AWS would."""

from __future__ import annotations

import json
from typing import Any

from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends

from .templates import Model, register_model


class _Model(Model):
    """A resource made by one backend call (``apply``), updated in place by the same call
    unless ``replaced_by`` says the change needs a new one."""

    def __init__(self, physical_id: str, properties: dict[str, Any], account_id: str, region_name: str):
        self.physical_id = physical_id
        self.properties = properties
        self.account_id = account_id
        self.region_name = region_name

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> _Model:
        return cls(cls.apply(properties, account_id, region_name, name), properties, account_id, region_name)

    @classmethod
    def update(
        cls, original: _Model, name: str, properties: dict[str, Any], account_id: str, region_name: str
    ) -> _Model:
        if cls.replaced_by(original.properties, properties):
            replacement = cls.create(name, properties, account_id, region_name)
            original.delete(account_id, region_name)
            return replacement
        cls.apply(properties, account_id, region_name, original.physical_id)
        original.properties = properties
        return original

    @classmethod
    def apply(cls, properties: dict[str, Any], account_id: str, region_name: str, name: str) -> str:
        """Create or update the resource; returns its physical id."""
        raise NotImplementedError

    @staticmethod
    def replaced_by(old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether changing ``old`` to ``new`` needs a new resource (Update requires: Replacement)."""
        return False


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class RolePolicy(_Model):
    """AWS::IAM::RolePolicy: an inline policy of a role (PutRolePolicy / DeleteRolePolicy).
    Ref gives an id; changing PolicyName or RoleName replaces it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-rolepolicy.html"""

    cfn_type = "AWS::IAM::RolePolicy"

    @classmethod
    def apply(cls, properties: dict[str, Any], account_id: str, region_name: str, name: str) -> str:
        role = properties["RoleName"]
        iam_backends[account_id]["global"].put_role_policy(
            role, properties["PolicyName"], _document(properties["PolicyDocument"])
        )
        return f"{properties['PolicyName']}|{role}"

    @staticmethod
    def replaced_by(old: dict[str, Any], new: dict[str, Any]) -> bool:
        return (old["PolicyName"], old["RoleName"]) != (new["PolicyName"], new["RoleName"])

    def delete(self, account_id: str, region_name: str) -> None:
        iam_backends[account_id]["global"].delete_role_policy(
            self.properties["RoleName"], self.properties["PolicyName"]
        )


class BucketPolicy(_Model):
    """AWS::S3::BucketPolicy (PutBucketPolicy / DeleteBucketPolicy); changing Bucket replaces it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucketpolicy.html"""

    cfn_type = "AWS::S3::BucketPolicy"

    @classmethod
    def apply(cls, properties: dict[str, Any], account_id: str, region_name: str, name: str) -> str:
        s3_backends[account_id]["aws"].put_bucket_policy(
            properties["Bucket"], _document(properties["PolicyDocument"]).encode()
        )
        return properties["Bucket"]

    @staticmethod
    def replaced_by(old: dict[str, Any], new: dict[str, Any]) -> bool:
        return old["Bucket"] != new["Bucket"]

    def delete(self, account_id: str, region_name: str) -> None:
        s3_backends[account_id]["aws"].delete_bucket_policy(self.properties["Bucket"])


class Subscription(_Model):
    """AWS::SNS::Subscription (Subscribe / Unsubscribe); Ref gives the subscription ARN, an
    email endpoint stays pending until confirmed; changing the endpoint, protocol or topic
    replaces it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-subscription.html"""

    cfn_type = "AWS::SNS::Subscription"

    @classmethod
    def apply(cls, properties: dict[str, Any], account_id: str, region_name: str, name: str) -> str:
        backend = sns_backends[account_id][region_name]
        if name.startswith("arn:aws:sns:"):
            return name  # nothing to update in place
        return backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"]).arn

    @staticmethod
    def replaced_by(old: dict[str, Any], new: dict[str, Any]) -> bool:
        keys = ("TopicArn", "Endpoint", "Protocol")
        return any(old.get(k) != new.get(k) for k in keys)

    def delete(self, account_id: str, region_name: str) -> None:
        sns_backends[account_id][region_name].unsubscribe(self.physical_id)


def _dimensions(values: list[dict[str, str]]) -> list[Dimension]:
    return [Dimension(name=d["Name"], value=d["Value"]) for d in values]


def _queries(metrics: list[dict[str, Any]]) -> list[MetricDataQuery] | None:
    if not metrics:
        return None
    queries = []
    for query in metrics:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"],
                    namespace=metric.get("Namespace"),
                    dimensions=_dimensions(metric.get("Dimensions", [])),
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData", True),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class Alarm(_Model):
    """AWS::CloudWatch::Alarm (PutMetricAlarm / DeleteAlarms); Ref gives the alarm name,
    Fn::GetAtt Arn its ARN; changing AlarmName replaces it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-alarm.html"""

    attributes = ("Arn",)

    cfn_type = "AWS::CloudWatch::Alarm"

    @classmethod
    def apply(cls, properties: dict[str, Any], account_id: str, region_name: str, name: str) -> str:
        alarm_name = properties.get("AlarmName") or name
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=alarm_name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=_queries(properties.get("Metrics", [])),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=properties.get("DatapointsToAlarm"),
            period=properties.get("Period"),
            threshold=float(properties["Threshold"]) if "Threshold" in properties else None,
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=properties.get("Dimensions", []),
            alarm_actions=properties.get("AlarmActions", []),
            ok_actions=properties.get("OKActions", []),
            insufficient_data_actions=properties.get("InsufficientDataActions", []),
            unit=properties.get("Unit"),
            actions_enabled=str(properties.get("ActionsEnabled", True)).lower() == "true",
            treat_missing_data=properties.get("TreatMissingData"),
        )
        return alarm_name

    @staticmethod
    def replaced_by(old: dict[str, Any], new: dict[str, Any]) -> bool:
        return old.get("AlarmName") != new.get("AlarmName")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return cloudwatch_backends[self.account_id][self.region_name].alarms[self.physical_id].alarm_arn

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.physical_id])


def install_role_policy() -> None:
    """moto skips AWS::IAM::RolePolicy: the role never gets its inline policy."""
    register_model(RolePolicy)


def install_bucket_policy() -> None:
    """moto skips AWS::S3::BucketPolicy: the bucket never gets its policy."""
    register_model(BucketPolicy)


def install_subscription() -> None:
    """moto skips AWS::SNS::Subscription: the topic never gets its subscriber."""
    register_model(Subscription)


def install_alarm() -> None:
    """moto skips AWS::CloudWatch::Alarm: the alarm never exists."""
    register_model(Alarm)
