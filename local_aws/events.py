"""Stack events and the failure that stops a stack operation (shared by the gaps)."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models as cfn_models

# Stacks being deleted: moto's delete_stack takes them out of its table first.
DELETING: dict[str, Any] = {}


class ResourceFailed(BaseException):
    """A resource failed; the stack operation stops and rolls back.

    A BaseException on purpose: moto's update and delete loops catch Exception and retry up
    to five times, which would replay the request to a custom resource's function.
    """

    def __init__(self, logical_id: str, reason: str, rollback: Any = None):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason
        # What CloudFormation does for this resource when rolling back, if anything.
        self.rollback = rollback


def stack_of(account_id: str, region_name: str, stack_id: str) -> Any:
    if stack_id in DELETING:
        return DELETING[stack_id]
    return cfn_models.cloudformation_backends[account_id][region_name].get_stack(stack_id)


def add_event(
    stack: Any, logical_id: str, resource_type: str, physical_id: str | None, status: str, reason: str | None = None
) -> None:
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def set_status(stack: Any, status: str, reason: str | None = None) -> None:
    """The stack's status and StackStatusReason (which moto never sets), with an event."""
    stack.status = status
    stack.stack_status_reason = reason
    stack._add_stack_event(status, resource_status_reason=reason)
