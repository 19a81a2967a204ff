"""``demo [--keep DIR]``: the whole runbook end to end in a throwaway sandbox, in under a minute.

The sandbox and the steps are :mod:`dex_tasks.scaffold.demo`. The tasks run as a user runs them:
``python -m dex_tasks <task> -C <sandbox repo> --json`` through :mod:`dex_tasks.proc`, one
process per step. That keeps the layering (a task module never imports the entry layer ``cli``),
gives every step the sandbox's own environment (git config, no tokens, no cluster) without
touching this process's, and is the most faithful test of the real CLI there is.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dex_tasks import proc
from dex_tasks._untrusted import parse_json
from dex_tasks.errors import EXIT_CHECK_FAILED, UsageError
from dex_tasks.scaffold import demo
from dex_tasks.tasks import Context, TaskResult, _args

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

STEP_TIMEOUT = 300.0  # one task of the demo (an image build is the slowest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        type=_args.value,
        metavar="DIR",
        help="make the sandbox in DIR (new or empty) and leave it there to explore",
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    keep = Path(args.keep).expanduser().resolve() if args.keep else None
    if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise UsageError(f"--keep {args.keep}: not an empty directory (the demo makes its sandbox there)")
    if ctx.dry_run:
        ctx.out("demo --dry-run: would make a sandbox repo with a bare origin and run init, build, scan,")
        ctx.out(
            "bump, promote dev -> stage -> prod, a bad deploy caught by verify, rollback, history, status"
        )
        return TaskResult(data={"sandbox": str(keep) if keep else None, "steps": []})
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    sandbox = keep or Path(tempfile.mkdtemp(prefix="dex-demo-"))
    env = demo.sandbox_env(sandbox)

    def run_cli(argv: Sequence[str]) -> tuple[int, dict[str, Any]]:
        done = proc.run(
            (sys.executable, "-m", "dex_tasks", *argv), check=False, env=env, timeout=STEP_TIMEOUT
        )
        try:
            data = parse_json(done.stdout)
        except ValueError:
            data = {}
        return done.returncode, data if isinstance(data, dict) else {}

    ctx.out(f"dex-tasks demo: the runbook end to end in {sandbox}")
    try:
        steps = demo.run_demo(sandbox, run_cli, ctx.out, task_names=ctx.task_names)
    finally:
        if keep is None:
            demo.remove(sandbox)
    failed = [step for step in steps if not step.ok]
    data = {"sandbox": str(sandbox), "kept": keep is not None, "steps": [step.as_json() for step in steps]}
    if keep is not None:
        ctx.out(f"the sandbox stays in {sandbox}: cd {sandbox / demo.APP} && git log --oneline --all")
    if failed:
        return TaskResult(
            exit_code=EXIT_CHECK_FAILED,
            message=f"demo step {failed[0].name!r} failed: {failed[0].detail}",
            data=data,
        )
    skipped = [step.name for step in steps if step.skipped]
    ctx.out(
        f"demo done: {len(steps)} steps"
        + (f" ({len(skipped)} skipped: {', '.join(skipped)})" if skipped else "")
    )
    return TaskResult(data=data)
