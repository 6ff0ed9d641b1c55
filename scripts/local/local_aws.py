#!/usr/bin/env python3
"""Local AWS for the demo and the end-to-end test: moto's server on 127.0.0.1,
patched in-process where this project's CloudFormation flow needs it.

    local_aws.py --port 5000 --efs-dir DIR      # prints one ready line, serves until SIGTERM

Each patch below closes one gap of moto 5.2.5 (the pinned version; any other
version is refused, because the patches reach into its internals):

* EFS: ``Fn::GetAtt`` on file systems and access points, ``Ref`` on access points.
* Secrets Manager: ``AWS::SecretsManager::Secret`` in templates, with a real
  generated value, and ``{{resolve:secretsmanager:...}}`` dynamic references.
* Custom resources: Create, Update and Delete run the backing function's real
  code. The ``bootstrap`` in the zip moto stores for the function (uploaded by
  ``aws cloudformation package``) is started under runtime_api.invoke_once with
  the function's environment, ``EFS_MOUNT_PATH`` pointing at ``--efs-dir`` (the
  folder standing in for EFS). It PUTs its answer to a ResponseURL shaped like
  CloudFormation's pre-signed S3 URL, served here; as S3 would, it is refused
  unless used byte for byte and without a Content-Type. A FAILED answer, no
  answer or an invalid one fails the resource with its Reason; the stack rolls back.
* Stack lifecycle: per-resource events (types moto does not model show as
  "not emulated"), rollback after a failed create or update, custom resources
  deleted before the functions that back them, ``DELETE_SKIPPED`` for retained
  resources, no outputs (and no lazy re-creation of resources by moto) once a
  stack has rolled back or been deleted, "No updates are to be performed" for an
  unchanged stack, ``!Ref AWS::NoValue`` dropped from lists.

The custom resource runs synchronously inside the CreateStack/UpdateStack/
DeleteStack call (the function takes milliseconds here): moto creates every
resource within that call anyway, so running it in the background would let
resources that depend on it, and the outputs, be built before its answer.
Meanwhile another client's DescribeStacks sees ``*_IN_PROGRESS`` and the
resource's ``*_IN_PROGRESS`` event, and the call returns with the stack in its
final state and the full event history, as real CloudFormation would end.

Not emulated: Lambda's two retries of a failed asynchronous invocation, rollback
of other resources changed by a failed update, change sets (``aws cloudformation
deploy`` ends without outputs in moto; the project's scripts use
create-stack/update-stack).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MOTO_VERSION = "5.2.5"
REGION = "us-east-1"
# CloudFormation rejects a custom resource response longer than this.
MAX_RESPONSE_BYTES = 4096
# CloudFormation's default ServiceTimeout for custom resources, seconds.
DEFAULT_SERVICE_TIMEOUT_S = 3600

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto  # noqa: E402

if moto.__version__ != MOTO_VERSION:
    sys.exit(f"error: local_aws.py patches moto {MOTO_VERSION}, found {moto.__version__}; "
             "install the venv with scripts/lib/tools.sh")

from moto.awslambda.utils import get_backend as lambda_backend  # noqa: E402
from moto.cloudformation import models as cfn_models  # noqa: E402
from moto.cloudformation import parsing, urls  # noqa: E402
from moto.cloudformation.custom_model import CustomModel  # noqa: E402
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError  # noqa: E402
from moto.cloudformation.responses import CloudFormationResponse  # noqa: E402
from moto.core.common_models import CloudFormationModel  # noqa: E402
from moto.efs import models as efs_models  # noqa: E402
from moto.logs.models import logs_backends  # noqa: E402
from moto.secretsmanager.models import secretsmanager_backends  # noqa: E402

import runtime_api  # noqa: E402


class Settings:
    """Set once by main() before the server starts."""

    port = 5000
    efs_dir = ""


# --------------------------------------------------------------------------- EFS

def _efs_attribute(names: dict[str, str]):
    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name not in names:
            raise UnformattedGetAttTemplateException()
        return getattr(self, names[attribute_name])
    return get_cfn_attribute


# Gap: FileSystem has no get_cfn_attribute, so Fn::GetAtt Fs.Arn is an AttributeError (HTTP 500).
efs_models.FileSystem.get_cfn_attribute = _efs_attribute(
    {"Arn": "file_system_arn", "FileSystemId": "file_system_id"})
# Gap: AccessPoint has none either (Fn::GetAtt Ap.Arn fails the same way) ...
efs_models.AccessPoint.get_cfn_attribute = _efs_attribute(
    {"Arn": "access_point_arn", "AccessPointId": "access_point_id"})
# ... and no physical_resource_id, so Ref yields the Python object's text, not fsap-....
efs_models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)


# --------------------------------------------------------------- Secrets Manager

class Secret(CloudFormationModel):
    """Gap: moto has no CloudFormation model for AWS::SecretsManager::Secret, so the
    resource is skipped (Ref is empty, the task definition gets no secret ARNs).

    Ref and Fn::GetAtt Id give the ARN, as in CloudFormation. GenerateSecretString
    uses moto's GetRandomPassword, so the value is a real random one.
    """

    # moto files every model under the service named by its module path.
    __module__ = "moto.secretsmanager"

    def __init__(self, arn: str, name: str, properties: dict[str, Any]):
        self.arn = arn
        self.name = name
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

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

        password = json.loads(backend.get_random_password(
            password_length=int(spec.get("PasswordLength", 32)),
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=flag("ExcludeNumbers"),
            exclude_punctuation=flag("ExcludePunctuation"),
            exclude_uppercase=flag("ExcludeUppercase"),
            exclude_lowercase=flag("ExcludeLowercase"),
            include_space=flag("IncludeSpace"),
            require_each_included_type=flag("RequireEachIncludedType", True),
        ))["RandomPassword"]
        if "SecretStringTemplate" not in spec:
            return password
        value = json.loads(spec["SecretStringTemplate"])
        value[spec["GenerateStringKey"]] = password
        return json.dumps(value)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str, **kwargs: Any,
    ) -> "Secret":
        properties = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        created = json.loads(backend.create_secret(
            name=resource_name, secret_string=cls._value(backend, properties), secret_binary=None,
            description=properties.get("Description"), tags=properties.get("Tags", []),
            kms_key_id=properties.get("KmsKeyId"), client_request_token=None,
            replica_regions=[], force_overwrite=False,
        ))
        return cls(created["ARN"], resource_name, properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: "Secret", new_resource_name: str,
        cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> "Secret":
        properties = cloudformation_json["Properties"]
        if properties.get("Name", original_resource.name) != original_resource.name:
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
        # As in CloudFormation, the value changes only when its definition does.
        old = original_resource.properties
        if (properties.get("SecretString"), properties.get("GenerateSecretString")) != (
                old.get("SecretString"), old.get("GenerateSecretString")):
            backend = secretsmanager_backends[account_id][region_name]
            backend.put_secret_value(original_resource.arn, cls._value(backend, properties),
                                     None, str(uuid.uuid4()), ["AWSCURRENT"])
        original_resource.properties = properties
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(self.arn, None, True)

    def is_created(self) -> bool:
        return True


def _resolve_dynamic_references(value: Any, account_id: str, region_name: str) -> Any:
    """Gap: moto leaves {{resolve:secretsmanager:...}} in property values verbatim.

    Format: {{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}},
    secret-id a name or an ARN (which has colons of its own).
    """
    if isinstance(value, dict):
        return {k: _resolve_dynamic_references(v, account_id, region_name) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_dynamic_references(v, account_id, region_name) for v in value]
    if not isinstance(value, str):
        return value
    prefix = "{{resolve:secretsmanager:"
    while (start := value.find(prefix)) >= 0:
        end = value.index("}}", start)
        parts = value[start + len(prefix):end].split(":")
        split = 7 if parts[0] == "arn" else 1
        secret_id, rest = ":".join(parts[:split]), parts[split:] + [""] * 4
        _, json_key, stage, version = rest[:4]
        backend = secretsmanager_backends[account_id][region_name]
        secret = backend.get_secret_value(secret_id, version or None, stage or None)["SecretString"]
        if json_key:
            secret = json.loads(secret)[json_key]
        value = value[:start] + secret + value[end + 2:]
    return value


_parse_resource = parsing.parse_resource


def _parse_resource_resolving(resource_json: dict[str, Any], resources_map: Any) -> Any:
    parsed = _parse_resource(resource_json, resources_map)
    if parsed:
        resource_class, cleaned, resource_type = parsed
        cleaned["Properties"] = _resolve_dynamic_references(
            cleaned.get("Properties", {}), resources_map._account_id, resources_map._region_name)
        parsed = resource_class, cleaned, resource_type
    return parsed


parsing.parse_resource = _parse_resource_resolving


_clean_json = parsing.clean_json


def _clean_json_dropping_no_value(resource_json: Any, resources_map: Any) -> Any:
    """Gap: moto keeps a list item that is !Ref AWS::NoValue (e.g. from !If) as null;
    CloudFormation drops it."""
    cleaned = _clean_json(resource_json, resources_map)
    if isinstance(resource_json, list):
        cleaned = [item for item, raw in zip(cleaned, resource_json) if item is not None or raw is None]
    return cleaned


parsing.clean_json = _clean_json_dropping_no_value


# ------------------------------------------------------------- custom resources

class ResourceFailed(BaseException):
    """A resource failed; the stack operation stops and rolls back.

    A BaseException on purpose: moto's update and delete loops catch Exception and
    retry up to five times, which would replay the request to the function.
    """

    def __init__(self, logical_id: str, reason: str, rollback: Any = None):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason
        # What CloudFormation does for this resource when rolling back, if anything.
        self.rollback = rollback


class _Responses:
    """ResponseURLs handed out and the bodies PUT to them, by request id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        self._bodies: dict[str, bytes] = {}

    def new_url(self, stack_id: str, logical_id: str, request_id: str) -> str:
        # Shaped like CloudFormation's pre-signed S3 URL: the key holds the stack ARN, the
        # logical id and the request id, percent-encoded; a SigV2-style query whose
        # signature (base64, so with %2B %2F %3D) must come back byte for byte.
        key = quote(f"{stack_id}|{logical_id}|{request_id}", safe="/")
        expires = int(time.time()) + 7200
        signature = base64.b64encode(hmac.new(
            b"local", f"PUT\n\n\n{expires}\n/{key}".encode(), hashlib.sha1).digest()).decode()
        path = (f"/cloudformation_{REGION}/cfnresponse/{key}"
                f"?AWSAccessKeyId=LOCALTESTKEY&Expires={expires}&Signature={quote(signature, safe='')}")
        with self._lock:
            self._urls[request_id] = path
        return f"http://127.0.0.1:{Settings.port}{path}"

    def receive(self, raw_path: str, content_type: str, body: bytes) -> tuple[int, str]:
        request_id = unquote(urlsplit(raw_path).path).rsplit("|", 1)[-1]
        with self._lock:
            if self._urls.get(request_id) != raw_path:
                return 403, "SignatureDoesNotMatch: the URL was changed (decoded or re-encoded)"
            if content_type:
                # The URL was signed with an empty Content-Type, as CloudFormation's are.
                return 403, "SignatureDoesNotMatch: the request carries a Content-Type"
            self._bodies.setdefault(request_id, body)
        return 200, ""

    def take(self, request_id: str) -> bytes | None:
        with self._lock:
            self._urls.pop(request_id, None)
            return self._bodies.pop(request_id, None)


