"""Offline checks that the CloudFormation template, the EFS tree it declares, the task
definition template and its rendered form agree, and that no credential is written down.

    check_cfn.py check --rendered FILE      run every check; exit 1 on any failure
    check_cfn.py self-test --rendered FILE  mutate copies of the inputs, one fault per check,
                                            and exit 1 unless every check catches its fault

FILE is the output of `scripts/register-task-definition.sh --dry-run --outputs-file
tests/fixtures/stack-outputs.json`. The template is read with cfn-lint's YAML loader, so
short-form tags (!Ref, !Sub, !GetAtt) arrive as their long forms.
"""

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cfn" / "CloudExchangeTemplate.yaml"
TASK_DEFINITION = ROOT / "cfn" / "CloudExchangeTaskDefinition.json"
FIXTURE = ROOT / "tests" / "fixtures" / "stack-outputs.json"
REGISTER_SCRIPT = ROOT / "scripts" / "register-task-definition.sh"

# Placeholders the register script fills itself (documented in its usage text).
SCRIPT_VARIABLES = {"Region", "Cpu", "Memory", "ImageCore", "ImageUi", "ImageMongodb", "ImageRabbitmq"}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Names that announce a credential: such a variable belongs in `secrets`, never `environment`.
CREDENTIAL_NAME = re.compile(r"PASS|SECRET|COOKIE|TOKEN|CONNECTION_STRING|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
# scheme://user:password@ with the password written out (a dynamic reference is allowed).
URI_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:\"']+:(?!\{\{resolve:secretsmanager:)[^/@\s\"']+@", re.I)
# A whole {{resolve:secretsmanager:...}} reference, possibly naming the secret with ${Id}.
DYNAMIC_REFERENCE = re.compile(r"^\{\{resolve:secretsmanager:(?:[^{}$]|\$\{[A-Za-z0-9.:]+\})+\}\}$")
# Variables whose names look like credentials but are switches (name -> allowed values).
NOT_CREDENTIALS = {
    # bitnami: "yes" sets the password with rabbitmqctl instead of writing it to rabbitmq.conf.
    "RABBITMQ_SECURE_PASSWORD": {"yes", "no"},
}
EFS_TREE_ID = "EfsTree"
EFS_TREE_TYPE = "Custom::CloudExchangeEfsTree"
MAX_SERVICE_TIMEOUT = 300


@dataclass
class Inputs:
    template: dict  # the CloudFormation template, long-form intrinsics
    task_definition: dict  # cfn/CloudExchangeTaskDefinition.json, placeholders in place
    rendered: dict  # the register script's --dry-run output
    fixture: dict  # tests/fixtures/stack-outputs.json
    script_text: str  # scripts/register-task-definition.sh
    cfn_texts: dict  # file name -> raw text of every file under cfn/


# ---------------------------------------------------------------- helpers
def resources(inputs, type_name):
    return {k: v for k, v in inputs.template["Resources"].items() if v.get("Type") == type_name}


def ref_target(value):
    """The logical id a {"Ref": X} or {"Fn::GetAtt": [X, ...]} points at, else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def output_resource(inputs, placeholder):
    """For "${OutputName}", the logical id its output's Value refers to, else None."""
    match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\}", placeholder or "")
    if not match:
        return None
    output = inputs.template.get("Outputs", {}).get(match.group(1))
    return ref_target(output["Value"]) if output else None


def containers(task_definition):
    return task_definition.get("containerDefinitions", [])


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def tree(inputs):
    """The EfsTree's Directories and Files as {path: entry}."""
    props = inputs.template["Resources"][EFS_TREE_ID]["Properties"]
    return ({d["Path"]: d for d in props.get("Directories", [])}, {f["Path"]: f for f in props.get("Files", [])})


def lambda_access_point(inputs):
    """Logical id of the access point the tree Lambda mounts."""
    for function in resources(inputs, "AWS::Lambda::Function").values():
        for config in function["Properties"].get("FileSystemConfigs", []):
            return ref_target(config["Arn"])
    return None


