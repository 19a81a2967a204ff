"""``promote FROM TO [TAG]``: put the tag FROM runs into TO's overlay (PR by default).

TAG defaults to what FROM's overlay holds on FROM's base branch. Refused (exit 1, nothing written)
when TAG is not what FROM runs - in git, and live when a cluster is reachable (``--verify``) -
unless ``--force``, which the commit records (``Dex-Forced: true``). TO must be the env after FROM.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from dex_tasks import cluster
from dex_tasks.errors import EXIT_CHECK_FAILED, UsageError
from dex_tasks.gitops import state, tags, workflow
from dex_tasks.insight import release_notes
from dex_tasks.supply import digests
from dex_tasks.tasks import Context, TaskResult, _args, _delivery
from dex_tasks.tools import git

if TYPE_CHECKING:
    import argparse

    from dex_tasks.gitops.state import Repo

VERIFY_MODES = ("auto", "git", "live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("from_env", metavar="FROM", help="the environment the tag comes from (e.g. stage)")
    parser.add_argument("to_env", metavar="TO", help="the environment to update (must follow FROM)")
    parser.add_argument(
        "tag", metavar="TAG", nargs="?", type=_args.value, help="default: the tag FROM's overlay holds"
    )
    _delivery.add_arguments(parser, default_pr=True)
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote even if TAG is not what FROM runs, TO is not the next env, or TO needs a passing "
        "scan verdict that the digest lacks (recorded in the commit)",
    )
    parser.add_argument(
        "--verify", choices=VERIFY_MODES, default="auto",
        help="git: only the overlay; live: also the cluster (fail without access); "
        "auto (default): live when a cluster is reachable",
    )  # fmt: skip


@git.remembering_origin()  # its fetches and the write ask origin's URLs once
def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    cfg = ctx.config
    source, target = cfg.check_env(args.from_env), cfg.check_env(args.to_env)
    if args.tag is not None:
        tags.validate_tag(args.tag)
    if source == target:
        raise UsageError(f"cannot promote {source} to itself")
    expected = cfg.next_env(source)
    if target != expected and not args.force:
        nxt = (
            f"the next environment after {source} is {expected}"
            if expected
            else f"{source} is the last environment"
        )
        raise UsageError(
            f"refusing to promote {source} -> {target}: {nxt} (use --force to skip environments)"
        )
    repo = state.open_repo(cfg)
    source_base, target_base = cfg.branch_for(source), cfg.branch_for(target)
    source_sha = git.fetch(repo.root, source_base)
    running = state.read_tag_at(cfg, repo, source, git.tracking(source_base))
    tag = args.tag or running
    if tag is None:
        raise UsageError(f"{repo.overlay_path(cfg, source)} on {source_base} has no tag to promote; pass TAG")
    tags.validate_tag(tag)
    # One fetch per branch: stage and prod often share main, and workflow.apply starts from it.
    target_sha = git.fetch(repo.root, target_base) if source_base != target_base else source_sha
    old = state.read_tag_at(cfg, repo, target, git.tracking(target_base))
    forced_reasons: list[str] = []
    if target != expected:
        forced_reasons.append(f"{target} is not the next environment after {source}")
    if tag != running:
        problem = (
            f"{tag} is not what {source} runs: its overlay on {source_base} says {running or '(no tag)'}"
        )
        if not args.force:
            return _refused(problem, source=source, target=target, tag=tag, base=target_base, previous=old)
        forced_reasons.append(problem)
    # Registry truth before any write: the tag must be there, and its digest is what FROM must run.
    with digests.RegistryCheck(cfg, off=not args.registry_check) as check:
        digest = check.require(tag)
        live_problem = _verify_live(ctx, source, tag, args.verify, digest=digest)
        scan_problems = check.scan_problems([target], digest)
    for problem in ([live_problem] if live_problem else []) + scan_problems:
        if not args.force:
            return _refused(
                problem, source=source, target=target, tag=tag, base=target_base, previous=old, digest=digest
            )
        forced_reasons.append(problem)
    body = [f"Promoted from {source} to {target} with dex-tasks."]
    body += [f"Forced: {reason}." for reason in forced_reasons]
    change = workflow.Change(
        action="promote",
        envs=(target,),
        tag=tag,
        base=target_base,
        branch=f"promote-{target}-{tag}",
        subject=f"chore: promote {tag} to {target}",
        body=tuple(body),
        pr_title=f"Promote {tag} to {cfg.env_title(target)}",
        pr_body=functools.partial(
            _pr_body, ctx, repo, source, target, old=old, new=tag, forced=forced_reasons
        ),
        direct=not args.pr,
        push=args.push,
        from_env=source,
        forced=bool(forced_reasons),
        digests={target: digest},
        registry_check=check.state,
    )
    outcome = _delivery.apply(ctx, change, base_sha=target_sha, controls=_delivery.overrides(args), repo=repo)
    return TaskResult(data=outcome.as_json())


def _refused(
    problem: str,
    *,
    source: str,
    target: str,
    tag: str,
    base: str,
    previous: str | None,
    digest: str | None = None,
) -> TaskResult:
    # The same GitOps keys as a promotion that happened (built by the same Outcome), plus why not.
    outcome = workflow.Outcome(
        changed=False, envs=(target,), tag=tag, previous_tags={target: previous}, base=base, from_env=source,
        digests={target: digest}, registry_check="passed" if digest else "off",
    )  # fmt: skip
    return TaskResult(
        exit_code=EXIT_CHECK_FAILED,
        message=f"promotion refused: {problem}; nothing was written (use --force to override)",
        data={**outcome.as_json(), "refused": problem},
    )


def _verify_live(ctx: Context, env: str, tag: str, mode: str, *, digest: str | None) -> str | None:
    """None when FROM is fine (or was not checked); else what runs instead.

    ``digest``: the registry's digest of the tag; FROM's pods must run it (a re-pushed tag is caught).
    """
    if mode == "git":
        return None
    check = cluster.check_live(ctx.config, env, tag, required=mode == "live", digest=digest)
    if not check.checked:
        ctx.out(f"only git was checked ({check.detail})" if check.detail else "only git was checked")
        return None
    if not check.ok:
        return check.detail
    ctx.out(f"{env} runs {tag} live: {check.detail}" if check.detail else f"{env} runs {tag} live")
    return None


def _pr_body(
    ctx: Context, repo: Repo, source: str, target: str, *, old: str | None, new: str, forced: list[str]
) -> str:

    lines = [
        f"Promotes `{new}` from **{source}** to **{target}**.",
        "",
        "| | tag |",
        "| --- | --- |",
        f"| {target} before | `{old or '(none)'}` |",
        f"| {target} after | `{new}` |",
        "",
    ]
    lines += [f"**Forced:** {reason}." for reason in forced]
    lines.append(release_notes.pr_section(ctx.config, repo, old, new))
    return "\n".join(lines)
