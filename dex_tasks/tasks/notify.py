"""``notify --test``: send a sample notification to every configured target.

Targets come from ``DEX_SLACK_WEBHOOK_URL`` and ``DEX_WEBHOOK_URL`` (signed with
``DEX_WEBHOOK_SECRET``); see :mod:`dex_tasks.insight.notify`. Exit 4 when a target still failed
after its retries (here, unlike after a deployment, failing is the point of the test), exit 2
when there is no target or no ``--test``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dex_tasks.errors import EXIT_REMOTE, UsageError
from dex_tasks.insight import deployments, notify
from dex_tasks.tasks import Context, TaskResult

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--test", action="store_true", help="send a sample message to every configured target"
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    if not args.test:
        raise UsageError("nothing to do: notify --test sends a sample notification")
    names = notify.targets()
    if not names:
        raise UsageError(f"no notification target: set {notify.SLACK_ENV} and/or {notify.WEBHOOK_ENV}")
    # A target that cannot be sent to is a configuration error, found before anything is sent
    # (to the other target either): exit 2, not 4 as for a target that answered badly.
    problems = [problem for name in names if (problem := notify.target_problem(name)) is not None]
    if problems:
        raise UsageError("; ".join(problems))
    cfg = ctx.config
    event = notify.Event(
        kind="test", envs=tuple(cfg.notify.envs or cfg.environments), tag=None,
        detail="a test notification from dex-tasks notify --test",
        repository=os.environ.get("GITHUB_REPOSITORY") or None, run_url=deployments.run_url(),
    )  # fmt: skip
    result = notify.send(ctx, event)
    failed = {name: why for name, why in result.items() if why is not None}
    data = {
        "targets": names,
        "sent": [n for n in names if n in result and result[n] is None],
        "failed": failed,
    }
    if ctx.dry_run:
        return TaskResult(data=data)
    if failed:
        detail = "; ".join(f"{name}: {why}" for name, why in failed.items())
        return TaskResult(exit_code=EXIT_REMOTE, message=f"notification not delivered: {detail}", data=data)
    return TaskResult(data=data)