# ---------------------------------------------------------------- checks
def check_botocore(inputs):
    """The rendered JSON is valid RegisterTaskDefinition input for the ECS API model."""
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(inputs.rendered, shape)
    return [report.generate_report()] if report.has_errors() else []


def check_efs_tree(inputs):
    """Every access point's root is a tree directory with the access point's owner and mode;
    the Lambda's access point is uid 0 at /; the custom resource obeys its contract."""
    errors = []
    resource = inputs.template["Resources"].get(EFS_TREE_ID, {})
    if resource.get("Type") != EFS_TREE_TYPE:
        return [f"resource {EFS_TREE_ID} must be of type {EFS_TREE_TYPE}"]
    props = resource["Properties"]
    timeout = props.get("ServiceTimeout")
    if not isinstance(timeout, (int, str)) or not str(timeout).isdigit() or int(timeout) > MAX_SERVICE_TIMEOUT:
        errors.append(f"{EFS_TREE_ID}.ServiceTimeout must be at most {MAX_SERVICE_TIMEOUT}, is {timeout!r}")
    directories, files = tree(inputs)
    for path, entry in {**directories, **files}.items():
        for key in ("Owner", "Group", "Mode"):
            if not isinstance(entry.get(key), str):
                errors.append(f"{EFS_TREE_ID} entry {path}: {key} must be a string, as CloudFormation delivers it")
    for path, entry in files.items():
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and parent not in directories:
            errors.append(f"{EFS_TREE_ID} file {path}: its directory {parent} is not declared")
        if entry.get("Overwrite") != "false":
            errors.append(f"{EFS_TREE_ID} file {path}: Overwrite must be \"false\" so operators' edits survive")
    own = lambda_access_point(inputs)
    for name, ap in resources(inputs, "AWS::EFS::AccessPoint").items():
        p = ap["Properties"]
        root = p.get("RootDirectory", {}).get("Path", "/")
        uid, gid = p.get("PosixUser", {}).get("Uid"), p.get("PosixUser", {}).get("Gid")
        if name == own:
            if root != "/" or uid != "0" or gid != "0":
                errors.append(f"{name} (the tree Lambda's access point) must be uid/gid 0 at /")
            continue
        if root == "/":
            errors.append(f"{name}: only the tree Lambda's access point may expose the file system root")
            continue
        entry = directories.get(root.lstrip("/"))
        if entry is None:
            errors.append(f"{name}: root directory {root} is not a directory of {EFS_TREE_ID}")
            continue
        if (uid, gid) != (entry["Owner"], entry["Group"]):
            errors.append(f"{name}: PosixUser {uid}:{gid} differs from the tree's owner {entry['Owner']}:{entry['Group']} of {root}")
        info = p.get("RootDirectory", {}).get("CreationInfo")
        if info and (info["OwnerUid"], info["OwnerGid"], int(info["Permissions"], 8)) != (
            entry["Owner"], entry["Group"], int(entry["Mode"], 8)):
            errors.append(f"{name}: CreationInfo differs from the tree's owner and mode of {root}")
    function = next(iter(resources(inputs, "AWS::Lambda::Function").values()), {}).get("Properties", {})
    mount = [c.get("LocalMountPath") for c in function.get("FileSystemConfigs", [])]
    env = function.get("Environment", {}).get("Variables", {}).get("EFS_MOUNT_PATH")
    if mount != [env]:
        errors.append(f"the Lambda's mount path {mount} differs from EFS_MOUNT_PATH {env!r}")
    return errors


