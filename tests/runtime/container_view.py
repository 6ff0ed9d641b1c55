"""The task's containers' view of the tree the EfsTree Lambda built on the EFS folder.

On Fargate a container sees EFS only through its mount points: mountPoint.sourceVolume ->
volume -> efsVolumeConfiguration.authorizationConfig.accessPointId -> the access point's
RootDirectory.Path, and every NFS operation runs as the access point's PosixUser, whatever
uid the process has. Directories above an access point's root are never traversed. This
module follows that chain for every container of the rendered task definition and checks,
on the folder the real Lambda filled, what the container will find:

- mounts_resolve:    every mount point reaches an existing directory (no symlink on the way),
                     and a mount nested in another one has its mount point inside the outer
                     volume's directory;
- mounts_usable:     the access point's PosixUser can write each read-write mount (a probe file
                     is created and removed in a child running as that uid/gid, with no
                     supplementary groups) and can list each read-only one;
- named_files:       every file under a mount that the entryPoint/command names, that the
                     seeded scripts they run name in turn (simple shell variables expanded),
                     or that an image reads on its own (IMAGE_READS), exists and is readable
                     by that user; what is run as a program is executable;
- rabbitmq_tls_files: the certfile/keyfile/cacertfile of RabbitMQ's seeded configuration, mapped
                     back through the container's mounts, exist and are readable by that user;
- private_keys:      no file holding a PEM "PRIVATE KEY" grants group or others any access;
- ca_key:            the CA's private key (the key of the certificate with CA:TRUE) lies outside
                     the root of every access point a task could mount, owned by root.

    python -m tests.runtime.container_view check --tree DIR
    python -m tests.runtime.container_view self-test --tree DIR
    python -m tests.runtime.container_view mounts --tree DIR --container NAME

DIR is what tests/e2e/deployed-tree.sh leaves: efs/ (the EFS folder), template.json,
outputs.json (describe-stacks) and task-definition.json (rendered from those outputs).
`self-test` plants faults on copies, at least one per check (MUTATIONS: a missing access point
root or nested mount point, a foreign PosixUser, a missing or non-executable entry point, a
moved mount path, a key the container cannot read, a key made 0644, the CA key copied into
an access point) and fails unless each is caught.
`mounts` lists a container's EFS mounts and where they lie on the EFS folder (the TLS
tests bind-mount them to give a server the container's view).
Needs root: the probes switch to the access points' uids. Run from the repository root.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.template import planted_faults
from tests.template.model import ref_target, task_access_points

ACCESS_POINT_TYPE = "AWS::EFS::AccessPoint"
# The most a named file is read to look for further paths or a PEM key.
MAX_SCAN_BYTES = 1024 * 1024
# An absolute path in shell text: starts at a "/" not preceded by a word character, "$", "}"
# or another "/" (so "$dir/x" and "https://h/p" are not taken for paths).
PATH_TOKEN = re.compile(r"(?<![\w$}/.])/[A-Za-z0-9_.@+-]+(?:/[A-Za-z0-9_.@+-]+)*")
# Text just before a path the container creates, removes or writes itself, not one it reads.
WRITE_TARGET = re.compile(r'(?:>>?\|?\s*|\b(?:touch|mkdir|rm|mv|cp|ln|rmdir)(?:\s+-{1,2}[\w=-]*)*\s+)"?$')
# Text just before a path that is run as a program (not sourced or passed as an argument).
COMMAND_POSITION = re.compile(r'(?:^|[;&|(]|\b(?:exec|then|do|else))\s*"?$')
ASSIGNMENT = re.compile(r"^[ \t]*(?:export[ \t]+|local[ \t]+|readonly[ \t]+)?([A-Za-z_]\w*)=(\S.*?)[ \t]*$", re.M)
VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::?-[^}]*)?\}|\$([A-Za-z_]\w*)")
DIRNAME_OF_SCRIPT = '$(dirname "$0")'
# RabbitMQ's TLS file settings (ssl_options.*, management.ssl.*, ...).
RABBITMQ_FILE_KEY = re.compile(r"^[\w.]*\.(certfile|keyfile|cacertfile)$")
# Files CE 6.1's images read on their own, named nowhere in the task definition: the UI
# serves HTTPS with data/ssl_certs/cte_cert.crt and cte_cert_key.key, which the reference's
# docker-compose.yml mounts at /tmp/ssl_certs (the names are its setup's _get_cert_location).
IMAGE_READS = {"ui": ["/tmp/ssl_certs/cte_cert.crt", "/tmp/ssl_certs/cte_cert_key.key"]}
# RabbitMQ reads every *.conf here when RABBITMQ_CONFIG_FILES is not set (the image's default).
RABBITMQ_CONF_D = "/etc/rabbitmq/conf.d"
# How public keys are compared (a CA certificate's with each private key's).
PUBLIC_FORMAT = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------- inputs
@dataclass
class Inputs:
    efs: Path  # the EFS folder, as the Lambda left it (a copy in the self-test)
    template: dict  # the CloudFormation template, long-form intrinsics
    outputs: dict  # stack output key -> value
    task_definition: dict  # rendered from those outputs


@dataclass(frozen=True)
class Mount:
    container: str
    container_path: PurePosixPath
    read_only: bool
    volume: str
    access_point: str  # logical id in the template
    root: PurePosixPath  # RootDirectory.Path, relative to the file system's root
    uid: int
    gid: int
    groups: tuple[int, ...]  # PosixUser.SecondaryGids

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"

    def describe(self) -> str:
        return f"{self.container}:{self.container_path} (volume {self.volume}, {self.access_point} /{self.root})"


def load(tree_dir: Path) -> Inputs:
    stack = json.loads((tree_dir / "outputs.json").read_text())["Stacks"][0]
    return Inputs(
        efs=tree_dir / "efs",
        template=json.loads((tree_dir / "template.json").read_text()),
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        task_definition=json.loads((tree_dir / "task-definition.json").read_text()),
    )


def containers(inputs: Inputs) -> list[dict]:
    return inputs.task_definition.get("containerDefinitions", [])


def container(inputs: Inputs, name: str) -> dict:
    for definition in containers(inputs):
        if definition["name"] == name:
            return definition
    raise KeyError(f"no container {name!r} in the task definition")


def access_point_for(inputs: Inputs, access_point_id: str) -> tuple[str | None, str | None]:
    """(logical id, None) of the template's access point whose output carries this id, or
    (None, why not)."""
    keys = [key for key, value in inputs.outputs.items() if value == access_point_id]
    if len(keys) != 1:
        return None, f"access point id {access_point_id} is the value of {len(keys)} stack outputs, not one"
    output = inputs.template.get("Outputs", {}).get(keys[0])
    logical_id = ref_target(output["Value"]) if output else None
    resource = inputs.template["Resources"].get(logical_id or "", {})
    if resource.get("Type") != ACCESS_POINT_TYPE:
        return None, f"stack output {keys[0]} (= {access_point_id}) is not a Ref to an {ACCESS_POINT_TYPE}"
    return logical_id, None


def relative(path: str) -> PurePosixPath:
    return PurePosixPath(path.strip("/") or ".")


def mounts(inputs: Inputs, definition: dict) -> tuple[list[Mount], list[str]]:
    """The container's mounts on EFS, resolved to the template's access points; errors for
    the mount points that do not resolve."""
    volumes = {v["name"]: v for v in inputs.task_definition.get("volumes", [])}
    resolved, errors = [], []
    for point in definition.get("mountPoints", []):
        where = f"{definition['name']}:{point.get('containerPath')} (volume {point.get('sourceVolume')})"
        volume = volumes.get(point.get("sourceVolume"))
        if volume is None:
            errors.append(f"{where}: no such volume in the task definition")
            continue
        efs = volume.get("efsVolumeConfiguration")
        if efs is None:
            continue  # task storage, not EFS: nothing the Lambda built
        access_point_id = efs.get("authorizationConfig", {}).get("accessPointId")
        if not access_point_id:
            errors.append(f"{where}: the EFS volume names no access point")
            continue
        if efs.get("rootDirectory", "/") != "/":
            errors.append(f"{where}: rootDirectory must be / with an access point")
        logical_id, why = access_point_for(inputs, access_point_id)
        if logical_id is None:
            errors.append(f"{where}: {why}")
            continue
        props = inputs.template["Resources"][logical_id]["Properties"]
        user = props.get("PosixUser")
        if not user:
            errors.append(f"{where}: {logical_id} has no PosixUser")
            continue
        resolved.append(
            Mount(
                container=definition["name"],
                container_path=PurePosixPath(point["containerPath"]),
                read_only=bool(point.get("readOnly", False)),
                volume=point["sourceVolume"],
                access_point=logical_id,
                root=relative(props.get("RootDirectory", {}).get("Path", "/")),
                uid=int(user["Uid"]),
                gid=int(user["Gid"]),
                groups=tuple(int(g) for g in user.get("SecondaryGids", [])),
            )
        )
    return resolved, errors


def locate(mount_list: list[Mount], path: str) -> tuple[Mount, PurePosixPath] | None:
    """The mount a container path lies in (the deepest one) and the path below its root."""
    target = PurePosixPath(os.path.normpath(path))
    best = None
    for mount in mount_list:
        inside = target == mount.container_path or mount.container_path in target.parents
        if inside and (best is None or len(mount.container_path.parts) > len(best.container_path.parts)):
            best = mount
    if best is None:
        return None
    return best, target.relative_to(best.container_path)


# ---------------------------------------------------------------- file system, as root
def open_dir(efs: Path, path: PurePosixPath) -> int:
    """A descriptor of the directory at PATH below the EFS folder, reached one component
    at a time without following a symlink (as the Lambda walks it)."""
    fd = os.open(efs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.parts:
            if part == ".":
                continue
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except OSError:
        os.close(fd)
        raise
    return fd


def walk_to(dir_fd: int, path: PurePosixPath, final_flags: int = os.O_RDONLY) -> int:
    """Opens PATH below DIR_FD component by component, never following a symlink; every
    directory on the way must be searchable by the caller."""
    parts = [p for p in path.parts if p != "."]
    fd = os.dup(dir_fd)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = (final_flags if last else os.O_RDONLY | os.O_DIRECTORY) | os.O_NOFOLLOW
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except OSError:
        os.close(fd)
        raise
    return fd


def as_user(mount: Mount, probe: Callable[[], str | None]) -> str | None:
    """Runs PROBE in a child with the access point's uid, gid and secondary gids only (no
    capability survives the switch from root), and returns its error text or None."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no return from here
        status = 1
        try:
            os.close(read_end)
            os.setgroups(list(mount.groups))
            os.setresgid(mount.gid, mount.gid, mount.gid)
            os.setresuid(mount.uid, mount.uid, mount.uid)
            error = probe()
            os.write(write_end, (error or "").encode())
            status = 0
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            os.write(write_end, f"probe raised {exc!r}".encode())
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer or None


