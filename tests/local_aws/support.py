"""Helpers of the local AWS's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REGION = "us-east-1"

# The types of conftest.py's fixtures, named once for the tests' signatures.
Aws = Callable[[str], Any]
Deploy = Callable[..., dict[str, Any]]
Network = Callable[..., dict[str, Any]]

# A fake function for a custom resource (standard library only, so no build): takes
# one event from the Lambda Runtime API, writes it to $RECORD_DIR (with the AWS_LAMBDA_LOG_*
# variables under _logging), answers $ANSWER_STATUS
# (SUCCESS or FAILED; FAILED only for the RequestType $FAIL_ON, or for the property Value
# $FAIL_VALUE, when set) at the ResponseURL, or nothing when
# $ANSWER_STATUS is "none"; $CONTENT_TYPE, when set, is sent with the PUT.
FAKE_FUNCTION = r"""#!/usr/bin/env python3
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
with urllib.request.urlopen(api + "/invocation/next") as reply:
    request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.load(reply)
record = os.environ.get("RECORD_DIR")
if record:
    with open(os.path.join(record, event["RequestId"] + ".json"), "w") as out:
        logging = {k: v for k, v in os.environ.items() if k.startswith("AWS_LAMBDA_LOG_")}
        json.dump(dict(event, _logging=logging), out)
print("fake function got", event["RequestType"])
status = os.environ.get("ANSWER_STATUS", "SUCCESS")
if os.environ.get("FAIL_ON"):
    status = "FAILED" if event["RequestType"] == os.environ["FAIL_ON"] else "SUCCESS"
if os.environ.get("FAIL_VALUE"):
    status = "FAILED" if event["ResourceProperties"].get("Value") == os.environ["FAIL_VALUE"] else "SUCCESS"
if status != "none":
    body = json.dumps({"Status": status, "Reason": "fake function " + status,
                       "PhysicalResourceId": event.get("PhysicalResourceId") or "fake-function-id",
                       "StackId": event["StackId"], "RequestId": event["RequestId"],
                       "LogicalResourceId": event["LogicalResourceId"],
                       "Data": {"Echo": event["ResourceProperties"].get("Value", "")}}).encode()
    put = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                 headers={"Content-Type": os.environ.get("CONTENT_TYPE", "")})
    try:
        urllib.request.urlopen(put, timeout=5).read()
    except Exception as error:
        print("response not delivered:", error)
        sys.exit(1)
done = urllib.request.Request(api + "/invocation/" + request_id + "/response", data=b"{}", method="POST")
urllib.request.urlopen(done).read()
"""


def make_zip(script: str) -> bytes:
    """A Lambda zip holding ``script`` as an executable ``bootstrap`` at its root."""
    buffer = io.BytesIO()
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, script)
    return buffer.getvalue()


def recorded(record_dir: Path) -> list[dict[str, Any]]:
    """The events the fake function received, oldest first."""
    files = sorted(record_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(p.read_text()) for p in files]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events(aws: Callable[[str], Any], stack: str) -> list[tuple[str, str, str]]:
    """(LogicalResourceId, ResourceStatus, ResourceStatusReason) of a stack, oldest first."""
    found = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "") for e in reversed(found)]


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def function_resource(
    code: dict[str, str],
    record_dir: Path,
    environment: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An AWS::Lambda::Function running the fake function, recording into ``record_dir``."""
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": code,
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "Role": "arn:aws:iam::123456789012:role/fake-function",
            "Timeout": 30,
            "Environment": {"Variables": {"RECORD_DIR": str(record_dir), **(environment or {})}},
            **(extra or {}),
        },
    }


def failures(aws: Callable[[str], Any], stack: str) -> list[tuple[str, str, str]]:
    """The *_FAILED events of a stack (for assertion messages)."""
    return [e for e in events(aws, stack) if e[1].endswith("FAILED")]