def check_volumes(inputs):
    """Every task volume is an EFS access point volume (IAM, TLS) named by stack outputs, each
    task access point is used once, and the rabbitmq volume holds a seeded custom.conf."""
    errors = []
    own = lambda_access_point(inputs)
    task_aps = set(resources(inputs, "AWS::EFS::AccessPoint")) - {own}
    file_systems = set(resources(inputs, "AWS::EFS::FileSystem"))
    used = {}
    for volume in inputs.task_definition.get("volumes", []):
        name = volume.get("name")
        efs = volume.get("efsVolumeConfiguration")
        if not efs:
            errors.append(f"volume {name}: not an EFS volume")
            continue
        auth = efs.get("authorizationConfig", {})
        if efs.get("transitEncryption") != "ENABLED" or auth.get("iam") != "ENABLED":
            errors.append(f"volume {name}: transitEncryption and authorizationConfig.iam must be ENABLED")
        if efs.get("rootDirectory", "/") != "/":
            errors.append(f"volume {name}: the access point sets the root; rootDirectory must be / or absent")
        if output_resource(inputs, efs.get("fileSystemId")) not in file_systems:
            errors.append(f"volume {name}: fileSystemId {efs.get('fileSystemId')!r} is not an output naming the file system")
        ap = output_resource(inputs, auth.get("accessPointId"))
        if ap not in task_aps:
            errors.append(f"volume {name}: accessPointId {auth.get('accessPointId')!r} is not an output naming a task access point")
        else:
            used.setdefault(ap, []).append(name)
    for ap in sorted(task_aps):
        if len(used.get(ap, [])) != 1:
            errors.append(f"access point {ap} is used by {len(used.get(ap, []))} volumes, not 1")
    rabbitmq_ap = next((ap for ap, names in used.items() if "rabbitmq" in names), None)
    if rabbitmq_ap:
        root = inputs.template["Resources"][rabbitmq_ap]["Properties"]["RootDirectory"]["Path"].lstrip("/")
        conf = tree(inputs)[1].get(f"{root}/custom.conf")
        if not conf or "consumer_timeout" not in conf.get("Content", ""):
            errors.append(f"{EFS_TREE_ID} must seed {root}/custom.conf with consumer_timeout")
    else:
        errors.append("no volume named rabbitmq")
    return errors


def check_mount_points(inputs):
    """Every mountPoint names a volume, and every volume is mounted somewhere."""
    volumes = {v.get("name") for v in inputs.task_definition.get("volumes", [])}
    errors, mounted = [], set()
    for container in containers(inputs.task_definition):
        for mount in container.get("mountPoints", []):
            mounted.add(mount.get("sourceVolume"))
            if mount.get("sourceVolume") not in volumes:
                errors.append(f"container {container['name']}: mountPoint names unknown volume {mount.get('sourceVolume')!r}")
    errors += [f"volume {v} is never mounted" for v in sorted(volumes - mounted)]
    return errors


def check_depends_on(inputs):
    """Every dependsOn names another container; core waits for a HEALTHY MongoDB, ui for core."""
    names = {c["name"] for c in containers(inputs.task_definition)}
    errors = []
    for container in containers(inputs.task_definition):
        for dep in container.get("dependsOn", []):
            if dep.get("containerName") not in names - {container["name"]}:
                errors.append(f"container {container['name']}: dependsOn names {dep.get('containerName')!r}, not another container")
    required = {("core", "mongodb-primary", "HEALTHY"), ("ui", "core", "START")}
    present = {(c["name"], d.get("containerName"), d.get("condition"))
               for c in containers(inputs.task_definition) for d in c.get("dependsOn", [])}
    errors += [f"container {c} must depend on {d} being {cond}" for c, d, cond in sorted(required - present)]
    for container in containers(inputs.task_definition):
        if not container.get("healthCheck"):
            errors.append(f"container {container['name']} has no healthCheck")
    return errors


def check_placeholders(inputs):
    """Every placeholder is a stack output or a documented script variable; none survives
    rendering; the fixture offers exactly the template's outputs."""
    errors = []
    outputs = set(inputs.template.get("Outputs", {}))
    for text in strings(inputs.task_definition):
        for name in PLACEHOLDER.findall(text):
            if name not in outputs | SCRIPT_VARIABLES:
                errors.append(f"placeholder ${{{name}}} is neither a stack output nor a script variable")
    for name in sorted(SCRIPT_VARIABLES):
        if not re.search(rf"\b{name}\b", inputs.script_text):
            errors.append(f"script variable {name} is not documented in {REGISTER_SCRIPT.name}")
    left = sorted({m for text in strings(inputs.rendered) for m in PLACEHOLDER.findall(text)})
    errors += [f"rendered task definition still holds ${{{name}}}" for name in left]
    fixture_keys = {o["OutputKey"] for o in inputs.fixture["Stacks"][0].get("Outputs", [])}
    if fixture_keys != outputs:
        errors.append(f"fixture outputs differ from the template's: missing {sorted(outputs - fixture_keys)}, "
                      f"extra {sorted(fixture_keys - outputs)}")
    return errors