RESPONSES = _Responses()


def _response_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Gap: moto's own cfnresponse endpoint ignores FAILED and takes the stack from the query."""
    if request.method != "PUT":
        return 405, {}, "MethodNotAllowed"
    status, error = RESPONSES.receive(
        request.environ.get("RAW_URI", ""), request.headers.get("Content-Type", ""), request.get_data())
    if status != 200:
        return status, {"Content-Type": "application/xml"}, f"<Error><Code>{error}</Code></Error>"
    return 200, {"ETag": '"' + hashlib.md5(request.get_data()).hexdigest() + '"'}, ""


urls.url_paths["{0}/cloudformation_(?P<region>[^/]+)/cfnresponse/(?P<key>.+)$"] = _response_endpoint


def _write_function_logs(function: Any, logs: str) -> None:
    """Put the function's output where `aws logs` finds it, as Lambda does."""
    backend = logs_backends[function.account_id][function.region]
    group = f"/aws/lambda/{function.function_name}"
    if group not in backend.groups:
        backend.create_log_group(group, {})
    stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
    backend.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    lines = [line for line in logs.splitlines() if line.strip()]
    if lines:
        backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])


def _run_function(function: Any, event: dict[str, Any], service_timeout_s: int) -> runtime_api.InvocationResult:
    """Run the function's bootstrap once for one event, EFS replaced by the local folder."""
    with tempfile.TemporaryDirectory(prefix="ce-lambda-") as task_dir:
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            if "bootstrap" not in archive.namelist():
                raise RuntimeError(f"the code of {function.function_name} has no bootstrap at its root")
            bootstrap = Path(archive.extract("bootstrap", task_dir))
        bootstrap.chmod(0o755)
        env = dict(function.environment_vars)
        env["EFS_MOUNT_PATH"] = Settings.efs_dir
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
        })
        timeout_s = min(int(function.timeout), service_timeout_s)
        return runtime_api.invoke_once([str(bootstrap)], event, env, timeout_s=timeout_s + 1,
                                       deadline_ms=int(function.timeout) * 1000, cwd=task_dir)


