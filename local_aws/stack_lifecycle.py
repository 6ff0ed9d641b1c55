"""Stack operations as CloudFormation runs them: events, rollback, deletion order, what
is left of a stack once it is gone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse

from .config import MOTO_VERSION
from .events import DELETING, ResourceFailed, add_event, set_status, stack_of

RETAINED = ("Retain", "RetainExceptOnCreate")


# ------------------------------------------------------------------ events


def install_resource_events() -> None:
    """moto records only stack-level events and turns a resource's creation error into an
    HTTP 500; every resource now gets its own events, and an error fails the resource."""
    create = parsing.parse_and_create_resource
    update = parsing.parse_and_update_resource
    delete = parsing.ResourceMap._delete_resource

    def create_with_events(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        stack = stack_of(account_id, region_name, resources_map.stack_id)
        resource_type = resource_json["Type"]
        try:
            resource = create(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed as failure:
            if failure.logical_id == logical_id:
                add_event(stack, logical_id, resource_type, None, "CREATE_FAILED", failure.reason)
            raise
        except Exception as exc:
            add_event(stack, logical_id, resource_type, None, "CREATE_FAILED", f"moto: {exc!r}")
            raise ResourceFailed(logical_id, f"moto: {exc!r}") from exc
        if resource is not None:
            physical_id = getattr(resource, "physical_resource_id", None)
            if not resource_type.startswith("Custom::"):  # a custom resource records its own
                add_event(stack, logical_id, resource_type, physical_id, "CREATE_IN_PROGRESS")
            add_event(stack, logical_id, resource_type, physical_id, "CREATE_COMPLETE")
        elif parsing.resource_class_from_type(resource_type) is None and not (
            "Condition" in resource_json and not resources_map.lazy_condition_map[resource_json["Condition"]]
        ):
            # moto skips types it does not model (e.g. AWS::IAM::RolePolicy); say so.
            add_event(
                stack,
                logical_id,
                resource_type,
                None,
                "CREATE_COMPLETE",
                f"not emulated: moto {MOTO_VERSION} has no model for {resource_type}",
            )
        return resource

    def update_with_events(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        stack = stack_of(account_id, region_name, resources_map.stack_id)
        resource_type = resource_json["Type"]
        original = resources_map._parsed_resources.get(logical_id)
        physical_id = getattr(original, "physical_resource_id", None)
        if not resource_type.startswith("Custom::"):
            add_event(stack, logical_id, resource_type, physical_id, "UPDATE_IN_PROGRESS")
        try:
            resource = update(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed as failure:
            add_event(stack, logical_id, resource_type, physical_id, "UPDATE_FAILED", failure.reason)
            raise
        reason = None
        if resource is None:
            # moto replaces a resource whose model cannot be updated by None; keep the original.
            resource, reason = original, f"not emulated: moto {MOTO_VERSION} cannot update {resource_type}"
        add_event(
            stack, logical_id, resource_type, getattr(resource, "physical_resource_id", None), "UPDATE_COMPLETE", reason
        )
        return resource

    def delete_with_events(self: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        stack = stack_of(self._account_id, self._region_name, self.stack_id)
        args = (
            stack,
            parsed_resource.logical_resource_id,
            resource_json["Type"],
            getattr(parsed_resource, "physical_resource_id", None),
        )
        add_event(*args, "DELETE_IN_PROGRESS")
        try:
            delete(self, parsed_resource, resource_json)
        except ResourceFailed as failure:
            add_event(*args, "DELETE_FAILED", failure.reason)
            raise
        except Exception as exc:
            add_event(*args, "DELETE_FAILED", f"moto: {exc!r}")
            raise ResourceFailed(parsed_resource.logical_resource_id, f"moto: {exc!r}") from exc
        add_event(*args, "DELETE_COMPLETE")

    parsing.parse_and_create_resource = create_with_events
    parsing.parse_and_update_resource = update_with_events
    parsing.ResourceMap._delete_resource = delete_with_events


def install_conditional_updates() -> None:
    """moto updates a resource whose Condition is false as if it existed (an error when it
    was never created) and never creates or deletes one whose condition changes.

    CloudFormation creates a resource whose condition becomes true in an update, deletes one
    whose condition becomes false, and leaves one whose condition stays false alone.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/conditions-section-structure.html
    """
    update_resource = parsing.parse_and_update_resource
    update_map = parsing.ResourceMap.update

    def update_by_condition(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        condition = resource_json.get("Condition")
        if condition and not resources_map.lazy_condition_map[condition]:
            original = resources_map._parsed_resources.get(logical_id)
            if original is not None:
                resources_map._delete_resource(original, resource_json)
            return None
        if resources_map._parsed_resources.get(logical_id) is None:
            return parsing.parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name)
        return update_resource(logical_id, resource_json, resources_map, account_id, region_name)

    def update_then_conditions(self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
        update_map(self, template, parameters)
        for logical_id, definition in self._resource_json_map.items():
            condition = definition.get("Condition") if isinstance(definition, dict) else None
            if not condition:
                continue
            resource = self._parsed_resources.get(logical_id)
            if self.lazy_condition_map[condition] and resource is None:
                self._parsed_resources.pop(logical_id, None)
                _ = self[logical_id]  # created (and kept) by the lazy map
            elif not self.lazy_condition_map[condition] and resource is not None:
                self._delete_resource(resource, definition)
                self._parsed_resources.pop(logical_id, None)

    parsing.parse_and_update_resource = update_by_condition
    parsing.ResourceMap.update = update_then_conditions


def install_sub_parameter_updates() -> None:
    """moto re-applies a resource after a parameter change only when the resource has a Ref
    to it, not a ${Parameter} in Fn::Sub; CloudFormation resolves both.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-sub.html
    """
    references = parsing.get_references_from_template

    def references_with_sub(template: Any) -> list[str]:
        found = references(template)
        if isinstance(template, dict):
            for key, value in template.items():
                if key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    found.extend(m.group(1).split(".", 1)[0] for m in _SUB_VARIABLE.finditer(str(text)))
                else:
                    found.extend(n for n in references_with_sub(value) if n not in found)
        elif isinstance(template, list):
            for item in template:
                found.extend(n for n in references_with_sub(item) if n not in found)
        return found

    parsing.get_references_from_template = references_with_sub


# ------------------------------------------------------------------ deletion order

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def dependencies(definition: dict[str, Any], names: set[str]) -> set[str]:
    """The resources among ``names`` that ``definition`` depends on: Ref, Fn::GetAtt and
    ${…} in Fn::Sub in its Properties and Metadata, and DependsOn. (A Ref in Metadata makes a
    dependency too, which is how a template depends on a resource that only exists under a
    condition: DependsOn cannot name it, !If [Cond, !Ref X, none] in Metadata can; not in
    AWS's reference, described with examples in
    https://cloudonaut.io/optional-dependson-with-cloudformation-metadata-to-the-rescue)"""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else str(value).split(".", 1)[0])
                elif key == "Fn::Sub":
                    text, variables = (value[0], value[1:]) if isinstance(value, list) else (value, [])
                    found.update(m.group(1).split(".", 1)[0] for m in _SUB_VARIABLE.finditer(str(text)))
                    walk(variables)
                else:
                    walk(value)

    walk(definition.get("Properties", {}))
    walk(definition.get("Metadata", {}))
    depends_on = definition.get("DependsOn", [])
    found.update([depends_on] if isinstance(depends_on, str) else depends_on)
    return found & names


def deletion_steps(resources: dict[str, dict[str, Any]], slow: set[str]) -> list[list[str]]:
    """The order deletion runs in when the ``slow`` resources (custom resources: a function
    call, in AWS often a VPC cold start) take longer than all others.

    CloudFormation starts deleting a resource as soon as everything that depends on it is
    deleted, without waiting for the rest of a wave. So by the time a slow resource's
    function runs, every other resource that does not (transitively) wait for a slow one
    is already gone: each step deletes what is ready among the fast ones; only when none
    is ready do the ready slow ones run. With no slow resources, the steps are the waves of
    reverse dependency order.
    """
    names = set(resources)
    needs = {name: dependencies(definition, names - {name}) for name, definition in resources.items()}
    remaining, steps = set(resources), []
    while remaining:
        ready = sorted(n for n in remaining if not any(n in needs[other] for other in remaining if other != n))
        if not ready:
            raise ResourceFailed(sorted(remaining)[0], f"circular dependency between {sorted(remaining)}")
        step = [n for n in ready if n not in slow] or ready
        steps.append(step)
        remaining.difference_update(step)
    return steps


def install_deletion_order() -> None:
    """moto deletes in set order, retrying what fails, so a function may go before the
    custom resource it backs, or a security group rule before the function that needs it.

    CloudFormation deletes in reverse dependency order: a resource once every resource that
    depends on it is deleted, independent resources in parallel. Here the custom resources
    are taken to be the slow ones (see deletion_steps), which is the interleaving that
    shows a missing dependency. A failure fails the stack after its step; what it depends
    on is left.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html
    """

    def delete_in_order(self: Any) -> None:
        stack = stack_of(self._account_id, self._region_name, self.stack_id)
        resources = {
            name: definition
            for name, definition in self._resource_json_map.items()
            if isinstance(definition, dict)
            and ("Condition" not in definition or self.lazy_condition_map.get(definition["Condition"], True))
        }
        slow = {name for name, definition in resources.items() if definition["Type"].startswith("Custom::")}
        retain = getattr(stack, "retain_resources", set())
        failure: ResourceFailed | None = None
        for step in deletion_steps(resources, slow):
            for name in step:
                definition, resource = resources[name], self._parsed_resources.get(name)
                if resource is None or isinstance(resource, str):
                    continue  # never created (or a type moto skips)
                if definition.get("DeletionPolicy") in RETAINED or name in retain:
                    add_event(
                        stack,
                        name,
                        definition["Type"],
                        getattr(resource, "physical_resource_id", None),
                        "DELETE_SKIPPED",
                    )
                    self._parsed_resources.pop(name, None)
                    continue
                try:
                    self._delete_resource(resource, definition)
                except ResourceFailed as failed:
                    failure = failure or failed
                    continue
                self._parsed_resources.pop(name, None)
            if failure:
                raise failure

    parsing.ResourceMap.delete = delete_in_order


# ------------------------------------------------------------------ create, update, delete


# What happens to a stack once it has rolled back or been deleted (see install_frozen_when_gone).
_WHEN_GONE: list[Callable[[Any], None]] = []


def _gone(stack: Any) -> None:
    for hook in _WHEN_GONE:
        hook(stack)


def _freeze(stack: Any) -> None:
    stack.resource_map._resource_json_map = {}
    stack.output_map = cfn_models.OutputMap(stack.resource_map, {}, stack.stack_id)


def install_create_rollback() -> None:
    """A failed resource leaves moto's stack CREATE_IN_PROGRESS; CloudFormation rolls back
    (deleting what was created) to ROLLBACK_COMPLETE, or ROLLBACK_FAILED."""

    def create_resources(self: Any) -> None:
        self.status = "CREATE_IN_PROGRESS"  # moto's create_stack has recorded the event
        try:
            self.resource_map.create(self.template_dict)
        except ResourceFailed as failure:
            set_status(
                self,
                "ROLLBACK_IN_PROGRESS",
                f"The following resource(s) failed to create: [{failure.logical_id}]. Rollback requested by user.",
            )
            try:
                if failure.rollback:
                    failure.rollback()
                self.resource_map.delete()
            except ResourceFailed as rollback_failure:
                set_status(self, "ROLLBACK_FAILED", rollback_failure.reason)
            else:
                set_status(self, "ROLLBACK_COMPLETE")
            _gone(self)
            return
        self.description = self.template_dict.get("Description")
        set_status(self, "CREATE_COMPLETE")

    cfn_models.Stack.create_resources = create_resources


def install_update_rollback() -> None:
    """moto has no UPDATE_IN_PROGRESS and no update rollback; a failed update now rolls the
    failed resource back to its old properties (UPDATE_ROLLBACK_COMPLETE)."""
    update_stack = cfn_models.Stack.update

    def update(
        self: Any,
        template: str,
        role_arn: str | None = None,
        parameters: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        saved = (self.template, self.parameters, self.resource_map.input_parameters)
        self.status = "UPDATE_IN_PROGRESS"
        try:
            update_stack(self, template, role_arn, parameters, tags)
        except ResourceFailed as failure:
            set_status(
                self,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                f"The following resource(s) failed to update: [{failure.logical_id}].",
            )
            self.template, self.parameters, self.resource_map.input_parameters = saved
            self._parse_template()
            resource_map = self.resource_map
            resource_map._template = self.template_dict
            resource_map._resource_json_map = self.template_dict["Resources"]
            resource_map.resolved_parameters = {}
            resource_map.load_parameters()
            resource_map.load_conditions()
            self.output_map = self._create_output_map()
            try:
                if failure.rollback:
                    failure.rollback()
            except ResourceFailed as rollback_failure:
                set_status(self, "UPDATE_ROLLBACK_FAILED", rollback_failure.reason)
            else:
                set_status(self, "UPDATE_ROLLBACK_COMPLETE")

    cfn_models.Stack.update = update


def install_delete_failed_kept() -> None:
    """moto forgets a stack even when its deletion failed; CloudFormation keeps it as
    DELETE_FAILED, with the reason."""
    stack_delete = cfn_models.Stack.delete
    backend_delete = cfn_models.CloudFormationBackend.delete_stack

    def delete(self: Any) -> None:
        self.status = "DELETE_IN_PROGRESS"
        DELETING[self.stack_id] = self
        try:
            stack_delete(self)
        except ResourceFailed as failure:
            set_status(
                self,
                "DELETE_FAILED",
                f"The following resource(s) failed to delete: [{failure.logical_id}]. {failure.reason}",
            )
            return
        finally:
            del DELETING[self.stack_id]
        _gone(self)

    def delete_stack_keeping_failed(self: Any, name_or_stack_id: str) -> None:
        backend_delete(self, name_or_stack_id)
        for stack_id, stack in list(self.deleted_stacks.items()):
            if stack.status == "DELETE_FAILED":
                self.stacks[stack_id] = self.deleted_stacks.pop(stack_id)

    cfn_models.Stack.delete = delete
    cfn_models.CloudFormationBackend.delete_stack = delete_stack_keeping_failed


def install_retain_resources() -> None:
    """moto ignores DeleteStack's RetainResources: a stack whose deletion failed on a
    resource cannot be deleted leaving that resource behind.

    CloudFormation accepts RetainResources only for a stack in DELETE_FAILED and skips
    those resources (DELETE_SKIPPED) while deleting the rest.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html
    """
    delete_stack = CloudFormationResponse.delete_stack

    def delete_stack_retaining(self: CloudFormationResponse) -> Any:
        retain = self._get_param("RetainResources", [])
        if retain:
            stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
            if stack.status != "DELETE_FAILED":
                raise ValidationError(
                    message=f"Invalid operation on stack [{stack.stack_id}]. RetainResources can only be "
                    "specified when stack is in DELETE_FAILED state"
                )
            stack.retain_resources = set(retain)
        return delete_stack(self)

    CloudFormationResponse.delete_stack = delete_stack_retaining


def install_frozen_when_gone() -> None:
    """moto's resource map is lazy: reading a deleted or rolled-back stack's resources or
    outputs creates them again (and would send Create to a custom resource). Such a stack
    now has nothing left to build, and no outputs until it is complete."""
    outputs = cfn_models.Stack.outputs
    incomplete = (
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
        "REVIEW_IN_PROGRESS",
    )

    def outputs_when_complete(self: Any) -> Any:
        return None if self.status in incomplete else outputs.fget(self)

    cfn_models.Stack.outputs = property(outputs_when_complete)
    _WHEN_GONE.append(_freeze)


def parameter_text(value: Any) -> str:
    """A resolved parameter value as CloudFormation shows it: lists comma-joined, numbers
    as written."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _current_values(stack: Any) -> dict[str, str]:
    return {k: parameter_text(v) for k, v in stack.resource_map.resolved_parameters.items()}


def install_parameter_values() -> None:
    """moto lists a list parameter as Python text ("['']"), masks NoEcho values by comparing
    them with the keys, and UsePreviousValue finds only parameters given at create: one
    that took its Default fails ("Missing parameter" or HTTP 500).

    CloudFormation shows every parameter's value as a string (defaults included, NoEcho as
    ****), and UsePreviousValue uses "the existing parameter value that the stack is using".
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html
    """

    def parameter_list(self: Any) -> list[dict[str, str]]:
        declared = (self.template_dict or {}).get("Parameters", {})
        masked = {k for k, p in declared.items() if str(p.get("NoEcho", False)).lower() == "true"}
        return [
            {"ParameterKey": k, "ParameterValue": "****" if k in masked else v}
            for k, v in _current_values(self).items()
        ]

    resolve = cfn_models.CloudFormationBackend._resolve_update_parameters

    def resolve_update_parameters(self: Any, instance: Any, incoming_params: list[dict[str, str]]) -> dict[str, str]:
        if not isinstance(instance, cfn_models.Stack):
            return resolve(self, instance, incoming_params)
        current = _current_values(instance)
        resolved = {}
        for parameter in incoming_params:
            key = parameter["ParameterKey"]
            if parameter.get("UsePreviousValue"):
                if key not in current:
                    raise ValidationError(message=f"Invalid input for parameter key {key}. Cannot use previous value")
                resolved[key] = current[key]
            elif "ParameterValue" in parameter:
                resolved[key] = parameter["ParameterValue"]
        return resolved

    cfn_models.Stack.parameter_list = property(parameter_list)
    cfn_models.CloudFormationBackend._resolve_update_parameters = resolve_update_parameters


def install_no_updates() -> None:
    """moto compares the parameters passed with the resolved ones (defaults added, lists
    split), so re-deploying an unchanged stack is never "No updates are to be performed";
    the update's values (given, previous or default) are now compared with the stack's."""

    def validate_different_update(
        self: Any, incoming_params: list[dict[str, Any]] | None, stack_body: str, old_stack: Any
    ) -> None:
        if old_stack.template != stack_body:
            return
        current = _current_values(old_stack)
        # What the update would resolve to: a value given, the previous one, else the Default.
        declared = old_stack.template_dict.get("Parameters", {})
        wanted = {k: parameter_text(p.get("Default")) for k, p in declared.items()}
        wanted.update(self._get_param_values(incoming_params or [], current))
        if wanted == current:
            raise ValidationError(old_stack.name, message="No updates are to be performed.")

    CloudFormationResponse._validate_different_update = validate_different_update