def probe_write(dir_fd: int) -> Callable[[], str | None]:
    def probe() -> str | None:
        name = f".container-view-probe-{os.getpid()}"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            return f"cannot create a file: {exc.strerror}"
        try:
            os.write(fd, b"probe\n")
        finally:
            os.close(fd)
            os.unlink(name, dir_fd=dir_fd)
        return None

    return probe


def probe_list(dir_fd: int) -> Callable[[], str | None]:
    def probe() -> str | None:
        try:
            os.listdir(dir_fd)
        except OSError as exc:
            return f"cannot list it: {exc.strerror}"
        if not os.access(".", os.X_OK, dir_fd=dir_fd):
            return "cannot search it"
        return None

    return probe


def probe_read(dir_fd: int, path: PurePosixPath, executable: bool) -> Callable[[], str | None]:
    def probe() -> str | None:
        try:
            fd = walk_to(dir_fd, path)
        except OSError as exc:
            return f"cannot open it: {exc.strerror}"
        try:
            os.read(fd, 1)
            if executable and not os.access(f"/proc/self/fd/{fd}", os.X_OK):
                return "cannot execute it"
        except OSError as exc:
            return f"cannot read it: {exc.strerror}"
        finally:
            os.close(fd)
        return None

    return probe


def file_at(efs: Path, mount: Mount, below: PurePosixPath) -> str | None:
    """None when BELOW is a regular file inside the mount (as root, no symlink), else why not."""
    try:
        root_fd = open_dir(efs, mount.root)
    except OSError as exc:
        return f"its volume's directory /{mount.root} is unusable: {exc.strerror}"
    try:
        fd = walk_to(root_fd, below)
    except OSError as exc:
        return f"is missing: /{mount.root / below}: {exc.strerror}"
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return f"/{mount.root / below} is not a regular file"
    finally:
        os.close(fd)
    return None