def _request(request_type: str, resource: "CustomResource", properties: dict[str, Any],
             old_properties: dict[str, Any] | None = None) -> tuple[str, str, str, dict[str, Any]]:
    """Send one request to the resource's function; (Status, Reason, PhysicalResourceId, Data)."""
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": RESPONSES.new_url(resource.stack_id, resource.logical_id, request_id),
        "StackId": resource.stack_id,
        "RequestId": request_id,
        "LogicalResourceId": resource.logical_id,
        "ResourceType": resource.resource_type,
        "ResourceProperties": properties,
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = resource.physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    service_timeout = int(properties.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT_S))
    try:
        function = lambda_backend(resource.account_id, resource.region_name).get_function(properties["ServiceToken"])
        result = _run_function(function, event, service_timeout)
    except Exception as exc:  # noqa: BLE001 - every cause becomes the resource's Reason
        RESPONSES.take(request_id)
        return "FAILED", f"the function could not be run: {exc}", resource.physical_id, {}
    _write_function_logs(function, result.logs)
    body = RESPONSES.take(request_id)
    print(f"custom resource {resource.logical_id}: {request_type} -> function {result.outcome} in "
          f"{result.result_ms} ms, response {'received' if body else 'missing'}", file=sys.stderr, flush=True)
    if body is None:
        sys.stderr.write("".join(result.logs.splitlines(keepends=True)[-20:]))
        return ("FAILED", f"no response at the ResponseURL: the function ended ({result.outcome}) without "
                f"one; CloudFormation would fail the resource after ServiceTimeout ({service_timeout} s)",
                resource.physical_id, {})
    return _check_response(body, event)