def check_credentials(inputs):
    """No literal credential in cfn/ or the rendered JSON: credential-like variables come only
    from `secrets`, which name this stack's generated secrets, readable by the execution role."""
    errors = []
    secret_ids = set(resources(inputs, "AWS::SecretsManager::Secret"))
    referenced = set()
    for label, task_definition in (("template", inputs.task_definition), ("rendered", inputs.rendered)):
        for container in containers(task_definition):
            for env in container.get("environment", []):
                if env.get("value") in NOT_CREDENTIALS.get(env.get("name"), ()):
                    continue
                if CREDENTIAL_NAME.search(env.get("name", "")):
                    errors.append(f"{label}: container {container['name']} sets {env['name']} in environment; use secrets")
            for secret in container.get("secrets", []):
                value = secret.get("valueFrom", "")
                if label == "template":
                    target = output_resource(inputs, value)
                    if target not in secret_ids:
                        errors.append(f"container {container['name']}: secret {secret.get('name')} comes from "
                                      f"{value!r}, not an output naming a generated secret")
                    referenced.add(target)
                elif not re.match(r"^arn:aws[a-z-]*:secretsmanager:", value):
                    errors.append(f"rendered: container {container['name']}: secret {secret.get('name')} is not a Secrets Manager ARN")
    for name, secret in resources(inputs, "AWS::SecretsManager::Secret").items():
        props = secret["Properties"]
        if "GenerateSecretString" in props:
            if props["GenerateSecretString"].get("ExcludePunctuation") is not True:
                errors.append(f"{name}: generated values go into URIs and shells; set ExcludePunctuation")
            continue
        value = props.get("SecretString")
        text = value.get("Fn::Sub") if isinstance(value, dict) else None
        if not isinstance(text, str) or "{{resolve:secretsmanager:" not in text:
            errors.append(f"{name}: SecretString must be built from dynamic references, not written down")
            continue
        for password in re.findall(r"://[^/@:]+:(.*?)@", text):
            if not DYNAMIC_REFERENCE.match(password):
                errors.append(f"{name}: the password in its URI is not a dynamic reference")
    policy_secrets = set()
    for role in resources(inputs, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "secretsmanager:GetSecretValue" in actions:
                    resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    policy_secrets |= {ref_target(r) for r in resources_}
    if policy_secrets != referenced:
        errors.append(f"GetSecretValue must cover exactly the task's secrets: missing {sorted(referenced - policy_secrets)}, "
                      f"extra {sorted(map(str, policy_secrets - referenced))}")
    for name, param in inputs.template.get("Parameters", {}).items():
        if CREDENTIAL_NAME.search(name) or param.get("NoEcho"):
            errors.append(f"parameter {name}: credentials are generated by the stack, never passed in")
    for name, function in resources(inputs, "AWS::Lambda::Function").items():
        for var in function["Properties"].get("Environment", {}).get("Variables", {}):
            if CREDENTIAL_NAME.search(var):
                errors.append(f"{name}: environment variable {var} looks like a credential")
    for name, output in inputs.template.get("Outputs", {}).items():
        if any("{{resolve:" in s for s in strings(output)):
            errors.append(f"output {name} resolves a secret")
    for file_name, text in sorted(inputs.cfn_texts.items()):
        for match in URI_PASSWORD.finditer(text):
            errors.append(f"{file_name}: URI with a written-down password: {match.group(0)[:40]}...")
    for text in strings(inputs.rendered):
        if URI_PASSWORD.search(text):
            errors.append("rendered: URI with a written-down password")
    return errors


CHECKS = {
    "botocore-register-task-definition": check_botocore,
    "efs-tree-and-access-points": check_efs_tree,
    "volumes-and-access-point-outputs": check_volumes,
    "mount-points": check_mount_points,
    "depends-on-and-health-checks": check_depends_on,
    "placeholders": check_placeholders,
    "no-literal-credentials": check_credentials,
}


# ---------------------------------------------------------------- self-test
def _container(inputs, name, which="task_definition"):
    return next(c for c in containers(getattr(inputs, which)) if c["name"] == name)


def _first_task_ap(inputs):
    own = lambda_access_point(inputs)
    return next(k for k in resources(inputs, "AWS::EFS::AccessPoint") if k != own)


def _set(obj, key, value):
    obj[key] = value


def _unreadable_secret(inputs):
    """The task reads a secret the execution role may not read."""
    statements = inputs.template["Resources"]["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    grant = next(s for s in statements if s["Action"] == "secretsmanager:GetSecretValue")
    grant["Resource"] = [r for r in grant["Resource"] if r != {"Ref": "JwtSecret"}]


# (check, fault, mutation, text the check's error must contain)
MUTATIONS = [
    ("botocore-register-task-definition", "cpu as a number",
     lambda i: _set(i.rendered, "cpu", 4096), "Invalid type for parameter cpu"),
    ("botocore-register-task-definition", "unknown container field",
     lambda i: _set(_container(i, "core", "rendered"), "secretz", []), 'Unknown parameter in containerDefinitions[2]: "secretz"'),
    ("efs-tree-and-access-points", "tree owner differs from the access point",
     lambda i: _set(i.template["Resources"][EFS_TREE_ID]["Properties"]["Directories"][1], "Owner", "999"),
     "PosixUser 1001:1001 differs from the tree's owner 999:1001"),
    ("efs-tree-and-access-points", "access point root not in the tree",
     lambda i: _set(i.template["Resources"][_first_task_ap(i)]["Properties"]["RootDirectory"], "Path", "/data/elsewhere"),
     "root directory /data/elsewhere is not a directory of EfsTree"),
    ("efs-tree-and-access-points", "Lambda access point not uid 0",
     lambda i: _set(i.template["Resources"][lambda_access_point(i)]["Properties"]["PosixUser"], "Uid", "1001"),
     "must be uid/gid 0 at /"),
    ("efs-tree-and-access-points", "ServiceTimeout above 300",
     lambda i: _set(i.template["Resources"][EFS_TREE_ID]["Properties"], "ServiceTimeout", 3600), "ServiceTimeout must be at most 300"),
    ("volumes-and-access-point-outputs", "volume points at a non-access-point output",
     lambda i: _set(i.task_definition["volumes"][0]["efsVolumeConfiguration"]["authorizationConfig"],
                    "accessPointId", "${TaskRoleArn}"), "is not an output naming a task access point"),
    ("volumes-and-access-point-outputs", "volume without TLS",
     lambda i: _set(i.task_definition["volumes"][1]["efsVolumeConfiguration"], "transitEncryption", "DISABLED"),
     "transitEncryption and authorizationConfig.iam must be ENABLED"),
    ("volumes-and-access-point-outputs", "custom.conf not seeded",
     lambda i: _set(i.template["Resources"][EFS_TREE_ID]["Properties"], "Files", []), "custom.conf with consumer_timeout"),
    ("mount-points", "mountPoint names an unknown volume",
     lambda i: _set(_container(i, "ui")["mountPoints"][0], "sourceVolume", "nope"), "names unknown volume 'nope'"),
    ("depends-on-and-health-checks", "dependsOn names an unknown container",
     lambda i: _set(_container(i, "ui")["dependsOn"][0], "containerName", "nope"), "dependsOn names 'nope'"),
    ("depends-on-and-health-checks", "core no longer waits for a healthy MongoDB",
     lambda i: _set(_container(i, "core"), "dependsOn", []), "core must depend on mongodb-primary being HEALTHY"),
    ("placeholders", "unknown placeholder in the template",
     lambda i: _set(_container(i, "core"), "image", "${NoSuchOutput}"), "${NoSuchOutput} is neither"),
    ("placeholders", "placeholder left in the rendered JSON",
     lambda i: _set(_container(i, "core", "rendered"), "image", "${ImageCore}"), "still holds ${ImageCore}"),
    ("placeholders", "fixture lacks an output",
     lambda i: i.fixture["Stacks"][0]["Outputs"].pop(), "missing ['JwtSecretArn']"),
    ("no-literal-credentials", "password in environment",
     lambda i: _container(i, "mongodb-primary", "rendered")["environment"].append(
         {"name": "MONGODB_ROOT_PASSWORD", "value": "hunter2"}), "sets MONGODB_ROOT_PASSWORD in environment"),
    ("no-literal-credentials", "connection string written down",
     lambda i: _set(i.template["Resources"]["MongoConnectionStringSecret"]["Properties"], "SecretString",
                    {"Fn::Sub": "mongodb://cteadmin:cteadmin@localhost:27017/cte"}), "must be built from dynamic references"),
    ("no-literal-credentials", "connection string with a literal password beside a reference",
     lambda i: _set(i.template["Resources"]["MongoConnectionStringSecret"]["Properties"], "SecretString",
                    {"Fn::Sub": "mongodb://cteadmin:cteadmin@localhost/{{resolve:secretsmanager:${MongodbPasswordSecret}}}"}),
     "the password in its URI is not a dynamic reference"),
    ("no-literal-credentials", "password in a file under cfn/",
     lambda i: _set(i.cfn_texts, "CloudExchangeTaskDefinition.json",
                    i.cfn_texts["CloudExchangeTaskDefinition.json"] + '"amqp://user:bitnami@localhost"'),
     "URI with a written-down password"),
    ("no-literal-credentials", "a switch-like name with a credential value",
     lambda i: _container(i, "rabbitmq-stats", "rendered")["environment"].append(
         {"name": "RABBITMQ_SECURE_PASSWORD", "value": "hunter2"}), "sets RABBITMQ_SECURE_PASSWORD in environment"),
    ("no-literal-credentials", "secret not readable by the execution role", _unreadable_secret, "missing ['JwtSecret']"),
]


# ---------------------------------------------------------------- main
def load(rendered_path):
    template = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
    return Inputs(
        template=template,
        task_definition=json.loads(TASK_DEFINITION.read_text()),
        rendered=json.loads(Path(rendered_path).read_text()),
        fixture=json.loads(FIXTURE.read_text()),
        script_text=REGISTER_SCRIPT.read_text(),
        cfn_texts={p.name: p.read_text() for p in sorted((ROOT / "cfn").iterdir()) if p.is_file()},
    )


def run_checks(inputs):
    failed = 0
    for name, check in CHECKS.items():
        errors = check(inputs)
        print(f"{'ok  ' if not errors else 'FAIL'} {name}")
        for error in errors:
            print(f"       {error}")
        failed += bool(errors)
    print(f"checks: {len(CHECKS) - failed} passed, {failed} failed")
    return failed == 0


def self_test(inputs):
    missed = 0
    for check_name, description, mutate, expected in MUTATIONS:
        mutated = copy.deepcopy(inputs)
        mutate(mutated)
        caught = any(expected in error for error in CHECKS[check_name](mutated))
        print(f"{'ok  ' if caught else 'MISS'} {check_name} catches: {description}")
        missed += not caught
    uncovered = set(CHECKS) - {m[0] for m in MUTATIONS}
    for name in sorted(uncovered):
        print(f"MISS {name} has no mutation")
    print(f"self-test: {len(MUTATIONS) - missed} of {len(MUTATIONS)} faults caught")
    return missed == 0 and not uncovered


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["check", "self-test"])
    parser.add_argument("--rendered", required=True, help="the register script's --dry-run output")
    args = parser.parse_args()
    inputs = load(args.rendered)
    ok = run_checks(inputs) if args.mode == "check" else self_test(inputs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
