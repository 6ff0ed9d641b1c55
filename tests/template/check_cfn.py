"""Offline checks that the CloudFormation template, the EFS tree it declares, the task
definition template and its rendered form agree, and that no credential is written down:
every mount point reaches a declared directory through its volume and access point, every
file a container's entry point, health check, environment or seeded script names below a
mount is declared in the tree, the seeded scripts and inline shell pass shellcheck, the
containers' memory fits the task's, and the execution role reads exactly the task's secrets.

    python -m tests.template.check_cfn check --rendered FILE      run every check; exit 1 on any failure
    python -m tests.template.check_cfn self-test --rendered FILE  mutate copies of the inputs, one fault
                                                         per check at least (tests/template/planted_faults.py),
                                                         and exit 1 unless each is caught

FILE is the output of `scripts/register-task-definition.sh --dry-run --outputs-file
tests/fixtures/stack-outputs.json`. The template is read with cfn-lint's YAML loader, so
short-form tags (!Ref, !Sub, !GetAtt) arrive as their long forms.
"""

import argparse
import copy
import json
import posixpath
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator

from tests.template import planted_faults
from tests.template.model import (
    ROOT,
    lambda_access_point,
    load_template,
    ref_target,
    resources,
    task_access_points,
)

TASK_DEFINITION = ROOT / "cfn" / "CloudExchangeTaskDefinition.json"
FIXTURE = ROOT / "tests" / "fixtures" / "stack-outputs.json"
REGISTER_SCRIPT = ROOT / "scripts" / "register-task-definition.sh"
SERVICE_SCRIPT = ROOT / "scripts" / "create-service.sh"

# Placeholders the register script fills itself (documented in its usage text).
SCRIPT_VARIABLES = {
    "Region",
    "Cpu",
    "Memory",
    "CeProfile",
    "MemoryRabbitmq",
    "MemoryMongodb",
    "MemoryCore",
    "ImageCore",
    "ImageUi",
    "ImageMongodb",
    "ImageRabbitmq",
    "CoreTag",
    "UiTag",
    "CeVersion",
}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Names that announce a credential: such a variable belongs in `secrets`, never `environment`.
CREDENTIAL_NAME = re.compile(
    r"PASS|SECRET|COOKIE|TOKEN|CONNECTION_STRING|CREDENTIAL|PRIVATE_KEY|API_KEY", re.IGNORECASE
)
# scheme://user:password@ with the password written out; a shell variable (${NAME}, as the
# environment loader builds the connection strings) is not a written-down password.
URI_PASSWORD = re.compile(
    r"[a-z][a-z0-9+.-]*://(?:\$\{[^}\s]*\}|[^/@\s:\"'$]+):(?!\$\{[A-Za-z_][A-Za-z0-9_]*\}@)[^/@\s\"']+@", re.IGNORECASE
)
# Absolute paths inside a text (an entry point, a health check, a seeded script or config).
ABSOLUTE_PATH = re.compile(r"(?<![\w.$}/-])(/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)")
# Mount points that would hide a directory the images themselves use (CE's images keep code
# in /opt, RabbitMQ reads its image's /etc/rabbitmq/conf.d, ...): mount beside them instead.
IMAGE_DIRECTORIES = {
    "/",
    "/bin",
    "/data",
    "/docker-entrypoint-initdb.d",
    "/etc",
    "/etc/rabbitmq",
    "/etc/rabbitmq/conf.d",
    "/opt",
    "/opt/netskope",
    "/tmp",
    "/usr",
    "/usr/local",
    "/usr/local/share",
    "/var",
    "/var/lib",
}
EFS_TREE_ID = "EfsTree"
EFS_TREE_TYPE = "Custom::CloudExchangeEfsTree"
MAX_SERVICE_TIMEOUT = 300
# Ports something in the task listens on (CE's containers and their images' defaults: core's
# API, the UI, MongoDB, RabbitMQ's AMQP, management, distribution, epmd and CLI range); the
# health checks' and port mappings' ports are added from the task definition.
TASK_PORTS = {3000, 8000, 27017, 5671, 5672, 15671, 15672, 15692, 25672, 4369} | set(range(35672, 35683))
# Keys CE 6.1's setup writes into .env, which its compose file hands every service: core and
# ui get each of them here too. Left out on purpose: credentials and their encryption
# (passwords, DOCKER_*, RABBITMQ_COOKIE, CE_SETUP_ID, CE_HEX_CODE, CE_IV: Secrets Manager and
# ECS do that), facts of a Docker host that Fargate does not have (COMPOSE_*, HOST_OS,
# LOCATION, ENV_FILE, MONGO_CURRENT_VERSION, IS_MPASS_CONFIGURED), MONGO_TAG/RABBITMQ_TAG and
# PROMOTION_BANNERS_FILE_LOCATION (the images' defaults apply).
COMPOSE_ENV_KEYS = {
    "CORE_TAG",
    "UI_TAG",
    "INSTALL_VERSION",
    "UI_PORT",
    "UI_PROTOCOL",
    "TLS_VERSION",
    "CE_MANAGEMENT_PORT",
    "CE_PROFILE",
    "CE_AS_VM",
    "HA_ENABLED",
    "PLATFORM_PROVIDER",
    "CONTAINERIZATION_PLATFORM",
    "RABBITMQ_RAM_RESOURCES",
    "MONGODB_RAM_RESOURCES",
    "CORE_RAM_RESOURCES",
    "UI_RAM_RESOURCES",
}
# Netskope's Kubernetes chart gives core 20 minutes to start (startupProbe: failureThreshold
# 20 x periodSeconds 60).
CORE_START_SECONDS = 20 * 60
# ECS's health check limits (ContainerDefinition.healthCheck).
HEALTH_CHECK_LIMITS = {"interval": (5, 300), "timeout": (2, 120), "retries": (1, 10), "startPeriod": (0, 300)}
# Apple platforms refuse TLS server certificates valid longer than this.
BROWSER_CERT_MAX_DAYS = 825
HOST_DOCKER_INTERNAL = "host.docker.internal"