def _check_response(body: bytes, event: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """Validate a response body as CloudFormation does."""
    fallback = event.get("PhysicalResourceId", "")
    if len(body) > MAX_RESPONSE_BYTES:
        return "FAILED", f"Response object is too long ({len(body)} bytes).", fallback, {}
    try:
        answer = json.loads(body)
    except ValueError:
        return "FAILED", "Response is not valid JSON.", fallback, {}
    for field in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(field) != event[field]:
            return "FAILED", f"Response {field} does not match the request.", fallback, {}
    status, physical_id = answer.get("Status"), answer.get("PhysicalResourceId")
    if status not in ("SUCCESS", "FAILED") or not physical_id:
        return "FAILED", "Invalid response: Status or PhysicalResourceId missing.", fallback, {}
    return status, answer.get("Reason") or "", physical_id, answer.get("Data") or {}


class CustomResource(CustomModel):
    """Gap: moto sends only Create, only through Docker, ignores FAILED, never sends Update
    or Delete (an updated custom resource even becomes None in the stack)."""

    __module__ = "moto.cloudformation"  # see Secret

    def __init__(self, account_id: str, region_name: str, stack_id: str, logical_id: str,
                 resource_type: str, properties: dict[str, Any]):
        super().__init__(region_name, "", logical_id, "")
        self.account_id = account_id
        self.stack_id = stack_id
        self.resource_type = resource_type
        self.properties = properties
        self.physical_id = ""

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def _event(self, status: str, reason: str | None = None) -> None:
        _add_event(_stack(self.account_id, self.region_name, self.stack_id),
                   self.logical_id, self.resource_type, self.physical_id, status, reason)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str, **kwargs: Any,
    ) -> "CustomResource":
        resource = cls(account_id, region_name, kwargs["StackId"], kwargs["LogicalId"],
                       kwargs["ResourceType"], cloudformation_json["Properties"])
        resource._event("CREATE_IN_PROGRESS")
        status, reason, resource.physical_id, data = _request("Create", resource, resource.properties)
        if status != "SUCCESS":
            # Rolling back, CloudFormation sends Delete for the id a FAILED answer carried.
            raise ResourceFailed(resource.logical_id, reason,
                                 rollback=resource._delete_with_events if resource.physical_id else None)
        resource.set_data(data)
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: "CustomResource", new_resource_name: str,
        cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> "CustomResource":
        resource, old = original_resource, original_resource.properties
        new = cloudformation_json["Properties"]
        resource._event("UPDATE_IN_PROGRESS")
        status, reason, physical_id, data = _request("Update", resource, new, old)
        if status != "SUCCESS":
            # Rolling back, CloudFormation sends Update again with the old properties.
            raise ResourceFailed(resource.logical_id, reason,
                                 rollback=lambda: resource._update_back(new))
        if physical_id != resource.physical_id:
            # A new id means replacement: the old resource gets a Delete, whose failure
            # CloudFormation only records (it happens in the update's cleanup).
            try:
                resource._delete_with_events()
            except ResourceFailed:
                pass
            resource.physical_id = physical_id
        resource.properties = new
        resource.set_data(data)
        return resource

    def _update_back(self, failed_properties: dict[str, Any]) -> None:
        self._event("UPDATE_IN_PROGRESS")
        status, reason, _, data = _request("Update", self, self.properties, failed_properties)
        if status != "SUCCESS":
            self._event("UPDATE_FAILED", reason)
            raise ResourceFailed(self.logical_id, reason)
        self._event("UPDATE_COMPLETE")
        self.set_data(data)

    def _delete(self) -> None:
        status, reason, _, _ = _request("Delete", self, self.properties)
        if status != "SUCCESS":
            raise ResourceFailed(self.logical_id, reason)

    def _delete_with_events(self) -> None:
        """Delete outside moto's own deletion (which records events itself)."""
        self._event("DELETE_IN_PROGRESS")
        try:
            self._delete()
        except ResourceFailed as failure:
            self._event("DELETE_FAILED", failure.reason)
            raise
        self._event("DELETE_COMPLETE")

    def delete(self, account_id: str, region_name: str) -> None:
        self._delete()


