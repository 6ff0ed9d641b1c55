"""CloudFormation resource import into a new stack: an IMPORT change set adopts existing
resources (here: a retained EFS file system and Secrets Manager secrets), after which a
normal update adds the rest of the template.

Followed (AWS CloudFormation User Guide):
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import-new-stack.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import-supported-resources.html

* ``create-change-set --change-set-type IMPORT --resources-to-import …`` on a stack that
  does not exist yet; the stack waits in REVIEW_IN_PROGRESS.
* Every resource to import must be in the template with its type and a DeletionPolicy (any
  value); the template may hold no other resource (an import creates, updates and deletes
  nothing); each identifier is the type's primary identifier (FileSystemId for a file
  system, Id — the ARN — for a secret); a type that does not support import is refused.
  These are ValidationErrors of CreateChangeSet.
* A resource that does not exist or already belongs to a stack makes the change set
  FAILED, with the reason.
* ``execute-change-set``: IMPORT_IN_PROGRESS, each resource IMPORT_IN_PROGRESS and
  IMPORT_COMPLETE, the stack IMPORT_COMPLETE. Properties are not applied by an import (the
  next update does that, e.g. the file system policy).

* Outputs cannot be added by an import: they come with the update that follows.

Not emulated: import into an existing stack, and types other than the two above (both are
supported by AWS; the project does not use them).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from moto.cloudformation import models as cfn_models
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_changeset_id, generate_stack_id, yaml_tag_constructor
from moto.core.responses import ActionResult
from moto.efs.models import efs_backends
from moto.secretsmanager.models import secretsmanager_backends

from .events import add_event, set_status
from .secrets import Secret

# Type -> primary identifier, for the types the local AWS can import (the schemas'
# primaryIdentifier; cfn-lint ships them under data/schemas/providers).
IMPORTABLE = {"AWS::EFS::FileSystem": "FileSystemId", "AWS::SecretsManager::Secret": "Id"}
# Types that support import in AWS but are not emulated here.
IMPORTABLE_NOT_EMULATED = {
    "AWS::EC2::SecurityGroup",
    "AWS::EFS::AccessPoint",
    "AWS::EFS::MountTarget",
    "AWS::ECS::Cluster",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
}


def _parse(template: str) -> dict[str, Any]:
    yaml.add_multi_constructor("", yaml_tag_constructor)
    try:
        return yaml.load(template, Loader=yaml.Loader)
    except yaml.YAMLError:
        return json.loads(template)


def validate_import(template: dict[str, Any], to_import: list[dict[str, Any]]) -> None:
    """The ValidationErrors CreateChangeSet gives for an IMPORT it refuses."""
    resources = template.get("Resources", {})
    by_id = {item["LogicalResourceId"]: item for item in to_import}
    unsupported = sorted({i["ResourceType"] for i in to_import} - set(IMPORTABLE) - IMPORTABLE_NOT_EMULATED)
    if unsupported:
        raise ValidationError(message=f"ResourceTypes {unsupported} are not supported for Import")
    not_emulated = sorted({i["ResourceType"] for i in to_import} & IMPORTABLE_NOT_EMULATED)
    if not_emulated:
        raise ValidationError(message=f"local AWS: import of {not_emulated} is not emulated")
    if template.get("Outputs"):
        # The error AWS gives for an import template with outputs (quoted in
        # https://github.com/awslabs/aws-security-assessment-solution/issues/6); add them in
        # the update that follows.
        raise ValidationError(message="As part of the import operation, you cannot modify or add [Outputs]")
    others = sorted(set(resources) - set(by_id))
    if others:
        raise ValidationError(
            message=f"You have modified resources {others} in your template that are not being imported. "
            "Update, create or delete operations cannot be executed during import operations."
        )
    for logical_id, item in by_id.items():
        definition = resources.get(logical_id)
        if definition is None:
            raise ValidationError(message=f"Resource {logical_id} to import is not in the template")
        if definition.get("Type") != item["ResourceType"]:
            raise ValidationError(
                message=f"Resource {logical_id} is {definition.get('Type')} in the template, "
                f"{item['ResourceType']} in ResourcesToImport"
            )
        if "DeletionPolicy" not in definition:
            raise ValidationError(
                message=f"The following resources to import [{logical_id}] must have DeletionPolicy "
                "attribute specified in the template."
            )
        key = IMPORTABLE[item["ResourceType"]]
        if set(item.get("ResourceIdentifier", {})) != {key}:
            raise ValidationError(
                message=f"ResourceIdentifier for {logical_id} ({item['ResourceType']}) must be exactly {{{key}}}, "
                f"got {sorted(item.get('ResourceIdentifier', {}))}"
            )


def _find(account_id: str, region: str, resource_type: str, identifier: str, properties: dict[str, Any]) -> Any:
    """The existing resource, as the model moto keeps in a stack; None when it does not exist."""
    if resource_type == "AWS::EFS::FileSystem":
        return efs_backends[account_id][region].file_systems_by_id.get(identifier)
    backend = secretsmanager_backends[account_id][region]
    if not backend.secrets.get(identifier):
        return None
    secret = backend.secrets.get(identifier)
    return Secret(secret.arn, secret.name, properties)


def _owner(backend: Any, physical_id: str) -> str | None:
    for stack in backend.stacks.values():
        if stack.status.startswith("DELETE_COMPLETE"):
            continue
        for resource in stack.resource_map._parsed_resources.values():
            if getattr(resource, "physical_resource_id", None) == physical_id:
                return stack.name
    return None


class _ImportChange:
    def __init__(self, logical_id: str, resource_type: str, physical_id: str):
        self.action = "Import"
        self.logical_resource_id = logical_id
        self.resource_type = resource_type
        self.physical_resource_id = physical_id


def install_import_change_sets() -> None:
    """moto's CreateChangeSet treats IMPORT as CREATE: nothing is adopted, everything in
    the template is created new."""
    create_change_set = CloudFormationResponse.create_change_set
    execute_change_set = cfn_models.CloudFormationBackend.execute_change_set

    def create_import_change_set(self: CloudFormationResponse) -> Any:
        if self._get_param("ChangeSetType") != "IMPORT":
            return create_change_set(self)
        backend = self.cloudformation_backend
        stack_name, change_set_name = self._get_param("StackName"), self._get_param("ChangeSetName")
        if any(s.name == stack_name for s in backend.stacks.values()):
            raise ValidationError(message=f"local AWS: import into the existing stack {stack_name} is not emulated")
        body = self._get_param("TemplateBody")
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        to_import = self._get_param("ResourcesToImport", [])
        template = _parse(body)
        validate_import(template, to_import)
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in self._get_param("Parameters", [])}
        stack = cfn_models.Stack(
            stack_id=generate_stack_id(stack_name, backend.region_name, backend.account_id),
            name=stack_name,
            template=body,
            parameters=parameters,
            account_id=backend.account_id,
            region_name=backend.region_name,
            tags={t["Key"]: t["Value"] for t in self._get_param("Tags", [])},
        )
        backend.stacks[stack.stack_id] = stack
        set_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
        change_set = cfn_models.ChangeSet.__new__(cfn_models.ChangeSet)
        change_set.__dict__.update(
            change_set_type="IMPORT",
            change_set_name=change_set_name,
            stack=stack,
            stack_id=stack.stack_id,
            stack_name=stack_name,
            template=body,
            template_dict=template,
            parameters=parameters,
            description=self._get_param("Description"),
            notification_arns=[],
            tags={},
            role_arn=None,
            creation_time=cfn_models.utcnow(),
            status="CREATE_COMPLETE",
            execution_status="AVAILABLE",
            status_reason=None,
            changes=[],
            change_set_id=generate_changeset_id(change_set_name, backend.region_name, backend.account_id),
        )
        adopted = {}
        for item in to_import:
            logical_id, resource_type = item["LogicalResourceId"], item["ResourceType"]
            identifier = next(iter(item["ResourceIdentifier"].values()))
            properties = template["Resources"][logical_id].get("Properties", {})
            resource = _find(backend.account_id, backend.region_name, resource_type, identifier, properties)
            if resource is None:
                change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
                change_set.status_reason = f"Resource {identifier} of type {resource_type} does not exist."
                break
            owner = _owner(backend, resource.physical_resource_id)
            if owner:
                change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
                change_set.status_reason = (
                    f"Resource {identifier} of type {resource_type} already belongs to stack {owner}."
                )
                break
            adopted[logical_id] = resource
            change_set.changes.append(_ImportChange(logical_id, resource_type, resource.physical_resource_id))
        change_set.adopted = adopted
        backend.change_sets[change_set.change_set_id] = change_set
        return ActionResult({"Id": change_set.change_set_id, "StackId": stack.stack_id})

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> Any:
        change_set = self.change_sets.get(change_set_name) or next(
            (
                c
                for c in self.change_sets.values()
                if c.change_set_name == change_set_name and stack_name in (None, c.stack_name, c.stack_id)
            ),
            None,
        )
        if change_set is None or change_set.change_set_type != "IMPORT":
            return execute_change_set(self, change_set_name, stack_name)
        if change_set.execution_status != "AVAILABLE":
            raise ValidationError(
                message=f"ChangeSet [{change_set.change_set_id}] cannot be executed in its "
                f"current status of [{change_set.status}]"
            )
        stack = change_set.stack
        set_status(stack, "IMPORT_IN_PROGRESS", "User Initiated")
        resource_map = stack.resource_map
        resource_map._template = change_set.template_dict
        resource_map._resource_json_map = change_set.template_dict["Resources"]
        for change in change_set.changes:
            resource = change_set.adopted[change.logical_resource_id]
            resource.logical_resource_id = change.logical_resource_id
            resource.cf_resource_type = change.resource_type
            resource_map._parsed_resources[change.logical_resource_id] = resource
            for status in ("IMPORT_IN_PROGRESS", "IMPORT_COMPLETE"):
                add_event(
                    stack,
                    change.logical_resource_id,
                    change.resource_type,
                    change.physical_resource_id,
                    status,
                    "Resource import started." if status == "IMPORT_IN_PROGRESS" else None,
                )
        change_set.execution_status = "EXECUTE_COMPLETE"
        set_status(stack, "IMPORT_COMPLETE")
        return None

    CloudFormationResponse.create_change_set = create_import_change_set
    cfn_models.CloudFormationBackend.execute_change_set = execute
