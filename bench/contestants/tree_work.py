"""The work both Python contestants do, shared so it is the same code.

os.makedirs for each declared directory, then chown and chmod; each seed file
is written when missing (or when Overwrite is true), then chown and chmod.
Symlinks are followed and nothing is validated up front: this is the plain
approach the Rust function is measured against, not a safe one.
"""

import os


def build_tree(root, props):
    directories = files = 0
    for entry in props.get("Directories", []):
        path = os.path.join(root, entry["Path"])
        os.makedirs(path, exist_ok=True)
        os.chown(path, int(entry["Owner"]), int(entry["Group"]))
        os.chmod(path, int(entry["Mode"], 8))
        directories += 1
    for entry in props.get("Files", []):
        path = os.path.join(root, entry["Path"])
        if str(entry.get("Overwrite", "false")).lower() == "true" or not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(entry["Content"])
            files += 1
        os.chown(path, int(entry["Owner"]), int(entry["Group"]))
        os.chmod(path, int(entry["Mode"], 8))
    return {"DirectoriesCreated": directories, "FilesWritten": files, "Root": root}