@dataclass
class Inputs:
    template: dict  # the CloudFormation template, long-form intrinsics
    task_definition: dict  # cfn/CloudExchangeTaskDefinition.json, placeholders in place
    rendered: dict  # the register script's --dry-run output
    fixture: dict  # tests/fixtures/stack-outputs.json
    script_text: str  # scripts/register-task-definition.sh
    service_script_text: str  # scripts/create-service.sh
    cfn_texts: dict  # file name -> raw text of every file under cfn/


# ---------------------------------------------------------------- helpers
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
    # Entries behind a condition (Fn::If: the operator's CA file) are checked on the
    # template's variants by tests/template/check_operate.py.
    return (
        {d["Path"]: d for d in props.get("Directories", [])},
        {f["Path"]: f for f in props.get("Files", []) if "Path" in f},
    )


def certificate_files(inputs):
    """{path: entry} of every file the EfsTree's Certificates block makes."""
    certs = inputs.template["Resources"][EFS_TREE_ID]["Properties"].get("Certificates") or {}
    found = {}
    for entry in certs.get("Authorities", []) + certs.get("Leaves", []):
        for key in ("Certificate", "Key", "CombinedPem"):
            if isinstance(entry.get(key), dict) and "Path" in entry[key]:
                found[entry[key]["Path"]] = {**entry[key], "Of": f"{entry.get('Name')}.{key}"}
    return found


def volume_roots(inputs):
    """{volume name: tree path of its access point's root} for the task definition's volumes."""
    roots = {}
    aps = task_access_points(inputs)
    for volume in inputs.task_definition.get("volumes", []):
        auth = (volume.get("efsVolumeConfiguration") or {}).get("authorizationConfig", {})
        ap = output_resource(inputs, auth.get("accessPointId"))
        if ap in aps:
            roots[volume.get("name")] = aps[ap]["Properties"].get("RootDirectory", {}).get("Path", "/").strip("/")
    return roots


def efs_path(inputs, container, path):
    """The tree path a container path lies at through one of the container's mounts (the
    deepest mount wins, as in the container), else None."""
    roots = volume_roots(inputs)
    best = None
    for mount in container.get("mountPoints", []):
        base = mount.get("containerPath", "").rstrip("/")
        inside = path == base or path.startswith(base + "/")
        if mount.get("sourceVolume") in roots and inside and (best is None or len(base) > len(best[0])):
            best = (base, roots[mount["sourceVolume"]])
    if best is None:
        return None
    return posixpath.normpath(posixpath.join(best[1], path[len(best[0]) :].lstrip("/")))


def run_shellcheck(name, text, shell):
    """shellcheck's findings for TEXT (empty when clean)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as handle:
        handle.write(text)
        handle.flush()
        # SC1091: the files these source live on EFS, not here.
        result = subprocess.run(
            ["shellcheck", "--format=gcc", f"--shell={shell}", "--exclude=SC1091", handle.name],
            capture_output=True,
            text=True,
            check=False,
        )
    return [f"{name}: {line.split(':', 1)[1]}" for line in result.stdout.splitlines()]


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
        # Our own scripts (shell, and the seed-plugins seeder in Python) are rewritten when
        # they change, so updates reach them; anything else (custom.conf, __init__.py) is the
        # operator's once written.
        want = "true" if path.endswith((".sh", ".py")) and "custom_plugins" not in path else "false"
        if entry.get("Overwrite") != want:
            errors.append(
                f'{EFS_TREE_ID} file {path}: Overwrite must be "{want}" '
                + ("so updates of our scripts reach them" if want == "true" else "so operators' edits survive")
            )
    own = lambda_access_point(inputs)
    task_roots = {
        ap["Properties"].get("RootDirectory", {}).get("Path", "/").strip("/")
        for ap in task_access_points(inputs).values()
    }
    for path, entry in certificate_files(inputs).items():
        parent = posixpath.dirname(path)
        if parent not in directories:
            errors.append(
                f"{EFS_TREE_ID} certificate file {path} ({entry['Of']}): its directory {parent or '/'} is not declared"
            )
        if entry["Of"].endswith((".Key", ".CombinedPem")) and entry.get("Mode") != "0600":
            errors.append(f'{EFS_TREE_ID} private key {path} ({entry["Of"]}): Mode must be "0600"')
    certs = inputs.template["Resources"][EFS_TREE_ID]["Properties"].get("Certificates") or {}
    for authority in certs.get("Authorities", []):
        key = (authority.get("Key") or {}).get("Path", "")
        inside = sorted(root for root in task_roots if key == root or key.startswith(root + "/"))
        if inside or (authority.get("Key") or {}).get("Owner") != "0":
            errors.append(
                f"{EFS_TREE_ID} CA key {key} must be root's and outside every task access point "
                f"(inside {inside or 'none'})"
            )
    statements = (
        inputs.template["Resources"]
        .get("TaskRoleEfsPolicy", {})
        .get("Properties", {})
        .get("PolicyDocument", {})
        .get("Statement", [])
    )
    granted = {
        ref_target(arn)
        for st in statements
        for arn in st.get("Condition", {}).get("StringEquals", {}).get("elasticfilesystem:AccessPointArn", [])
    }
    if granted != set(task_access_points(inputs)):
        wanted = set(task_access_points(inputs))
        errors.append(
            f"TaskRoleEfsPolicy must list every task access point: missing "
            f"{sorted(wanted - granted)}, extra {sorted(map(str, granted - wanted))}"
        )
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
            errors.append(
                f"{name}: PosixUser {uid}:{gid} differs from the tree's owner "
                f"{entry['Owner']}:{entry['Group']} of {root}"
            )
        info = p.get("RootDirectory", {}).get("CreationInfo")
        if info and (info["OwnerUid"], info["OwnerGid"], int(info["Permissions"], 8)) != (
            entry["Owner"],
            entry["Group"],
            int(entry["Mode"], 8),
        ):
            errors.append(f"{name}: CreationInfo differs from the tree's owner and mode of {root}")
    function = next(iter(resources(inputs, "AWS::Lambda::Function").values()), {}).get("Properties", {})
    mount = [c.get("LocalMountPath") for c in function.get("FileSystemConfigs", [])]
    env = function.get("Environment", {}).get("Variables", {}).get("EFS_MOUNT_PATH")
    if mount != [env]:
        errors.append(f"the Lambda's mount path {mount} differs from EFS_MOUNT_PATH {env!r}")
    return errors


def check_volumes(inputs):
    """Every task volume is an EFS access point volume (IAM, TLS) named by stack outputs, and
    each task access point is used by exactly one volume."""
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
            errors.append(
                f"volume {name}: fileSystemId {efs.get('fileSystemId')!r} is not an output naming the file system"
            )
        ap = output_resource(inputs, auth.get("accessPointId"))
        if ap not in task_aps:
            errors.append(
                f"volume {name}: accessPointId {auth.get('accessPointId')!r} "
                "is not an output naming a task access point"
            )
        else:
            used.setdefault(ap, []).append(name)
    for ap in sorted(task_aps):
        if len(used.get(ap, [])) != 1:
            errors.append(f"access point {ap} is used by {len(used.get(ap, []))} volumes, not 1")
    return errors


def check_mount_points(inputs):
    """Every mountPoint names a volume whose access point's root is a declared directory,
    every volume is mounted somewhere, no container mounts two volumes at one path, no mount
    hides a directory the images use, and a mount nested in another mount of the same
    container has its mount point declared in the outer volume's directory."""
    volumes = {v.get("name") for v in inputs.task_definition.get("volumes", [])}
    roots = volume_roots(inputs)
    directories = tree(inputs)[0]
    errors, mounted = [], set()
    for container in containers(inputs.task_definition):
        name = container["name"]
        paths = [m.get("containerPath", "").rstrip("/") or "/" for m in container.get("mountPoints", [])]
        errors += [
            f"container {name}: two volumes are mounted at {p}"
            for p in sorted({p for p in paths if paths.count(p) > 1})
        ]
        for mount in container.get("mountPoints", []):
            volume, path = mount.get("sourceVolume"), mount.get("containerPath", "").rstrip("/") or "/"
            mounted.add(volume)
            if volume not in volumes:
                errors.append(f"container {name}: mountPoint names unknown volume {volume!r}")
                continue
            if volume in roots and roots[volume] not in directories:
                errors.append(
                    f"container {name}: volume {volume} reaches {roots[volume]}, not a directory of {EFS_TREE_ID}"
                )
            if path in IMAGE_DIRECTORIES:
                errors.append(f"container {name}: volume {volume} mounted at {path} would hide the image's own {path}")
            outer = efs_path(inputs, {"mountPoints": [m for m in container["mountPoints"] if m is not mount]}, path)
            if outer is not None and outer not in directories:
                errors.append(
                    f"container {name}: mount point {path} of volume {volume} lies inside another volume, "
                    f"but {outer} is not a declared directory"
                )
    errors += [f"volume {v} is never mounted" for v in sorted(volumes - mounted)]
    return errors


