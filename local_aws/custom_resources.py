"""Custom resources backed by a Lambda function, run for real.

Create, Update and Delete start the ``bootstrap`` in the zip moto stores for the function
(uploaded by ``aws cloudformation package``) under runtime_api.invoke_once, with the
function's environment and every EFS mount (FileSystemConfigs) on the EFS folder
(a local folder that plays EFS). It PUTs its answer to a ResponseURL shaped like CloudFormation's
pre-signed S3 URL, served here and refused, as S3 would, unless used byte for byte and
without a Content-Type. A FAILED answer, no answer or an invalid one fails the resource
with its Reason.

The network decides first, as in AWS (see network.py): a function whose EFS mount is
unreachable is never started (Lambda fails the invocation before the handler runs); one
whose subnets have no route to S3 is handed a ResponseURL that refuses connections (in AWS
the connection attempt times out; either way the function retries until its deadline and
ends without having answered). CloudFormation hears nothing and fails the resource after
ServiceTimeout; here once the function has ended and min(ServiceTimeout,
Settings.max_service_timeout_s) has passed. The function itself keeps its own deadline
(its Timeout), as in Lambda.

The function runs synchronously inside the CreateStack/UpdateStack/DeleteStack call (it
takes milliseconds here): moto creates every resource within that call anyway, so running it
in the background would let resources that depend on it, and the outputs, be built before
its answer. Not emulated: Lambda's two retries of a failed asynchronous invocation.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from moto.awslambda.utils import get_backend as lambda_backend
from moto.cloudformation import parsing, urls
from moto.cloudformation.custom_model import CustomModel
from moto.logs.models import logs_backends

from local_aws import runtime_api

from . import network, response_url
from .config import DEFAULT_SERVICE_TIMEOUT_S, REGION, SETTINGS
from .events import ResourceFailed, add_event, stack_of

# CloudFormation rejects a custom resource response longer than this.
MAX_RESPONSE_BYTES = 4096
RESPONSE_PREFIX = f"/cloudformation_{REGION}/cfnresponse/"


class _Responses:
    """ResponseURLs handed out and the bodies PUT to them, by request id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, str] = {}
        self._bodies: dict[str, bytes] = {}

    def new_path(self, stack_id: str, logical_id: str, request_id: str) -> str:
        path = response_url.presigned_path(RESPONSE_PREFIX, response_url.object_key(stack_id, logical_id, request_id))
        with self._lock:
            self._paths[request_id] = path
        return path

    def receive(self, raw_path: str, content_type: str, body: bytes) -> tuple[int, str]:
        request_id = response_url.request_id_of(raw_path)
        with self._lock:
            if self._paths.get(request_id) != raw_path:
                return 403, "SignatureDoesNotMatch: the URL was changed (decoded or re-encoded)"
            if content_type:
                # The URL was signed with an empty Content-Type, as CloudFormation's are.
                return 403, "SignatureDoesNotMatch: the request carries a Content-Type"
            self._bodies.setdefault(request_id, body)
        return 200, ""

    def take(self, request_id: str) -> bytes | None:
        with self._lock:
            self._paths.pop(request_id, None)
            return self._bodies.pop(request_id, None)


RESPONSES = _Responses()


class _Unreachable:
    """A port on 127.0.0.1 that is bound but never listens: connections are refused."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None

    def base_url(self) -> str:
        if self._socket is None:
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"


UNREACHABLE = _Unreachable()


def _response_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "PUT":
        return 405, {}, "MethodNotAllowed"
    status, error = RESPONSES.receive(
        request.environ.get("RAW_URI", ""), request.headers.get("Content-Type", ""), request.get_data()
    )
    if status != 200:
        return status, {"Content-Type": "application/xml"}, f"<Error><Code>{error}</Code></Error>"
    return 200, {"ETag": '"' + hashlib.md5(request.get_data()).hexdigest() + '"'}, ""


def _logging(function: Any) -> dict[str, str]:
    return getattr(function, "logging_config", None) or {}


def _log_group(function: Any) -> str:
    return _logging(function).get("LogGroup") or f"/aws/lambda/{function.function_name}"


def logging_environment(function: Any) -> dict[str, str]:
    """What Lambda tells a custom runtime about its LoggingConfig: AWS_LAMBDA_LOG_FORMAT
    (JSON or Text) and, for JSON, AWS_LAMBDA_LOG_LEVEL (the ApplicationLogLevel).
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html"""
    config = _logging(function)
    env = {"AWS_LAMBDA_LOG_FORMAT": config.get("LogFormat", "Text"), "AWS_LAMBDA_LOG_GROUP_NAME": _log_group(function)}
    if config.get("LogFormat") == "JSON":
        env["AWS_LAMBDA_LOG_LEVEL"] = config.get("ApplicationLogLevel", "INFO")
    return env


def _write_function_logs(function: Any, logs: str) -> None:
    """Put the function's output where `aws logs` finds it, as Lambda does: its
    LoggingConfig's LogGroup, else /aws/lambda/<name>."""
    backend = logs_backends[function.account_id][function.region]
    group = _log_group(function)
    if group not in backend.groups:
        backend.create_log_group(group, {})
    stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
    backend.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    lines = [line for line in logs.splitlines() if line.strip()]
    if lines:
        backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])