def read_text(efs: Path, mount: Mount, below: PurePosixPath) -> str | None:
    root_fd = open_dir(efs, mount.root)
    try:
        fd = walk_to(root_fd, below)
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_SCAN_BYTES)
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def tree_files(efs: Path) -> Iterator[PurePosixPath]:
    """Every regular file below the EFS folder (symlinks are not followed)."""
    for directory, dirs, files in os.walk(efs):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if stat.S_ISREG(path.lstat().st_mode):
                yield PurePosixPath(path.relative_to(efs))


# ---------------------------------------------------------------- what containers name
def shell_variables(text: str, script: str | None) -> dict[str, str]:
    """NAME -> value of the simple assignments in shell text: NAME=value, NAME="${NAME:-value}"
    (the default counts), NAME="$(dirname "$0")" (the script's directory)."""
    found = {}
    for match in ASSIGNMENT.finditer(text):
        name, value = match.group(1), match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) > 1:
            value = value[1:-1]
        default = re.fullmatch(r"\$\{" + name + r":?-([^}]*)\}", value)
        if default:
            value = default.group(1)
        if value == DIRNAME_OF_SCRIPT and script:
            value = str(PurePosixPath(script).parent)
        if "$" not in value and "`" not in value:
            found[name] = value
    return found


def expand(line: str, variables: dict[str, str], script: str | None) -> str:
    """LINE with $(dirname "$0"), ${NAME}, ${NAME:-...} and $NAME of known names replaced."""
    if script:
        line = line.replace(DIRNAME_OF_SCRIPT, str(PurePosixPath(script).parent))

    def value(match: re.Match) -> str:
        return variables.get(match.group(1) or match.group(2), match.group(0))

    return VARIABLE.sub(value, line)