def referenced_texts(inputs, container):
    """What a container runs or reads that names files: entry point, command, health check,
    environment values, then (to a fixpoint) every seeded file those name below its mounts."""
    files = tree(inputs)[1]
    texts = [
        ("task definition", s)
        for key in ("entryPoint", "command", "healthCheck", "environment")
        for s in strings(container.get(key, []))
    ]
    seen = set()
    index = 0
    while index < len(texts):
        for path in ABSOLUTE_PATH.findall(texts[index][1]):
            target = efs_path(inputs, container, path)
            if target in files and target not in seen:
                seen.add(target)
                texts.append((target, files[target].get("Content", "")))
        index += 1
    return texts


def check_file_references(inputs):
    """Every absolute path a container names (entry point, health check, environment, and the
    seeded scripts and config those lead to) that lies below one of its mounts is a
    directory, seed file or certificate file of the EfsTree."""
    directories, files = tree(inputs)
    known = set(directories) | set(files) | set(certificate_files(inputs))
    errors = []
    for container in containers(inputs.task_definition):
        for source, text in referenced_texts(inputs, container):
            for path in sorted(set(ABSOLUTE_PATH.findall(text))):
                target = efs_path(inputs, container, path)
                if target is not None and target not in known:
                    errors.append(
                        f"container {container['name']}: {path} (named in {source}) is {target} on EFS, "
                        f"which {EFS_TREE_ID} does not declare"
                    )
    return errors


def check_shell(inputs):
    """The seeded shell scripts and the task definition's inline bash pass shellcheck."""
    errors = []
    for path, entry in sorted(tree(inputs)[1].items()):
        if path.endswith(".sh"):
            content = entry.get("Content", "")
            shell = "bash" if content.startswith("#!/bin/bash") or "shell=bash" in content else "sh"
            errors += run_shellcheck(path, content, shell)
    for container in containers(inputs.task_definition):
        for key in ("entryPoint", "command"):
            words = container.get(key) or []
            if len(words) >= 3 and words[0].endswith("bash") and words[1] == "-c":
                errors += run_shellcheck(f"container {container['name']} {key}", words[2], "bash")
    return errors


def check_memory(inputs):
    """The containers' memory limits fit the task's memory, every container has one, and
    every *_RAM_RESOURCES (CE's .env keys) is the limit of the container it names
    (RABBITMQ_RAM_RESOURCES sizes RabbitMQ through custom.conf)."""
    errors = []
    total = 0
    for container in containers(inputs.rendered):
        memory = container.get("memory")
        if not isinstance(memory, int):
            errors.append(f"rendered: container {container['name']} has no integer memory limit ({memory!r})")
            continue
        total += memory
    task = int(inputs.rendered.get("memory", "0"))
    if total > task:
        errors.append(f"rendered: the containers' memory limits add up to {total} MiB, above the task's {task} MiB")
    memory = {c["name"]: c.get("memory") for c in containers(inputs.task_definition)}
    named = {"RABBITMQ": "rabbitmq-stats", "MONGODB": "mongodb-primary", "CORE": "core", "UI": "ui"}
    for container in containers(inputs.task_definition):
        for key, value in _environment(container).items():
            prefix = key[: -len("_RAM_RESOURCES")] if key.endswith("_RAM_RESOURCES") else None
            if prefix is None:
                continue
            target = named.get(prefix)
            if target is None or str(value) != str(memory.get(target)):
                errors.append(
                    f"container {container['name']}: {key} {value!r} differs from the memory of "
                    f"{target or 'a container of the task'} ({memory.get(target)!r})"
                )
    return errors