parsing.CustomModel = CustomResource


# -------------------------------------------------------------- stack lifecycle

# Stacks being deleted: moto's delete_stack takes them out of its table first.
_DELETING: dict[str, Any] = {}


def _stack(account_id: str, region_name: str, stack_id: str) -> Any:
    if stack_id in _DELETING:
        return _DELETING[stack_id]
    return cfn_models.cloudformation_backends[account_id][region_name].get_stack(stack_id)


def _add_event(stack: Any, logical_id: str, resource_type: str, physical_id: str | None,
               status: str, reason: str | None = None) -> None:
    stack.events.append(cfn_models.Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
        physical_resource_id=physical_id or "", resource_type=resource_type,
        resource_status=status, resource_status_reason=reason, resource_properties=None))


def _set_status(stack: Any, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)


_create_resource = parsing.parse_and_create_resource


def _create_resource_with_events(logical_id: str, resource_json: dict[str, Any], resources_map: Any,
                                 account_id: str, region_name: str) -> Any:
    """Gap: moto records no per-resource events and turns any creation error into HTTP 500."""
    stack = _stack(account_id, region_name, resources_map.stack_id)
    resource_type = resource_json["Type"]
    try:
        resource = _create_resource(logical_id, resource_json, resources_map, account_id, region_name)
    except ResourceFailed as failure:
        if failure.logical_id == logical_id:
            _add_event(stack, logical_id, resource_type, None, "CREATE_FAILED", failure.reason)
        raise
    except Exception as exc:  # noqa: BLE001 - moto's error becomes the resource's Reason
        _add_event(stack, logical_id, resource_type, None, "CREATE_FAILED", f"moto: {exc!r}")
        raise ResourceFailed(logical_id, f"moto: {exc!r}") from exc
    if resource is not None:
        physical_id = getattr(resource, "physical_resource_id", None)
        if not isinstance(resource, CustomResource):
            _add_event(stack, logical_id, resource_type, physical_id, "CREATE_IN_PROGRESS")
        _add_event(stack, logical_id, resource_type, physical_id, "CREATE_COMPLETE")
    elif parsing.resource_class_from_type(resource_type) is None and not (
            "Condition" in resource_json and not resources_map.lazy_condition_map[resource_json["Condition"]]):
        # moto skips types it does not model (e.g. AWS::IAM::RolePolicy); say so in the events.
        _add_event(stack, logical_id, resource_type, None, "CREATE_COMPLETE",
                   f"not emulated: moto {MOTO_VERSION} has no model for {resource_type}")
    return resource


