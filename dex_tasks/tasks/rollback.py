"""``rollback ENV [TAG]``: back to the last known good tag (direct commit by default).

With no TAG, the overlay's history on its base branch picks the newest tag that is not the
current one and was not itself rolled back from. ``--emergency`` first sets the image with
kubectl (Argo CD down), then makes git match; ``--sync`` asks Argo CD to sync after the push;
``--revert`` is ``git revert`` of the env's last overlay commit.
"""

from __future__ import annotations

import argparse

from dex_tasks.errors import UsageError
from dex_tasks.tasks import Context, TaskResult
from dex_tasks.tasks.bump_overlay import add_delivery_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment to roll back")
    parser.add_argument(
        "tag", metavar="TAG", nargs="?", help="default: the last known good tag from git history"
    )
    add_delivery_arguments(parser, default_pr=False)
    parser.add_argument(
        "--emergency",
        action="store_true",
        help="Argo CD is down: kubectl set image + rollout status first, then the git commit",
    )
    parser.add_argument("--sync", action="store_true", help="argocd app sync + wait after the push")
    parser.add_argument(
        "--revert", action="store_true", help="git revert the env's last overlay commit instead"
    )
    # fmt: skip


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    return do_rollback(
        ctx, args.env, args.tag, pr=args.pr, push=args.push, emergency=args.emergency, sync=args.sync,
        revert=args.revert,
    )  # fmt: skip


def do_rollback(
    ctx: Context,
    env: str,
    tag: str | None = None,
    *,
    pr: bool = False,
    push: bool = True,
    emergency: bool = False,
    sync: bool = False,
    revert: bool = False,
) -> TaskResult:
    """Roll ``env`` back (see module docstring); also used by ``verify --rollback-on-failure``."""
    from dex_tasks.gitops import history, state, tags, workflow  # noqa: PLC0415 - keep the parser light
    from dex_tasks.tools import git  # noqa: PLC0415

    cfg = ctx.config
    env = cfg.check_env(env)
    if tag is not None:
        tags.validate_tag(tag)
    if revert and tag is not None:
        raise UsageError("--revert undoes the last overlay commit; it takes no TAG")
    if revert and emergency:
        raise UsageError("--revert and --emergency do not combine: use rollback --emergency ENV [TAG]")
    repo = state.open_repo(cfg)
    base = cfg.branch_for(env)
    path = repo.overlay_path(cfg, env)
    git.fetch(repo.root, base, unshallow=True)
    entries = history.deployments(repo.root, git.tracking(base), path, cfg.kustomize_image_name)
    current = state.read_tag_at(cfg, repo, env, git.tracking(base))
    revert_commit: str | None = None
    if revert:
        if not entries:
            raise UsageError(f"{path} on {base} has no deployment to revert")
        revert_commit = entries[0].commit
        tag = entries[0].previous_tag
        if tag is None:
            raise UsageError(
                f"{path} on {base}: the last overlay commit {revert_commit[:12]} has nothing before it"
            )
    elif tag is None:
        tag = history.last_known_good(entries, current)
        if tag is None:
            raise UsageError(
                f"no known good tag for {env} in the history of {path} on {base} "
                f"(current: {current or 'none'}); pass TAG"
            )
        ctx.out(f"last known good tag of {env}: {tag} (current: {current or 'none'})")
    elif not history.was_deployed(entries, tag):
        raise UsageError(f"{tag} was never deployed to {env} (not in the history of {path} on {base})")
    if emergency:
        from dex_tasks import cluster  # noqa: PLC0415 - kubectl only for emergencies

        if ctx.dry_run:
            ctx.out(f"would set the image of {env} to {tag} with kubectl and wait for the rollout")
        else:
            cluster.emergency_rollout(cfg, env, tag)
            ctx.out(f"{env} now runs {tag} (kubectl); making git match so Argo CD does not undo it")
    change = workflow.Change(
        action="rollback",
        envs=(env,),
        tag=tag,
        base=base,
        branch=f"rollback-{env}-{tag}",
        subject=f"fix: rollback {env} to {tag}",
        body=(f"Rolled back {env} from {current or '(none)'} to {tag} with dex-tasks"
              + (" (emergency: kubectl first)" if emergency else "") + ".",),
        pr_title=f"Rollback {env.title()} to {tag}",
        pr_body=f"Rolls **{env}** back from `{current or '(none)'}` to `{tag}`.",
        direct=not pr,
        push=push,
        revert_commit=revert_commit,
        labels=("rollback",),
    )  # fmt: skip
    try:
        outcome = workflow.apply(ctx, change)
    except Exception as exc:
        if emergency and not ctx.dry_run:
            # The cluster already runs the old tag: say exactly how to make git match by hand.
            ctx.warn(
                f"the cluster runs {tag} but git was not updated ({exc}); follow up with: "
                f"dex-tasks rollback {env} {tag} --direct"
            )
        raise
    if sync and outcome.pushed:
        from dex_tasks import cluster  # noqa: PLC0415

        if ctx.dry_run:
            ctx.out(f"would sync Argo CD app {cfg.app_for(env)}")
        else:
            cluster.argocd_sync(cfg, env)
    elif sync and ctx.dry_run:
        ctx.out(f"would sync Argo CD app {cfg.app_for(env)}")
    data = outcome.as_json()
    data["emergency"] = emergency
    data["revert"] = revert_commit
    return TaskResult(data=data)