def check_depends_on(inputs):
    """Every dependsOn names another container; core waits for the plugin seeding to succeed
    and for MongoDB and RabbitMQ to be healthy, ui for a healthy core; every essential
    container has a health check."""
    names = {c["name"] for c in containers(inputs.task_definition)}
    errors = []
    for container in containers(inputs.task_definition):
        for dep in container.get("dependsOn", []):
            if dep.get("containerName") not in names - {container["name"]}:
                errors.append(
                    f"container {container['name']}: dependsOn names {dep.get('containerName')!r}, "
                    "not another container"
                )
    required = {
        ("core", "mongodb-primary", "HEALTHY"),
        ("core", "rabbitmq-stats", "HEALTHY"),
        ("core", "seed-plugins", "SUCCESS"),
        ("ui", "core", "HEALTHY"),
    }
    present = {
        (c["name"], d.get("containerName"), d.get("condition"))
        for c in containers(inputs.task_definition)
        for d in c.get("dependsOn", [])
    }
    errors += [f"container {c} must depend on {d} being {cond}" for c, d, cond in sorted(required - present)]
    for container in containers(inputs.task_definition):
        if container.get("essential", True) and not container.get("healthCheck"):
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
    # The fixture is a stack created with the parameters' defaults: every unconditional output,
    # and no output the template does not have.
    always = {k for k, v in inputs.template.get("Outputs", {}).items() if "Condition" not in v}
    fixture_keys = {o["OutputKey"] for o in inputs.fixture["Stacks"][0].get("Outputs", [])}
    if not always <= fixture_keys <= outputs:
        errors.append(
            f"fixture outputs differ from the template's: missing {sorted(always - fixture_keys)}, "
            f"extra {sorted(fixture_keys - outputs)}"
        )
    return errors


def policy_statements(document):
    """A policy's statements, each branch of a Statement chosen by Fn::If included."""
    for statement in document["Statement"]:
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            yield from (s for s in statement["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"})
        else:
            yield statement