def named_paths(text: str, variables: dict[str, str], script: str | None = None) -> Iterator[tuple[str, bool]]:
    """(path, run as a program) for the absolute paths shell text reads or runs; the paths
    it writes, creates or removes itself are left out."""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = expand(line, variables, script)
        for match in PATH_TOKEN.finditer(line):
            before = line[: match.start()]
            if not WRITE_TARGET.search(before):
                yield match.group(0), bool(COMMAND_POSITION.search(before))


def entry_program(definition: dict) -> str | None:
    """The program the container starts when the task definition sets it."""
    argv = definition.get("entryPoint") or definition.get("command") or []
    return argv[0] if argv else None


def rabbitmq_configs(inputs: Inputs, definition: dict, mount_list: list[Mount]) -> list[str]:
    """Container paths RabbitMQ reads configuration from: RABBITMQ_CONFIG_FILE, and the *.conf
    files on a mount at RABBITMQ_CONFIG_FILES (default /etc/rabbitmq/conf.d)."""
    env = {e["name"]: e["value"] for e in definition.get("environment", [])}
    found = []
    if "RABBITMQ_CONFIG_FILE" in env:
        path = env["RABBITMQ_CONFIG_FILE"]
        found.append(path if path.endswith(".conf") else f"{path}.conf")
    conf_d = PurePosixPath(env.get("RABBITMQ_CONFIG_FILES", RABBITMQ_CONF_D))
    for mount in mount_list:
        if mount.container_path == conf_d:
            directory = inputs.efs / mount.root
            found += sorted(str(conf_d / p.name) for p in directory.glob("*.conf") if p.is_file())
    return found


