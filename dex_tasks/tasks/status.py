"""``status [ENV...]``: per env, the tag in git, the image live, Argo CD sync/health, and DRIFT.

Git is the overlay's tag on ``origin/<base branch>`` (fetched). Live is the image of the env's
deployment (kubectl). Argo CD columns appear when Argo CD is configured (``argocd`` on PATH and
``ARGOCD_SERVER`` set). A missing tool, kubeconfig or unreachable server shows as ``unknown`` with
the reason in the notes, never as a crash.

``DRIFT``: git and live name different tags, or Argo CD reports the app OutOfSync.

Exit code: 0 - status reports, drift included; ``--check`` makes drift (and unknown live state)
exit 1, for a scheduled drift alarm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, durations, gha, rollouts
from dex_tasks.controls import guard
from dex_tasks.errors import EXIT_CHECK_FAILED, AppNotFoundError, ClusterAccessError, DexError, ForbiddenError
from dex_tasks.gitops import locks, state
from dex_tasks.supply import digests
from dex_tasks.tasks import Context, TaskResult, table
from dex_tasks.tools import argocd
from dex_tasks.tools.kubectl import ImageRef

if TYPE_CHECKING:
    import argparse

    from dex_tasks.config import Config
    from dex_tasks.tools.kubectl import Deployment

UNKNOWN = "unknown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("envs", metavar="ENV", nargs="*", help="environments to show (default: all)")
    parser.add_argument(
        "--context", help="kubectl context (default: [tool.dex.cluster] context, else current)"
    )
    parser.add_argument("--no-fetch", dest="fetch", action="store_false", help="use origin/<base> as fetched")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when an env drifts or its live state is unknown"
    )


@dataclasses.dataclass(kw_only=True)
class EnvStatus:
    env: str
    git_tag: str | None = None
    live_image: str | None = None
    live_tag: str | None = None
    sync: str | None = None
    health: str | None = None
    revision: str | None = None
    drift: bool = False
    # the scan verdict of the git tag's digest: {"state": passed|failed|missing|unknown, "digest": ...}
    scan: dict[str, str | None] = dataclasses.field(
        default_factory=lambda: {"state": digests.SCAN_UNKNOWN, "digest": None}
    )
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def state(self) -> str:
        if self.drift:
            return "DRIFT"
        if self.git_tag is None or self.live_tag is None:
            return UNKNOWN
        return "ok"


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    ctx = ctx.with_config(cluster.with_context(ctx.config, args.context))
    cfg = ctx.config
    # dict.fromkeys: `status dev dev` is one row per env, in the order given.
    envs = list(dict.fromkeys(cfg.check_env(e) for e in args.envs)) or list(cfg.environments)
    rows, argo_skipped = collect(ctx, envs, fetch=args.fetch)
    headers = ["ENV", "GIT", "LIVE", "SYNC", "HEALTH", "REVISION", "SCAN", "STATE"]
    body = [
        [r.env, r.git_tag or UNKNOWN, r.live_tag or r.live_image or UNKNOWN, r.sync or "-", r.health or "-",
         (r.revision or "-")[:12], r.scan["state"] or UNKNOWN, r.state]
        for r in rows
    ]  # fmt: skip
    ctx.out(table(headers, body))
    controls = _controls(ctx, rows)
    for r in rows:
        for note in r.notes + controls[r.env].pop("notes"):
            ctx.out(f"  {r.env}: {note}")
    if argo_skipped:
        ctx.out(f"Argo CD not checked: {argo_skipped}")
    _summary(rows)
    drifting = [r.env for r in rows if r.drift]
    unknown = [r.env for r in rows if not r.drift and r.state == UNKNOWN]
    data: dict[str, Any] = {
        "envs": [{**r.as_json(), **controls[r.env]} for r in rows],
        "drift": drifting,
        "argocd": "checked" if argo_skipped is None else f"not checked: {argo_skipped}",
    }
    if args.check and (drifting or unknown):
        parts = []
        if drifting:
            parts.append(f"drift in {', '.join(drifting)}")
        if unknown:
            parts.append(f"live state unknown for {', '.join(unknown)}")
        return TaskResult(exit_code=EXIT_CHECK_FAILED, message="; ".join(parts), data=data)
    return TaskResult(data=data)


def collect(ctx: Context, envs: list[str], *, fetch: bool = True) -> tuple[list[EnvStatus], str | None]:
    """The rows, and why Argo CD was not asked (None when it was)."""
    rows = [EnvStatus(env=e) for e in envs]
    _git_tags(ctx, rows, fetch=fetch)
    _live(ctx, rows)
    _scan(ctx, rows)
    argo_skipped = _argo(ctx, rows)
    for row in rows:
        if row.git_tag and row.live_tag and row.git_tag != row.live_tag:
            row.drift = True
            row.notes.insert(0, f"git says {row.git_tag}, the cluster runs {row.live_tag}")
        if row.sync == "OutOfSync":
            row.drift = True
            row.notes.append("Argo CD reports the app OutOfSync")
    return rows, argo_skipped


def _controls(ctx: Context, rows: list[EnvStatus]) -> dict[str, dict[str, Any]]:
    """Each env's ``lock``, ``freeze`` and ``soak`` (:func:`dex_tasks.controls.guard.status`), and
    notes saying which would refuse a deploy now."""
    now = durations.now()
    repo: state.Repo | None = None
    try:
        repo = state.open_repo(ctx.config)
        held, unread = locks.read_all(repo.root), None
    except DexError as exc:
        held, unread = {}, f"locks {UNKNOWN}: {exc}"
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        found = guard.status(ctx.config, repo, row.env, row.git_tag, held=held, now=now)
        notes = [unread] if unread else []
        lock, frozen, soaked = found["lock"], found["freeze"], found["soak"]
        if lock and not lock["expired"]:
            notes.append(f"locked by {held[row.env].describe()}")
        if frozen and frozen["frozen"]:
            notes.append(f"frozen ({frozen['window']}) until {frozen['until']}")
        if soaked and not soaked["ok"] and soaked["remaining_s"] is not None:
            left = durations.describe(dt.timedelta(seconds=soaked["remaining_s"]))
            notes.append(f"soaking: {left} left of {soaked['required']} before {row.git_tag} may move on")
        result[row.env] = {**found, "notes": notes}
    return result


def _git_tags(ctx: Context, rows: list[EnvStatus], *, fetch: bool) -> None:

    fetched: set[str] = set()
    failed: dict[str, str] = {}
    for row in rows:
        base = ctx.config.branch_for(row.env)
        if base in failed:
            row.notes.append(failed[base])
            continue
        try:
            row.git_tag = state.tag_in_git(ctx.config, row.env, fetch=fetch and base not in fetched)
            fetched.add(base)
        except DexError as exc:
            failed[base] = f"git {UNKNOWN}: {exc}"
            row.notes.append(failed[base])
            continue
        if row.git_tag is None:
            row.notes.append(
                f"no tag for {ctx.config.kustomize_image_name} in the {row.env} overlay on {base}"
            )


def _live_rollout(cfg: Config, row: EnvStatus, ro: rollouts.RolloutState | None, namespace: str) -> None:
    """``workload = "Rollout"``: the live image is the Rollout's template (what it rolls out);
    a canary or preview in progress and a phase other than Healthy are noted."""
    if ro is None:
        row.notes.append(f"live {UNKNOWN}: rollout {cfg.deployment} not found in namespace {namespace}")
        return
    row.live_image = ro.template_image
    if ro.template_image is None:
        where = f"{namespace}/{cfg.deployment}"
        row.notes.append(f"live {UNKNOWN}: rollout {where} has no container {cfg.container!r}")
        return
    ref = ImageRef.parse(ro.template_image)
    if cluster.is_app_image(cfg, ref):
        row.live_tag = ref.tag or None
        if not ref.tag:  # as for a Deployment: no tag to compare, and said why
            row.notes.append(
                f"live tag {UNKNOWN}: the cluster runs {ro.template_image} (pinned by digest, no tag)"
            )
    else:
        row.drift = True
        row.notes.append(f"the cluster runs {ro.template_image}, not an image of {cfg.image}")
    if ro.phase != "Healthy":
        row.notes.append(f"rollout {ro.summary()}")
    if ro.updating and ro.stable_image:
        row.notes.append(f"stable {ro.stable_image}")


def _live(ctx: Context, rows: list[EnvStatus]) -> None:

    cfg = ctx.config
    access = cluster.access_problem(cfg)
    problems: dict[str, str] = {}  # per kube context ([tool.dex.cluster] contexts): a dead one is asked once
    for row in rows:
        context = cluster.context_for(cfg, row.env)
        problem = access or problems.get(context)
        if problem is not None:
            row.notes.append(f"live {UNKNOWN}: {problem}")
            continue
        kube = cluster.kubectl_for(cfg, row.env)
        namespace = cfg.namespace_for(row.env)
        try:
            if cfg.cluster.workload == "Rollout":
                _live_rollout(cfg, row, rollouts.read_from(kube, namespace, cfg), namespace)
                continue
            deployment = kube.deployment(namespace, cfg.deployment, cfg.container)
            detected = rollouts.detect(kube, namespace, cfg) if deployment is None else None
        except ForbiddenError as exc:
            row.notes.append(f"live {UNKNOWN}: {exc}")  # RBAC is per namespace: ask the next env
            continue
        except ClusterAccessError as exc:
            problems[context] = str(exc)  # the same for every env of this context: ask once
            row.notes.append(f"live {UNKNOWN}: {problems[context]}")
            continue
        except DexError as exc:
            row.notes.append(f"live {UNKNOWN}: {exc}")
            continue
        if detected is not None:  # no Deployment, but an Argo Rollouts Rollout of that name
            row.notes.append(cluster.DETECTED.format(name=cfg.deployment, namespace=namespace))
            _live_rollout(cfg, row, detected, namespace)
            continue
        _live_deployment(cfg, row, deployment, namespace)


def _live_deployment(cfg: Config, row: EnvStatus, deployment: Deployment | None, namespace: str) -> None:
    if deployment is None:
        row.notes.append(f"live {UNKNOWN}: deployment {cfg.deployment} not found in namespace {namespace}")
        return
    row.live_image = deployment.image
    if deployment.image is None:
        row.notes.append(f"live {UNKNOWN}: deployment {namespace}/{cfg.deployment} has no container "
                         f"{cfg.container!r}")  # fmt: skip
        return
    ref = ImageRef.parse(deployment.image)
    if cluster.is_app_image(cfg, ref):
        row.live_tag = ref.tag or None
        if not ref.tag:
            # `image@sha256:...` (kustomize `digest:`, or a hand-made pin): no tag to compare.
            row.notes.append(
                f"live tag {UNKNOWN}: the cluster runs {deployment.image} (pinned by digest, no tag)"
            )
    else:
        row.drift = True
        row.notes.append(f"the cluster runs {deployment.image}, not an image of {cfg.image}")
    complete, why = deployment.rollout_state()
    if not complete:
        row.notes.append(f"rollout in progress: {why}")


def _scan(ctx: Context, rows: list[EnvStatus]) -> None:
    """Each env's scan verdict: the git tag's digest in the registry, its newest verdict."""
    if ctx.config.registry_check == "off":
        return  # SCAN shows unknown; asking nothing is what "off" says
    with digests.RegistryCheck(ctx.config) as check:
        broken: str | None = None
        for row in rows:
            if row.git_tag is None:
                continue
            if broken is not None:
                row.notes.append(broken)
                continue
            try:
                digest = check.lookup(row.git_tag)
                if digest is None:
                    row.notes.append(f"{ctx.config.image}:{row.git_tag} is not in the registry")
                    continue
                found, _ = check.scan_state(digest)
            except DexError as exc:
                broken = f"scan {UNKNOWN}: {exc}"  # the registry is the same for every env: ask once
                row.notes.append(broken)
                continue
            row.scan = {"state": found, "digest": digest}
            if found == digests.SCAN_MISSING:
                hint = digests.scan_hint(ctx.config.image, digest)
                row.notes.append(f"no scan verdict for {digest}: {hint}")


def _argo(ctx: Context, rows: list[EnvStatus]) -> str | None:
    """Fill the Argo CD columns; returns why Argo CD was not asked, or None."""

    reason = argocd.not_configured_reason()
    servers = {row.env: cluster.argocd_server_for(ctx.config, row.env) for row in rows}
    if reason is not None and not any(servers.values()):
        return reason
    broken: dict[str | None, str] = {}  # per Argo CD server (None: ARGOCD_SERVER)
    for row in rows:
        server = servers[row.env]
        if server is None and reason is not None:
            row.notes.append(f"Argo CD not checked: {reason}")
            continue
        if server in broken:
            row.sync = row.health = UNKNOWN  # not "-" (= Argo CD not configured): it failed
            row.notes.append(broken[server])
            continue
        name = ctx.config.app_for(row.env)
        try:
            app = argocd.app_get(name, server=server)
        except AppNotFoundError:
            row.sync = row.health = UNKNOWN
            row.notes.append(f"Argo CD app {name} does not exist (or this token may not read it)")
            continue
        except DexError as exc:
            row.sync = row.health = UNKNOWN
            broken[server] = f"Argo CD {UNKNOWN}: {exc}"
            row.notes.append(broken[server])
            continue
        row.sync, row.health, row.revision = app.sync_status, app.health, app.revision or None
    return None


def _summary(rows: list[EnvStatus]) -> None:

    if not gha.active():
        return
    body = [
        [r.env, r.git_tag or UNKNOWN, r.live_tag or UNKNOWN, f"{r.sync or '-'}/{r.health or '-'}",
         "**DRIFT**" if r.drift else r.state]
        for r in rows
    ]  # fmt: skip
    gha.summary(
        "### dex-tasks status\n\n" + gha.markdown_table(["env", "git", "live", "Argo CD", "state"], body)
    )
