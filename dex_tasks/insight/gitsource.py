"""What the DORA metrics read from git: each env's deployments and the app's commit graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.gitops import history
from dex_tasks.insight import dora
from dex_tasks.tools import git

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dex_tasks.config import Config
    from dex_tasks.gitops.state import Repo


def fetch_bases(cfg: Config, repo: Repo, envs: Iterable[str]) -> None:
    """Fetch each env's base branch (and the default branch) once, with its full history."""
    for base in dict.fromkeys([*(cfg.branch_for(env) for env in envs), cfg.default_branch]):
        git.fetch(repo.root, base, unshallow=True)


def env_deploys(cfg: Config, repo: Repo, env: str) -> list[dora.Deploy]:
    """The env's deployments, newest first (history of its overlay on origin/<base>)."""
    entries = history.deployments(
        repo.root, git.tracking(cfg.branch_for(env)), repo.overlay_path(cfg, env), cfg.kustomize_image_name
    )
    return dora.from_history(entries)


def commit_graph(cfg: Config, repo: Repo, envs: Iterable[str]) -> dora.Graph:
    """Every commit reachable from the fetched base branches, in one ``git log``."""
    refs = [git.tracking(b) for b in dict.fromkeys([cfg.default_branch, *(cfg.branch_for(e) for e in envs)])]
    present = [ref for ref in refs if git.rev_parse(repo.root, ref) is not None]
    if not present:
        return dora.Graph(times={}, parents={})
    out = git.git(
        "log", "--format=%H %ct %P", *present, "--", cwd=repo.root, read_only=True, quiet=True
    ).stdout
    return dora.parse_graph(out)