def conf_settings(text: str) -> Iterator[tuple[str, str]]:
    """key = value pairs of a rabbitmq.conf (sysctl format)."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            yield key.strip(), value.strip()


# ---------------------------------------------------------------- checks
@dataclass
class Outcome:
    errors: list[str]
    covered: str  # what was looked at, so a pass is not mistaken for a check of nothing


def all_mounts(inputs: Inputs) -> tuple[dict[str, list[Mount]], list[str]]:
    by_container, errors = {}, []
    for definition in containers(inputs):
        resolved, problems = mounts(inputs, definition)
        by_container[definition["name"]] = resolved
        errors += problems
    return by_container, errors


def check_mounts_resolve(inputs: Inputs) -> Outcome:
    by_container, errors = all_mounts(inputs)
    count = sum(len(m) for m in by_container.values())
    for mount_list in by_container.values():
        for mount in mount_list:
            try:
                os.close(open_dir(inputs.efs, mount.root))
            except OSError as exc:
                errors.append(f"{mount.describe()}: /{mount.root} does not exist as a directory: {exc.strerror}")
                continue
            outer = locate([m for m in mount_list if m is not mount], str(mount.container_path))
            if outer is not None:
                outer_mount, below = outer
                try:
                    os.close(open_dir(inputs.efs, outer_mount.root / below))
                except OSError as exc:
                    errors.append(
                        f"{mount.describe()}: nested in {outer_mount.container_path}, but its mount point "
                        f"/{outer_mount.root / below} does not exist there: {exc.strerror}"
                    )
    return Outcome(errors, f"{count} mount points of {len(by_container)} containers")


def check_mounts_usable(inputs: Inputs) -> Outcome:
    by_container, errors = all_mounts(inputs)
    users = {m.user for mount_list in by_container.values() for m in mount_list}
    count = sum(len(m) for m in by_container.values())
    for mount_list in by_container.values():
        for mount in mount_list:
            try:
                fd = open_dir(inputs.efs, mount.root)
            except OSError:
                continue  # mounts_resolve reports it
            try:
                error = as_user(mount, probe_list(fd) if mount.read_only else probe_write(fd))
            finally:
                os.close(fd)
            if error:
                kind = "read-only" if mount.read_only else "read-write"
                errors.append(f"{mount.describe()}, {kind}: {mount.user} {error}")
    return Outcome(errors, f"{count} mount points probed as {', '.join(sorted(users))}")


def check_path(inputs: Inputs, mount_list: list[Mount], path: str, executable: bool = False) -> str | None:
    """None when the container path, inside a mount, is a file the mount's user can read."""
    located = locate(mount_list, path)
    if located is None:
        return None
    mount, below = located
    problem = file_at(inputs.efs, mount, below)
    if problem:
        return f"{path} {problem}"
    fd = open_dir(inputs.efs, mount.root)
    try:
        error = as_user(mount, probe_read(fd, below, executable))
    finally:
        os.close(fd)
    return f"{path} ({mount.describe()}): {mount.user} {error}" if error else None


def named_files(inputs: Inputs, definition: dict, mount_list: list[Mount]) -> tuple[dict[str, bool], list[str]]:
    """Container path -> run as a program, for every file on a mount that the entryPoint or
    command names, and that the seeded scripts they reach name in turn (their simple
    variables expanded, until nothing new turns up); errors for the paths that are not
    there or not readable."""
    program = entry_program(definition)
    argv = (definition.get("entryPoint") or []) + (definition.get("command") or [])
    texts: dict[str | None, str] = {None: "\n".join(argv)}
    named = dict.fromkeys(IMAGE_READS.get(definition["name"], []), False)
    if program and locate(mount_list, program):
        named[program] = True
    errors: list[str] = []
    checked: set[str] = set()
    while True:
        variables: dict[str, str] = {}
        for script, text in texts.items():
            variables.update(shell_variables(text, script))
        for script, text in list(texts.items()):
            for path, run in named_paths(text, variables, script):
                located = locate(mount_list, path)
                if located is not None and located[1] != PurePosixPath("."):  # a mount's root: mounts_resolve's
                    named[path] = named.get(path, False) or run
        new = [path for path in named if path not in checked]
        if not new:
            return named, errors
        for path in new:
            checked.add(path)
            error = check_path(inputs, mount_list, path, executable=named[path])
            if error:
                errors.append(f"{definition['name']} names {error}")
                continue
            text = read_text(inputs.efs, *locate(mount_list, path))
            if text is not None and (text.startswith("#!") or path.endswith(".sh")):
                texts[path] = text  # a seeded script: what it names counts too


