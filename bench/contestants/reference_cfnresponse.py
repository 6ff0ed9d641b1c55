"""The Python custom resource a Cloud Exchange deployment runs without this project.

Equivalent to the reference deployment's inline Lambda: build the directory
tree with os.makedirs, set owners and modes, write the seed files, and PUT the
result to the ResponseURL the way AWS's ``cfnresponse`` module does (empty
Content-Type, explicit Content-Length, one attempt, failure only printed).
The PUT uses the standard library's urllib, which imports less than the
urllib3 that ``cfnresponse`` uses, so this contestant is, if anything, faster
than the code it stands for.

It takes the same ResourceProperties as the Rust function (Directories and
Files with Path, Owner, Group, Mode, Content, Overwrite) and does the work in
tree_work.build_tree, shared with the crhelper contestant. Run under
awslambdaric: ``python -m awslambdaric reference_cfnresponse.handler``.
"""

import json
import os
import urllib.request

from tree_work import build_tree

SUCCESS = "SUCCESS"
FAILED = "FAILED"


def send(event, context, status, data, physical_resource_id=None, reason=None):
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"See the details in CloudWatch Log Stream: {context.log_stream_name}",
            "PhysicalResourceId": physical_resource_id or context.log_stream_name,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    try:
        with urllib.request.urlopen(request) as response:
            print("Status code:", response.status)
    except Exception as exc:  # noqa: BLE001 - cfnresponse swallows delivery errors the same way
        print("send(..) failed executing urlopen(..):", exc)


def handler(event, context):
    try:
        data = {}
        if event["RequestType"] in ("Create", "Update"):
            root = os.environ.get("EFS_MOUNT_PATH", "/mnt/efs")
            data = build_tree(root, event["ResourceProperties"])
        send(event, context, SUCCESS, data)
    except Exception as exc:  # noqa: BLE001 - any failure must still answer CloudFormation
        send(event, context, FAILED, {}, reason=str(exc))
