"""Secrets Manager in templates: the Secret resource and dynamic references to it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.secretsmanager.models import secretsmanager_backends

from .templates import Model, register_model


class Secret(Model):
    """AWS::SecretsManager::Secret: Ref and Fn::GetAtt Id give the ARN, as in CloudFormation.

    GenerateSecretString uses moto's GetRandomPassword, so the value is a real random one;
    the value changes on update only when its definition does.
    """

    cfn_type = "AWS::SecretsManager::Secret"
    name_type = "Name"
    attributes = ("Id",)

    def __init__(self, arn: str, name: str, properties: dict[str, Any]):
        self.arn = self.physical_id = arn
        self.name = name
        self.properties = properties

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name != "Id":
            raise UnformattedGetAttTemplateException()
        return self.arn

    @staticmethod
    def _value(backend: Any, properties: dict[str, Any]) -> str:
        if "SecretString" in properties:
            return properties["SecretString"]
        spec = properties.get("GenerateSecretString", {})

        def flag(name: str, default: bool = False) -> bool:
            return str(spec.get(name, default)).lower() == "true"

        password = json.loads(
            backend.get_random_password(
                password_length=int(spec.get("PasswordLength", 32)),
                exclude_characters=spec.get("ExcludeCharacters", ""),
                exclude_numbers=flag("ExcludeNumbers"),
                exclude_punctuation=flag("ExcludePunctuation"),
                exclude_uppercase=flag("ExcludeUppercase"),
                exclude_lowercase=flag("ExcludeLowercase"),
                include_space=flag("IncludeSpace"),
                require_each_included_type=flag("RequireEachIncludedType", True),
            )
        )["RandomPassword"]
        if "SecretStringTemplate" not in spec:
            return password
        value = json.loads(spec["SecretStringTemplate"])
        value[spec["GenerateStringKey"]] = password
        return json.dumps(value)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> Secret:
        backend = secretsmanager_backends[account_id][region_name]
        created = json.loads(
            backend.create_secret(
                name=name,
                secret_string=cls._value(backend, properties),
                secret_binary=None,
                description=properties.get("Description"),
                tags=properties.get("Tags", []),
                kms_key_id=properties.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        return cls(created["ARN"], name, properties)

    @classmethod
    def update(
        cls, original: Secret, name: str, properties: dict[str, Any], account_id: str, region_name: str
    ) -> Secret:
        if properties.get("Name", original.name) != original.name:
            return super().update(original, name, properties, account_id, region_name)
        old = original.properties
        if (properties.get("SecretString"), properties.get("GenerateSecretString")) != (
            old.get("SecretString"),
            old.get("GenerateSecretString"),
        ):
            backend = secretsmanager_backends[account_id][region_name]
            backend.put_secret_value(
                original.arn, cls._value(backend, properties), None, str(uuid.uuid4()), ["AWSCURRENT"]
            )
        original.properties = properties
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(self.arn, None, True)


def install_secret_resource() -> None:
    """moto has no model for AWS::SecretsManager::Secret: the resource is skipped."""
    register_model(Secret)


def resolve_dynamic_references(value: Any, account_id: str, region_name: str) -> Any:
    """Replace {{resolve:secretsmanager:…}} in a property value by the secret's value.

    Format: {{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}},
    secret-id a name or an ARN (which has colons of its own).
    """
    if isinstance(value, dict):
        return {k: resolve_dynamic_references(v, account_id, region_name) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_dynamic_references(v, account_id, region_name) for v in value]
    if not isinstance(value, str):
        return value
    prefix = "{{resolve:secretsmanager:"
    while (start := value.find(prefix)) >= 0:
        end = value.index("}}", start)
        parts = value[start + len(prefix) : end].split(":")
        split = 7 if parts[0] == "arn" else 1
        secret_id, rest = ":".join(parts[:split]), [*parts[split:], "", "", "", ""]
        _, json_key, stage, version = rest[:4]
        backend = secretsmanager_backends[account_id][region_name]
        secret = backend.get_secret_value(secret_id, version or None, stage or None)["SecretString"]
        if json_key:
            secret = json.loads(secret)[json_key]
        value = value[:start] + secret + value[end + 2 :]
    return value


def install_dynamic_references() -> None:
    """moto leaves {{resolve:secretsmanager:…}} in property values as literal text."""
    parse_resource = parsing.parse_resource

    def parse_resource_resolving(resource_json: dict[str, Any], resources_map: Any) -> Any:
        parsed = parse_resource(resource_json, resources_map)
        if parsed:
            resource_class, cleaned, resource_type = parsed
            cleaned["Properties"] = resolve_dynamic_references(
                cleaned.get("Properties", {}), resources_map._account_id, resources_map._region_name
            )
            parsed = resource_class, cleaned, resource_type
        return parsed

    parsing.parse_resource = parse_resource_resolving
