"""``history ENV [--limit N]``: every deployment of ENV from git, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.errors import UsageError
from dex_tasks.gitops import history, state
from dex_tasks.tasks import Context, TaskResult, table
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment")
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="show only the newest N deployments"
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    cfg = ctx.config
    env = cfg.check_env(args.env)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be a positive number")
    base = cfg.branch_for(env)
    # origin's URL (for the ls-remote below) is asked beside the one rev-parse that locates the clone.
    with git.network_remote_meanwhile(cfg.root) as named:
        repo = state.open_repo(cfg, tip_of=git.tracking(base))
        remote = named()
    path = repo.overlay_path(cfg, env)

    def read() -> list[history.Deployment]:
        found = history.deployments(
            repo.root, git.tracking(base), path, cfg.kustomize_image_name, env, signatures=True
        )
        # A slice reads only what it returns: --limit N reads about N versions; no limit, all in one go.
        return found[: args.limit]

    # The local history is read while ls-remote asks origin where its branch is; read again only
    # when origin moved (the fetch is then done): what is shown is always origin's history.
    with git.fetch_history_meanwhile(
        repo.root, base, shallow=repo.shallow, tip=repo.tip, named=remote
    ) as settle:
        entries = read()
        if settle():
            entries = read()
    rows = [
        [e.tag, _short(e.digest), e.commit[:12], e.date, e.author, e.action, _signature(e), e.subject]
        for e in entries
    ]
    if rows:
        ctx.out(table(["TAG", "DIGEST", "COMMIT", "DATE", "AUTHOR", "ACTION", "SIGNED", "SUBJECT"], rows))
    else:
        ctx.out(f"no deployments of {env} found in {path} on {base}")
    return TaskResult(data={"env": env, "base": base, "entries": [e.as_json() for e in entries]})


def _short(digest: str | None) -> str:
    """``sha256:`` and the first 12 hex (as docker shows image ids); ``-`` when unknown."""
    return digest[:19] if digest else "-"


def _signature(entry: history.Deployment) -> str:
    if entry.verified:
        return "verified"
    return "unverified" if entry.signed else "-"
