"""``release-notes FROM TO``: the app commits a promotion FROM -> TO would ship, as markdown.

The same text promote puts in its PR body: the app commits between the tag TO runs and the tag
FROM runs (each read from its overlay on its base branch), grouped by conventional-commit type,
overlay commits left out (see :mod:`dex_tasks.insight.release_notes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.errors import UsageError
from dex_tasks.gitops import state
from dex_tasks.insight import release_notes
from dex_tasks.tasks import Context, TaskResult
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "from_env", metavar="FROM", help="the environment whose tag would be promoted (e.g. stage)"
    )
    parser.add_argument("to_env", metavar="TO", help="the environment it would be promoted to (e.g. prod)")


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    cfg = ctx.config
    source, target = cfg.check_env(args.from_env), cfg.check_env(args.to_env)
    if source == target:
        raise UsageError(f"FROM and TO are the same environment ({source})")
    repo = state.open_repo(cfg)
    tags_of: dict[str, str | None] = {}
    fetched: set[str] = set()
    for env in (source, target):
        base = cfg.branch_for(env)
        if base not in fetched:
            git.fetch(repo.root, base)
            fetched.add(base)
        tags_of[env] = state.read_tag_at(cfg, repo, env, git.tracking(base))
    new = tags_of[source]
    if new is None:
        raise UsageError(f"{repo.overlay_path(cfg, source)} on {cfg.branch_for(source)} has no tag")
    notes = release_notes.between(cfg, repo, tags_of[target], new)
    markdown = notes.markdown()
    ctx.out(markdown)
    commits = [c.as_json() for c in notes.commits] if notes.commits is not None else []
    return TaskResult(
        data={
            "from_env": source, "to_env": target, "from_tag": new, "to_tag": tags_of[target],
            "commits": commits, "complete": notes.commits is not None, "truncated": notes.truncated,
            "compare_url": notes.compare_url, "markdown": markdown,
        }
    )  # fmt: skip