def check_named_files(inputs: Inputs) -> Outcome:
    by_container, errors = all_mounts(inputs)
    count = 0
    for definition in containers(inputs):
        named, problems = named_files(inputs, definition, by_container[definition["name"]])
        count += len(named)
        errors += problems
    return Outcome(errors, f"{count} files named by the containers")


def check_rabbitmq_tls_files(inputs: Inputs) -> Outcome:
    by_container, errors = all_mounts(inputs)
    configs = files_checked = 0
    for definition in containers(inputs):
        mount_list = by_container[definition["name"]]
        for conf in rabbitmq_configs(inputs, definition, by_container[definition["name"]]):
            located = locate(mount_list, conf)
            if located is None or file_at(inputs.efs, *located):
                errors.append(f"{definition['name']}: RabbitMQ configuration {conf} is not a seeded file on a mount")
                continue
            configs += 1
            text = read_text(inputs.efs, *located) or ""
            files = [(key, value) for key, value in conf_settings(text) if RABBITMQ_FILE_KEY.match(key)]
            if not any(key.startswith("ssl_options.") for key, _ in files):
                errors.append(f"{definition['name']}: {conf} sets no ssl_options certfile/keyfile/cacertfile")
            files_checked += len(files)
            for key, value in files:
                if locate(mount_list, value) is None:
                    errors.append(f"{definition['name']}: {conf}: {key} = {value} is not under any of its mounts")
                    continue
                error = check_path(inputs, mount_list, value)
                if error:
                    errors.append(f"{definition['name']}: {conf}: {key} = {error}")
    if configs == 0:
        errors.append("no container has a RabbitMQ configuration (RABBITMQ_CONFIG_FILE) on EFS")
    return Outcome(errors, f"{files_checked} file settings in {configs} RabbitMQ configuration files")


def private_key_files(efs: Path) -> Iterator[PurePosixPath]:
    for path in tree_files(efs):
        with open(efs / path, "rb") as handle:
            if b"PRIVATE KEY-----" in handle.read(MAX_SCAN_BYTES):
                yield path


def check_private_keys(inputs: Inputs) -> Outcome:
    errors = []
    keys = list(private_key_files(inputs.efs))
    for path in keys:
        mode = (inputs.efs / path).lstat().st_mode
        if mode & 0o077:
            errors.append(
                f"{path} holds a private key but its mode is {stat.S_IMODE(mode):04o} (group or others get access)"
            )
    return Outcome(errors, f"{len(keys)} files holding a private key: {', '.join(map(str, keys))}")


def ca_keys(efs: Path) -> tuple[list[PurePosixPath], list[str]]:
    """Files holding the private key of a CA certificate (basicConstraints CA:TRUE) found in
    the tree, and the errors met on the way."""
    ca_public_keys = []
    for path in tree_files(efs):
        data = (efs / path).read_bytes()[:MAX_SCAN_BYTES]
        if b"-----BEGIN CERTIFICATE-----" not in data:
            continue
        for cert in x509.load_pem_x509_certificates(data):
            try:
                if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                    ca_public_keys.append(cert.public_key().public_bytes(*PUBLIC_FORMAT))
            except x509.ExtensionNotFound:
                pass
    if not ca_public_keys:
        return [], ["no CA certificate (basicConstraints CA:TRUE) anywhere in the tree"]
    found = []
    for path in private_key_files(efs):
        key = serialization.load_pem_private_key((efs / path).read_bytes(), password=None)
        if key.public_key().public_bytes(*PUBLIC_FORMAT) in ca_public_keys:
            found.append(path)
    return found, [] if found else ["no file in the tree holds the CA certificate's private key"]


def task_access_point_roots(inputs: Inputs) -> set[tuple[str, PurePosixPath]]:
    """(logical id, root) of every access point a task could mount: those the task definition
    uses, and every other one of the template but the Lambda's own (its root is /, and only the
    Lambda's role may use it)."""
    by_container, _ = all_mounts(inputs)
    roots = {(m.access_point, m.root) for mount_list in by_container.values() for m in mount_list}
    for logical_id, resource in task_access_points(inputs).items():
        roots.add((logical_id, relative(resource["Properties"].get("RootDirectory", {}).get("Path", "/"))))
    return roots


