"""The template model the checkers share: where the template lives, how it is read, and how
its resources refer to one another. The checkers (check_cfn, check_operate,
check_api_constraints, cfn_variants, tests/runtime/container_view) import it from here so
that none of them imports another checker.

    load_template(path)               the template with long-form intrinsics, as plain JSON data
    ref_target(value)                 the logical id a Ref or Fn::GetAtt points at
    resources(inputs, type_name)      {logical id: resource} of one type
    lambda_access_point(inputs)       the access point the tree Lambda mounts
    task_access_points(inputs)        every other access point (the task's)

`inputs` is anything with a `template` attribute (the checkers' own Inputs).
"""

import json
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cfn" / "CloudExchangeTemplate.yaml"


def load_template(path=TEMPLATE):
    """The template with long-form intrinsics (cfn-lint's loader understands the short tags),
    through JSON: plain dicts and strings instead of cfn-lint's node classes."""
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def ref_target(value):
    """The logical id a {"Ref": X} or {"Fn::GetAtt": [X, ...]} points at, else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def resources(inputs, type_name):
    return {k: v for k, v in inputs.template["Resources"].items() if v.get("Type") == type_name}


def lambda_access_point(inputs):
    """Logical id of the access point the tree Lambda mounts."""
    for function in resources(inputs, "AWS::Lambda::Function").values():
        for config in function["Properties"].get("FileSystemConfigs", []):
            return ref_target(config["Arn"])
    return None


def task_access_points(inputs):
    own = lambda_access_point(inputs)
    return {k: v for k, v in resources(inputs, "AWS::EFS::AccessPoint").items() if k != own}