def _run_function(function: Any, event: dict[str, Any], limit_s: float) -> runtime_api.InvocationResult:
    """Run the function's bootstrap once for one event, EFS replaced by the local folder.

    The runtime sees the function's own deadline (its Timeout), as in Lambda; the process
    is stopped after ``limit_s`` (CloudFormation stops listening after ServiceTimeout)."""
    with tempfile.TemporaryDirectory(prefix="ce-lambda-") as task_dir:
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            if "bootstrap" not in archive.namelist():
                raise RuntimeError(f"the code of {function.function_name} has no bootstrap at its root")
            bootstrap = Path(archive.extract("bootstrap", task_dir))
        bootstrap.chmod(0o755)
        env = dict(function.environment_vars)
        env["EFS_MOUNT_PATH"] = SETTINGS.efs_dir
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "AWS_REGION": function.region,
                "AWS_DEFAULT_REGION": function.region,
                **logging_environment(function),
            }
        )
        return runtime_api.invoke_once(
            [str(bootstrap)],
            event,
            env,
            timeout_s=min(float(function.timeout), limit_s) + 1,
            deadline_ms=int(float(function.timeout) * 1000),
            cwd=task_dir,
        )


def no_response_reason(request_id: str, detail: str) -> str:
    """CloudFormation's Reason when ServiceTimeout passes without a response, and what the
    local AWS knows about why."""
    return (
        f"CloudFormation did not receive a response from your Custom Resource. Please check your logs "
        f"for requestId [{request_id}]. (local AWS: no response at the ResponseURL: {detail})"
    )


def declared_service_timeout_s(properties: dict[str, Any]) -> float:
    """The resource's ServiceTimeout, seconds (CloudFormation's default 3600)."""
    return float(properties.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT_S))


def service_timeout_s(properties: dict[str, Any]) -> float:
    """How long the local AWS waits for an answer that never comes: the resource's
    ServiceTimeout, capped by the local setting."""
    return min(declared_service_timeout_s(properties), SETTINGS.max_service_timeout_s)


def send_request(
    request_type: str,
    resource: CustomResource,
    properties: dict[str, Any],
    old_properties: dict[str, Any] | None = None,
) -> tuple[str, str, str, dict[str, Any]]:
    """Send one request to the resource's function; (Status, Reason, PhysicalResourceId, Data)."""
    started = time.monotonic()
    request_id = str(uuid.uuid4())
    wait_s = service_timeout_s(properties)
    try:
        function = lambda_backend(resource.account_id, resource.region_name).get_function(properties["ServiceToken"])
    except Exception as exc:  # noqa: BLE001 - every cause becomes the resource's Reason
        return "FAILED", f"the function could not be run: {exc}", resource.physical_id, {}
    path = RESPONSES.new_path(resource.stack_id, resource.logical_id, request_id)
    no_route = network.s3_unreachable(function)
    base = UNREACHABLE.base_url() if no_route else f"http://127.0.0.1:{SETTINGS.port}"
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": base + path,
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

    mount_error = network.efs_mount_error(function)
    if mount_error:
        detail = f"the invocation failed before the handler ran: {mount_error}"
    else:
        try:
            result = _run_function(function, event, declared_service_timeout_s(properties))
        except Exception as exc:  # noqa: BLE001 - every cause becomes the resource's Reason
            RESPONSES.take(request_id)
            return "FAILED", f"the function could not be run: {exc}", resource.physical_id, {}
        _write_function_logs(function, result.logs)
        body = RESPONSES.take(request_id)
        print(
            f"custom resource {resource.logical_id}: {request_type} -> function {result.outcome} in "
            f"{result.result_ms} ms, response {'received' if body else 'missing'}",
            file=sys.stderr,
            flush=True,
        )
        if body is not None:
            return check_response(body, event)
        sys.stderr.write("".join(result.logs.splitlines(keepends=True)[-20:]))
        detail = f"the function ended ({result.outcome}) without one"
        if no_route:
            detail += f"; it cannot reach S3: {no_route}"
    RESPONSES.take(request_id)
    print(f"custom resource {resource.logical_id}: {request_type} -> {detail}", file=sys.stderr, flush=True)
    time.sleep(max(0.0, wait_s - (time.monotonic() - started)))
    return "FAILED", no_response_reason(request_id, detail), resource.physical_id, {}


