"""What the writing tasks share: the delivery options, applying a Change, and the rollback core.

``bump-overlay``, ``promote`` and ``rollback`` deliver the same way (``--pr | --direct``,
``--no-push``) through :func:`dex_tasks.gitops.workflow.apply`; ``verify --rollback-on-failure``
runs the same rollback as ``rollback ENV``. Kept here, beside the tasks, so no task module
imports another.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from dex_tasks import cluster
from dex_tasks.controls import guard
from dex_tasks.errors import AlreadyRolledBackError, RolloutIncompleteError, UsageError
from dex_tasks.gitops import history, overlay, state, tags, workflow
from dex_tasks.insight import hooks
from dex_tasks.supply import digests
from dex_tasks.tasks import Context, TaskResult
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Iterator

    from dex_tasks.config import Config
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
    parser.add_argument(
        "--break-lock",
        action="store_true",
        help="deploy into an env someone else locked (recorded: Dex-Lock-Broken)",
    )
    parser.add_argument("--break-freeze", action="store_true",
                        help="deploy during a freeze window (recorded: Dex-Freeze-Broken)")  # fmt: skip
    parser.add_argument(
        "--no-registry-check", dest="registry_check", action="store_false", default=True,
        help="this once, do not ask the registry whether the tag exists (recorded: Dex-Registry-Check: off)",
    )  # fmt: skip


def overrides(args: argparse.Namespace) -> guard.Overrides:
    """The deploy controls' override flags of a writing task's arguments."""
    return guard.Overrides(
        break_lock=args.break_lock, break_freeze=args.break_freeze, force=getattr(args, "force", False),
        emergency=getattr(args, "emergency", False),
    )  # fmt: skip


def apply(
    ctx: Context,
    change: Change,
    *,
    base_sha: str | None = None,
    controls: guard.Overrides | None = None,
    repo: Repo | None = None,
    before_write: Callable[[], None] | None = None,
) -> Outcome:
    """:func:`dex_tasks.gitops.workflow.apply` for a task: its output, config and name, after the
    deploy controls (lock, freeze, soak: :mod:`dex_tasks.controls.guard`) let it through.

    ``repo``: the task's :func:`~dex_tasks.gitops.state.open_repo` (None opens it here), so a
    write asks git where the repository is once, not once per layer. ``before_write``: run once
    every check has let the change through, just before git is written (``rollout abort``'s
    patch: a refused rollback must not leave the Rollout aborted)."""

    with git.remembering_origin():  # the locks, the fetch and the push ask origin's URL once
        return _apply(ctx, change, base_sha=base_sha, controls=controls, repo=repo, before_write=before_write)


def _apply(
    ctx: Context,
    change: Change,
    *,
    base_sha: str | None,
    controls: guard.Overrides | None,
    repo: Repo | None,
    before_write: Callable[[], None] | None = None,
) -> Outcome:
    repo = repo or state.open_repo(ctx.config)
    verdict = guard.check(
        ctx, ctx.config, repo, change.envs, action=change.action,
        overrides=controls or guard.Overrides(), from_env=change.from_env, tag=change.tag,
    )  # fmt: skip
    change = dataclasses.replace(
        change, extra_trailers=(*change.extra_trailers, *verdict.trailers),
        forced=change.forced or bool(verdict.forced),
        body=(*change.body, *(f"Forced: {reason}." for reason in verdict.forced)),
    )  # fmt: skip
    if before_write is not None:
        before_write()
    outcome = workflow.apply(ctx, change, config=ctx.config, task=ctx.task, base_sha=base_sha, repo=repo)
    hooks.delivered(ctx, ctx.config, change, outcome)  # GitHub deployments + notification; never raises
    return outcome


@git.remembering_origin()  # its fetch and the write ask origin's URLs once
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
    controls: guard.Overrides | None = None,
    registry_check: bool = True,
    again: bool = False,
    before_write: Callable[[], None] | None = None,
) -> TaskResult:
    """``rollback ENV [TAG]`` (see :mod:`dex_tasks.tasks.rollback`); also ``verify --rollback-on-failure``
    and ``rollout abort`` (``before_write``: its patch, once every refusal is past; see :func:`apply`)."""

    cfg = ctx.config
    env = cfg.check_env(env)
    if tag is not None:
        tags.validate_tag(tag)
    if revert and tag is not None:
        raise UsageError("--revert undoes the last overlay commit; it takes no TAG")
    if again and tag is not None:
        # A TAG names where to go, so "one more back" means nothing: refused rather than ignored,
        # as a caller passing both (a workflow with a tag input and an `again` box) meant one of them.
        raise UsageError(
            f"--again rolls back one more tag from history; it takes no TAG (rollback {env} {tag})"
        )
    if revert and emergency:
        raise UsageError("--revert and --emergency do not combine: use rollback --emergency ENV [TAG]")
    repo = state.open_repo(cfg)
    base = cfg.branch_for(env)
    base_sha = git.fetch(repo.root, base, unshallow=True)
    current = state.read_tag_at(cfg, repo, env, git.tracking(base))
    # Registry truth before any write (the emergency's kubectl included); read-only, so also dry-run.
    with digests.RegistryCheck(cfg, off=not registry_check) as check:
        tag, revert_commit = _choose(
            ctx, repo, env, tag, current=current, revert=revert, check=check, again=again
        )
        digest = check.require(tag)
    if sync:
        # Before git changes: a --sync that cannot work must refuse, not fail after the push.
        cluster.check_sync_ready(cfg, env)
    if emergency:
        _emergency(ctx, env, tag, digest or _known_digest(repo, cfg, env, tag))
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
        digests={env: digest},
        registry_check=check.state,
    )
    try:
        controls = dataclasses.replace(controls or guard.Overrides(), emergency=emergency)
        outcome = apply(
            ctx, change, base_sha=base_sha, controls=controls, repo=repo, before_write=before_write
        )
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
    ctx: Context,
    repo: Repo,
    env: str,
    tag: str | None,
    *,
    current: str | None,
    revert: bool,
    check: digests.RegistryCheck,
    again: bool = False,
) -> tuple[str, str | None]:
    """The tag to roll back to, and the commit to revert (``--revert``); exit 2 when there is none."""

    cfg = ctx.config
    base = cfg.branch_for(env)
    path = repo.overlay_path(cfg, env)
    entries = history.deployments(repo.root, git.tracking(base), path, cfg.kustomize_image_name, env)
    if revert:
        if not entries:
            raise UsageError(f"{path} on {base} has no deployment to revert")
        last = entries[0]
        if len(git.parents(repo.root, last.commit)) > 1:
            raise UsageError(
                f"the last overlay commit {last.commit[:12]} is a merge: use rollback {env} TAG instead"
            )
        # A commit that also changed other files (CD's stage/prod commit): workflow reverts only
        # this env's file, and only while it still holds what that commit wrote.
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
        newest = git.log(repo.root, git.tracking(base), path, limit=1)
        # The newest commit of the file, not of its tag changes: a later hand edit means a person
        # looked at it since; a re-run job finds its own rollback on top.
        top = entries[0] if entries and newest and entries[0].commit == newest[0].sha else None
        if top is not None and top.action == history.ROLLBACK and not again:
            _refuse_second_rollback(env, top, current=current, base=base)
        gone: list[str] = []
        found = None
        for candidate in _builds(ctx, history.known_good(entries, current)):
            if check.exists(candidate):
                found = candidate
                break
            gone.append(candidate)
            ctx.warn(f"skipping {candidate}: {cfg.image}:{candidate} is no longer in the registry")
        if found is None:
            skipped = f"; {len(gone)} good tag(s) are no longer in the registry" if gone else ""
            raise UsageError(
                f"no known good tag for {env} in the history of {path} on {base} "
                f"(current: {current or 'none'}{skipped}); pass TAG"
            )
        ctx.out(f"last known good tag of {env}: {found} (current: {current or 'none'})")
        return found, None
    if not history.was_deployed(entries, tag):
        raise UsageError(f"{tag} was never deployed to {env} (not in the history of {path} on {base})")
    if tag in history.known_bad(entries):
        # Asked for by name, so allowed; but the last-known-good rule would never pick it.
        ctx.warn(f"{tag} was rolled back from before in {env} (known bad); rolling back to it as asked")
    return tag, None


def _builds(ctx: Context, candidates: Iterable[str]) -> Iterator[str]:
    """The ``sha-<hex>`` tags among ``candidates``, lazily; the others are warned about and skipped.
    An old hand edit (``newTag: !!int 1234567``, bytes that are not UTF-8) is in the history, but no
    build of ours, and writing it would be refused after the candidate was chosen."""
    for candidate in candidates:
        if tags.is_sha_tag(candidate):
            yield candidate
        else:
            ctx.warn(f"skipping {tags.shown(candidate)}: not a sha-<hex> tag (a hand edit in the history)")


def _refuse_second_rollback(env: str, last: history.Deployment, *, current: str | None, base: str) -> None:
    """A re-run rollback job must not go a second tag back: the newest overlay commit already is one."""
    refused = workflow.Outcome(
        changed=False, envs=(env,), tag=current or last.tag, previous_tags={env: current}, base=base
    )
    data = {**refused.as_json(), "emergency": False, "revert": None, "rolled_back_by": last.commit}
    raise AlreadyRolledBackError(
        f"{env} was already rolled back: its newest overlay commit {last.commit[:12]} is a rollback to "
        f"{last.tag} (from {last.rolled_back_from or 'none'}); rolling back again without TAG would go "
        f"one more tag back: pass --again to do that, or name the tag: rollback {env} TAG",
        data=data,
    )


def _known_digest(repo: Repo, cfg: Config, env: str, tag: str) -> str | None:
    """The digest ENV ran ``tag`` at, from its history (``Dex-Digest`` trailer, a pin-digest
    overlay's ``digest:``), when no registry was asked; None: unknown."""
    path = repo.overlay_path(cfg, env)
    entries = history.deployments(
        repo.root, git.tracking(cfg.branch_for(env)), path, cfg.kustomize_image_name, env
    )
    # A trailer is text anyone can write: one that is no sha256 digest is unknown, not pinned
    # (``image:tag@<junk>`` is InvalidImageName in the cluster, and a bad trailer on the commit).
    return next(
        (
            entry.digest
            for entry in entries
            if entry.tag == tag and entry.digest and overlay.DIGEST_RE.fullmatch(entry.digest)
        ),
        None,
    )


def _emergency(ctx: Context, env: str, tag: str, digest: str | None) -> None:

    # Under --dry-run too: its read-only checks (kubectl, access, deployment, container) run and
    # `set image` is only printed, so a dry run fails where the real run would.
    try:
        cluster.emergency_rollout(ctx.config, env, tag, digest=digest)
    except RolloutIncompleteError as exc:
        # The workload already names the rollback image; git still names the bad tag, and Argo
        # CD's self-heal would put it back: say how to make git match once the rollout is done.
        exc.message += f"; once it runs, make git match with: dex-tasks rollback {env} {tag} --direct"
        raise
    what = f"{tag}@{digest}" if digest else tag
    how = "patch the Rollout" if ctx.config.cluster.workload == "Rollout" else "set the image"
    if ctx.dry_run:
        ctx.out(f"would {how} of {env} to {what} with kubectl and wait for the rollout")
    else:
        ctx.out(f"{env} now runs {what} (kubectl); making git match so Argo CD does not undo it")
