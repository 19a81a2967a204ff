"""``lock ENV --reason TEXT [--expires DURATION]``, ``unlock ENV [--force]``, ``locks``.

The lock is a ref on origin (:mod:`dex_tasks.gitops.locks`), so a laptop and CI see the same one
and no server beyond origin is needed. ``lock`` on your own lock updates its reason and expiry
(the ``since`` stays); on someone else's live lock it exits 1; an expired lock is replaced.
``unlock`` removes your lock, or an expired one; someone else's live lock needs ``--force``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dex_tasks import durations
from dex_tasks.errors import EXIT_CHECK_FAILED, RemoteError
from dex_tasks.gitops import locks, state
from dex_tasks.tasks import Context, TaskResult, _args, table

if TYPE_CHECKING:
    import argparse
    from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment to lock")
    parser.add_argument("--reason", required=True, type=_args.text, help="why (others see it when refused)")
    parser.add_argument(
        "--expires", metavar="DURATION", type=_args.text,
        help="the lock ends by itself after 30s, 15m, 2h, 7d (default: when unlocked)",
    )  # fmt: skip


def add_unlock_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment to unlock")
    parser.add_argument("--force", action="store_true", help="remove someone else's lock (it is not yours)")


def add_locks_arguments(parser: argparse.ArgumentParser) -> None:
    """``locks`` takes no arguments of its own."""


def _result(task: str, env: str, lock: locks.Lock | None, *, locked: bool, changed: bool) -> dict[str, Any]:
    fields = lock.as_json() if lock else {"by": None, "reason": None, "since": None, "expires": None}
    return {"task": task, **fields, "env": env, "locked": locked, "changed": changed}


def _root(ctx: Context) -> Path:
    return state.open_repo(ctx.config).root


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    env = ctx.config.check_env(args.env)
    reason = locks.check_reason(args.reason)
    now = durations.now()
    # `is not None`: an empty --expires (an unset "$TTL") is an invalid duration, not "never".
    expires = now + durations.parse_duration(args.expires) if args.expires is not None else None
    root = _root(ctx)
    me = locks.identity(root)
    current = locks.read(root, env)
    if current is not None and not current.expired(now) and current.by != me:
        return TaskResult(
            exit_code=EXIT_CHECK_FAILED,
            message=f"{env} is already locked by {current.describe()}",
            data=_result("lock", env, current, locked=True, changed=False),
        )
    ours = current is not None and not current.expired(now)
    if current is not None and ours and current.reason == reason and current.expires == expires:
        ctx.out(f"{env} is already locked by you: {reason}")
        return TaskResult(data=_result("lock", env, current, locked=True, changed=False))
    since = current.since if current is not None and ours else now
    wanted = locks.Lock(env=env, sha="", by=me, reason=reason, since=since or now, expires=expires)
    sha = locks.make_commit(root, wanted, now)
    pushed = locks.push(root, env, sha, expect=current.sha if current else None)
    if not pushed.ok:
        return _lost(root, env, "lock", pushed.detail, expected=current.sha if current else None)
    verb = "would lock" if ctx.dry_run else ("updated the lock of" if ours else "locked")
    ctx.out(f"{verb} {env}: {wanted.describe()}")
    return TaskResult(data=_result("lock", env, wanted, locked=True, changed=True))


def _lost(root: Path, env: str, task: str, detail: str, *, expected: str | None) -> TaskResult:
    """The push was refused. Someone moved the lock between our read and our push (exit 1: they
    won), or it did not move and the push failed for another reason (exit 4)."""
    after = locks.read(root, env)
    if (after.sha if after else None) == expected:
        raise RemoteError(f"{task} {env}: push to {locks.ref(env)} was rejected: {detail}")
    what = f"now locked by {after.describe()}" if after else "now unlocked"
    return TaskResult(
        exit_code=EXIT_CHECK_FAILED,
        message=f"{env} changed on origin while we wrote ({what}); nothing was changed",
        data=_result(task, env, after, locked=after is not None, changed=False),
    )


def run_unlock(ctx: Context, args: argparse.Namespace) -> TaskResult:
    env = ctx.config.check_env(args.env)
    now = durations.now()
    root = _root(ctx)
    current = locks.read(root, env)
    if current is None:
        ctx.out(f"{env} is not locked: nothing to do")
        return TaskResult(data=_result("unlock", env, None, locked=False, changed=False))
    me = locks.identity(root)
    if current.by != me and not current.expired(now) and not args.force:
        return TaskResult(
            exit_code=EXIT_CHECK_FAILED,
            message=f"{env} is locked by {current.describe()}, not by you ({me}); use --force to remove it",
            data=_result("unlock", env, current, locked=True, changed=False),
        )
    pushed = locks.push(root, env, None, expect=current.sha)
    if not pushed.ok:
        return _lost(root, env, "unlock", pushed.detail, expected=current.sha)
    if current.by != me and not current.expired(now):
        ctx.warn(f"removed the lock of {current.by} on {env} (--force): {current.reason}")
    ctx.out(f"{'would unlock' if ctx.dry_run else 'unlocked'} {env} (was: {current.describe()})")
    return TaskResult(data=_result("unlock", env, current, locked=False, changed=True))


def run_locks(ctx: Context, args: argparse.Namespace) -> TaskResult:  # noqa: ARG001 - the task signature
    now = durations.now()
    held = locks.read_all(_root(ctx))
    order = {env: i for i, env in enumerate(ctx.config.environments)}
    rows = sorted(held.values(), key=lambda lock: (order.get(lock.env, len(order)), lock.env))
    if rows:
        body = [
            [lock.env, lock.by, lock.reason, durations.iso(lock.since) if lock.since else "?",
             (durations.iso(lock.expires) if lock.expires else "never")
             + (" (expired)" if lock.expired(now) else "")]
            for lock in rows
        ]  # fmt: skip
        ctx.out(table(["ENV", "BY", "REASON", "SINCE", "EXPIRES"], body))
    else:
        ctx.out("no env is locked")
    return TaskResult(data={"locks": [{**lock.as_json(), "expired": lock.expired(now)} for lock in rows]})
