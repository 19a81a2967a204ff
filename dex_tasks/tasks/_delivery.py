"""What the writing tasks share: the delivery options, applying a Change, and the rollback core.

``bump-overlay``, ``promote`` and ``rollback`` deliver the same way (``--pr | --direct``,
``--no-push``) through :func:`dex_tasks.gitops.workflow.apply`; ``verify --rollback-on-failure``
runs the same rollback as ``rollback ENV``. Kept here, beside the tasks, so no task module
imports another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks import cluster
from dex_tasks.errors import UsageError
from dex_tasks.gitops import history, state, tags, workflow
from dex_tasks.insight import hooks
from dex_tasks.tasks import Context, TaskResult
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse

    from dex_tasks.gitops.state import Repo
    from dex_tasks.gitops.workflow import Change, Outcome


def add_arguments(parser: argparse.ArgumentParser, *, default_pr: bool) -> None:
    """``--pr | --direct`` and ``--no-push``, shared by bump-overlay, promote and rollback."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--pr",
        dest="pr",
        action="store_true",
        default=default_pr,
        help="push a branch and open (or update) a pull request" + (" (default)" if default_pr else ""),
    )
    mode.add_argument(
        "--direct",
        dest="pr",
        action="store_false",
        help="commit straight to the base branch" + ("" if default_pr else " (default)"),
    )
    parser.add_argument(
        "--no-push", dest="push", action="store_false", default=True,
        help="leave the commit on a local branch (your checkout is not touched) and say where",
    )  # fmt: skip


def apply(ctx: Context, change: Change, *, base_sha: str | None = None) -> Outcome:
    """:func:`dex_tasks.gitops.workflow.apply` for a task: its output, config and name."""

    outcome = workflow.apply(ctx, change, config=ctx.config, task=ctx.task, base_sha=base_sha)
    hooks.delivered(ctx, ctx.config, change, outcome)  # GitHub deployments + notification; never raises
    return outcome


def rollback(
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
    """``rollback ENV [TAG]`` (see :mod:`dex_tasks.tasks.rollback`); also ``verify --rollback-on-failure``."""

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
    base_sha = git.fetch(repo.root, base, unshallow=True)
    current = state.read_tag_at(cfg, repo, env, git.tracking(base))
    tag, revert_commit = _choose(ctx, repo, env, tag, current=current, revert=revert)
    if sync:
        # Before git changes: a --sync that cannot work must refuse, not fail after the push.
        cluster.check_sync_ready(cfg, env)
    if emergency:
        _emergency(ctx, env, tag)
    how = " (emergency: kubectl first)" if emergency else ""
    change = workflow.Change(
        action="rollback",
        envs=(env,),
        tag=tag,
        base=base,
        branch=f"rollback-{env}-{tag}",
        subject=f"fix: rollback {env} to {tag}",
        body=(f"Rolled back {env} from {current or '(none)'} to {tag} with dex-tasks{how}.",),
        pr_title=f"Rollback {cfg.env_title(env)} to {tag}",
        pr_body=f"Rolls **{env}** back from `{current or '(none)'}` to `{tag}`{how}.",
        direct=not pr,
        push=push,
        revert_commit=revert_commit,
        labels=("rollback",),
    )
    try:
        outcome = apply(ctx, change, base_sha=base_sha)
    except BaseException as exc:
        if emergency and not ctx.dry_run:
            # The cluster already runs the old tag: say exactly how to make git match by hand,
            # or Argo CD's self-heal puts the bad tag back when it returns.
            ctx.warn(
                f"the cluster runs {tag} but git was not updated ({exc or type(exc).__name__}); "
                f"follow up with: dex-tasks rollback {env} {tag} --direct"
            )
        raise
    if sync:
        if ctx.dry_run:
            ctx.out(f"would sync Argo CD app {cfg.app_for(env)} and wait for it")
        elif outcome.pushed:
            cluster.argocd_sync(cfg, env)
        else:
            ctx.out("--sync skipped: nothing was pushed")
    data = outcome.as_json()
    data["emergency"] = emergency
    data["revert"] = revert_commit
    return TaskResult(data=data)


def _choose(
    ctx: Context, repo: Repo, env: str, tag: str | None, *, current: str | None, revert: bool
) -> tuple[str, str | None]:
    """The tag to roll back to, and the commit to revert (``--revert``); exit 2 when there is none."""

    cfg = ctx.config
    base = cfg.branch_for(env)
    path = repo.overlay_path(cfg, env)
    entries = history.deployments(repo.root, git.tracking(base), path, cfg.kustomize_image_name)
    if revert:
        if not entries:
            raise UsageError(f"{path} on {base} has no deployment to revert")
        last = entries[0]
        if len(git.parents(repo.root, last.commit)) > 1:
            raise UsageError(
                f"the last overlay commit {last.commit[:12]} is a merge: use rollback {env} TAG instead"
            )
        others = [p for p in git.changed_paths(repo.root, last.commit) if p != path]
        if others:
            # git revert would undo those too (e.g. the other env of a stage+prod bump).
            raise UsageError(
                f"the last overlay commit {last.commit[:12]} also changes {', '.join(others)}: "
                f"use rollback {env} {last.previous_tag or 'TAG'} instead of --revert"
            )
        if last.previous_tag is None:
            raise UsageError(
                f"{path} on {base}: the last overlay commit {last.commit[:12]} has nothing before it"
            )
        if last.previous_tag in history.known_bad(entries):
            # E.g. the last commit is itself a rollback: reverting it would redeploy the tag it moved
            # away from, and record the good tag as rolled back from (known bad) in the audit trail.
            raise UsageError(
                f"--revert of {last.commit[:12]} would bring back {last.previous_tag}, which was rolled back "
                f"from before (known bad); use rollback {env} TAG to pick the tag"
            )
        return last.previous_tag, last.commit
    if tag is None:
        found = history.last_known_good(entries, current)
        if found is None:
            raise UsageError(
                f"no known good tag for {env} in the history of {path} on {base} "
                f"(current: {current or 'none'}); pass TAG"
            )
        ctx.out(f"last known good tag of {env}: {found} (current: {current or 'none'})")
        return found, None
    if not history.was_deployed(entries, tag):
        raise UsageError(f"{tag} was never deployed to {env} (not in the history of {path} on {base})")
    if tag in history.known_bad(entries):
        # Asked for by name, so allowed; but the last-known-good rule would never pick it.
        ctx.warn(f"{tag} was rolled back from before in {env} (known bad); rolling back to it as asked")
    return tag, None


def _emergency(ctx: Context, env: str, tag: str) -> None:

    # Under --dry-run too: its read-only checks (kubectl, access, deployment, container) run and
    # `set image` is only printed, so a dry run fails where the real run would.
    cluster.emergency_rollout(ctx.config, env, tag)
    if ctx.dry_run:
        ctx.out(f"would set the image of {env} to {tag} with kubectl and wait for the rollout")
    else:
        ctx.out(f"{env} now runs {tag} (kubectl); making git match so Argo CD does not undo it")
