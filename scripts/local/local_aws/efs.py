"""EFS in templates: attributes, access point ids, and the file system policy."""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.efs import models as efs_models


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
    create = efs_models.FileSystem.create_from_cloudformation_json.__func__

    def create_with_policy(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        file_system = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        policy = cloudformation_json.get("Properties", {}).get("FileSystemPolicy")
        if policy is not None:
            _put_policy(file_system, account_id, region_name, policy)
        return file_system

    def update_policy(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        policy = cloudformation_json.get("Properties", {}).get("FileSystemPolicy")
        _put_policy(original_resource, account_id, region_name, policy)
        return original_resource

    efs_models.FileSystem.create_from_cloudformation_json = classmethod(create_with_policy)
    efs_models.FileSystem.update_from_cloudformation_json = classmethod(update_policy)
