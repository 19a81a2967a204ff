"""Argo CD sync history per env: how many syncs, how long they took, how the last one ended.

Source: the env's Application (``[tool.dex] argocd-app``, on the env's ``argocd-servers`` server
or ``ARGOCD_SERVER``), read with ``argocd app get NAME -o json`` - or, without the CLI but with
``ARGOCD_AUTH_TOKEN``, the REST API's ``GET /api/v1/applications/NAME``, the same document. Its
``status.history[]`` (argo-cd ``RevisionHistory``) is the record of the app's *successful* syncs;
``argocd app history`` prints the same entries without their start times, so it cannot give a
duration (see :func:`dex_tasks.tools.argocd.app_get`).

* **syncs**: history entries whose ``deployedAt`` (the sync finished) falls in the window.
  Argo CD keeps only ``spec.revisionHistoryLimit`` entries (default 10): when the history is full
  and its oldest entry is newer than the window's start, older syncs of the window are gone, and
  ``complete`` is false - the count is "the syncs Argo CD still shows", never a guess.
* **sync seconds**: ``deployedAt - deployStartedAt`` (the operation's start, recorded since Argo
  CD 1.7). An entry without ``deployStartedAt``, or whose start lies after its end (the two times
  can come from different controller processes after a restart or a shard move: clock skew), has
  no duration: it counts as a sync but not in p50/p90 (``without_duration`` says how many).
  p50 and p90 are nearest-rank, as for the pipeline; **met**: p90 within ``sync-seconds``.
* **last**: ``status.operationState`` - the phase of the last (or running) operation. A sync that
  ended ``Failed`` or ``Error`` leaves no history entry, and Argo CD keeps no other trace of
  earlier failures, so ``failed`` is 0 or 1 (the last operation, when it failed in the window) and
  ``success_rate`` = syncs / (syncs + failed) is a rate over what Argo CD still records.

Not configured (no server for any env, or neither the CLI nor a token): one notice, ``None``.
An Argo CD that cannot be asked is a warning and an ``error`` in that env's entry, as for the
GitHub half (:mod:`dex_tasks.insight.pipeline`): the other halves of ``metrics`` still report.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, durations, proc
from dex_tasks.errors import AppNotFoundError, DexError
from dex_tasks.insight.dora import percentile
from dex_tasks.tools import argocd

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from dex_tasks.config import Config
    from dex_tasks.report import Reporter

DEFAULT_HISTORY_LIMIT = 10  # argo-cd pkg/apis/application/v1alpha1/application_defaults.go
FAILED_PHASES = frozenset({"Failed", "Error"})  # gitops-engine OperationPhase: not Successful


def _parse(text: str) -> dt.datetime | None:
    return durations.instant(text)  # Argo CD's answer: an edge year is no time, not an OverflowError


def sync_seconds(entry: argocd.HistoryEntry) -> float | None:
    """``deployedAt - deployStartedAt``; None without a start or when the clocks disagree."""
    started, ended = _parse(entry.deploy_started_at), _parse(entry.deployed_at)
    if started is None or ended is None or ended < started:
        return None
    return (ended - started).total_seconds()


def empty(target_s: float) -> dict[str, Any]:
    """The entry of an env whose app could not be read (no syncs seen, nothing met)."""
    return {
        "syncs": 0, "automated": 0, "with_duration": 0, "without_duration": 0, "p50_s": None, "p90_s": None,
        "target_s": target_s, "met": None, "failed": 0, "success_rate": None, "last_phase": None,
        "last_at": None, "last_message": None, "history": 0, "history_limit": None, "complete": None,
        "oldest_at": None,
    }  # fmt: skip


def summarize(app: argocd.App, *, since: dt.datetime, until: dt.datetime, target_s: float) -> dict[str, Any]:
    """The sync metrics of one app over ``[since, until]`` (pure)."""
    history = [(entry, _parse(entry.deployed_at)) for entry in app.history]
    seen = [entry for entry, at in history if at is not None and since <= at <= until]
    times = [d for entry in seen if (d := sync_seconds(entry)) is not None]
    limit = DEFAULT_HISTORY_LIMIT if app.history_limit is None else app.history_limit
    dated = [at for _, at in history if at is not None]
    oldest = min(dated) if dated else None
    # Full history whose oldest entry is inside the window: older syncs of the window were dropped.
    complete = not (len(app.history) >= limit and (oldest is None or oldest > since))
    last_at = _parse(app.operation_finished_at) or _parse(app.operation_started_at)
    failed = int(app.operation_phase in FAILED_PHASES and last_at is not None and since <= last_at <= until)
    p50, p90 = percentile(times, 50), percentile(times, 90)
    return {
        "syncs": len(seen),
        "automated": sum(1 for entry in seen if entry.automated),
        "with_duration": len(times),
        "without_duration": len(seen) - len(times),
        "p50_s": p50,
        "p90_s": p90,
        "target_s": target_s,
        "met": p90 <= target_s if p90 is not None else None,
        "failed": failed,
        "success_rate": round(len(seen) / (len(seen) + failed), 4) if seen or failed else None,
        "last_phase": app.operation_phase or None,
        "last_at": durations.iso(last_at) if last_at else None,
        "last_message": app.operation_message or None,
        "history": len(app.history),
        "history_limit": limit,
        "complete": complete,
        "oldest_at": durations.iso(oldest) if oldest else None,
    }


def not_configured_reason(cfg: Config, envs: Sequence[str], env: dict[str, str] | None = None) -> str | None:
    """Why no env's Argo CD can be asked, or None when at least one can."""
    env = dict(os.environ) if env is None else env
    own = any(cluster.argocd_server_for(cfg, e) for e in envs)
    if not own and not env.get(argocd.SERVER_ENV, "").strip():
        return f"{argocd.SERVER_ENV} is not set"
    if proc.which("argocd") is None and not env.get(argocd.TOKEN_ENV, "").strip():
        return f"argocd is not on PATH and {argocd.TOKEN_ENV} is not set (for the REST API)"
    return None


