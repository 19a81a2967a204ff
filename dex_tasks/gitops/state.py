"""Where the GitOps state lives: the overlay file of an env on ``origin/<base branch>``."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dex_tasks.gitops import overlay_scan, paths
from dex_tasks.tools import git

if TYPE_CHECKING:
    from dex_tasks.config import Config


@dataclasses.dataclass(frozen=True, kw_only=True)
class Repo:
    """The git repository a configuration lives in. Overlay paths are relative to ``root``."""

    root: Path
    prefix: str  # the pyproject's directory relative to the repository root ('' at the top)
    shallow: bool = False  # a shallow clone (actions/checkout's --depth 1): history needs the rest
    tip: str | None = None  # where open_repo's ``tip_of`` pointed (None: not asked, or missing)

    def overlay_path(self, cfg: Config, env: str) -> str:
        """The env's overlay file as a git path (posix, relative to the repository root)."""
        return str(PurePosixPath(self.prefix) / PurePosixPath(cfg.overlay_file(env).as_posix()))

    def overlay_dir(self, cfg: Config, env: str) -> str:
        return str(PurePosixPath(self.prefix) / PurePosixPath(cfg.overlay_dir(env).as_posix()))


def open_repo(cfg: Config, *, tip_of: str | None = None) -> Repo:
    """The repository of ``cfg``; ``tip_of``: also where that ref is, in the same git process."""
    found = git.locate(cfg.root, tip_of=tip_of)
    return Repo(root=found.root, prefix=found.prefix, shallow=found.shallow, tip=found.tip)


def read_tag_at(cfg: Config, repo: Repo, env: str, rev: str) -> str | None:
    """The tag the env's overlay holds at ``rev`` (None: no file or no entry for the image)."""

    path = repo.overlay_path(cfg, env)
    # A symbolic link in git shows as its target's name: refuse it here, as the edit would.
    paths.check_tree(repo.root, rev, path, where=rev.removeprefix("refs/remotes/"))
    text = git.show(repo.root, rev, path)
    if text is None:
        return None
    return overlay_scan.read_tag_fast(text, cfg.kustomize_image_name, path=path)


def tag_in_git(cfg: Config, env: str, *, fetch: bool = True) -> str | None:
    """The tag ``env``'s overlay holds on ``origin/<its base branch>`` (fetched first by default)."""
    cfg.check_env(env)
    repo = open_repo(cfg)
    base = cfg.branch_for(env)
    if fetch:
        git.fetch(repo.root, base)
    return read_tag_at(cfg, repo, env, git.tracking(base))
