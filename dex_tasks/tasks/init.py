"""``init [--app NAME] [--image REF] [--envs dev,stage,prod] [--force] [--rollout canary|bluegreen]``.

Scaffolds a consumer repo.

Writes, in the current directory (or ``-C DIR``): ``[tool.poe]`` and ``[tool.dex]`` appended to
``pyproject.toml`` (existing content is never rewritten), the noxfile line, the caller workflows
pinned like ``examples/workflows``, ``infra/argocd/base`` (deployment + service on port 8000), an
overlay per env, an Argo CD Application per env, an ApplicationSet for PR previews, and a
``.dockerignore`` without ``.git``. ``--rollout`` puts an Argo Rollouts Rollout (canary steps, or
blue-green with a preview Service) in the base instead of the Deployment, with the kustomize
``configurations`` it needs, and ``[tool.dex.cluster] workload = "Rollout"``; a later run without
``--rollout`` keeps the strategy it finds (canary when ``workload = "Rollout"`` is configured and
there is no Rollout yet). Switching a Deployment scaffold needs ``--force``.
Idempotent: a second run changes nothing. A file of ours that exists and differs is skipped with
a warning unless ``--force``. ``--dry-run`` prints the diff.
The logic is in :mod:`dex_tasks.scaffold.init`; this module parses, prints and writes.
"""

from __future__ import annotations

import difflib
import errno
import os
import shutil
from typing import TYPE_CHECKING

from dex_tasks.errors import DexError
from dex_tasks.scaffold import init as scaffold
from dex_tasks.tasks import Context, TaskResult, _args
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse
    from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=_args.value, help="the app's name (default: the project's name)")
    parser.add_argument(
        "--image", type=_args.value, help="full image name without tag (default: ghcr.io/<owner>/<app>)"
    )
    parser.add_argument(
        "--envs",
        type=_args.text,
        metavar="ENV,ENV...",
        help="environments in promotion order (dev,stage,prod)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite files of ours that differ")
    parser.add_argument(
        "--rollout",
        choices=("canary", "bluegreen"),
        help="an Argo Rollouts Rollout instead of a Deployment (default: what an earlier --rollout wrote)",
    )


def _options(ctx: Context, args: argparse.Namespace) -> scaffold.Options:
    cfg = ctx.config
    in_file = cfg.from_file
    app = scaffold.check_app(args.app) if args.app else None
    if app is None:
        app = (
            cfg.deployment
            if "deployment" in in_file
            else scaffold.default_app(cfg.project_name, ctx.cwd.name)
        )
    repo_url = _origin(ctx.cwd)
    if args.image:
        image = scaffold.check_image(args.image)
    elif "image" in in_file:
        image = cfg.image
    else:
        owner = (scaffold.github_slug(repo_url) or (app, ""))[0].lower()
        image = scaffold.check_image(f"ghcr.io/{owner}/{app}")
    # `is not None`: an empty --envs (an unset "$ENVS") is refused, not taken for the defaults.
    envs = scaffold.parse_envs(args.envs) if args.envs is not None else cfg.environments
    # workload = "Rollout" already configured: scaffold one (the strategy an earlier --rollout
    # wrote, else canary), not a Deployment the config would then contradict.
    rollout = args.rollout or (
        (scaffold.rollout_of(ctx.cwd) or "canary") if cfg.cluster.workload == "Rollout" else ""
    )
    return scaffold.Options(app=app, image=image, envs=tuple(envs), repo_url=repo_url, rollout=rollout)


def _origin(cwd: Path) -> str:
    try:
        return git.remote_url(cwd) or ""
    except DexError:  # not a git repository (or no git): the Argo CD apps get a placeholder URL
        return ""


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    options = _options(ctx, args)
    changes = scaffold.plan(ctx.cwd, options, force=args.force)
    lists: dict[str, list[str]] = {outcome: [] for outcome in scaffold.OUTCOMES}
    for change in changes:
        lists[change.outcome].append(change.path)
        if change.outcome == scaffold.SKIPPED:
            ctx.warn(f"{change.path}: skipped: {change.reason}")
        elif change.reason:
            ctx.warn(f"{change.path}: {change.reason}")
        if change.outcome in {scaffold.CREATED, scaffold.UPDATED} and ctx.dry_run:
            ctx.out(_diff(change).rstrip("\n"))
    if not ctx.dry_run:
        _write_all(ctx.cwd, [c for c in changes if c.outcome in {scaffold.CREATED, scaffold.UPDATED}])
    verb = "would be " if ctx.dry_run else ""
    summary = ", ".join(f"{len(lists[o])} {verb}{o}" for o in scaffold.OUTCOMES if lists[o])
    kind = f"; a {options.rollout} Rollout" if options.rollout else ""
    ctx.out(f"init {options.app} ({options.image}; {', '.join(options.envs)}{kind}): {summary}")
    for outcome in (scaffold.CREATED, scaffold.UPDATED):
        for path in lists[outcome]:
            ctx.out(f"  {verb}{outcome}  {path}")
    if not ctx.dry_run and (lists[scaffold.CREATED] or lists[scaffold.UPDATED]):
        ctx.out("next: commit and push, then `dex-tasks bump-overlay <env> sha-<hex>` once an image is built")
    data = {
        "app": options.app,
        "image": options.image,
        "envs": list(options.envs),
        "rollout": options.rollout or None,
    }
    return TaskResult(data={**data, **lists})


def _diff(change: scaffold.FileChange) -> str:
    old = (change.old or "").splitlines(keepends=True)
    new = change.new.splitlines(keepends=True)
    before = f"a/{change.path}" if change.old is not None else "/dev/null"
    return "".join(difflib.unified_diff(old, new, fromfile=before, tofile=f"b/{change.path}"))


def _write_all(root: Path, changes: list[scaffold.FileChange]) -> None:
    """Every file written, or none: each is staged beside its place first, then all are renamed
    in. A failure while staging (a full disk, a read-only directory) removes what was staged and
    the directories made for it, so the tree is as it was (the OSError is then exit 2)."""
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for change in changes:
            path = root / change.path
            missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
            for directory in reversed(missing):
                directory.mkdir()
                made.append(directory)
            staged.append((_stage(path, change.new), path))
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        for directory in reversed(made):
            directory.rmdir()
        raise
    for temp, path in staged:
        if path.exists():
            shutil.copymode(path, temp)  # the rename must not change an updated file's mode
        temp.replace(path)


def _stage(path: Path, text: str) -> Path:
    """``text`` in a new file beside ``path`` (same directory: the rename is atomic)."""
    if path.exists() and not os.access(path, os.W_OK):
        # The rename would replace it all the same: a file made read-only stays the user's.
        raise PermissionError(errno.EACCES, "Permission denied (a read-only file)", str(path))
    # The pid: a run killed while staging leaves its own name behind, not one the next run trips
    # over; open "x" (not mkstemp): a new file gets the mode the umask says, like a plain write.
    temp = path.with_name(f".{path.name}.{os.getpid()}.dex-init")
    # newline="": the text already holds the file's own line endings (an append keeps CRLF).
    with temp.open("x", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return temp