parsing.parse_and_create_resource = _create_resource_with_events

_update_resource = parsing.parse_and_update_resource


def _update_resource_with_events(logical_id: str, resource_json: dict[str, Any], resources_map: Any,
                                 account_id: str, region_name: str) -> Any:
    stack = _stack(account_id, region_name, resources_map.stack_id)
    resource_type = resource_json["Type"]
    original = resources_map._parsed_resources.get(logical_id)
    physical_id = getattr(original, "physical_resource_id", None)
    if not resource_type.startswith("Custom::"):  # a custom resource records its own
        _add_event(stack, logical_id, resource_type, physical_id, "UPDATE_IN_PROGRESS")
    try:
        resource = _update_resource(logical_id, resource_json, resources_map, account_id, region_name)
    except ResourceFailed as failure:
        _add_event(stack, logical_id, resource_type, physical_id, "UPDATE_FAILED", failure.reason)
        raise
    reason = None
    if resource is None:
        # Gap: moto replaces a resource whose model cannot be updated by None; keep the original.
        resource, reason = original, f"not emulated: moto {MOTO_VERSION} cannot update {resource_type}"
    _add_event(stack, logical_id, resource_type, getattr(resource, "physical_resource_id", None),
               "UPDATE_COMPLETE", reason)
    return resource


parsing.parse_and_update_resource = _update_resource_with_events

_delete_resource = parsing.ResourceMap._delete_resource


