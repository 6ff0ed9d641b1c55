"""EFS in templates: attributes, access point ids, and the file system policy."""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.efs import models as efs_models

from .templates import after_create, properties_update


def _attribute_getter(names: dict[str, str]) -> Any:
    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name not in names:
            raise UnformattedGetAttTemplateException()
        return getattr(self, names[attribute_name])

    return get_cfn_attribute


def install_getatt() -> None:
    """FileSystem and AccessPoint have no get_cfn_attribute: Fn::GetAtt is an HTTP 500."""
    efs_models.FileSystem.get_cfn_attribute = _attribute_getter(
        {"Arn": "file_system_arn", "FileSystemId": "file_system_id"}
    )
    efs_models.AccessPoint.get_cfn_attribute = _attribute_getter(
        {"Arn": "access_point_arn", "AccessPointId": "access_point_id"}
    )


def install_access_point_ref() -> None:
    """AccessPoint has no physical_resource_id: Ref gives the object's repr, not fsap-…."""
    efs_models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)


def _put_policy(file_system: Any, account_id: str, region_name: str, policy: Any) -> None:
    backend = efs_models.efs_backends[account_id][region_name]
    if policy is None:
        file_system.file_system_policy = None
    else:
        backend.put_file_system_policy(
            file_system.file_system_id, json.dumps(policy), bypass_policy_lockout_safety_check=False
        )


def install_file_system_policy() -> None:
    """moto ignores FileSystemPolicy in templates and cannot update a file system.

    AWS::EFS::FileSystem applies FileSystemPolicy on create and on update (no interruption);
    removing the property removes the policy.
    """

    def apply_policy(file_system: Any, properties: dict[str, Any], account_id: str, region_name: str) -> None:
        if properties.get("FileSystemPolicy") is not None:
            _put_policy(file_system, account_id, region_name, properties["FileSystemPolicy"])

    after_create(efs_models.FileSystem, apply_policy)

    def update_policy(
        cls: Any, file_system: Any, name: str, properties: dict[str, Any], account: str, region: str
    ) -> Any:
        _put_policy(file_system, account, region, properties.get("FileSystemPolicy"))
        return file_system

    efs_models.FileSystem.update_from_cloudformation_json = properties_update(update_policy)
