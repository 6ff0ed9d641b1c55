"""The same custom resource written on crhelper (PyPI), the helper AWS publishes.

crhelper's CfnResource is created at import, as its documentation shows; it
creates boto3 clients for its polling feature there, which is part of the cold
start users pay. The work is tree_work.build_tree, shared with the
cfnresponse-style contestant.

crhelper always sends the response over HTTPS (http.client.HTTPSConnection).
The benchmark's receiver speaks plain HTTP on 127.0.0.1, as it does for the
other contestants, so this module swaps in HTTPConnection; crhelper still
builds its TLS context on every send as it would against CloudFormation.
Run under awslambdaric: ``python -m awslambdaric crhelper_handler.handler``.
"""

import os
from http.client import HTTPConnection

import crhelper.utils
from crhelper import CfnResource
from tree_work import build_tree

crhelper.utils.HTTPSConnection = lambda host, context=None: HTTPConnection(host)

helper = CfnResource(json_logging=False, log_level="INFO", boto_level="CRITICAL")


@helper.create
@helper.update
def create_or_update(event, _context):
    root = os.environ.get("EFS_MOUNT_PATH", "/mnt/efs")
    helper.Data.update(build_tree(root, event["ResourceProperties"]))
    return


@helper.delete
def delete(_event, _context):
    """Retain everything, like the Rust function."""


def handler(event, context):
    helper(event, context)
