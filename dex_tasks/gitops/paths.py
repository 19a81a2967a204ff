"""Every path a GitOps task reads or writes stays inside the repository.

An overlay is edited in a temporary worktree of the GitOps repository, and in CD that repository's
content is whatever was merged. A symbolic link committed anywhere on an overlay's path (``infra``,
``infra/argocd``, ``overlays``, the env's directory, ``kustomization.yaml`` itself) would make a
plain ``open()`` read and rewrite a file outside the worktree: any YAML mapping the runner can
reach. So a link on the path is refused (exit 2) before anything is read, in both places a path can
be one:

* the commit's tree (``git ls-tree``: mode ``120000``), which is all a ``--dry-run`` reads (through
  ``git show``) and what a checkout on Windows without ``core.symlinks`` turns into a plain file;
* the file system of the worktree (``lstat``; on Windows also a junction), which is what a real run
  opens, and which must also resolve below the worktree.

A submodule (mode ``160000``) on the path is refused too: its files are not in this repository.
Absolute ``overlays`` and ``..`` are refused when the configuration loads (``config.py``).
"""

from __future__ import annotations

import os
import stat
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from dex_tasks.errors import UnsafePathError
from dex_tasks.tools import git

if TYPE_CHECKING:
    from pathlib import Path

SYMLINK = "120000"
SUBMODULE = "160000"


def components(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b", "a/b/c"]``: every path that must be a plain directory or file."""
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        raise UnsafePathError(f"{path}: not a path inside the repository; nothing was changed")
    return [str(PurePosixPath(*parts[: i + 1])) for i in range(len(parts))]


def check_tree(root: Path, rev: str, path: str, *, where: str) -> None:
    """Refuse ``path`` when an entry on its way is a symbolic link or a submodule at ``rev``."""
    steps = components(path)
    modes = git.tree_modes(root, rev, steps)
    for step in steps:
        mode = modes.get(step)
        if mode in {SYMLINK, SUBMODULE}:
            what = "a symbolic link" if mode == SYMLINK else "a submodule"
            raise UnsafePathError(_refusal(step, path, where, what))


def check_disk(top: Path, path: str) -> None:
    """Refuse ``path`` under the worktree ``top`` when a step is a link or it resolves outside."""
    steps = components(path)
    for step in steps:
        full = top / step
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            break  # the rest does not exist either: nothing to follow (the reader says "missing")
        if stat.S_ISLNK(info.st_mode) or _is_junction(full):
            raise UnsafePathError(_refusal(step, path, "the worktree", "a symbolic link"))
    inside = top.resolve()
    if not (top / path).resolve().is_relative_to(inside):
        raise UnsafePathError(_refusal(path, path, "the worktree", "outside the repository"))


def _is_junction(path: Path) -> bool:
    # Windows junctions are not symlinks to lstat, but are followed the same way (3.12+ can tell).
    is_junction = getattr(os.path, "isjunction", None)
    return bool(is_junction(path)) if is_junction is not None else False


def _refusal(step: str, path: str, where: str, what: str) -> str:
    subject = f"{step} (on the way to {path})" if step != path else path
    if what == "outside the repository":
        return f"{subject} resolves outside the repository; refusing to read or write it, nothing was changed"
    return (
        f"{subject} is {what} in {where}: dex-tasks reads and writes only files inside the repository; "
        "replace it with the real directory or file. Nothing was changed"
    )
