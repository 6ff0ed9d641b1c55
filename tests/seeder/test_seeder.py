"""The seed-plugins seeder (data/env/ce-seed.py in the template), run as uid 1001 on trees
shaped like the plugins repository: what it leaves on the destination, across first seeds,
re-seeds, image changes, interruptions and errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.seeding import TEMPLATE, change_tree, listing, plugins_tree, seeder_source
from tests.seeder.conftest import PYTHON, UID, Workspace

ROOT = Path(__file__).resolve().parents[2]
OWN = (".ce-seeded-from", ".ce-seed-manifest.json")
MINE = (*OWN, "custom_plugins")  # left out when comparing with the image
# What the seed-plugins container ran before this seeder, for one top-level entry.
OLD_COPY = ["cp", "-R", "--preserve=mode,timestamps", "--"]


def written(result: subprocess.CompletedProcess) -> int:
    """Files and links the seeder says it wrote, summed over its destinations."""
    return sum(int(n) for n in re.findall(r"(\d+) files and links written", result.stdout))


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def image_plugins(ws: Workspace, files: int = 300) -> Path:
    """An image's /opt/netskope/plugins: a generated tree, a custom_plugins that must never be
    copied, and symbolic links (one relative, one pointing out of the tree)."""
    image = ws.root / "image" / "plugins"
    plugins_tree(image, files)
    (image / "custom_plugins").mkdir()
    (image / "custom_plugins" / "from_image.py").write_text("no\n")
    os.symlink("f1_0.json", image / "alias.json")
    os.symlink("/etc/passwd", image / "outside")
    return image


def image_repos(ws: Workspace, name: str = "image", files: int = 200) -> Path:
    repos = ws.root / name / "repos"
    plugins_tree(repos / "Default", files)
    return repos


def test_first_seed_equals_the_image(ws: Workspace) -> None:
    image = image_plugins(ws)
    efs = ws.efs("plugins")
    (efs / "custom_plugins").mkdir()
    (efs / "custom_plugins" / "mine.py").write_text("mine\n")
    ok(ws.run("--plugins", image, efs))
    assert listing(efs, MINE) == listing(image, ("custom_plugins",))
    assert (efs / "custom_plugins" / "mine.py").read_text() == "mine\n"
    assert not (efs / "custom_plugins" / "from_image.py").exists()
    assert os.readlink(efs / "outside") == "/etc/passwd"
    assert (efs / ".ce-seeded-from").read_text() == "core:1\n"
    seeded = [p for p in efs.rglob("*") if "custom_plugins" not in p.parts and not p.is_symlink()]
    assert {p.stat().st_uid for p in seeded} == {UID}


def test_the_same_image_again_changes_nothing(ws: Workspace) -> None:
    image = image_plugins(ws, 50)
    efs = ws.efs("plugins")
    ok(ws.run("--plugins", image, efs))
    (efs / "f1_0.json").write_text("edited on EFS\n")
    result = ok(ws.run("--plugins", image, efs))
    assert "already holds" in result.stdout
    assert (efs / "f1_0.json").read_text() == "edited on EFS\n"


def test_reseed_replaces_read_only_packs_as_uid_1001_where_cp_fails(ws: Workspace) -> None:
    """Issue 15 item 1: a new image id over git's 0444 packs. The old cp -R cannot open them
    for writing as uid 1001 and exits 1; the seeder renames new files over them."""
    repos = image_repos(ws)
    efs = ws.efs("repos")
    ok(ws.run("--repos", repos, efs))
    change_tree(repos / "Default", 0.01)
    pack = efs / "Default" / ".git" / "objects" / "pack" / "pack-5eed.pack"
    assert pack.stat().st_mode & 0o777 == 0o444

    copy = ws.root / "efs" / "copy"  # the old command gets a copy: it changes what it can
    subprocess.run(["cp", "-a", efs, copy], check=True)
    old = ws.as_uid(*OLD_COPY, repos / "Default", copy)
    assert old.returncode == 1, old
    assert "pack-5eed.pack" in old.stderr
    assert "Permission denied" in old.stderr

    result = ok(ws.run("--repos", repos, efs, image="core:2"))
    assert listing(efs, OWN) == listing(repos)
    assert pack.stat().st_mode & 0o777 == 0o444
    assert 0 < written(result) < 20


def test_an_unchanged_tree_under_a_new_image_id_writes_nothing(ws: Workspace) -> None:
    image = image_plugins(ws, 200)
    efs = ws.efs("plugins")
    ok(ws.run("--plugins", image, efs))
    result = ok(ws.run("--plugins", image, efs, image="registry.example/core@sha256:1"))
    assert written(result) == 0
    assert listing(efs, MINE) == listing(image, ("custom_plugins",))


def test_a_changed_image_leaves_its_tree_and_keeps_what_others_added(ws: Workspace) -> None:
    image = image_plugins(ws)
    efs = ws.efs("plugins")
    (efs / "custom_plugins").mkdir()
    ok(ws.run("--plugins", image, efs))
    (efs / "custom_plugins" / "mine.py").write_text("mine\n")
    (efs / "plugin_0" / "installed_by_ce.py").write_text("ce\n")
    (efs / "plugin_1" / "ce_cache").mkdir()
    (efs / "plugin_1" / "ce_cache" / "x").write_text("x\n")
    dropped_dir = image / "plugin_2"
    shutil.rmtree(image / "plugin_1")  # the new image drops a whole plugin
    shutil.rmtree(dropped_dir)
    change_tree(image, 0.05)
    (image / "alias.json").unlink()
    os.symlink("f1_0.json", image / "alias.json")

    ok(ws.run("--plugins", image, efs, image="core:2"))
    extra = {"plugin_0/installed_by_ce.py", "plugin_1", "plugin_1/ce_cache", "plugin_1/ce_cache/x"}
    have = listing(efs, MINE)
    assert {k: v for k, v in have.items() if k not in extra} == listing(image, ("custom_plugins",))
    assert (efs / "plugin_0" / "installed_by_ce.py").read_text() == "ce\n"
    assert (efs / "plugin_1" / "ce_cache" / "x").read_text() == "x\n"
    assert set(os.listdir(efs / "plugin_1")) == {"ce_cache"}  # the dropped plugin's own files are gone
    assert not (efs / dropped_dir.name).exists()
    assert (efs / "custom_plugins" / "mine.py").read_text() == "mine\n"


def test_an_interrupted_seed_resumes(ws: Workspace) -> None:
    image = image_plugins(ws, 400)
    efs = ws.efs("plugins")
    cut = ws.run("--plugins", image, efs, env={"CE_SEED_FAULT_AFTER_FILES": "120"})
    assert cut.returncode == -9, cut
    assert not (efs / ".ce-seeded-from").exists()
    result = ok(ws.run("--plugins", image, efs))
    total = sum(1 for v in listing(image, ("custom_plugins",)).values() if v[0] != "dir")
    assert total - 120 - 48 <= written(result) <= total - 120  # at most one pool's worth redone
    assert listing(efs, MINE) == listing(image, ("custom_plugins",))
    assert not list(efs.rglob("*.ce-seed-tmp"))


def test_an_interrupted_image_change_then_a_rollback_removes_what_it_added(ws: Workspace) -> None:
    """v1, then v2 cut short, then v1 again: the stamp was removed before v2's first change,
    so v1 is seeded again, and the files v2 added are known to the manifest and removed."""
    image = image_plugins(ws, 300)
    v1 = listing(image, ("custom_plugins",))
    efs = ws.efs("plugins")
    ok(ws.run("--plugins", image, efs))
    backup = ws.root / "v1"
    shutil.copytree(image, backup, symlinks=True)
    change_tree(image, 0.3)
    cut = ws.run("--plugins", image, efs, image="core:2", env={"CE_SEED_FAULT_AFTER_FILES": "40"})
    assert cut.returncode == -9, cut
    assert not (efs / ".ce-seeded-from").exists()
    ok(ws.run("--plugins", backup, efs))
    assert listing(efs, MINE) == v1


def test_a_repository_ces_git_changed_is_left_to_ce(ws: Workspace) -> None:
    repos = image_repos(ws)
    efs = ws.efs("repos")
    ok(ws.run("--repos", repos, efs))
    head = efs / "Default" / ".git" / "refs" / "heads" / "main"
    head.write_text("newer commit from git pull\n")  # CE's git update
    change_tree(repos / "Default", 0.05)
    plugins_tree(repos / "Other", 30)
    result = ok(ws.run("--repos", repos, efs, image="core:2"))
    assert "Default: changed on EFS since it was seeded" in result.stdout
    assert head.read_text() == "newer commit from git pull\n"
    assert listing(efs / "Other") == listing(repos / "Other")
    assert json.loads((efs / ".ce-seed-manifest.json").read_text())["released"] == ["Default"]
    # Gone from EFS, the repository is seeded again from the image.
    shutil.rmtree(efs / "Default")
    ok(ws.run("--repos", repos, efs, image="core:3"))
    assert listing(efs, OWN) == listing(repos)


def test_symlinks_on_efs_are_never_followed(ws: Workspace) -> None:
    image = image_plugins(ws, 50)
    efs = ws.efs("plugins")
    outside = ws.root / "outside"
    outside.mkdir()
    os.symlink(outside, efs / "plugin_0")  # where the image has a directory
    ok(ws.run("--plugins", image, efs))
    assert list(outside.iterdir()) == []
    assert (efs / "plugin_0").is_dir() and not (efs / "plugin_0").is_symlink()
    assert listing(efs, MINE) == listing(image, ("custom_plugins",))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing destination", "not a directory (is the volume mounted?)"),
        ("directory where the image has a file", "a directory on EFS where the image has a file"),
        ("unreadable image file", "Permission denied"),
        ("read-only destination", "Permission denied"),
        ("no image", "no image"),
    ],
)
def test_errors_exit_non_zero_with_a_message_and_no_stamp(ws: Workspace, case: str, message: str) -> None:
    image = image_plugins(ws, 40)
    efs = ws.efs("plugins")
    if case == "missing destination":
        efs = efs / "absent"
    elif case == "directory where the image has a file":
        (efs / "f1_0.json").mkdir()
        (efs / "f1_0.json" / "x").write_text("x\n")
    elif case == "unreadable image file":
        (image / "f1_0.json").chmod(0o000)
    elif case == "read-only destination":
        efs.chmod(0o555)
    env = {"CE_SEED_IMAGE": ""} if case == "no image" else None
    result = ws.run("--plugins", image, efs, env=env)
    assert result.returncode not in (0, -9), result
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (efs / ".ce-seeded-from").exists()


def test_the_task_definition_runs_the_seeded_file_through_a_read_only_mount() -> None:
    definition = json.loads((ROOT / "cfn" / "CloudExchangeTaskDefinition.json").read_text())
    container = next(c for c in definition["containerDefinitions"] if c["name"] == "seed-plugins")
    assert container["entryPoint"][:2] == ["python3", "/ce/env/ce-seed.py"]
    mounts = {m["containerPath"]: m for m in container["mountPoints"]}
    assert mounts["/ce/env"] == {"sourceVolume": "env-loader", "containerPath": "/ce/env", "readOnly": True}
    volume = next(v for v in definition["volumes"] if v["name"] == "env-loader")["efsVolumeConfiguration"]
    assert volume["authorizationConfig"]["accessPointId"] == "${EnvLoaderAccessPointId}"


def test_the_seeder_is_lint_clean_and_runs_on_the_images_python(tmp_path: Path) -> None:
    script = tmp_path / "ce-seed.py"
    script.write_text(seeder_source(TEMPLATE))
    for command in (["ruff", "check", "--no-cache", str(script)], ["ruff", "format", "--check", str(script)]):
        lint = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    usage = subprocess.run([PYTHON, str(script), "--help"], capture_output=True, text=True, check=False)
    assert usage.returncode == 0 and "--plugins" in usage.stdout