def check_response(body: bytes, event: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
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
    """A custom resource that gets Create, Update and Delete, and whose FAILED counts."""

    __module__ = "moto.cloudformation"  # moto files models under the service of their module

    def __init__(
        self,
        account_id: str,
        region_name: str,
        stack_id: str,
        logical_id: str,
        resource_type: str,
        properties: dict[str, Any],
    ):
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
        add_event(
            stack_of(self.account_id, self.region_name, self.stack_id),
            self.logical_id,
            self.resource_type,
            self.physical_id,
            status,
            reason,
        )

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> CustomResource:
        resource = cls(
            account_id,
            region_name,
            kwargs["StackId"],
            kwargs["LogicalId"],
            kwargs["ResourceType"],
            cloudformation_json["Properties"],
        )
        resource._event("CREATE_IN_PROGRESS")
        status, reason, resource.physical_id, data = send_request("Create", resource, resource.properties)
        if status != "SUCCESS":
            # Rolling back, CloudFormation sends Delete for the id a FAILED answer carried.
            raise ResourceFailed(
                resource.logical_id, reason, rollback=resource.delete_with_events if resource.physical_id else None
            )
        resource.set_data(data)
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: CustomResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CustomResource:
        resource, old = original_resource, original_resource.properties
        new = cloudformation_json["Properties"]
        resource._event("UPDATE_IN_PROGRESS")
        status, reason, physical_id, data = send_request("Update", resource, new, old)
        if status != "SUCCESS":
            # Rolling back, CloudFormation sends Update again with the old properties.
            raise ResourceFailed(resource.logical_id, reason, rollback=lambda: resource._update_back(new))
        if physical_id != resource.physical_id:
            # A new id means replacement: the old resource gets a Delete, whose failure
            # CloudFormation only records (it happens in the update's cleanup).
            with contextlib.suppress(ResourceFailed):
                resource.delete_with_events()
            resource.physical_id = physical_id
        resource.properties = new
        resource.set_data(data)
        return resource

    def _update_back(self, failed_properties: dict[str, Any]) -> None:
        self._event("UPDATE_IN_PROGRESS")
        status, reason, _, data = send_request("Update", self, self.properties, failed_properties)
        if status != "SUCCESS":
            self._event("UPDATE_FAILED", reason)
            raise ResourceFailed(self.logical_id, reason)
        self._event("UPDATE_COMPLETE")
        self.set_data(data)

    def delete(self, account_id: str, region_name: str) -> None:
        status, reason, _, _ = send_request("Delete", self, self.properties)
        if status != "SUCCESS":
            raise ResourceFailed(self.logical_id, reason)

    def delete_with_events(self) -> None:
        """Delete outside a stack deletion (which records events itself)."""
        self._event("DELETE_IN_PROGRESS")
        try:
            self.delete(self.account_id, self.region_name)
        except ResourceFailed as failure:
            self._event("DELETE_FAILED", failure.reason)
            raise
        self._event("DELETE_COMPLETE")


def install_lifecycle() -> None:
    """moto sends a custom resource only Create, only through Docker, ignores FAILED,
    never sends Update or Delete (an updated custom resource even becomes None) and has no
    ServiceTimeout (send_request waits min(ServiceTimeout, Settings.max_service_timeout_s))."""
    parsing.CustomModel = CustomResource


def install_lambda_logging_config() -> None:
    """moto drops a function's LoggingConfig: the runtime is not told the log format and
    level, and logs go to /aws/lambda/<name> instead of the configured group."""
    network.keep_function_property("LoggingConfig", "logging_config")


def install_response_url() -> None:
    """moto's own cfnresponse endpoint ignores FAILED and takes the stack from the query;
    this one is shaped like CloudFormation's pre-signed S3 URL and checks it like S3."""
    urls.url_paths["{0}/cloudformation_(?P<region>[^/]+)/cfnresponse/(?P<key>.+)$"] = _response_endpoint
