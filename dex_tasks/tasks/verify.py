"""``verify ENV [--url URL] [--rollback-on-failure] [--timeout S]``: the post-deploy smoke test.

1. When Argo CD is configured (``argocd`` on PATH, ``ARGOCD_SERVER`` set): wait, bounded by
   ``--timeout``, until ENV's app is Synced and Healthy at the expected revision - the tip of
   ``origin/<ENV's base branch>`` (when this runs inside the repository; otherwise any revision).
   A failed sync operation fails at once.
2. GET the health URL with bounded retries: ``--url``, else ``[tool.dex.cluster] health-urls``
   for ENV, else a ``kubectl port-forward`` to ``svc/<cluster.service>:<cluster.service-port>``
   in ENV's namespace and ``cluster.health-path``.
3. On failure: exit 1 saying why; with ``--rollback-on-failure`` first roll ENV back to its last
   known good tag (``rollback ENV``) and say what was done. With ``workload = "Rollout"`` an
   update in progress is aborted first (``rollout abort``'s patch), so the stable ReplicaSet
   serves at once rather than after Argo CD syncs the rollback commit.

An Argo CD API that cannot be reached is exit 4 and never triggers a rollback: nothing is known
about the deployment then.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, gha, progress, rollouts
from dex_tasks.errors import EXIT_CHECK_FAILED, AppNotFoundError, ArgoCDError, DexError, UsageError
from dex_tasks.gitops import state
from dex_tasks.insight import hooks
from dex_tasks.tasks import Context, TaskResult, _args, _delivery
from dex_tasks.tools import argocd, git

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

# Bounds of the Argo CD wait besides --timeout: at most this many `app get` calls (with
# --interval 0 the time bound alone would allow thousands), each given at least this long.
MAX_ARGO_POLLS = 300
MIN_QUERY_TIMEOUT = 10.0
MAX_ARGO_ERRORS = 3  # consecutive failed `app get` calls before giving up (exit 4)


def _is_auth_error(exc: Exception) -> bool:
    """A token problem does not go away by asking again."""
    return any(code in str(exc) for code in ("code = Unauthenticated", "code = PermissionDenied"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", metavar="ENV", help="the environment to verify")
    parser.add_argument(
        "--url",
        type=_args.value,
        help="health URL (default: [tool.dex.cluster] health-urls, else a port-forward)",
    )
    parser.add_argument(
        "--rollback-on-failure", action="store_true", help="roll back to the last known good tag on failure"
    )
    parser.add_argument(
        "--timeout",
        type=_args.seconds,
        default=None,
        metavar="S",
        help="seconds to wait for Argo CD and the health URL (default: [tool.dex.cluster] rollout-timeout)",
    )
    parser.add_argument(
        "--attempts", type=_args.count, default=10, metavar="N", help="health GET attempts (default 10)"
    )
    parser.add_argument(
        "--interval", type=_args.pause, default=3.0, metavar="S", help="seconds between attempts"
    )
    parser.add_argument("--context", type=_args.value, help="kubectl context for the port-forward")


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    ctx = ctx.with_config(cluster.with_context(ctx.config, args.context))
    cfg = ctx.config
    env = cfg.check_env(args.env)
    timeout = float(args.timeout if args.timeout is not None else cfg.cluster.rollout_timeout)
    if timeout <= 0 or args.attempts < 1 or args.interval < 0:
        raise UsageError("--timeout and --attempts must be positive, --interval not negative")
    if args.url and not args.url.startswith(("http://", "https://")):
        raise UsageError(f"--url must be an http(s) URL, got {args.url!r}")
    configured_url = cfg.cluster.health_urls.get(env)
    if (
        not args.url
        and configured_url is not None
        and not configured_url.lower().startswith(("http://", "https://"))
    ):
        # Checked before anything runs: a typo would otherwise read as "the env is down" and,
        # with --rollback-on-failure, roll back a healthy deployment.
        raise UsageError(
            f"[tool.dex.cluster] health-urls.{env} must be an http(s) URL, got {configured_url!r}"
        )
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {"env": env, "ok": False, "argocd": None, "health": None, "rolled_back": None}

    problem = _argo_wait(ctx, env, deadline=deadline, interval=args.interval, data=data)
    ro: rollouts.RolloutState | None = None
    if problem is None and cfg.cluster.workload == "Rollout":
        # A canary paused at a step or an aborted (Degraded) Rollout is not a verified deploy,
        # whatever the health URL answers: the stable pods answer it. No access raises (exit 4/2).
        ro = rollouts.read(cfg, env, what="verify")
        data["rollout"] = ro.as_json(env)
        problem = rollouts.health_problem(ro)
    if problem is None:
        problem = _health(ctx, env, args, deadline=deadline, data=data)
    if problem is None:
        data["ok"] = True
        ctx.out(f"{env} verified: {data['health']['detail']} from {data['health']['url']}")
        _report(ctx, env, data, "verified")
        return TaskResult(data=data)

    ctx.out(f"verify {env} failed: {problem}")
    if not args.rollback_on_failure:
        _report(ctx, env, data, f"failed: {problem}")
        return TaskResult(exit_code=EXIT_CHECK_FAILED, message=f"verify {env} failed: {problem}", data=data)

    aborted = _abort_first(ctx, env, ro, data) if ro is not None and ro.updating and not ro.aborted else ""
    ctx.out(f"rolling {env} back to its last known good tag")
    try:
        rolled = _delivery.rollback(ctx, env)
    except DexError as exc:
        exc.message = f"verify {env} failed: {problem}; the rollback failed too{aborted}: {exc.message}"
        raise
    data["rolled_back"] = rolled.data
    what = f"rolled {env} back to {rolled.data.get('tag')}"
    if rolled.data.get("commit"):
        what += f" (commit {str(rolled.data['commit'])[:12]}"
        what += ", pushed)" if rolled.data.get("pushed") else ", not pushed)"
    if rolled.data.get("pr_url"):
        what += f" - {rolled.data['pr_url']}"
    if ctx.dry_run:
        what = f"would have {what}"
    _report(ctx, env, data, f"failed: {problem}; {what}")
    return TaskResult(
        exit_code=EXIT_CHECK_FAILED, message=f"verify {env} failed: {problem}; {what}", data=data
    )


def _abort_first(ctx: Context, env: str, ro: rollouts.RolloutState, data: dict[str, Any]) -> str:
    """Abort the update in progress, so the stable ReplicaSet takes the traffic now, not when Argo
    CD syncs the rollback commit; what to add to a later failure's message ("" if not aborted).

    Only a fast path: refused (RBAC, Argo CD), the rollback commit is still the one to make."""
    try:
        rollouts.abort(ctx.config, env, ro)
    except DexError as exc:
        data["rollout_aborted"] = False
        ctx.warn(f"could not abort rollout {ro.namespace}/{ro.name} first ({exc}); "
                 f"rolling back in git anyway: the canary serves until Argo CD syncs it")  # fmt: skip
        return ""
    data["rollout_aborted"] = True
    ctx.out(f"{'would abort' if ctx.dry_run else 'aborted'} rollout {ro.namespace}/{ro.name} first")
    return f" (rollout {ro.namespace}/{ro.name} aborted: the stable {ro.stable_image} serves)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Expected:
    """The commit Argo CD should be synced to (the tip of origin/<base>), and the clone that has it
    (found once: every later revision Argo CD reports is compared in the same clone)."""

    root: Path
    base: str
    commit: str


def _expected_revision(ctx: Context, env: str) -> tuple[_Expected | None, str]:
    """The tip of origin/<base> (what Argo CD should be synced to), or None and why not."""

    base = ctx.config.branch_for(env)
    try:
        root = state.open_repo(ctx.config).root
        return _Expected(root=root, base=base, commit=git.fetch(root, base)), f"origin/{base}"
    except DexError as exc:
        return None, f"any revision ({exc})"


def _at_or_after(expected: _Expected | None, revision: str, seen: dict[str, bool]) -> bool:
    """Is Argo CD's ``revision`` the expected commit or a later one on the env's base branch?

    A push to the base branch after this run fetched it (another team's merge) makes Argo CD
    sync to a newer commit that contains ours; waiting for the exact commit would then time
    out and, with --rollback-on-failure, roll back a healthy deployment.
    """
    if expected is None or revision == expected.commit:
        return True
    if not revision:
        return False
    if revision not in seen:
        root = expected.root
        try:
            if git.rev_parse(root, revision) is None:  # newer than our fetch: fetch again (read-only)
                git.fetch(root, expected.base)
            later = git.git(
                "merge-base",
                "--is-ancestor",
                expected.commit,
                revision,
                cwd=root,
                read_only=True,
                check=False,
                quiet=True,
            )
            seen[revision] = later.returncode == 0
        except DexError:
            seen[revision] = False
    return seen[revision]


def _argo_wait(
    ctx: Context, env: str, *, deadline: float, interval: float, data: dict[str, Any]
) -> str | None:

    server = cluster.argocd_server_for(ctx.config, env)
    if not argocd.in_use(server=server):  # ARGOCD_SERVER set without the CLI: exit 3, never half a verify
        reason = argocd.not_configured_reason(server=server) or f"{argocd.SERVER_ENV} is not set"
        ctx.out(f"Argo CD not checked ({reason}); checking the health URL only")
        data["argocd"] = {"checked": False, "reason": reason}
        return None
    name = ctx.config.app_for(env)
    expected, source = _expected_revision(ctx, env)
    ctx.out(
        f"waiting for Argo CD app {name}: Synced+Healthy at {expected.commit[:12] if expected else source}"
    )
    polls = errors = 0
    seen: dict[str, bool] = {}
    while True:
        polls += 1
        # One `app get` must not outlive the deadline either (a hung API would wait its 120 s).
        remaining = deadline - time.monotonic()
        try:
            timeout = max(MIN_QUERY_TIMEOUT, min(argocd.QUERY_TIMEOUT, remaining))
            app = argocd.app_get(name, timeout=timeout, server=server)
            errors = 0
        except AppNotFoundError:
            data["argocd"] = {"checked": True, "app": name, "exists": False}
            return f"Argo CD app {name} does not exist (or this token may not read it)"
        except ArgoCDError as exc:
            # One blip of the API (a restarting argocd-server, a dropped connection) in a wait of
            # minutes: retry a few times within the deadline; then exit 4, never a rollback.
            errors += 1
            if _is_auth_error(exc) or errors >= MAX_ARGO_ERRORS or time.monotonic() + interval > deadline:
                raise
            ctx.warn(f"Argo CD did not answer ({exc})")
            progress.waiting(f"Argo CD app {name} to answer", errors + 1, MAX_ARGO_ERRORS, max(interval, 1.0))
            time.sleep(max(interval, 1.0))
            continue
        at_revision = _at_or_after(expected, app.revision, seen)
        data["argocd"] = {
            "checked": True,
            "app": name,
            "sync": app.sync_status,
            "health": app.health,
            "revision": app.revision,
            "expected_revision": expected.commit if expected else None,
            "polls": polls,
        }
        state = f"{app.sync_status}/{app.health} at {app.revision[:12] or '?'}"
        if app.synced_and_healthy and at_revision:
            ctx.out(f"Argo CD app {name}: {state}")
            return None
        # Fail fast only on a failed sync of our commit (or a later one): a failure left over from
        # an older revision says nothing yet - Argo CD may not have started syncing ours.
        if app.operation_phase in {"Failed", "Error"} and (
            not app.operation_revision or _at_or_after(expected, app.operation_revision, seen)
        ):
            return f"Argo CD app {name}: the last sync {app.operation_phase.lower()} ({state})"
        if polls >= MAX_ARGO_POLLS or time.monotonic() + interval > deadline:
            want = f"Synced/Healthy at {expected.commit[:12]}" if expected else "Synced/Healthy"
            return f"Argo CD app {name} is {state}, not {want}, after {polls} check(s)"
        progress.waiting(f"Argo CD app {name}", polls + 1, MAX_ARGO_POLLS, interval, state)
        time.sleep(interval)


def _health(
    ctx: Context, env: str, args: argparse.Namespace, *, deadline: float, data: dict[str, Any]
) -> str | None:

    cfg = ctx.config
    url = args.url or cfg.cluster.health_urls.get(env)
    if url:
        health = cluster.http_health(url, attempts=args.attempts, interval=args.interval, deadline=deadline)
    else:
        health = cluster.port_forward_health(
            cfg, cfg.namespace_for(env), attempts=args.attempts, interval=args.interval, deadline=deadline,
            env=env,
        )  # fmt: skip
    data["health"] = health.as_json()
    if health.ok:
        return None
    return f"{health.url}: {health.detail} after {health.attempts} attempt(s)"


def _report(ctx: Context, env: str, data: dict[str, Any], outcome: str) -> None:
    """Step outputs (``ok``, ``rolled-back-to``) and a job summary line in GitHub Actions."""

    hooks.verified(ctx, ctx.config, env, ok=bool(data["ok"]), detail=outcome)  # never raises
    rolled = data.get("rolled_back") or {}
    gha.set_outputs({"ok": "true" if data["ok"] else "false", "rolled-back-to": str(rolled.get("tag") or "")})
    gha.summary(f"### dex-tasks verify {env}\n\n{'✅' if data['ok'] else '❌'} {outcome}\n")