def check_credentials(inputs):
    """No literal credential in cfn/ or the rendered JSON: credential-like variables come only
    from `secrets`, which name this stack's generated secrets, readable by the execution role."""
    errors = []
    secret_ids = set(resources(inputs, "AWS::SecretsManager::Secret"))
    # Secrets the operator keeps (their ARN is a parameter, e.g. the UI's own certificate).
    operator_secrets = {n for n in inputs.template.get("Parameters", {}) if n.endswith("SecretArn")}
    referenced = set()
    for label, task_definition in (("template", inputs.task_definition), ("rendered", inputs.rendered)):
        for container in containers(task_definition):
            for env in container.get("environment", []):
                if CREDENTIAL_NAME.search(env.get("name", "")):
                    errors.append(
                        f"{label}: container {container['name']} sets {env['name']} in environment; use secrets"
                    )
            for secret in container.get("secrets", []):
                value = secret.get("valueFrom", "")
                if label == "template":
                    # A JSON key of the secret (ARN:key::) names the same secret.
                    target = output_resource(inputs, re.sub(r":[A-Za-z0-9_]+::$", "", value))
                    if target not in secret_ids | operator_secrets:
                        errors.append(
                            f"container {container['name']}: secret {secret.get('name')} comes from "
                            f"{value!r}, not an output naming a generated secret"
                        )
                    referenced.add(target)
                elif not re.match(r"^arn:aws[a-z-]*:secretsmanager:", value):
                    errors.append(
                        f"rendered: container {container['name']}: secret {secret.get('name')} "
                        "is not a Secrets Manager ARN"
                    )
    for name, secret in resources(inputs, "AWS::SecretsManager::Secret").items():
        props = secret["Properties"]
        # A SecretString is either written down or built from other secrets with dynamic
        # references, which go stale when those change: the containers derive instead.
        if "GenerateSecretString" not in props or "SecretString" in props:
            errors.append(f"{name}: must be generated (GenerateSecretString), not given a SecretString")
        elif props["GenerateSecretString"].get("ExcludePunctuation") is not True:
            errors.append(f"{name}: generated values go into URIs and shells; set ExcludePunctuation")
    policy_secrets = set()
    documents = [
        policy["PolicyDocument"]
        for role in resources(inputs, "AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ]
    documents += [
        policy["Properties"]["PolicyDocument"] for policy in resources(inputs, "AWS::IAM::RolePolicy").values()
    ]
    # The registry's credentials reach ECS as repositoryCredentials, which the register script
    # adds to every image outside ECR (not as a container secret).
    if re.search(r"RegistryCredentialsSecretArn[\s\S]*repositoryCredentials", inputs.script_text):
        referenced.add("RegistryCredentialsSecretArn")
    for document in documents:
        for statement in policy_statements(document):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "secretsmanager:GetSecretValue" in actions:
                resources_ = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                policy_secrets |= {ref_target(r) for r in resources_}
    if policy_secrets != referenced:
        errors.append(
            f"GetSecretValue must cover exactly the task's secrets: missing {sorted(referenced - policy_secrets)}, "
            f"extra {sorted(map(str, policy_secrets - referenced))}"
        )
    for name, param in inputs.template.get("Parameters", {}).items():
        # A secret's ARN names a credential the operator keeps in Secrets Manager; it is not one.
        if (CREDENTIAL_NAME.search(name) and not name.endswith("SecretArn")) or param.get("NoEcho"):
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


def _environment(container):
    return {e.get("name"): e.get("value") for e in container.get("environment", [])}


def _listened_ports(task_definition):
    """Ports something in the task listens on: TASK_PORTS, port mappings, health-check ports."""
    ports = set(TASK_PORTS)
    for container in containers(task_definition):
        ports |= {m.get("containerPort") for m in container.get("portMappings", [])}
        for text in strings(container.get("healthCheck", {}).get("command", [])):
            ports |= {int(p) for p in re.findall(r"/dev/tcp/[^/]+/([0-9]+)", text)}
        env = _environment(container)
        if str(env.get("CE_API_PORT", "")).isdigit():
            ports.add(int(env["CE_API_PORT"]))
    return ports


def check_host_docker_internal(inputs):
    """CE's UI needs host.docker.internal: a private zone on the stack's VPC answers it with
    the task's loopback, and CE_MANAGEMENT_PORT is a privileged port nothing in the task
    listens on, so a management call is refused at once."""
    errors = []
    zones = {
        k: v
        for k, v in resources(inputs, "AWS::Route53::HostedZone").items()
        if v["Properties"].get("Name", "").rstrip(".") == HOST_DOCKER_INTERNAL
    }
    if not zones:
        errors.append(f"no AWS::Route53::HostedZone named {HOST_DOCKER_INTERNAL}")
    for name, zone in zones.items():
        vpcs = [ref_target(v.get("VPCId")) for v in zone["Properties"].get("VPCs", [])]
        if vpcs != ["VpcId"]:
            errors.append(f"{name}: must be a private zone on the stack's VPC (VPCs: VpcId), not {vpcs}")
    records = [
        r["Properties"]
        for r in resources(inputs, "AWS::Route53::RecordSet").values()
        if ref_target(r["Properties"].get("HostedZoneId")) in zones
        and r["Properties"].get("Name", "").rstrip(".") == HOST_DOCKER_INTERNAL
    ]
    if not any(r.get("Type") == "A" and r.get("ResourceRecords") == ["127.0.0.1"] for r in records):
        errors.append(f"no A record {HOST_DOCKER_INTERNAL} -> 127.0.0.1 in the {HOST_DOCKER_INTERNAL} zone")
    listened = _listened_ports(inputs.task_definition)
    values = set()
    for container in containers(inputs.task_definition):
        value = _environment(container).get("CE_MANAGEMENT_PORT")
        if value is None:
            continue
        values.add(value)
        if not str(value).isdigit() or not 0 < int(value) < 1024 or int(value) in listened:
            errors.append(
                f"container {container['name']}: CE_MANAGEMENT_PORT {value!r} must be a port below 1024 that "
                f"nothing in the task listens on (it serves {sorted(p for p in listened if p)})"
            )
    if "ui" not in {c["name"] for c in containers(inputs.task_definition) if "CE_MANAGEMENT_PORT" in _environment(c)}:
        errors.append("container ui must set CE_MANAGEMENT_PORT (CE's compose file does)")
    if len(values) > 1:
        errors.append(f"containers disagree on CE_MANAGEMENT_PORT: {sorted(values)}")
    return errors


def _start_budget(container):
    """Seconds a container's health check lets it take before it is UNHEALTHY (each failed
    check counted with its timeout)."""
    check = container.get("healthCheck") or {}
    return check.get("startPeriod", 0) + check.get("retries", 3) * (check.get("interval", 30) + check.get("timeout", 5))


def _ready_by(task_definition, name, seen=()):
    """Seconds until container NAME is HEALTHY at the latest: its own budget after the
    slowest container it waits for to be HEALTHY."""
    by_name = {c["name"]: c for c in containers(task_definition)}
    container = by_name[name]
    waits = [
        _ready_by(task_definition, d["containerName"], (*seen, name))
        for d in container.get("dependsOn", [])
        if d.get("condition") == "HEALTHY" and d.get("containerName") in by_name and d["containerName"] not in seen
    ]
    return max(waits, default=0) + _start_budget(container)


def check_start_budgets(inputs):
    """Health checks stay within ECS's limits; core may take Netskope's 20 minutes to start;
    the service's grace period (create-service.sh) covers the slowest path to a healthy ui."""
    errors = []
    for container in containers(inputs.task_definition):
        for key, (low, high) in HEALTH_CHECK_LIMITS.items():
            value = (container.get("healthCheck") or {}).get(key)
            if value is not None and not low <= value <= high:
                errors.append(f"container {container['name']}: healthCheck.{key} {value} is outside ECS's {low}-{high}")
    core = next((c for c in containers(inputs.task_definition) if c["name"] == "core"), {})
    check = core.get("healthCheck") or {}
    allowed = check.get("startPeriod", 0) + check.get("retries", 3) * check.get("interval", 30)
    if allowed < CORE_START_SECONDS:
        errors.append(
            f"core's health check allows {allowed} s to start (startPeriod + retries x interval); "
            f"Netskope's Kubernetes chart allows {CORE_START_SECONDS} s"
        )
    match = re.search(r"^HEALTH_CHECK_GRACE_SECONDS=([0-9]+)$", inputs.service_script_text, re.M)
    names = {c["name"] for c in containers(inputs.task_definition)}
    needed = _ready_by(inputs.task_definition, "ui") if "ui" in names else 0
    if not match:
        errors.append(f"{SERVICE_SCRIPT.name}: no HEALTH_CHECK_GRACE_SECONDS=<seconds>")
    elif int(match.group(1)) < needed:
        errors.append(
            f"{SERVICE_SCRIPT.name}: HEALTH_CHECK_GRACE_SECONDS {match.group(1)} is shorter than the "
            f"{needed} s the health checks allow until ui is healthy (its dependsOn chain)"
        )
    return errors


def check_environment_parity(inputs):
    """core and ui get the keys CE's setup writes into .env; core finds the UI (in this task)
    through UI_SERVICE_NAME, as Netskope's Fargate and Kubernetes deployments set it; CORE_TAG
    and UI_TAG are the tags setup passes, not the images' full references."""
    errors = []
    by_name = {c["name"]: c for c in containers(inputs.task_definition)}
    for name in ("core", "ui"):
        env = _environment(by_name.get(name, {}))
        missing = sorted(COMPOSE_ENV_KEYS - set(env))
        if missing:
            errors.append(f"container {name}: lacks the .env keys {missing}")
        for key, placeholder in (("CORE_TAG", "${CoreTag}"), ("UI_TAG", "${UiTag}")):
            if key in env and env[key] != placeholder:
                errors.append(f"container {name}: {key} must be {placeholder} (setup's form), not {env[key]!r}")
    if _environment(by_name.get("core", {})).get("UI_SERVICE_NAME") != "localhost":
        errors.append("container core: UI_SERVICE_NAME must be localhost (the UI is in the same task)")
    return errors


def check_init_process(inputs):
    """Every essential container runs under an init process that forwards signals and reaps
    orphans (core's and ui's start.sh would otherwise be PID 1; ECS Exec sessions leave
    processes behind in any of them)."""
    return [
        f"container {c['name']}: set linuxParameters.initProcessEnabled true"
        for c in containers(inputs.task_definition)
        if c.get("essential", True) and (c.get("linuxParameters") or {}).get("initProcessEnabled") is not True
    ]


def check_browser_certificates(inputs):
    """Self-signed server certificates (the UI's, which browsers see) are valid at most 825
    days, the most Apple platforms accept."""
    certs = inputs.template["Resources"][EFS_TREE_ID]["Properties"].get("Certificates") or {}
    return [
        f"certificate {leaf.get('Name')}: ValidityDays {leaf.get('ValidityDays')} is above "
        f"{BROWSER_CERT_MAX_DAYS}; Apple platforms refuse such server certificates"
        for leaf in certs.get("Leaves", [])
        if leaf.get("Issuer") == "Self"
        and "ServerAuth" in leaf.get("ExtendedKeyUsage", [])
        and int(leaf.get("ValidityDays", 0)) > BROWSER_CERT_MAX_DAYS
    ]


def check_mongosh_home(inputs):
    """mongosh writes below $HOME, and the MongoDB image's HOME is /data/db on EFS: every
    mongosh of the task definition runs with HOME set outside the container's mounts, and the
    seeded scripts' shared file sets it too."""
    errors = []
    for container in containers(inputs.task_definition):
        mounts = [m.get("containerPath", "").rstrip("/") for m in container.get("mountPoints", [])]
        for text in strings({k: v for k, v in container.items() if k in ("entryPoint", "command", "healthCheck")}):
            for match in re.finditer(r"(?:(\bHOME=(\S+)\s+)?)\bmongosh\b", text):
                home = match.group(2)
                if home is None or any(home == m or home.startswith(m + "/") for m in mounts):
                    errors.append(
                        f"container {container['name']}: mongosh runs with HOME {home or '(the image default)'}"
                    )
    common = tree(inputs)[1].get("data/database-init/mongo-common.sh", {}).get("Content", "")
    home = re.search(r'^export HOME="\$\{[A-Z_]+:-(/[^}]*)\}"$', common, re.M)
    if not home or home.group(1).startswith("/data"):
        errors.append("data/database-init/mongo-common.sh must export HOME outside /data (mongosh's logs)")
    return errors


CHECKS = {
    "botocore-register-task-definition": check_botocore,
    "efs-tree-and-access-points": check_efs_tree,
    "volumes-and-access-point-outputs": check_volumes,
    "mount-points": check_mount_points,
    "file-references": check_file_references,
    "shellcheck-seeded-and-inline-scripts": check_shell,
    "memory": check_memory,
    "depends-on-and-health-checks": check_depends_on,
    "placeholders": check_placeholders,
    "no-literal-credentials": check_credentials,
    "host-docker-internal": check_host_docker_internal,
    "start-budgets": check_start_budgets,
    "environment-parity": check_environment_parity,
    "init-process": check_init_process,
    "browser-certificates": check_browser_certificates,
    "mongosh-home": check_mongosh_home,
}


# ---------------------------------------------------------------- self-test
def _container(inputs, name, which="task_definition"):
    return next(c for c in containers(getattr(inputs, which)) if c["name"] == name)


def _first_task_ap(inputs):
    own = lambda_access_point(inputs)
    return next(k for k in resources(inputs, "AWS::EFS::AccessPoint") if k != own)


def _set(obj, key, value):
    obj[key] = value


def _directory(inputs, path):
    return next(d for d in inputs.template["Resources"][EFS_TREE_ID]["Properties"]["Directories"] if d["Path"] == path)


def _file(inputs, path):
    return next(f for f in inputs.template["Resources"][EFS_TREE_ID]["Properties"]["Files"] if f.get("Path") == path)


def _mount(inputs, container, volume):
    return next(m for m in _container(inputs, container)["mountPoints"] if m["sourceVolume"] == volume)


def _certificates(inputs, key_path, key_mode):
    """Puts in (or replaces the first authority of) a Certificates block with this CA key."""
    props = inputs.template["Resources"][EFS_TREE_ID]["Properties"]
    certs = props.setdefault("Certificates", {"Authorities": [{}], "Leaves": []})
    certs["Authorities"][0] = {
        "Name": "Test",
        "CommonName": "test",
        "Certificate": {"Path": "data/ssl_certs/test_ca.crt", "Owner": "1001", "Group": "1001", "Mode": "0644"},
        "Key": {"Path": key_path, "Owner": "0", "Group": "0", "Mode": key_mode},
    }


def _set_env(container, name, value):
    next(e for e in container["environment"] if e["name"] == name)["value"] = value


def _drop_env(container, name):
    container["environment"] = [e for e in container["environment"] if e["name"] != name]


def _leaf(inputs, name):
    leaves = inputs.template["Resources"][EFS_TREE_ID]["Properties"]["Certificates"]["Leaves"]
    return next(leaf for leaf in leaves if leaf["Name"] == name)


def _drop_access_point_grant(inputs):
    condition = inputs.template["Resources"]["TaskRoleEfsPolicy"]["Properties"]["PolicyDocument"]["Statement"][0][
        "Condition"
    ]
    condition["StringEquals"]["elasticfilesystem:AccessPointArn"].pop()


def _drop_fixture_output(inputs, key):
    outputs = inputs.fixture["Stacks"][0]["Outputs"]
    outputs[:] = [o for o in outputs if o["OutputKey"] != key]


def _unreadable_secret(inputs):
    """The task reads a secret the execution role may not read."""
    statements = inputs.template["Resources"]["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    grant = next(s for s in statements if s["Action"] == "secretsmanager:GetSecretValue")
    grant["Resource"] = [r for r in grant["Resource"] if r != {"Ref": "JwtSecret"}]


# (check, fault, mutation, text the check's error must contain)
MUTATIONS = [
    (
        "botocore-register-task-definition",
        "cpu as a number",
        lambda i: _set(i.rendered, "cpu", 4096),
        "Invalid type for parameter cpu",
    ),
    (
        "botocore-register-task-definition",
        "unknown container field",
        lambda i: _set(_container(i, "core", "rendered"), "secretz", []),
        'Unknown parameter in containerDefinitions[3]: "secretz"',
    ),
    (
        "efs-tree-and-access-points",
        "tree owner differs from the access point",
        lambda i: _set(_directory(i, "data/files-data"), "Owner", "999"),
        "PosixUser 1001:1001 differs from the tree's owner 999:1001",
    ),
    (
        "efs-tree-and-access-points",
        "access point root not in the tree",
        lambda i: _set(
            i.template["Resources"][_first_task_ap(i)]["Properties"]["RootDirectory"], "Path", "/data/elsewhere"
        ),
        "root directory /data/elsewhere is not a directory of EfsTree",
    ),
    (
        "efs-tree-and-access-points",
        "Lambda access point not uid 0",
        lambda i: _set(i.template["Resources"][lambda_access_point(i)]["Properties"]["PosixUser"], "Uid", "1001"),
        "must be uid/gid 0 at /",
    ),
    (
        "efs-tree-and-access-points",
        "ServiceTimeout above 300",
        lambda i: _set(i.template["Resources"][EFS_TREE_ID]["Properties"], "ServiceTimeout", 3600),
        "ServiceTimeout must be at most 300",
    ),
    (
        "efs-tree-and-access-points",
        "operator-editable custom.conf overwritten on update",
        lambda i: _set(_file(i, "data/rabbitmq/conf/custom.conf"), "Overwrite", "true"),
        "so operators' edits survive",
    ),
    (
        "efs-tree-and-access-points",
        "our env loader never updated",
        lambda i: _set(_file(i, "data/env/ce-env.sh"), "Overwrite", "false"),
        "so updates of our scripts reach them",
    ),
    (
        "efs-tree-and-access-points",
        "CA key inside a task access point",
        lambda i: _certificates(i, "data/ssl_certs/tls_cert_ca.key", "0600"),
        "CA key data/ssl_certs/tls_cert_ca.key must be root's and outside every task access point "
        "(inside ['data/ssl_certs'])",
    ),
    (
        "efs-tree-and-access-points",
        "private key readable by others",
        lambda i: _certificates(i, "ca/tls_cert_ca.key", "0644"),
        'private key ca/tls_cert_ca.key (Test.Key): Mode must be "0600"',
    ),
    (
        "efs-tree-and-access-points",
        "task role cannot mount one access point",
        _drop_access_point_grant,
        "TaskRoleEfsPolicy must list every task access point: missing",
    ),
    (
        "volumes-and-access-point-outputs",
        "volume points at a non-access-point output",
        lambda i: _set(
            i.task_definition["volumes"][0]["efsVolumeConfiguration"]["authorizationConfig"],
            "accessPointId",
            "${TaskRoleArn}",
        ),
        "is not an output naming a task access point",
    ),
    (
        "volumes-and-access-point-outputs",
        "volume without TLS",
        lambda i: _set(i.task_definition["volumes"][1]["efsVolumeConfiguration"], "transitEncryption", "DISABLED"),
        "transitEncryption and authorizationConfig.iam must be ENABLED",
    ),
    (
        "mount-points",
        "mountPoint names an unknown volume",
        lambda i: _set(_container(i, "ui")["mountPoints"][0], "sourceVolume", "nope"),
        "names unknown volume 'nope'",
    ),
    (
        "mount-points",
        "custom.conf mounted over the image's conf.d",
        lambda i: _set(_mount(i, "rabbitmq-stats", "rabbitmq-conf"), "containerPath", "/etc/rabbitmq/conf.d"),
        "would hide the image's own /etc/rabbitmq/conf.d",
    ),
    (
        "mount-points",
        "nested mount point not declared in the outer volume",
        lambda i: _set(_mount(i, "core", "custom-plugins"), "containerPath", "/opt/netskope/plugins/mine"),
        "but data/plugins/mine is not a declared directory",
    ),
    (
        "file-references",
        "entry point script not seeded",
        lambda i: _set(_container(i, "mongodb-primary"), "entryPoint", ["/ce/database-init/mongo-run.sh"]),
        "/ce/database-init/mongo-run.sh (named in task definition) is data/database-init/mongo-run.sh",
    ),
    (
        "file-references",
        "custom.conf names a certificate the tree does not make",
        lambda i: _set(
            _file(i, "data/rabbitmq/conf/custom.conf"),
            "Content",
            _file(i, "data/rabbitmq/conf/custom.conf")["Content"].replace(
                "/ce/tls/tls_cert.crt", "/ce/tls/rabbitmq.crt"
            ),
        ),
        "/ce/tls/rabbitmq.crt (named in data/rabbitmq/conf/custom.conf)",
    ),
    (
        "shellcheck-seeded-and-inline-scripts",
        "broken seeded script",
        lambda i: _set(
            _file(i, "data/database-init/mongo-init.sh"),
            "Content",
            _file(i, "data/database-init/mongo-init.sh")["Content"] + "if true; then\n",
        ),
        "data/database-init/mongo-init.sh:",
    ),
    (
        "shellcheck-seeded-and-inline-scripts",
        "unquoted secret in inline bash",
        lambda i: _container(i, "rabbitmq-stats")["entryPoint"].__setitem__(2, "echo $RABBITMQ_COOKIE > /tmp/c"),
        "container rabbitmq-stats entryPoint:",
    ),
    (
        "memory",
        "containers need more memory than the task has",
        lambda i: _set(_container(i, "ui", "rendered"), "memory", 99999),
        "above the task's",
    ),
    (
        "memory",
        "RabbitMQ sized apart from its container",
        lambda i: _set(
            next(e for e in _container(i, "rabbitmq-stats")["environment"] if e["name"] == "RABBITMQ_RAM_RESOURCES"),
            "value",
            "3072",
        ),
        "RABBITMQ_RAM_RESOURCES '3072' differs from the memory of rabbitmq-stats",
    ),
    (
        "depends-on-and-health-checks",
        "dependsOn names an unknown container",
        lambda i: _set(_container(i, "ui")["dependsOn"][0], "containerName", "nope"),
        "dependsOn names 'nope'",
    ),
    (
        "depends-on-and-health-checks",
        "core no longer waits for a healthy MongoDB",
        lambda i: _set(_container(i, "core"), "dependsOn", []),
        "core must depend on mongodb-primary being HEALTHY",
    ),
    (
        "depends-on-and-health-checks",
        "core starts before the plugins are seeded",
        lambda i: _set(
            _container(i, "core"),
            "dependsOn",
            [d for d in _container(i, "core")["dependsOn"] if d["containerName"] != "seed-plugins"],
        ),
        "core must depend on seed-plugins being SUCCESS",
    ),
    (
        "placeholders",
        "unknown placeholder in the template",
        lambda i: _set(_container(i, "core"), "image", "${NoSuchOutput}"),
        "${NoSuchOutput} is neither",
    ),
    (
        "placeholders",
        "placeholder left in the rendered JSON",
        lambda i: _set(_container(i, "core", "rendered"), "image", "${ImageCore}"),
        "still holds ${ImageCore}",
    ),
    (
        "placeholders",
        "fixture lacks an output",
        lambda i: _drop_fixture_output(i, "JwtSecretArn"),
        "missing ['JwtSecretArn']",
    ),
    (
        "no-literal-credentials",
        "password in environment",
        lambda i: _container(i, "mongodb-primary", "rendered")["environment"].append(
            {"name": "MONGO_INITDB_ROOT_PASSWORD", "value": "hunter2"}
        ),
        "sets MONGO_INITDB_ROOT_PASSWORD in environment",
    ),
    (
        "no-literal-credentials",
        "connection string written into a secret",
        lambda i: _set(
            i.template["Resources"]["MaintenancePasswordSecret"],
            "Properties",
            {"SecretString": {"Fn::Sub": "mongodb://cteadmin:{{resolve:secretsmanager:${JwtSecret}}}@localhost/cte"}},
        ),
        "must be generated (GenerateSecretString), not given a SecretString",
    ),
    (
        "no-literal-credentials",
        "password in a file under cfn/",
        lambda i: _set(
            i.cfn_texts,
            "CloudExchangeTaskDefinition.json",
            i.cfn_texts["CloudExchangeTaskDefinition.json"] + '"amqps://user:guest@localhost"',
        ),
        "URI with a written-down password",
    ),
    (
        "no-literal-credentials",
        "password in a seeded script",
        lambda i: _set(
            i.cfn_texts,
            "CloudExchangeTemplate.yaml",
            i.cfn_texts["CloudExchangeTemplate.yaml"].replace(
                "${MAINTENANCE_PASSWORD_ESCAPED}@localhost", "cteadmin@localhost", 1
            ),
        ),
        "CloudExchangeTemplate.yaml: URI with a written-down password",
    ),
    (
        "no-literal-credentials",
        "secret not readable by the execution role",
        _unreadable_secret,
        "missing ['JwtSecret']",
    ),
    (
        "host-docker-internal",
        "no zone answers host.docker.internal",
        lambda i: i.template["Resources"].pop("HostDockerInternalRecord"),
        "no A record host.docker.internal -> 127.0.0.1",
    ),
    (
        "host-docker-internal",
        "the UI's management port is core's API",
        lambda i: _set_env(_container(i, "ui"), "CE_MANAGEMENT_PORT", "8000"),
        "container ui: CE_MANAGEMENT_PORT '8000' must be a port below 1024",
    ),
    (
        "start-budgets",
        "core has 7.5 minutes to start",
        lambda i: _set(_container(i, "core")["healthCheck"], "retries", 5),
        "Netskope's Kubernetes chart allows 1200 s",
    ),
    (
        "start-budgets",
        "the load balancer's grace period ends before ui can be healthy",
        lambda i: setattr(
            i,
            "service_script_text",
            re.sub(
                r"^HEALTH_CHECK_GRACE_SECONDS=.*$", "HEALTH_CHECK_GRACE_SECONDS=600", i.service_script_text, flags=re.M
            ),
        ),
        "is shorter than the",
    ),
    (
        "start-budgets",
        "a start period ECS refuses",
        lambda i: _set(_container(i, "core")["healthCheck"], "startPeriod", 1200),
        "healthCheck.startPeriod 1200 is outside ECS's 0-300",
    ),
    (
        "environment-parity",
        "core without UI_SERVICE_NAME",
        lambda i: _drop_env(_container(i, "core"), "UI_SERVICE_NAME"),
        "UI_SERVICE_NAME must be localhost",
    ),
    (
        "environment-parity",
        "ui without a .env key",
        lambda i: _drop_env(_container(i, "ui"), "INSTALL_VERSION"),
        "container ui: lacks the .env keys ['INSTALL_VERSION']",
    ),
    (
        "environment-parity",
        "CORE_TAG as the full image reference",
        lambda i: _set_env(_container(i, "core"), "CORE_TAG", "${ImageCore}"),
        "CORE_TAG must be ${CoreTag}",
    ),
    (
        "init-process",
        "core's start.sh as PID 1",
        lambda i: _container(i, "core").pop("linuxParameters"),
        "container core: set linuxParameters.initProcessEnabled true",
    ),
    (
        "browser-certificates",
        "the UI's certificate valid ten years",
        lambda i: _set(_leaf(i, "Ui"), "ValidityDays", "3650"),
        "certificate Ui: ValidityDays 3650 is above 825",
    ),
    (
        "mongosh-home",
        "the health check's mongosh writes into /data/db",
        lambda i: _container(i, "mongodb-primary")["healthCheck"]["command"].__setitem__(
            1, _container(i, "mongodb-primary")["healthCheck"]["command"][1].replace("HOME=/tmp ", "")
        ),
        "container mongodb-primary: mongosh runs with HOME (the image default)",
    ),
    (
        "mongosh-home",
        "the seeded scripts keep the image's HOME",
        lambda i: _set(
            _file(i, "data/database-init/mongo-common.sh"),
            "Content",
            re.sub(r"^export HOME=.*$", "", _file(i, "data/database-init/mongo-common.sh")["Content"], flags=re.M),
        ),
        "must export HOME outside /data",
    ),
]


# ---------------------------------------------------------------- main
def load(rendered_path):
    return Inputs(
        template=load_template(),
        task_definition=json.loads(TASK_DEFINITION.read_text()),
        rendered=json.loads(Path(rendered_path).read_text()),
        fixture=json.loads(FIXTURE.read_text()),
        script_text=REGISTER_SCRIPT.read_text(),
        service_script_text=SERVICE_SCRIPT.read_text(),
        cfn_texts={p.name: p.read_text() for p in sorted((ROOT / "cfn").iterdir()) if p.is_file()},
    )


def run_checks(inputs):
    return planted_faults.run_checks(CHECKS, lambda check: check(inputs))


def self_test(inputs):
    def plant(mutate, check):
        mutated = copy.deepcopy(inputs)
        mutate(mutated)
        return check(mutated)

    return planted_faults.self_test(CHECKS, MUTATIONS, plant)


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