def check_ca_key(inputs: Inputs) -> Outcome:
    _, errors = all_mounts(inputs)
    keys, problems = ca_keys(inputs.efs)
    errors += problems
    roots = task_access_point_roots(inputs)
    for path in keys:
        for access_point, root in sorted(roots):
            if root == PurePosixPath(".") or root in path.parents:
                errors.append(f"the CA key {path} is inside {access_point}'s root /{root}")
        if (inputs.efs / path).lstat().st_uid != 0:
            errors.append(f"the CA key {path} is not owned by root")
    return Outcome(errors, f"CA key {', '.join(map(str, keys)) or 'not found'}, {len(roots)} access point roots")


CHECKS = {
    "mounts_resolve": check_mounts_resolve,
    "mounts_usable": check_mounts_usable,
    "named_files": check_named_files,
    "rabbitmq_tls_files": check_rabbitmq_tls_files,
    "private_keys": check_private_keys,
    "ca_key": check_ca_key,
}


# ---------------------------------------------------------------- planted faults
def clone_tree(source: Path, target: Path) -> None:
    """A copy of the EFS folder keeping owners and modes."""
    shutil.copytree(source, target, symlinks=True)
    for directory, dirs, files in os.walk(source):
        for name in [".", *dirs, *files]:
            origin = Path(directory, name)
            info = origin.lstat()
            copy_path = target / origin.relative_to(source)
            os.chown(copy_path, info.st_uid, info.st_gid, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(copy_path, stat.S_IMODE(info.st_mode))


def _rabbitmq_cert_mount(inputs: Inputs) -> tuple[dict, dict, str]:
    """The RabbitMQ container, the mount point holding its keyfile, and the keyfile's path."""
    by_container, _ = all_mounts(inputs)
    for definition in containers(inputs):
        for conf in rabbitmq_configs(inputs, definition, by_container[definition["name"]]):
            located = locate(by_container[definition["name"]], conf)
            for key, value in conf_settings(read_text(inputs.efs, *located) or ""):
                if key == "ssl_options.keyfile":
                    mount, _ = locate(by_container[definition["name"]], value)
                    point = next(
                        p
                        for p in definition["mountPoints"]
                        if PurePosixPath(p["containerPath"]) == mount.container_path
                    )
                    return definition, point, value
    raise LookupError("no RabbitMQ keyfile to plant a fault on")


def _keyfile_on_tree(inputs: Inputs) -> Path:
    definition, _, keyfile = _rabbitmq_cert_mount(inputs)
    by_container, _ = all_mounts(inputs)
    mount, below = locate(by_container[definition["name"]], keyfile)
    return inputs.efs / mount.root / below


def _move_key_mount(inputs: Inputs) -> None:
    _, point, _ = _rabbitmq_cert_mount(inputs)
    point["containerPath"] += "-moved"


def _first_read_write(inputs: Inputs) -> dict:
    by_container, _ = all_mounts(inputs)
    for mount_list in by_container.values():
        for mount in mount_list:
            if not mount.read_only:
                return inputs.template["Resources"][mount.access_point]["Properties"]
    raise LookupError("no read-write mount to plant a fault on")


def _foreign_posix_user(inputs: Inputs) -> None:
    _first_read_write(inputs)["PosixUser"] = {"Uid": "4242", "Gid": "4242"}


def _missing_root(inputs: Inputs) -> None:
    props = _first_read_write(inputs)
    props["RootDirectory"]["Path"] = props["RootDirectory"]["Path"].rstrip("/") + "-missing"


def _nested_mount_point_missing(inputs: Inputs) -> None:
    by_container, _ = all_mounts(inputs)
    for mount_list in by_container.values():
        for mount in mount_list:
            outer = locate([m for m in mount_list if m is not mount], str(mount.container_path))
            if outer is not None:
                os.rmdir(inputs.efs / outer[0].root / outer[1])
                return
    raise LookupError("no nested mount")


def _key_0644(inputs: Inputs) -> None:
    os.chmod(_keyfile_on_tree(inputs), 0o644)


def _key_unreadable(inputs: Inputs) -> None:
    os.chown(_keyfile_on_tree(inputs), 0, 0)


def _ca_key_in_access_point(inputs: Inputs) -> None:
    (key,), _ = ca_keys(inputs.efs)
    copy_path = _keyfile_on_tree(inputs).parent / "planted-ca.key"
    shutil.copy2(inputs.efs / key, copy_path)
    os.chown(copy_path, 0, 0)


def _entry_point_on_tree(inputs: Inputs) -> Path:
    by_container, _ = all_mounts(inputs)
    for definition in containers(inputs):
        program = entry_program(definition)
        located = locate(by_container[definition["name"]], program) if program else None
        if located:
            return inputs.efs / located[0].root / located[1]
    raise LookupError("no entry point on EFS")


def _entry_point_missing(inputs: Inputs) -> None:
    os.unlink(_entry_point_on_tree(inputs))


def _entry_point_not_executable(inputs: Inputs) -> None:
    os.chmod(_entry_point_on_tree(inputs), 0o640)


MUTATIONS = [
    ("mounts_resolve", "an access point's root directory that does not exist", _missing_root, "does not exist"),
    ("mounts_resolve", "a nested mount's mount point missing", _nested_mount_point_missing, "does not exist there"),
    (
        "mounts_usable",
        "a read-write access point with a foreign PosixUser",
        _foreign_posix_user,
        "cannot create a file",
    ),
    ("named_files", "the entry point's script missing", _entry_point_missing, "is missing"),
    ("named_files", "the entry point's script not executable", _entry_point_not_executable, "cannot execute it"),
    ("rabbitmq_tls_files", "the mount holding RabbitMQ's key moved", _move_key_mount, "is not under any of its mounts"),
    ("rabbitmq_tls_files", "RabbitMQ's key owned by root", _key_unreadable, "cannot open it"),
    ("private_keys", "RabbitMQ's key chmod 0644", _key_0644, "mode is 0644"),
    ("ca_key", "the CA key copied into an access point's directory", _ca_key_in_access_point, "is inside"),
]


# ---------------------------------------------------------------- main
def run_checks(inputs: Inputs) -> bool:
    covered = {}

    def run(check: Callable[[Inputs], Outcome]) -> list[str]:
        outcome = check(inputs)
        covered[check.__name__.removeprefix("check_")] = outcome.covered
        return outcome.errors

    ok = planted_faults.run_checks(CHECKS, run, label="container view")
    for name, what in covered.items():
        print(f"  {name} looked at {what}")
    return ok


def self_test(inputs: Inputs) -> bool:
    with tempfile.TemporaryDirectory(prefix="container-view-") as scratch:
        copies = iter(range(len(MUTATIONS)))

        def plant(mutate: Callable[[Inputs], None], check: Callable[[Inputs], Outcome]) -> list[str]:
            mutated = copy.deepcopy(inputs)
            mutated.efs = Path(scratch, str(next(copies)))
            clone_tree(inputs.efs, mutated.efs)
            try:
                mutate(mutated)
                return check(mutated).errors
            except (LookupError, OSError, ValueError) as exc:
                return [f"the fault could not be planted: {exc!r}"]

        return planted_faults.self_test(CHECKS, MUTATIONS, plant, label="container view self-test")


def print_mounts(inputs: Inputs, name: str) -> int:
    """One line per EFS mount of the container, outer mounts first: container path, directory
    on the EFS folder, ro or rw, and the access point's uid and gid (tab-separated)."""
    resolved, errors = mounts(inputs, container(inputs, name))
    for error in errors:
        print(error, file=sys.stderr)
    for mount in sorted(resolved, key=lambda m: len(m.container_path.parts)):
        mode = "ro" if mount.read_only else "rw"
        print(f"{mount.container_path}\t{inputs.efs / mount.root}\t{mode}\t{mount.uid}\t{mount.gid}")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.runtime.container_view",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("mode", choices=["check", "self-test", "mounts"])
    parser.add_argument("--tree", required=True, type=Path, help="what tests/e2e/deployed-tree.sh left")
    parser.add_argument("--container", help="mounts: the container")
    args = parser.parse_args(argv)
    inputs = load(args.tree)
    if args.mode == "mounts":
        if not args.container:
            parser.error("mounts needs --container")
        return print_mounts(inputs, args.container)
    if os.geteuid() != 0:
        parser.error("run as root: the probes switch to the access points' uids")
    ok = run_checks(inputs) if args.mode == "check" else self_test(inputs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