def collect(
    report: Reporter, cfg: Config, envs: Sequence[str], since: dt.datetime, until: dt.datetime
) -> dict[str, dict[str, Any] | None] | None:
    """``{env: metrics}`` (None for an env without a server), or None when Argo CD is not configured."""
    reason = not_configured_reason(cfg, envs)
    if reason is not None:
        report.out(f"Argo CD sync history skipped: {reason}")
        return None
    from dex_tasks.tools import argocd_api  # noqa: PLC0415 - requests only without the CLI

    target_s = cfg.metrics.targets.sync_seconds
    default = os.environ.get(argocd.SERVER_ENV, "").strip() or None
    use_cli = proc.which("argocd") is not None
    result: dict[str, dict[str, Any] | None] = {}
    broken: dict[str, str] = {}  # per server: one failure is not asked again for every env
    with contextlib.ExitStack() as stack:
        clients: dict[str, argocd_api.ArgoCDAPI] = {}

        def read(name: str, own: str | None, server: str) -> argocd.App:
            if use_cli:  # the env's own server, else the CLI's ARGOCD_SERVER
                return argocd.app_get(name, server=own)
            if server not in clients:  # one client (and deadline) per server
                clients[server] = stack.enter_context(argocd_api.ArgoCDAPI.from_env(server=server))
            return argocd.App.from_json(clients[server].get_app(name))

        unserved = []
        for env in envs:
            own = cluster.argocd_server_for(cfg, env)
            server = own or default
            if server is None:
                unserved.append(env)
                result[env] = None
                continue
            name = cfg.app_for(env)
            via = "cli" if use_cli else "api"
            entry: dict[str, Any] = {"app": name, "via": via}
            if server in broken:
                result[env] = empty(target_s) | entry | {"error": broken[server]}
                continue
            try:
                app = read(name, own, server)
            except AppNotFoundError:
                problem = f"Argo CD app {name} does not exist (or this token may not read it)"
                report.warn(f"Argo CD sync history of {env} not available: {problem}")
                result[env] = empty(target_s) | entry | {"error": problem}
                continue
            except DexError as exc:
                broken[server] = str(exc)
                report.warn(f"Argo CD sync history of {env} not available: {exc}")
                result[env] = empty(target_s) | entry | {"error": str(exc)}
                continue
            result[env] = entry | summarize(app, since=since, until=until, target_s=target_s)
        if unserved:
            report.out(f"no Argo CD server for {', '.join(unserved)} ({argocd.SERVER_ENV} is not set)")
    return result
