"""Gaps secret-resource, dynamic-references, no-value-in-lists."""

from __future__ import annotations

import json

from tests.local_aws.support import Aws, Deploy, outputs, unique

SECRET = {
    "Type": "AWS::SecretsManager::Secret",
    "Properties": {
        "GenerateSecretString": {
            "SecretStringTemplate": '{"username": "ce"}',
            "GenerateStringKey": "password",
            "PasswordLength": 24,
            "ExcludePunctuation": True,
        }
    },
}


def test_secret_resource(deploy: Deploy, aws: Aws) -> None:
    stack = deploy(
        {
            "Resources": {"Secret": SECRET},
            "Outputs": {"Ref": {"Value": {"Ref": "Secret"}}, "Id": {"Value": {"Fn::GetAtt": ["Secret", "Id"]}}},
        }
    )
    out = outputs(stack)
    assert out["Ref"] == out["Id"] and out["Ref"].startswith("arn:aws:secretsmanager:")
    value = json.loads(aws("secretsmanager").get_secret_value(SecretId=out["Ref"])["SecretString"])
    assert value["username"] == "ce"
    assert len(value["password"]) == 24 and value["password"].isalnum()


def test_dynamic_references(deploy: Deploy, aws: Aws) -> None:
    stack = deploy(
        {
            "Resources": {
                "Secret": SECRET,
                "Copy": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {
                        "Name": unique("copy"),
                        "Type": "String",
                        "Value": {"Fn::Sub": "user={{resolve:secretsmanager:${Secret}:SecretString:username}}"},
                    },
                },
            },
            "Outputs": {"Parameter": {"Value": {"Ref": "Copy"}}},
        }
    )
    parameter = aws("ssm").get_parameter(Name=outputs(stack)["Parameter"])["Parameter"]
    assert parameter["Value"] == "user=ce"


def test_no_value_in_lists(deploy: Deploy) -> None:
    stack = deploy(
        {
            "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
            "Resources": {
                "Handle": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": unique("handle"), "Type": "String", "Value": "x"},
                }
            },
            "Outputs": {
                "Joined": {
                    "Value": {
                        "Fn::Join": [",", ["first", {"Fn::If": ["Never", "hidden", {"Ref": "AWS::NoValue"}]}, "last"]]
                    }
                }
            },
        }
    )
    assert outputs(stack)["Joined"] == "first,last"
