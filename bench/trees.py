"""The trees the benchmark builds: the template's CE tree and generated ones of any size."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cfn" / "CloudExchangeTemplate.yaml"


class TreeError(Exception):
    """The template holds no usable tree."""


def _is_plain(value: Any) -> bool:
    """No intrinsic function (Ref, Fn::...) anywhere inside."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(not k.startswith("Fn::") and k != "Ref" and _is_plain(v) for k, v in value.items())
    return isinstance(value, (str, int, bool))


def ce_tree(template: Path = TEMPLATE) -> tuple[dict[str, Any], str]:
    """Directories and Files of the template's tree resource, read with cfn-lint's decoder,
    and a note saying where they came from and what was left out. Entries that depend on
    parameters (intrinsic functions) are left out, and so are generated Certificates: the
    Python contestants cannot make them."""
    parsed, errors = decode(str(template))
    if errors or parsed is None:
        raise TreeError(f"{template}: {errors}")
    for name, resource in (parsed.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if str(resource.get("Type", "")).startswith("Custom::") and "Directories" in props:
            tree = {kind: [e for e in props.get(kind, []) if _is_plain(e)] for kind in ("Directories", "Files")}
            dropped = sum(len(props.get(kind, [])) for kind in ("Directories", "Files")) - entry_count(tree)
            note = f"{template.relative_to(ROOT)} ({name})"
            if dropped:
                note += f"; {dropped} entries using intrinsic functions left out"
            if "Certificates" in props:
                note += "; its generated Certificates left out"
            return tree, note
    raise TreeError(f"{template}: no Custom:: resource with Directories")


def generated_tree(entries: int) -> dict[str, Any]:
    """``entries`` entries in groups of ten: a directory, eight subdirectories, one seed file."""
    directories, files = [], []
    for index in range(entries):
        group, slot = divmod(index, 10)
        base = f"scale/g{group:03d}"
        if slot == 0:
            directories.append({"Path": base, "Owner": "1001", "Group": "1001", "Mode": "0750"})
        elif slot < 9:
            directories.append({"Path": f"{base}/d{slot}", "Owner": "1001", "Group": "1001", "Mode": "0750"})
        else:
            files.append(
                {
                    "Path": f"{base}/seed.conf",
                    "Content": f"group = {group}\n",
                    "Owner": "1001",
                    "Group": "1001",
                    "Mode": "0640",
                    "Overwrite": "false",
                }
            )
    return {"Directories": directories, "Files": files}


def owned_by_runner(tree: dict[str, Any]) -> dict[str, Any]:
    """Without root, chown can only give a file to ourselves: declare our own ids."""
    if os.geteuid() == 0:
        return tree
    ids = {"Owner": str(os.geteuid()), "Group": str(os.getegid())}
    return {kind: [{**entry, **ids} for entry in entries] for kind, entries in tree.items()}


def entry_count(tree: dict[str, Any]) -> int:
    return len(tree.get("Directories", [])) + len(tree.get("Files", []))


def verify_tree(root: str | Path, tree: dict[str, Any]) -> str | None:
    """The declared entries exist with their type, owner and mode; else what is wrong."""
    for kind, is_type, mode in (("Directories", stat.S_ISDIR, "0755"), ("Files", stat.S_ISREG, "0644")):
        for entry in tree.get(kind, []):
            try:
                st = os.lstat(os.path.join(root, entry["Path"]))
            except OSError as err:
                return f"{entry['Path']}: {err.strerror}"
            want = (int(entry.get("Owner", 0)), int(entry.get("Group", 0)), int(entry.get("Mode", mode), 8))
            have = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
            if not is_type(st.st_mode) or have != want:
                return f"{entry['Path']}: owner/group/mode {have} (want {want}) or wrong type"
    return None
