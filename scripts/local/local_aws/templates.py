"""Template handling: resource types moto lacks, and intrinsic functions it gets wrong."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing

# Models added by the gaps (moto finds its own through CloudFormationModel.__subclasses__()).
_ADDED: dict[str, type] = {}


def register_model(model: type) -> None:
    """Make ``model`` the class moto builds its CloudFormation type with.

    A model is a plain class with moto's CloudFormation interface (cloudformation_type,
    cloudformation_name_type, create/update_from_cloudformation_json, delete,
    physical_resource_id …), registered here rather than by subclassing moto's base
    class, which would register it as soon as its module is imported.
    """
    if not _ADDED:
        moto_models = parsing.get_model_list

        def model_list() -> list[type]:
            added = set(_ADDED)
            return [m for m in moto_models() if m.cloudformation_type() not in added] + list(_ADDED.values())

        parsing.get_model_list = model_list
    _ADDED[model.cloudformation_type()] = model
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    if model.cloudformation_type() in parsing.NULL_MODELS:
        parsing.NULL_MODELS.remove(model.cloudformation_type())


def install_no_value_in_lists() -> None:
    """moto keeps a list item that is !Ref AWS::NoValue (e.g. from !If) as null;
    CloudFormation drops it."""
    clean_json = parsing.clean_json

    def clean_json_dropping_no_value(resource_json: Any, resources_map: Any) -> Any:
        cleaned = clean_json(resource_json, resources_map)
        if isinstance(resource_json, list):
            cleaned = [
                item for item, raw in zip(cleaned, resource_json, strict=True) if item is not None or raw is None
            ]
        return cleaned

    parsing.clean_json = clean_json_dropping_no_value