def _delete_resource_with_events(self: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
    stack = _stack(self._account_id, self._region_name, self.stack_id)
    args = (stack, parsed_resource.logical_resource_id, resource_json["Type"],
            getattr(parsed_resource, "physical_resource_id", None))
    _add_event(*args, "DELETE_IN_PROGRESS")
    try:
        _delete_resource(self, parsed_resource, resource_json)
    except ResourceFailed as failure:
        _add_event(*args, "DELETE_FAILED", failure.reason)
        raise
    _add_event(*args, "DELETE_COMPLETE")


parsing.ResourceMap._delete_resource = _delete_resource_with_events

_delete_map = parsing.ResourceMap.delete


def _delete_map_in_order(self: Any) -> None:
    """Gap: moto deletes in set order, so a function may go before the custom resource it
    backs, which then cannot be sent its Delete; and retained resources leave no trace."""
    for logical_id, resource in list(self._parsed_resources.items()):
        definition = self._resource_json_map.get(logical_id)
        if not isinstance(definition, dict):
            continue
        if definition.get("DeletionPolicy") == "Retain":
            _add_event(_stack(self._account_id, self._region_name, self.stack_id), logical_id,
                       definition["Type"], getattr(resource, "physical_resource_id", None), "DELETE_SKIPPED")
        elif isinstance(resource, CustomResource):
            self._delete_resource(resource, definition)
            del self._parsed_resources[logical_id]
    _delete_map(self)


parsing.ResourceMap.delete = _delete_map_in_order


def _freeze(stack: Any) -> None:
    """Gap: moto's resource map is lazy, so describe-stack-resources (or outputs not read
    before) on a deleted or rolled-back stack creates its resources again (and would send
    Create to a custom resource). Once rolled back or deleted, nothing is left to build."""
    stack.resource_map._resource_json_map = {}
    stack.output_map = cfn_models.OutputMap(stack.resource_map, {}, stack.stack_id)


def _create_resources(self: Any) -> None:
    """Gap: a failed resource leaves moto's stack in CREATE_IN_PROGRESS; roll back instead."""
    self.status = "CREATE_IN_PROGRESS"  # moto's create_stack has recorded the event
    try:
        self.resource_map.create(self.template_dict)
    except ResourceFailed as failure:
        _set_status(self, "ROLLBACK_IN_PROGRESS",
                    f"The following resource(s) failed to create: [{failure.logical_id}]. "
                    "Rollback requested by user.")
        try:
            if failure.rollback:
                failure.rollback()
            self.resource_map.delete()
        except ResourceFailed as rollback_failure:
            _set_status(self, "ROLLBACK_FAILED", rollback_failure.reason)
        else:
            _set_status(self, "ROLLBACK_COMPLETE")
        _freeze(self)
        return
    self.description = self.template_dict.get("Description")
    _set_status(self, "CREATE_COMPLETE")


cfn_models.Stack.create_resources = _create_resources

_update_stack = cfn_models.Stack.update


def _update(self: Any, template: str, role_arn: str | None = None,
            parameters: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> None:
    """Gap: moto has no UPDATE_IN_PROGRESS status and no update rollback."""
    saved = (self.template, self.parameters, self.resource_map.input_parameters)
    self.status = "UPDATE_IN_PROGRESS"
    try:
        _update_stack(self, template, role_arn, parameters, tags)
    except ResourceFailed as failure:
        _set_status(self, "UPDATE_ROLLBACK_IN_PROGRESS",
                    f"The following resource(s) failed to update: [{failure.logical_id}].")
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
            _set_status(self, "UPDATE_ROLLBACK_FAILED", rollback_failure.reason)
        else:
            _set_status(self, "UPDATE_ROLLBACK_COMPLETE")


cfn_models.Stack.update = _update

_delete_stack = cfn_models.Stack.delete


def _delete(self: Any) -> None:
    self.status = "DELETE_IN_PROGRESS"
    _DELETING[self.stack_id] = self
    try:
        _delete_stack(self)
    except ResourceFailed as failure:
        _set_status(self, "DELETE_FAILED", f"The following resource(s) failed to delete: "
                                           f"[{failure.logical_id}]. {failure.reason}")
        return
    finally:
        del _DELETING[self.stack_id]
    _freeze(self)


cfn_models.Stack.delete = _delete

_backend_delete_stack = cfn_models.CloudFormationBackend.delete_stack


def _backend_delete_stack_keeping_failed(self: Any, name_or_stack_id: str) -> None:
    """Gap: moto forgets a stack even when its deletion failed; CloudFormation keeps it."""
    _backend_delete_stack(self, name_or_stack_id)
    for stack_id, stack in list(self.deleted_stacks.items()):
        if stack.status == "DELETE_FAILED":
            self.stacks[stack_id] = self.deleted_stacks.pop(stack_id)


cfn_models.CloudFormationBackend.delete_stack = _backend_delete_stack_keeping_failed

_outputs = cfn_models.Stack.outputs


def _outputs_when_complete(self: Any) -> Any:
    if self.status in ("CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED",
                       "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
        return None
    return _outputs.fget(self)


cfn_models.Stack.outputs = property(_outputs_when_complete)


def _validate_different_update(self: Any, incoming_params: list[dict[str, Any]] | None,
                               stack_body: str, old_stack: Any) -> None:
    """Gap: moto compares the parameters passed with the resolved ones (defaults added, lists
    split, numbers parsed), so re-deploying an unchanged stack is never "No updates"."""
    previous = old_stack.resource_map.input_parameters
    if old_stack.template == stack_body and self._get_param_values(incoming_params or [], previous) == previous:
        raise ValidationError(old_stack.name, message="No updates are to be performed.")


CloudFormationResponse._validate_different_update = _validate_different_update


# ------------------------------------------------------------------------ server

def _kill_children() -> None:
    """Stop function processes still running (runtime_api starts each in its own session)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            try:
                os.killpg(int(stat.parent.name), signal.SIGKILL)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="moto server on 127.0.0.1 with the patches the project's CloudFormation flow needs; "
                    "custom resources run their function's real bootstrap against --efs-dir.")
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    parser.add_argument("--efs-dir", default=os.environ.get("CE_LOCAL_EFS_DIR"),
                        help="folder standing in for EFS (default: $CE_LOCAL_EFS_DIR)")
    args = parser.parse_args(argv)
    if not args.efs_dir or not Path(args.efs_dir).is_dir():
        parser.error("--efs-dir (or CE_LOCAL_EFS_DIR) must name an existing directory")
    Settings.port = args.port
    Settings.efs_dir = str(Path(args.efs_dir).resolve())
    os.environ["MOTO_PORT"] = str(args.port)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", args.port, DomainDispatcherApplication(create_backend_app),
                         threaded=True, request_handler=MotoRequestHandler)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"local AWS (moto {MOTO_VERSION}) ready on http://127.0.0.1:{args.port}; "
          f"EFS stands in at {Settings.efs_dir}", flush=True)
    try:
        server.serve_forever()
    finally:
        _kill_children()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
