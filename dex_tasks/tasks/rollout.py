"""``rollout {status ENV [--watch] | promote ENV [--full] | abort ENV}``: Argo Rollouts, git authoritative.

The Rollout is ``[tool.dex] deployment`` in ENV's namespace, through ENV's kube context.
``status`` shows phase, step n/N, canary weight, the stable and canary (blue-green: preview)
images with their digests, and the update's AnalysisRuns (running ones in the summary line);
``--watch`` polls until Healthy, Paused or Degraded (at most ``cluster.rollout-timeout``
seconds; Degraded then exits 1). ``promote`` resumes to the next
pause (``--full``: to the end); ``abort`` sends all traffic back to the stable ReplicaSet *and*
commits ENV's overlay back to the stable image's tag (``--direct`` by default, ``--pr`` on
request), so Argo CD does not roll the aborted tag out again at its next sync. The patch is sent
once the rollback commit has passed its checks (tag in the history, registry, deploy controls),
so a refused rollback aborts nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, rollouts
from dex_tasks.errors import EXIT_CHECK_FAILED, UsageError
from dex_tasks.gitops import tags
from dex_tasks.tasks import Context, TaskResult, _args, _delivery
from dex_tasks.tools.kubectl import ImageRef

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = sub.add_parser("status", help="phase, step n/N, weight, stable and canary images")
    status.add_argument("env", metavar="ENV", help="the environment")
    status.add_argument(
        "--watch", action="store_true",
        help="poll until Healthy, Paused or Degraded (at most [tool.dex.cluster] rollout-timeout)",
    )  # fmt: skip
    status.add_argument("--interval", type=_args.pause, default=rollouts.POLL_INTERVAL, metavar="S",
                        help="seconds between polls with --watch (default 2)")  # fmt: skip
    promote = sub.add_parser("promote", help="resume a paused rollout to its next pause")
    promote.add_argument("env", metavar="ENV", help="the environment")
    promote.add_argument("--full", action="store_true", help="skip the remaining steps and pauses")
    abort = sub.add_parser("abort", help="back to the stable ReplicaSet, and the overlay back to its tag")
    abort.add_argument("env", metavar="ENV", help="the environment")
    _delivery.add_arguments(abort, default_pr=False)
    for p in (status, promote, abort):
        p.add_argument(
            "--context", type=_args.value, help="kubectl context (default: [tool.dex.cluster] context[s])"
        )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    ctx = ctx.with_config(cluster.with_context(ctx.config, args.context))
    env = ctx.config.check_env(args.env)
    if args.action == "status":
        return _status(ctx, env, args)
    if args.action == "promote":
        return _promote(ctx, env, full=args.full)
    return _abort(ctx, env, args)


def _show(ctx: Context, state: rollouts.RolloutState) -> None:
    ctx.out(state.summary())
    new = "preview" if state.strategy == "bluegreen" else "canary"
    for label, image, digest in (
        ("stable", state.stable_image, state.stable_digest),
        (new, state.new_image, state.new_digest),
    ):
        if image:
            ctx.out(f"  {label:<7} {image}" + (f" ({digest})" if digest else ""))
    for run in state.analysis:
        detail = f": {run.message}" if run.message else ""
        ctx.out(f"  analysis {run.name} {run.phase or 'Pending'} ({run.kind or 'run'}){detail}")


def _status(ctx: Context, env: str, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config
    if args.watch:
        state = rollouts.watch(cfg, env, timeout=cluster.rollout_timeout(cfg), interval=args.interval)
    else:
        state = rollouts.read(cfg, env)
    _show(ctx, state)
    data = state.as_json(env)
    if args.watch and state.phase == "Degraded":
        return TaskResult(exit_code=EXIT_CHECK_FAILED, message=f"rollout {state.summary()}", data=data)
    return TaskResult(data=data)


def _promote(ctx: Context, env: str, *, full: bool) -> TaskResult:
    before, done = rollouts.promote(ctx.config, env, full=full)
    verb = "would promote" if ctx.dry_run else "promoted"
    ctx.out(f"{verb} {before.namespace}/{before.name}{' fully' if full else ''} ({', '.join(done)})")
    data: dict[str, Any] = before.as_json(env)
    data.update({"action": "promote", "full": full, "done": done})
    return TaskResult(data=data)


def stable_tag(state: rollouts.RolloutState) -> str:
    """The tag of the stable ReplicaSet's image: what ENV's overlay goes back to (exit 2 if none)."""
    if not state.stable_image:
        raise UsageError(
            f"rollout {state.namespace}/{state.name}: no stable ReplicaSet image found: nothing changed"
        )
    tag = ImageRef.parse(state.stable_image).tag
    if not tag:
        raise UsageError(
            f"the stable image {state.stable_image} has no tag to put in the overlay: nothing changed"
        )
    tags.validate_tag(tag)
    return tag


def _abort(ctx: Context, env: str, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config
    state = rollouts.read(cfg, env, what="rollout abort")
    tag = stable_tag(state) if state.updating else ""
    if not state.updating:
        rollouts.abort(cfg, env, state)  # UsageError: nothing is in progress
    aborted: list[bool] = []

    def abort() -> None:
        # Once the rollback commit has passed every check (tag in the history, registry, deploy
        # controls): a refusal then changes neither the cluster nor git. Those checks take
        # seconds, so the Rollout is read again: an update that finished, or another revision
        # Argo CD synced meanwhile, is not what the user saw and asked to abort.
        now = rollouts.read(cfg, env, what="rollout abort")
        if not now.updating or (now.current_hash, now.stable_hash) != (state.current_hash, state.stable_hash):
            raise UsageError(
                f"rollout {now.summary()} changed since it was read (it was rolling {state.new_image} out "
                f"over stable {state.stable_image}): nothing changed; look again with: "
                f"dex-tasks rollout status {env}"
            )
        rollouts.abort(cfg, env, now)
        aborted.append(True)
        verb = "would abort" if ctx.dry_run else "aborted"
        ctx.out(f"{verb} {state.namespace}/{state.name}: {state.new_image} -> stable {state.stable_image}")

    try:
        result = _delivery.rollback(
            ctx, env, tag, pr=args.pr, push=args.push, controls=_delivery.overrides(args),
            registry_check=args.registry_check, before_write=abort,
        )  # fmt: skip
    except BaseException as exc:
        if aborted and not ctx.dry_run:
            ctx.warn(
                f"the rollout is aborted (the stable {state.stable_image} serves) but git was not "
                f"updated ({exc or type(exc).__name__}); Argo CD may roll the aborted tag out again: "
                f"follow up with: dex-tasks rollback {env} {tag} --direct"
            )
        raise
    result.data.update({
        "task": "rollout", "action": "abort", "aborted_image": state.new_image,
        "stable_image": state.stable_image,
    })  # fmt: skip
    return result
