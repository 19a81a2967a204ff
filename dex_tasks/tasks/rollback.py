"""``rollback ENV [TAG]``: back to the last known good tag (direct commit by default).

With no TAG, the overlay's history on its base branch picks the newest tag that is not the
current one and was not itself rolled back from. When the newest overlay commit is already a
rollback (a re-run job), a rollback without TAG is refused (exit 1) unless ``--again``.
``--emergency`` first sets the image with kubectl (Argo CD down), then makes git match;
``--sync`` asks Argo CD to sync after the push; ``--revert`` undoes the env's last overlay
commit (only the env's file when that commit changed other envs' overlays too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.tasks import _args, _delivery

if TYPE_CHECKING:
    import argparse

    from dex_tasks.tasks import Context, TaskResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment to roll back")
    parser.add_argument(
        "tag",
        metavar="TAG",
        nargs="?",
        type=_args.value,
        help="default: the last known good tag from git history",
    )
    _delivery.add_arguments(parser, default_pr=False)
    parser.add_argument(
        "--emergency",
        action="store_true",
        help="Argo CD is down: kubectl set image + rollout status first, then the git commit",
    )
    parser.add_argument("--sync", action="store_true", help="argocd app sync + wait after the push")
    parser.add_argument(
        "--revert", action="store_true", help="git revert the env's last overlay commit instead"
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="without TAG, roll back further even though the newest overlay commit is a rollback",
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    return _delivery.rollback(
        ctx, args.env, args.tag, pr=args.pr, push=args.push, emergency=args.emergency, sync=args.sync,
        revert=args.revert, controls=_delivery.overrides(args), registry_check=args.registry_check,
        again=args.again,
    )  # fmt: skip
