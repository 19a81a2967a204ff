"""``bump-overlay ENV [ENV...] TAG``: set the image tag in env overlays, then PR (default) or push.

The CD step: ``bump-overlay dev sha-1a2b3c4d`` opens ``dex/bump-dev-sha-1a2b3c4d`` -> ``dev``;
``bump-overlay stage prod sha-1a2b3c4d`` makes one commit and one PR to ``main``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dex_tasks.errors import ScanGateError, UsageError
from dex_tasks.gitops import state, tags, workflow
from dex_tasks.supply import digests
from dex_tasks.tasks import Context, TaskResult, _delivery

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # argparse renders nargs="+" as `ENV [ENV...] TAG [ENV [ENV...] TAG ...]`: say it as meant.
    parser.usage = "%(prog)s [options] ENV [ENV...] TAG"
    parser.add_argument(
        "targets", nargs="+", metavar="ENV [ENV...] TAG", help="environments, then the image tag"
    )
    _delivery.add_arguments(parser, default_pr=True)
    parser.add_argument(
        "--force",
        action="store_true",
        help="bump even if an env of scan.required-for lacks a passing scan verdict (recorded in the commit)",
    )


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    cfg = ctx.config
    if len(args.targets) < 2:
        raise UsageError(
            "bump-overlay needs at least one environment and a tag: bump-overlay ENV [ENV...] TAG"
        )
    *envs, tag = args.targets
    tags.validate_tag(tag)
    for env in envs:
        cfg.check_env(env)
    if len(set(envs)) != len(envs):
        raise UsageError(f"environment listed twice: {' '.join(envs)}")
    bases = {cfg.branch_for(env) for env in envs}
    if len(bases) > 1:
        detail = ", ".join(f"{env} on {cfg.branch_for(env)}" for env in envs)
        raise UsageError(
            f"the environments live on different branches ({detail}): run bump-overlay once per branch"
        )
    base = bases.pop()
    repo = state.open_repo(cfg)  # not a git repository: exit 2 before the registry is asked
    # Registry truth and the scan gate before any write (read-only: --dry-run asks too).
    with digests.RegistryCheck(cfg, off=not args.registry_check) as check:
        digest = check.require(tag)
        problems = check.scan_problems(envs, digest)
    if problems and not args.force:
        raise ScanGateError(f"{problems[0]}; nothing was written (--force overrides, recorded in the commit)")
    label = "/".join(envs)
    title = f"chore: update {label} image to {tag}"
    change = workflow.Change(
        action="bump",
        envs=tuple(envs),
        tag=tag,
        base=base,
        branch=f"dex/bump-{'-'.join(envs)}-{tag}",
        subject=title,
        body=tuple(f"Forced: {problem}." for problem in problems),
        pr_title=title,
        pr_body=_pr_body(envs, tag, base, digest=digest, forced=problems),
        direct=not args.pr,
        push=args.push,
        forced=bool(problems),
        digests=dict.fromkeys(envs, digest),
        registry_check=check.state,
    )
    outcome = _delivery.apply(ctx, change, controls=_delivery.overrides(args), repo=repo)
    return TaskResult(data=outcome.as_json())


def _pr_body(envs: list[str], tag: str, base: str, *, digest: str | None, forced: list[str]) -> str:
    lines = [f"Updates the image tag of {', '.join(f'`{e}`' for e in envs)} to `{tag}` on `{base}`.", ""]
    lines += [f"Digest: `{digest}`" if digest else "The registry was not checked (registry check off).", ""]
    lines += [f"**Forced:** {problem}." for problem in forced]
    lines.append("Made by `dex-tasks bump-overlay`; merging it lets Argo CD deploy the new image.")
    return "\n".join(lines)
