"""Template handling: resource types moto lacks, and intrinsic functions it gets wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing

# Models added by the gaps (moto finds its own through CloudFormationModel.__subclasses__()).
_ADDED: dict[str, type] = {}


def register_model(model: type) -> None:
    """Make ``model`` the class moto builds its CloudFormation type with.

    A model is a plain class with moto's CloudFormation interface (``Model`` below:
    cloudformation_type, cloudformation_name_type, create/update_from_cloudformation_json,
    delete, physical_resource_id …), registered here rather than by subclassing moto's base
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


def properties_update(update: Callable[..., Any]) -> Any:
    """moto's ``update_from_cloudformation_json`` for a model, calling
    ``update(cls, original, new_name, properties, account_id, region_name)``."""

    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        return update(cls, original_resource, new_resource_name, properties, account_id, region_name)

    return classmethod(update_from_cloudformation_json)


class Model:
    """The CloudFormation interface moto expects of a model, for the models the gaps add.

    A subclass names its type (``cfn_type``), the property that names it (``name_type``)
    and its Fn::GetAtt attributes, sets ``physical_id`` (what Ref gives), and fills in
    ``create``, ``delete`` and, unless an update replaces it, ``update``.
    """

    cfn_type = ""
    name_type = ""
    attributes: tuple[str, ...] = ()
    physical_id = ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.cfn_type

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.name_type

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.physical_id

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        return cls.create(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    update_from_cloudformation_json = properties_update(lambda cls, *args: cls.update(*args))

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
        raise NotImplementedError

    @classmethod
    def update(cls, original: Any, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
        """By default an update replaces the resource, the old one deleted first."""
        original.delete(account_id, region_name)
        return cls.create(name, properties, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError


# What to do after moto built a resource: (resource, its Properties, account_id, region_name).
AfterCreate = Callable[[Any, dict[str, Any], str, str], None]


def after_create(model: Any, step: AfterCreate) -> None:
    """Make moto's CloudFormation create of ``model`` (one of its classes) run ``step``
    on the resource it built, for a property moto ignores."""
    create = model.create_from_cloudformation_json.__func__

    def create_then(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        resource = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        step(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
        return resource

    model.create_from_cloudformation_json = classmethod(create_then)


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
